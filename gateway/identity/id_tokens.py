"""Validating an upstream ID token (OIDC Core §3.1.3.7, RFC 8725) — every check, in order.

:func:`id_token_policy` declares what the one JWS verifier (:mod:`gateway.trust.jws`) checks:
the key comes from that provider's own key set by exact ``kid`` (a key without ``use`` or
``alg`` is accepted, as providers publish them; ``use`` other than ``sig`` is not); the
algorithm from that provider's allow-list; ``typ``, if present, is ``JWT``; ``iss`` is the
provider's issuer, ``aud`` is exactly the gateway's client id (an array naming anyone else is
refused), ``exp``, ``nbf`` and ``iat`` hold with a small leeway on the gateway's clock and
``iat`` is at most :data:`MAX_AGE` old. Then ``azp``, ``sub`` and ``nonce`` (the one this
login sent) are checked here. ``acr`` is checked by the jurisdiction's identity profile,
which refuses a missing or unknown value. Every refusal is a :class:`LoginFailedError`; a
``kid`` the provider's cached key set lacks is an :class:`UnknownKeyError`, on which the
relying party refetches that key set once and verifies again.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from gateway.domain.errors import LoginFailedError
from gateway.identity.discovery import ProviderConfig, ProviderMetadata
from gateway.identity.jose import JoseError, unverified, verify_jws
from gateway.trust.jws import JwsPolicy

LEEWAY = 60  # seconds of clock difference tolerated on exp and iat
MAX_AGE = 600  # an ID token issued longer ago than this is stale


class UnknownKeyError(LoginFailedError):
    """The ID token names a ``kid`` the provider's key set, as cached, does not have."""


def id_token_policy(config: ProviderConfig, metadata: ProviderMetadata) -> JwsPolicy:
    """What an ID token of this provider must be, for the one JWS verifier."""
    return JwsPolicy(
        name=f"ID token of {config.name}",
        typs=frozenset({None, "JWT"}),
        algs=frozenset(config.id_token_algs),
        key_use_required=False,
        key_alg_required=False,
        extra_header=frozenset({"x5t", "x5t#S256"}),  # certificate hints, never followed
        required_claims=("iss", "sub", "aud", "exp", "iat"),
        leeway=LEEWAY,
        max_age=MAX_AGE,
        issuer=metadata.issuer,
        audience=config.client_id,
    )


def verify_id_token(
    token: object,
    *,
    config: ProviderConfig,
    metadata: ProviderMetadata,
    nonce: str,
    now: datetime,
) -> dict[str, Any]:
    """The ID token's claims once every check holds."""
    if not isinstance(token, str):
        raise LoginFailedError("the token response has no ID token")
    try:
        claims = verify_jws(token, metadata.jwks, id_token_policy(config, metadata), now=now).claims
    except JoseError as exc:
        if exc.reason == "unknown-kid" and isinstance(unverified_kid(token), str):
            raise UnknownKeyError(f"ID token refused: {exc}") from None
        raise LoginFailedError(f"ID token refused: {exc}") from None
    if "azp" in claims and claims["azp"] != config.client_id:
        raise LoginFailedError("the ID token was issued to another party (azp)")
    if not claims["sub"]:
        raise LoginFailedError("the ID token has no subject")
    sent = claims.get("nonce")
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
        raise LoginFailedError("the ID token's nonce is not the one this login sent")
    return claims


def unverified_kid(token: str) -> object:
    """The ``kid`` the token's header names (unverified), or None."""
    try:
        return unverified(token).header.get("kid")
    except JoseError:
        return None
