"""JOSE for the identity broker, on pyjwt: one strict reading of a JWS, one way to sign.

Every token the broker reads goes through :func:`verify_jws`: the size is bounded, the three
segments are parsed as strict JSON (duplicate member names refused), ``crit``, ``jku``,
``x5u``, ``jwk`` and ``x5c`` are refused, the key is chosen by exact ``kid`` from a key set the
caller already trusts, the algorithm must be on the caller's allow-list *and* be the one
algorithm that key type and its JWK metadata allow (so ``none``, ``HS*`` and key confusion
never verify), and only then is the signature checked. Claims are checked by the caller with
the gateway's clock, never by the library's wall clock.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from gateway.domain.errors import MalformedBodyError
from gateway.mapping.canonical import loads_strict
from gateway.trust.keys import KeyMisuseError, PublicKey, SigningKey, public_key_from_jwk

MAX_TOKEN_BYTES = 16 * 1024
ASYMMETRIC_ALGS = frozenset({"ES256", "PS256", "RS256", "EdDSA"})
_FORBIDDEN_HEADERS = ("crit", "jku", "x5u", "jwk", "x5c", "b64")


class JoseError(ValueError):
    """A token that does not verify; the message names the check, never the token."""


@dataclass(frozen=True, slots=True)
class Verified:
    header: dict[str, Any]
    claims: dict[str, Any]


def _segment(text: str) -> dict[str, Any]:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        value = loads_strict(raw)
    except (binascii.Error, ValueError, MalformedBodyError):
        raise JoseError("a token segment is not base64url JSON") from None
    if not isinstance(value, dict):
        raise JoseError("a token segment is not a JSON object")
    return value


def unverified(token: str) -> Verified:
    """Header and claims of a compact JWS, parsed strictly but NOT verified."""
    if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES:
        raise JoseError("the token is missing or too large")
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise JoseError("the token is not a signed JWT (three non-empty segments)")
    return Verified(_segment(parts[0]), _segment(parts[1]))


def alg_for_key(key: PublicKey) -> str:
    """The JWS algorithm a key type is used with by default."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ES256"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    return "PS256"


def _key_allows(key: PublicKey, alg: str) -> bool:
    if alg == "ES256":
        return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)
    if alg == "EdDSA":
        return isinstance(key, ed25519.Ed25519PublicKey)
    if alg in ("PS256", "RS256"):
        return isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048
    return False


def select_key(jwks: Mapping[str, Any], kid: object) -> tuple[PublicKey, dict[str, Any]]:
    """The key with exactly this ``kid`` in a trusted key set (no fetch, no pattern)."""
    if not isinstance(kid, str) or not kid or len(kid) > 200:
        raise JoseError("the token has no usable kid")
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    matches = [k for k in keys or [] if isinstance(k, dict) and k.get("kid") == kid]
    if len(matches) != 1:
        raise JoseError("the kid is not one key of the trusted key set")
    jwk = matches[0]
    if jwk.get("use", "sig") != "sig":
        raise JoseError("the key is not a signing key")
    try:
        return public_key_from_jwk(jwk), jwk
    except KeyMisuseError:
        raise JoseError("the key is not a usable public key") from None


def verify_jws(
    token: str,
    jwks: Mapping[str, Any],
    *,
    algorithms: Collection[str],
    typ: str | None,
    typ_required: bool,
) -> Verified:
    """A JWS verified with a key of ``jwks`` under an algorithm of ``algorithms``.

    ``typ``: the only header type accepted (compared exactly); when ``typ_required`` is False
    a missing ``typ`` is accepted too.
    """
    parsed = unverified(token)
    header = parsed.header
    if any(name in header for name in _FORBIDDEN_HEADERS):
        raise JoseError("the token header carries a parameter the gateway never accepts")
    if ("typ" in header or typ_required) and header.get("typ") != typ:
        raise JoseError("the token type (typ) is not the one expected here")
    alg = header.get("alg")
    allowed = set(algorithms) & ASYMMETRIC_ALGS
    if not isinstance(alg, str) or alg not in allowed:
        raise JoseError("the token algorithm is not allowed here")
    key, jwk = select_key(jwks, header.get("kid"))
    if "alg" in jwk and jwk["alg"] != alg:
        raise JoseError("the token algorithm is not the algorithm of its key")
    if not _key_allows(key, alg):
        raise JoseError("the token algorithm does not match its key type")
    try:
        jwt.PyJWS().decode_complete(token, key=key, algorithms=[alg])
    except jwt.PyJWTError:
        raise JoseError("the token signature does not verify") from None
    return parsed


def sign_jwt(key: SigningKey, claims: Mapping[str, Any], *, typ: str) -> str:
    """A compact JWS (ES256) signed with one of the gateway's own keys."""
    if key.alg != "ecdsa-p256-sha256":
        raise JoseError("the gateway signs tokens with ES256 keys only")
    payload = json.dumps(dict(claims), separators=(",", ":"), ensure_ascii=False).encode()
    return jwt.PyJWS().encode(
        payload, key.private_key, algorithm="ES256", headers={"kid": key.kid, "typ": typ}
    )
