"""Receipts and vouchers (Art. 19(4)): compact JWS, verifiable offline against the JWKS.

Header ``{"alg": "ES256" | "EdDSA", "kid", "typ": "gba-receipt+jwt"}``; claims as in
DESIGN.md. Verification takes the algorithm from the key (the JWK in the published set whose
``kid`` matches exactly), never from the token header; the header ``alg`` must merely agree.

pyjwt is the one JOSE verification stack, but it is lenient where a receipt must not be, so
:func:`verify_receipt` checks the token itself first (identity_security.md §3.3, C1–C15):

- sizes before decoding: the whole token, the header segment, and a signature segment of
  exactly 64 bytes (raw ``r || s`` for ES256, ``R || S`` for EdDSA);
- exactly three segments of canonical, unpadded base64url (a JWE has five);
- a header of exactly ``alg``, ``kid`` and ``typ``, all strings: ``crit``, ``b64``, ``jku``,
  ``x5u``, ``jwk``, ``x5c`` and any other parameter are refused, never fetched or used;
- header and claims as strict UTF-8 JSON objects without duplicate member names or
  ``NaN``/``Infinity`` (pyjwt lets the last duplicate win);
- ``kid`` is an exact dictionary lookup in the given set, nothing else;
- the JWK must say ``use: "sig"`` and ``alg`` ES256 (EC P-256) or EdDSA (OKP Ed25519), hold no
  private members, and its ``alg`` must equal the header's;
- ES256 ``r`` and ``s`` in [1, n-1] (psychic signatures, CVE-2022-21449).

Every refusal is the same :class:`SignatureInvalidError` with the same short detail. The
reason, a short code such as ``duplicate-member`` (never token content), is chained as the
error's ``__cause__`` (a :class:`ReceiptRefused`) for logs, tests and the command line.
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import jwt

from gateway.domain.errors import SignatureInvalidError
from gateway.trust.keys import (
    PURPOSE_MEMBER,
    SEAL,
    KeyMisuseError,
    PublicKey,
    SigningKey,
    alg_for_public_key,
    public_key_from_jwk,
)

RECEIPT_TYP = "gba-receipt+jwt"
_JWS_ALG = {"ecdsa-p256-sha256": "ES256", "ed25519": "EdDSA"}

_DETAIL = "the receipt does not verify"
_MAX_TOKEN = 16 * 1024  # characters of the whole compact token
_MAX_HEADER = 1024  # characters of the base64url header segment
_SIGNATURE_BYTES = 64  # ES256 raw r || s and Ed25519 R || S
_SIGNATURE_CHARS = 86  # unpadded base64url of 64 bytes
_MAX_TOKEN_FILE = _MAX_TOKEN + 1024  # room for surrounding whitespace and newlines
_MAX_JWKS_FILE = 1024 * 1024
_LEEWAY_SECONDS = 60  # clock skew tolerated for exp, nbf and iat

_HEADER_MEMBERS = frozenset({"alg", "kid", "typ"})
_REQUIRED_CLAIMS = ["iss", "sub", "iat", "jti"]
_TIME_CLAIMS = ("exp", "nbf", "iat")
_STRING_CLAIMS = ("iss", "sub", "jti")
# JWS alg -> the JWK kty and crv that alone may carry it, and the gateway's key algorithm.
_KEY_PROFILE = {
    "ES256": ("EC", "P-256", "ecdsa-p256-sha256"),
    "EdDSA": ("OKP", "Ed25519", "ed25519"),
}
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")

_T = TypeVar("_T")


class ReceiptRefused(Exception):
    """Why a receipt was refused: a short code, chained as the ``__cause__`` of the error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JwsReceiptIssuer:
    """:class:`~gateway.services.ports.ReceiptIssuer` with the gateway's seal key."""

    def __init__(self, key: SigningKey) -> None:
        if key.alg not in _JWS_ALG:
            raise ValueError(f"a seal key must be ES256 or EdDSA, not {key.alg}")
        self._key = key
        self._alg = _JWS_ALG[key.alg]

    def issue(self, claims: Mapping[str, Any]) -> str:
        return jwt.encode(
            dict(claims),
            self._key.private_key,
            algorithm=self._alg,
            headers={"kid": self._key.kid, "typ": RECEIPT_TYP},
        )


