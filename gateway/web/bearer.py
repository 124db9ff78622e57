"""Bearer access tokens at the web edge: the resident behind a ``/v1/me`` request.

:func:`authenticate_resident` accepts only an access token the gateway issued (``typ``
``at+jwt``, ES256, a current ``oidc`` key, this issuer, not expired, on record and not
revoked). An ID token, a token of another issuer or anything else is an
:class:`InvalidTokenError` (401, ``WWW-Authenticate: Bearer error="invalid_token"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from aiohttp import web

from gateway.domain.errors import InvalidTokenError
from gateway.identity.broker import Broker
from gateway.identity.provider import BEARER_INVALID
from gateway.identity.tokens import TokenRefusedError
from gateway.web.keys import DEPENDENCIES

BROKER = web.AppKey("oidc_broker", Broker)


@dataclass(frozen=True, slots=True)
class ResidentGrant:
    """Who a valid access token speaks for, through which client and partner agency."""

    person_id: str
    login_id: str
    client_id: str
    agency_id: str  # the token's audience
    channel: str  # online | kiosk | counter | mobile (the client's)
    acr: str  # urn:gba:loa:low | substantial | high
    jti: str
    expires_at: datetime


def bearer_token(request: web.Request) -> str:
    """The token of an ``Authorization: Bearer`` header (RFC 6750 §2.1), else 401."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        raise InvalidTokenError("a Bearer access token is required", headers=BEARER_INVALID)
    return token


async def authenticate_resident(request: web.Request) -> ResidentGrant:
    """The resident a valid gateway access token was issued for; else InvalidTokenError."""
    token = bearer_token(request)
    broker = request.app[BROKER]
    now = request.app[DEPENDENCIES].clock.now()
    try:
        grant = await broker.provider.tokens.access_token(token, now)
    except TokenRefusedError as exc:
        raise InvalidTokenError(str(exc), headers=BEARER_INVALID) from None
    record, claims = grant.record, grant.claims
    return ResidentGrant(
        person_id=record.person_id,
        login_id=record.login_id,
        client_id=record.client_id,
        agency_id=record.agency_id,
        channel=record.channel,
        acr=str(claims.get("acr", "")),
        jti=record.jti,
        expires_at=datetime.fromtimestamp(claims["exp"], UTC),
    )
