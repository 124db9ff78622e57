"""JOSE for the identity broker: the one strict verifier of :mod:`gateway.trust.jws`, and signing.

Every token the broker reads goes through :func:`verify_jws` under the policy its reader
declares: upstream ID tokens (:mod:`gateway.identity.id_tokens`), the gateway's access tokens
(:mod:`gateway.identity.tokens`) and client assertions (:mod:`gateway.identity.clients`). A
refusal becomes a :class:`JoseError` whose message names the check, never the token. Claims
are checked with the gateway's clock, never the library's wall clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from gateway.trust import jws
from gateway.trust.jws import SUPPORTED_ALGS, JwsPolicy, Verified
from gateway.trust.keys import KeyMisuseError, PublicKey, SigningKey

MAX_TOKEN_BYTES = 16 * 1024
ASYMMETRIC_ALGS = SUPPORTED_ALGS

__all__ = [
    "ASYMMETRIC_ALGS",
    "MAX_TOKEN_BYTES",
    "JoseError",
    "Verified",
    "alg_for_key",
    "sign_jwt",
    "unverified",
    "verify_jws",
]


class JoseError(ValueError):
    """A token that does not verify; the message names the check, never the token."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason


def verify_jws(
    token: object, jwks: Mapping[str, Any], policy: JwsPolicy, *, now: datetime
) -> Verified:
    """The header and claims of ``token`` once ``policy`` holds for it; else JoseError."""
    try:
        return jws.verify(token, jwks, policy, now=now)
    except jws.JwsRefused as refused:
        reason, message = refused.reason, refused.message
    raise JoseError(message, reason)


def unverified(token: object) -> Verified:
    """Header and claims of a compact JWS, parsed strictly but NOT verified."""
    try:
        return jws.unverified(token, max_token=MAX_TOKEN_BYTES)
    except jws.JwsRefused as refused:
        reason, message = refused.reason, refused.message
    raise JoseError(message, reason)


def alg_for_key(key: PublicKey) -> str:
    """The JWS algorithm a key type is used with by default."""
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "ES256"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "EdDSA"
    return "PS256"


def sign_jwt(key: SigningKey, claims: Mapping[str, Any], *, typ: str) -> str:
    """A compact JWS (ES256) signed with one of the gateway's own keys."""
    if key.alg != "ecdsa-p256-sha256":
        raise JoseError("the gateway signs tokens with ES256 keys only")
    try:
        return jws.sign(key, claims, typ=typ)
    except KeyMisuseError as exc:  # pragma: no cover - an ES256 key always signs
        raise JoseError(str(exc)) from None
