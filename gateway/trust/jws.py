"""The one strict JWS verifier (RFC 7515, RFC 8725): every token the gateway reads goes here.

Callers declare what they accept as a frozen :class:`JwsPolicy` and nothing else differs:
receipts and vouchers (:mod:`gateway.trust.receipts`), archive manifests
(:mod:`gateway.trust.archive`), audit checkpoints (:mod:`gateway.trust.audit`), and in
:mod:`gateway.identity` upstream ID tokens, the gateway's access tokens and client assertions.
:func:`verify` applies, in this order (identity_security.md §3.3, C1–C15):

1. sizes before decoding: the whole token (the policy's ``max_token``), the header segment
   and a non-empty signature segment; exactly three segments (a JWE has five) of canonical
   unpadded base64url;
2. the header as strict UTF-8 JSON (no duplicate member names, no NaN); only ``alg``, ``kid``,
   ``typ`` and the policy's ``extra_header`` hints. ``crit``, ``b64``, ``jku``, ``x5u``,
   ``jwk`` and ``x5c`` are never allowed: no caller understands a critical extension or an
   unencoded payload, and a key is never taken from the token;
3. ``typ`` one of the policy's (``None`` in ``typs``: it may be absent), ``alg`` one of the
   policy's asymmetric algorithms (``none`` and ``HS*`` are never), ``kid`` a string;
4. the key: an exact ``kid`` lookup in a key set the caller already trusts (no fetch, no
   path); its ``alg``, if any, equals the header's; its ``use`` (see below), the gateway's
   purpose member ``gba_use`` and ``key_ops`` allow verifying; its type fits the algorithm;
5. the signature: exactly as long as the algorithm and key make it, over the exact received
   ``header.payload`` bytes (ES256 ``r``, ``s`` in [1, n-1]); only then are the claims
   parsed, strictly;
6. registered claims of the right JSON type, the policy's required claims, ``exp``, ``nbf``
   and ``iat`` against the caller's clock with the policy's leeway (and ``max_age``), and
   ``iss`` / ``aud`` when the policy names them.

The ``use`` rule, the same for every caller: a key whose ``use`` is anything but ``"sig"`` is
refused; a key without ``use`` is accepted only by a policy with ``key_use_required=False``
(keys published by others: identity providers and OIDC clients). The gateway's own keys
always carry ``use: "sig"``, so every policy for the gateway's own tokens requires it.

A refusal is a :class:`JwsRefused` with a short ``reason`` code and a message naming the check;
neither ever carries token content. Callers turn it into their own error.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from gateway.trust.jws_codec import (
    JwsRefused,
    b64decode,
    b64encode,
    compact,
    json_object,
    refuse,
)
from gateway.trust.keys import (
    PURPOSE_MEMBER,
    KeyMisuseError,
    PublicKey,
    SigningKey,
    public_key_from_jwk,
    verify_bytes,
)

__all__ = [
    "KEY_PROFILES",
    "SUPPORTED_ALGS",
    "JwsPolicy",
    "JwsRefused",
    "Verified",
    "find_key",
    "jws_alg",
    "sign",
    "unverified",
    "verify",
]

# JWS alg -> the JWK kty and crv that alone may carry it.
KEY_PROFILES: Mapping[str, tuple[str, str | None]] = {
    "ES256": ("EC", "P-256"),
    "EdDSA": ("OKP", "Ed25519"),
    "PS256": ("RSA", None),
    "RS256": ("RSA", None),
}
SUPPORTED_ALGS = frozenset(KEY_PROFILES)
NEVER_ALLOWED_HEADER = frozenset({"crit", "b64", "jku", "x5u", "jwk", "x5c"})
_OWN_ALG = {"ecdsa-p256-sha256": "ES256", "ed25519": "EdDSA"}  # the gateway's key -> JWS alg
_MAX_HEADER = 1024  # characters of the base64url header segment
_MAX_RSA_BITS = 8192
_MAX_SIGNATURE = 1366  # characters of an 8192-bit RSA signature, the longest there is
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_TIME_CLAIMS = ("exp", "nbf", "iat")
_STRING_CLAIMS = ("iss", "sub", "jti")


@dataclass(frozen=True, slots=True)
class JwsPolicy:
    """What one caller accepts. Every difference between the callers is one of these fields.

    ``typs``: the accepted ``typ`` values, compared exactly (``None``: typ may be absent).
    ``algs``: a subset of :data:`SUPPORTED_ALGS`. ``purpose``: when set, a key carrying the
    gateway's ``gba_use`` member must carry this value. ``key_use_required`` /
    ``key_alg_required``: whether a JWK without ``use`` / ``alg`` may verify. ``extra_header``:
    header parameters tolerated (and ignored) besides ``alg``, ``kid`` and ``typ``.
    ``leeway``: seconds of clock skew on ``exp``, ``nbf`` and ``iat``; ``max_age``: seconds
    since ``iat`` after which the token is stale; ``check_exp`` False: a past ``exp`` is not a
    refusal (a logout's ``id_token_hint``, bound by ``max_age`` instead). ``issuer`` /
    ``audience``: required values of ``iss`` / ``aud`` (``aud`` as a string or a one-element
    array).
    """

    name: str
    typs: frozenset[str | None]
    algs: frozenset[str]
    purpose: str | None = None
    key_use_required: bool = True
    key_alg_required: bool = True
    extra_header: frozenset[str] = frozenset()
    required_claims: tuple[str, ...] = ()
    leeway: int = 60
    max_age: int | None = None
    check_exp: bool = True
    issuer: str | None = None
    audience: str | None = None
    max_token: int = 16 * 1024

    def __post_init__(self) -> None:
        if not self.algs or not self.algs <= SUPPORTED_ALGS:
            raise ValueError(f"{self.name}: algorithms must be some of {sorted(SUPPORTED_ALGS)}")
        if self.extra_header & (NEVER_ALLOWED_HEADER | {"alg", "kid", "typ"}):
            raise ValueError(f"{self.name}: extra_header may not name {sorted(self.extra_header)}")


@dataclass(frozen=True, slots=True)
class Verified:
    header: dict[str, Any]
    claims: dict[str, Any]


def verify(
    token: object,
    jwks: object,
    policy: JwsPolicy,
    *,
    now: datetime,
    detached: bytes | None = None,
) -> Verified:
    """The header and claims of ``token`` once every check of ``policy`` holds; else refused.

    ``detached``: the payload of a JWS with a detached payload (RFC 7515 appendix F): the
    token's payload segment must then be empty, the signature covers ``detached`` (base64url
    in the signing input, as if it were there), and there are no claims to check."""
    header_b64, payload_b64, signature_b64 = _segments(
        token, policy.max_token, detached=detached is not None
    )
    header = json_object(b64decode(header_b64), "header-not-object")
    alg, kid = _check_header(header, policy)
    jwk = find_key(jwks, kid)
    public_key = _check_key(jwk, alg, policy)
    signature = b64decode(signature_b64)
    if detached is not None:
        payload_b64 = b64encode(detached)
    _check_signature(alg, public_key, f"{header_b64}.{payload_b64}".encode("ascii"), signature)
    if detached is not None:
        return Verified(header, {})
    claims = json_object(b64decode(payload_b64), "claims-not-object")
    _check_claims(claims, policy, now.timestamp())
    return Verified(header, claims)


def unverified(token: object, *, max_token: int = 16 * 1024) -> Verified:
    """Header and claims of a compact JWS, parsed as strictly as :func:`verify` but NOT verified.

    Only for choosing the key set to verify with (e.g. the client a client assertion names).
    """
    parts = _segments(token, max_token)
    header = json_object(b64decode(parts[0]), "header-not-object")
    return Verified(header, json_object(b64decode(parts[1]), "claims-not-object"))


def sign(key: SigningKey, claims: Mapping[str, Any], *, typ: str) -> str:
    """A compact JWS over ``claims`` with header exactly ``alg``, ``kid`` and ``typ``."""
    alg = _OWN_ALG.get(key.alg)
    if alg is None:
        raise KeyMisuseError(f"tokens are signed with ES256 or EdDSA keys, not {key.alg}")
    header = {"alg": alg, "kid": key.kid, "typ": typ}
    signing_input = f"{b64encode(compact(header))}.{b64encode(compact(claims))}"
    return f"{signing_input}.{b64encode(key.sign(signing_input.encode('ascii')))}"


def jws_alg(key: SigningKey) -> str | None:
    """The JWS algorithm the gateway signs with ``key``, or None when it signs no tokens."""
    return _OWN_ALG.get(key.alg)


def find_key(jwks: object, kid: str) -> Mapping[str, Any]:
    """The one JWK whose ``kid`` equals ``kid`` exactly: a dictionary lookup, nothing more."""
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list) or not all(isinstance(k, Mapping) for k in keys):
        refuse("jwks-malformed", "the trusted key set is not a JWKS")
    matches = [k for k in keys if isinstance(k.get("kid"), str) and k["kid"] == kid]
    if not matches:
        refuse("unknown-kid", "the kid is not one key of the trusted key set")
    if len(matches) > 1:
        refuse("duplicate-kid", "the kid is not one key of the trusted key set")
    return matches[0]


# ---------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------


def _segments(token: object, max_token: int, *, detached: bool = False) -> tuple[str, str, str]:
    """The three segments of a compact JWS, checked for size before anything is decoded
    (``detached``: the payload segment must be empty, RFC 7515 appendix F)."""
    if not isinstance(token, str):
        refuse("not-a-string", "the token is missing or too large")
    if len(token) > max_token:
        refuse("token-too-large", "the token is missing or too large")
    if not token.isascii():
        refuse("not-ascii", "the token is not a signed JWT")
    segments = token.split(".")
    if len(segments) == 5:
        refuse("jwe", "the token is encrypted (JWE), not a signed JWT")
    if len(segments) != 3:
        refuse("not-compact-jws", "the token is not a signed JWT (three segments)")
    header_b64, payload_b64, signature_b64 = segments
    if len(header_b64) > _MAX_HEADER:
        refuse("header-too-large", "the token header is too large")
    if not 0 < len(signature_b64) <= _MAX_SIGNATURE:
        refuse("signature-length", "the token is not a signed JWT (signature length)")
    if detached:
        if payload_b64:
            refuse("not-detached", "the signature is not a JWS with a detached payload")
        segments = [header_b64, signature_b64]
    if not all(_BASE64URL.fullmatch(segment) for segment in segments):
        refuse("not-base64url", "a token segment is not base64url")
    return header_b64, payload_b64, signature_b64


def _check_header(header: dict[str, Any], policy: JwsPolicy) -> tuple[str, str]:
    if set(header) - {"alg", "kid", "typ"} - policy.extra_header:
        refuse("header-parameters", "the token header carries a parameter never accepted here")
    if not all(isinstance(header[name], str) for name in ("alg", "kid", "typ") if name in header):
        refuse("header-type", "a token header member is not a string")
    if header.get("typ") not in policy.typs:
        refuse("typ", "the token type (typ) is not the one expected here")
    alg = header.get("alg")
    if alg not in policy.algs:
        refuse("alg", "the token algorithm is not allowed here")
    kid = header.get("kid")
    if kid is None:
        refuse("unknown-kid", "the token names no key (kid)")
    return alg, kid


def _check_key(jwk: Mapping[str, Any], alg: str, policy: JwsPolicy) -> PublicKey:
    key_alg = jwk.get("alg")
    if (key_alg is None and policy.key_alg_required) or (
        key_alg is not None and (not isinstance(key_alg, str) or key_alg not in policy.algs)
    ):
        refuse("key-alg", "the key's algorithm is not allowed here")
    if key_alg is not None and key_alg != alg:
        refuse("alg-mismatch", "the token algorithm is not the algorithm of its key")
    if jwk.get("use", "sig" if not policy.key_use_required else None) != "sig":
        refuse("key-use", "the key is not a signing key (use)")
    if policy.purpose is not None and jwk.get(PURPOSE_MEMBER, policy.purpose) != policy.purpose:
        refuse("key-purpose", "the key is not for this purpose")
    key_ops = jwk.get("key_ops")
    if key_ops is not None and (not isinstance(key_ops, list) or "verify" not in key_ops):
        refuse("key-ops", "the key may not verify (key_ops)")
    kty, crv = KEY_PROFILES[alg]
    if jwk.get("kty") != kty or jwk.get("crv") != crv:
        refuse("key-type", "the token algorithm does not match its key type")
    try:
        public_key = public_key_from_jwk(dict(jwk))
    except KeyMisuseError:
        refuse("key-malformed", "the key is not a usable public key")
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size > _MAX_RSA_BITS:
        refuse("key-type", "the token algorithm does not match its key type")
    return public_key


def _check_signature(alg: str, key: PublicKey, signed: bytes, signature: bytes) -> None:
    if isinstance(key, rsa.RSAPublicKey):
        if len(signature) != (key.key_size + 7) // 8:
            refuse("signature-length", "the token is not a signed JWT (signature length)")
        scheme = (
            padding.PSS(padding.MGF1(hashes.SHA256()), salt_length=32)
            if alg == "PS256"
            else padding.PKCS1v15()
        )
        try:
            key.verify(signature, signed, scheme, hashes.SHA256())
        except InvalidSignature:
            refuse("signature", "the token signature does not verify")
        return
    if len(signature) != 64:
        refuse("signature-length", "the token is not a signed JWT (signature length)")
    if alg == "ES256":
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        if not (0 < r < _P256_ORDER and 0 < s < _P256_ORDER):
            refuse("ecdsa-range", "the token signature does not verify")
    own = "ecdsa-p256-sha256" if alg == "ES256" else "ed25519"
    if not verify_bytes(own, key, signed, signature):
        refuse("signature", "the token signature does not verify")


def _check_claims(claims: dict[str, Any], policy: JwsPolicy, now: float) -> None:
    for name in _TIME_CLAIMS:
        value = claims.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, int | float):
            refuse("claim-type", f"the token's {name} is not a number")
        if not math.isfinite(value):
            refuse("claim-type", f"the token's {name} is not a number")
    for name in _STRING_CLAIMS:
        if name in claims and not isinstance(claims[name], str):
            refuse("claim-type", f"the token's {name} is not a string")
    aud = claims.get("aud", "")
    if not isinstance(aud, str) and not (
        isinstance(aud, list) and all(isinstance(a, str) for a in aud)
    ):
        refuse("claim-type", "the token's aud is not a string or an array of strings")
    for name in policy.required_claims:
        if name not in claims:
            refuse("missing-claim", f"the token has no {name} claim")
    leeway = policy.leeway
    if policy.check_exp and "exp" in claims and claims["exp"] <= now - leeway:
        refuse("expired", "the token has expired (exp)")
    if "nbf" in claims and claims["nbf"] > now + leeway:
        refuse("not-yet-valid", "the token is not valid yet (nbf)")
    if "iat" in claims and claims["iat"] > now + leeway:
        refuse("iat-future", "the token was not issued now (iat)")
    if policy.max_age is not None and claims.get("iat", now) < now - policy.max_age:
        refuse("iat-too-old", "the token was not issued now (iat)")
    if policy.issuer is not None and claims.get("iss") != policy.issuer:
        refuse("issuer", "the token was issued by another issuer (iss)")
    if policy.audience is not None and aud not in (policy.audience, [policy.audience]):
        refuse("audience", "the token is not for this audience alone (aud)")
