"""Receipts and vouchers (Art. 19(4)): compact JWS, verifiable offline against the JWKS.

Header exactly ``{"alg": "ES256" | "EdDSA", "kid", "typ": "gba-receipt+jwt"}``; claims as in
DESIGN.md, ``iss``, ``sub``, ``iat`` and ``jti`` required. Verification is
:func:`gateway.trust.jws.verify` under :data:`RECEIPT_POLICY`: the key is the JWK of the
published set whose ``kid`` matches exactly, it must say ``use: "sig"`` and carry its ``alg``
(ES256 on EC P-256 or EdDSA on OKP Ed25519), and a ``gba_use`` other than ``seal`` is refused;
``exp``, ``nbf`` and ``iat`` hold with a minute of clock skew.

Every refusal is the same :class:`SignatureInvalidError` with the same short detail. The
reason, a short code such as ``duplicate-member`` (never token content), is chained as the
error's ``__cause__`` (a :class:`ReceiptRefused`) for logs, tests and the command line.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from gateway.domain.errors import SignatureInvalidError
from gateway.trust.jws import JwsPolicy, JwsRefused, jws_alg, sign, verify
from gateway.trust.jws_codec import json_object
from gateway.trust.keys import SEAL, SigningKey

RECEIPT_TYP = "gba-receipt+jwt"
RECEIPT_POLICY = JwsPolicy(
    name="receipt",
    typs=frozenset({RECEIPT_TYP}),
    algs=frozenset({"ES256", "EdDSA"}),
    purpose=SEAL,
    required_claims=("iss", "sub", "iat", "jti"),
    leeway=60,
    max_token=16 * 1024,
)

_DETAIL = "the receipt does not verify"
_MAX_TOKEN_FILE = RECEIPT_POLICY.max_token + 1024  # room for surrounding whitespace
_MAX_JWKS_FILE = 1024 * 1024

_T = TypeVar("_T")


class ReceiptRefused(Exception):
    """Why a receipt was refused: a short code, chained as the ``__cause__`` of the error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JwsReceiptIssuer:
    """:class:`~gateway.services.ports.ReceiptIssuer` with the gateway's seal key."""

    def __init__(self, key: SigningKey) -> None:
        if jws_alg(key) is None:
            raise ValueError(f"a seal key must be ES256 or EdDSA, not {key.alg}")
        self._key = key

    def issue(self, claims: Mapping[str, Any]) -> str:
        return sign(self._key, claims, typ=RECEIPT_TYP)


def verify_receipt(
    token: str, jwks: Mapping[str, Any], *, now: datetime | None = None
) -> dict[str, Any]:
    """The claims of a receipt that verifies against ``jwks``; SignatureInvalidError if not.

    Nothing is fetched or opened: the key comes from ``jwks`` alone.
    """
    at = now or datetime.now(UTC)
    return _uniformly(lambda: verify(token, jwks, RECEIPT_POLICY, now=at).claims)


def verify_receipt_file(path: Path, jwks_path: Path) -> dict[str, Any]:
    """Verify the compact receipt in ``path`` against the JWKS document in ``jwks_path``.

    The token file may surround the token with whitespace and newlines. A file that cannot be
    read raises :class:`OSError`; any problem with the contents is a SignatureInvalidError.
    """

    def check() -> dict[str, Any]:
        token = _token_text(_read_bounded(path, _MAX_TOKEN_FILE))
        jwks = json_object(_read_bounded(jwks_path, _MAX_JWKS_FILE), "jwks-malformed")
        return verify(token, jwks, RECEIPT_POLICY, now=datetime.now(UTC)).claims

    return _uniformly(check)


def _uniformly(check: Callable[[], _T]) -> _T:
    """Run ``check``; every refusal becomes one SignatureInvalidError with one detail."""
    try:
        return check()
    except JwsRefused as refused:
        reason = refused.reason
    except (ValueError, TypeError, KeyError, RecursionError, OverflowError):
        reason = "malformed"
    # Raised outside the except blocks so that no exception carrying token content is chained.
    raise SignatureInvalidError(_DETAIL) from ReceiptRefused(reason)


def _refuse(reason: str) -> NoReturn:
    raise JwsRefused(reason, reason)


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