def verify_receipt(token: str, jwks: Mapping[str, Any]) -> dict[str, Any]:
    """The claims of a receipt that verifies against ``jwks``; SignatureInvalidError if not.

    Nothing is fetched or opened: the key comes from ``jwks`` alone.
    """
    return _uniformly(lambda: _verify(token, jwks))


def verify_receipt_file(path: Path, jwks_path: Path) -> dict[str, Any]:
    """Verify the compact receipt in ``path`` against the JWKS document in ``jwks_path``.

    The token file may surround the token with whitespace and newlines. A file that cannot be
    read raises :class:`OSError`; any problem with the contents is a SignatureInvalidError.
    """

    def check() -> dict[str, Any]:
        token = _token_text(_read_bounded(path, _MAX_TOKEN_FILE))
        jwks = _json_object(_read_bounded(jwks_path, _MAX_JWKS_FILE), "jwks-malformed")
        return _verify(token, jwks)

    return _uniformly(check)


# ---------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------


def _uniformly(check: Callable[[], _T]) -> _T:
    """Run ``check``; every refusal becomes one SignatureInvalidError with one detail."""
    try:
        return check()
    except ReceiptRefused as refused:
        reason = refused.reason
    except (ValueError, TypeError, KeyError, RecursionError, OverflowError):
        reason = "malformed"
    # Raised outside the except blocks so that no exception carrying token content is chained.
    raise SignatureInvalidError(_DETAIL) from ReceiptRefused(reason)


def _refuse(reason: str) -> NoReturn:
    raise ReceiptRefused(reason)


def _verify(token: str, jwks: Mapping[str, Any]) -> dict[str, Any]:
    header_b64, payload_b64, signature_b64 = _segments(token)
    header = _json_object(_b64decode(header_b64), "header-not-object")
    alg, kid = _check_header(header)
    jwk = _find_key(jwks, kid)
    public_key = _check_key(jwk, alg)
    signature = _b64decode(signature_b64)
    if len(signature) != _SIGNATURE_BYTES:
        _refuse("signature-length")
    if alg == "ES256":
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        if not (0 < r < _P256_ORDER and 0 < s < _P256_ORDER):
            _refuse("ecdsa-range")
    claims = _json_object(_b64decode(payload_b64), "claims-not-object")
    _check_claim_types(claims)
    try:
        verified: dict[str, Any] = jwt.decode(
            token,
            public_key,
            algorithms=[alg],
            options={"require": _REQUIRED_CLAIMS, "verify_aud": False},
            leeway=_LEEWAY_SECONDS,
        )
    except jwt.PyJWTError as exc:
        reason = f"pyjwt-{type(exc).__name__}"
    else:
        return verified
    _refuse(reason)


def _segments(token: object) -> tuple[str, str, str]:
    """The three segments of a compact JWS, checked for size before anything is decoded."""
    if not isinstance(token, str):
        _refuse("not-a-string")
    if len(token) > _MAX_TOKEN:
        _refuse("token-too-large")
    if not token.isascii():
        _refuse("not-ascii")
    segments = token.split(".")
    if len(segments) == 5:
        _refuse("jwe")
    if len(segments) != 3:
        _refuse("not-compact-jws")
    header_b64, payload_b64, signature_b64 = segments
    if len(header_b64) > _MAX_HEADER:
        _refuse("header-too-large")
    if len(signature_b64) != _SIGNATURE_CHARS:
        _refuse("signature-length")
    if not all(_BASE64URL.fullmatch(segment) for segment in segments):
        _refuse("not-base64url")
    return header_b64, payload_b64, signature_b64


