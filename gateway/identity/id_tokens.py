"""Validating an upstream ID token (OIDC Core §3.1.3.7, RFC 8725) — every check, in order.

The key comes from that provider's own key set by exact ``kid``; the algorithm from that
provider's allow-list; ``typ``, if present, is ``JWT``. Then ``iss`` is the provider's issuer,
``aud`` is exactly the gateway's client id (an array naming anyone else is refused), ``exp``
and ``iat`` hold with a small leeway on the gateway's clock, and ``nonce`` is the one this
login sent. ``acr`` is checked by the jurisdiction's identity profile, which refuses a
missing or unknown value. Every refusal is a :class:`LoginFailedError`.
"""

from __future__ import annotations

import hmac
from datetime import datetime
from typing import Any

from gateway.domain.errors import LoginFailedError
from gateway.identity.discovery import ProviderConfig, ProviderMetadata
from gateway.identity.jose import JoseError, verify_jws

LEEWAY = 60  # seconds of clock difference tolerated on exp and iat
MAX_AGE = 600  # an ID token issued longer ago than this is stale


def _int(claims: dict[str, Any], name: str) -> int:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int):
        raise LoginFailedError(f"the ID token has no valid {name}")
    return value


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
        verified = verify_jws(
            token,
            metadata.jwks,
            algorithms=config.id_token_algs,
            typ="JWT",
            typ_required=False,
        )
    except JoseError as exc:
        raise LoginFailedError(f"ID token refused: {exc}") from None
    claims = verified.claims
    if claims.get("iss") != metadata.issuer:
        raise LoginFailedError("the ID token was issued by another issuer")
    audience = claims.get("aud")
    if audience != config.client_id and audience != [config.client_id]:
        raise LoginFailedError("the ID token is not for this gateway alone (aud)")
    if "azp" in claims and claims["azp"] != config.client_id:
        raise LoginFailedError("the ID token was issued to another party (azp)")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise LoginFailedError("the ID token has no subject")
    at = int(now.timestamp())
    if _int(claims, "exp") <= at - LEEWAY:
        raise LoginFailedError("the ID token has expired")
    issued = _int(claims, "iat")
    if issued > at + LEEWAY or issued < at - MAX_AGE:
        raise LoginFailedError("the ID token was not issued now (iat)")
    if "nbf" in claims and _int(claims, "nbf") > at + LEEWAY:
        raise LoginFailedError("the ID token is not valid yet (nbf)")
    sent = claims.get("nonce")
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), nonce.encode()):
        raise LoginFailedError("the ID token's nonce is not the one this login sent")
    return claims