def _b64decode(segment: str) -> bytes:
    """Decode canonical unpadded base64url; other encodings of the same bytes are refused."""
    if len(segment) % 4 == 1:
        _refuse("not-base64url")
    data = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii") != segment:
        _refuse("non-canonical-base64url")
    return data


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for name, value in pairs:
        if name in members:
            _refuse("duplicate-member")
        members[name] = value
    return members


def _no_constant(_name: str) -> NoReturn:
    _refuse("non-finite-number")


def _json_object(data: bytes, reason: str) -> dict[str, Any]:
    """Strict JSON: UTF-8 only (no BOM), no duplicate member names, no NaN or Infinity."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        _refuse("not-utf8")
    try:
        value = json.loads(text, object_pairs_hook=_unique_members, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, dict):
        _refuse(reason)
    return value


def _check_claim_types(claims: dict[str, Any]) -> None:
    """NumericDates are finite JSON numbers (pyjwt takes ``"1"`` and ``true``), names strings."""
    for name in _TIME_CLAIMS:
        if name not in claims:
            continue
        value = claims[name]
        if isinstance(value, bool) or not isinstance(value, int | float):
            _refuse("claim-type")
        if not math.isfinite(value):
            _refuse("claim-type")
    for name in _STRING_CLAIMS:
        if name in claims and not isinstance(claims[name], str):
            _refuse("claim-type")


def _check_header(header: dict[str, Any]) -> tuple[str, str]:
    if set(header) != _HEADER_MEMBERS:
        _refuse("header-parameters")
    if not all(isinstance(value, str) for value in header.values()):
        _refuse("header-type")
    if header["typ"] != RECEIPT_TYP:
        _refuse("typ")
    if header["alg"] not in _KEY_PROFILE:
        _refuse("alg")
    return header["alg"], header["kid"]


def _find_key(jwks: Mapping[str, Any], kid: str) -> Mapping[str, Any]:
    """The one JWK whose ``kid`` equals ``kid`` exactly: a dictionary lookup, nothing more."""
    if not isinstance(jwks, Mapping):
        _refuse("jwks-malformed")
    keys = jwks.get("keys")
    if not isinstance(keys, list) or not all(isinstance(k, Mapping) for k in keys):
        _refuse("jwks-malformed")
    matches = [k for k in keys if isinstance(k.get("kid"), str) and k["kid"] == kid]
    if not matches:
        _refuse("unknown-kid")
    if len(matches) > 1:
        _refuse("duplicate-kid")
    return matches[0]


def _check_key(jwk: Mapping[str, Any], alg: str) -> PublicKey:
    key_alg = jwk.get("alg")
    if key_alg not in _KEY_PROFILE:
        _refuse("key-alg")
    if jwk.get("use") != "sig":
        _refuse("key-use")
    if jwk.get(PURPOSE_MEMBER, SEAL) != SEAL:  # the gateway's HTTP-signature key never seals
        _refuse("key-purpose")
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        _refuse("key-ops")
    kty, crv, key_type = _KEY_PROFILE[key_alg]
    if jwk.get("kty") != kty or jwk.get("crv") != crv:
        _refuse("key-type")
    if alg != key_alg:
        _refuse("alg-mismatch")
    try:
        public_key = public_key_from_jwk(dict(jwk))
        if alg_for_public_key(public_key) != key_type:
            _refuse("key-type")
    except KeyMisuseError:
        _refuse("key-malformed")
    return public_key


# ---------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------


def _read_bounded(path: Path, limit: int) -> bytes:
    """At most ``limit`` bytes of ``path``; a larger file is refused without reading it all."""
    with path.open("rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        _refuse("file-too-large")
    return data


def _token_text(data: bytes) -> str:
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        _refuse("not-ascii")
    return text.strip(" \t\r\n")
