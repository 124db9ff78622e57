"""Browser cookies of the gateway's OpenID Provider: the login cookie and the OP session.

Two cookies, each a random value the browser holds while the database keeps only its SHA-256:

- ``gba_login`` (``Path=/auth/``, 10 minutes): set when ``/oauth2/authorize`` sends the
  browser to an identity provider; the pending login is stored with its hash and the callback
  at ``/auth/{provider}/callback`` must come with the same cookie. A callback URL opened in
  another browser is refused and issues nothing (login CSRF). A browser that already holds
  one keeps it, so two logins started in two tabs both complete.
- ``gba_session`` (``Path=/me/``, the login session's 8 hours): set at the callback once the
  login holds; the progress page ``GET /me/applications/{id}`` accepts it instead of a Bearer
  token. It ends with the login: at RP-initiated logout, when the session expires.

Both are ``HttpOnly``, ``SameSite=Lax`` (a top-level redirect back from the identity provider
carries them, a cross-site POST or sub-request does not) and ``Secure`` when the gateway's
public URL is https.
"""

from __future__ import annotations

import re
from datetime import timedelta

from aiohttp import web
from authlib.common.security import generate_token

from gateway.domain.errors import InvalidTokenError
from gateway.identity.provider import SESSION_LIFETIME, code_hash
from gateway.identity.relying_party import TRANSACTION_LIFETIME
from gateway.web.bearer import BROKER
from gateway.web.keys import SETTINGS

LOGIN_COOKIE = "gba_login"
LOGIN_PATH = "/auth/"
SESSION_COOKIE = "gba_session"
SESSION_PATH = "/me/"
_SECRET = re.compile(r"[A-Za-z0-9]{43}")
SESSION_REQUIRED = {"WWW-Authenticate": 'Bearer realm="gateway"'}


def secret_hash(secret: str) -> str:
    return code_hash(secret)


def new_secret() -> str:
    return generate_token(43)


def cookie_secret(request: web.Request, name: str) -> str | None:
    """The cookie's value when it has the shape of one the gateway set, else None."""
    value = request.cookies.get(name, "")
    return value if _SECRET.fullmatch(value) else None


def _set(
    request: web.Request,
    response: web.StreamResponse,
    name: str,
    value: str,
    *,
    path: str,
    lifetime: timedelta,
) -> None:
    response.set_cookie(
        name,
        value,
        path=path,
        max_age=int(lifetime.total_seconds()),
        httponly=True,
        samesite="Lax",
        secure=request.app[SETTINGS].base_url.startswith("https://"),
    )


def set_login_cookie(request: web.Request, response: web.StreamResponse, secret: str) -> None:
    _set(request, response, LOGIN_COOKIE, secret, path=LOGIN_PATH, lifetime=TRANSACTION_LIFETIME)


def set_session_cookie(request: web.Request, response: web.StreamResponse, secret: str) -> None:
    _set(request, response, SESSION_COOKIE, secret, path=SESSION_PATH, lifetime=SESSION_LIFETIME)


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    _set(request, response, SESSION_COOKIE, "", path=SESSION_PATH, lifetime=timedelta(0))


async def browser_resident(request: web.Request) -> tuple[str, str]:
    """The person and login of the browser's live OP session; else InvalidTokenError (401)."""
    secret = cookie_secret(request, SESSION_COOKIE)
    session = await request.app[BROKER].provider.browser_session(secret) if secret else None
    if session is None:
        raise InvalidTokenError(
            "log in first: no Bearer token and no live session", headers=SESSION_REQUIRED
        )
    return session.person_id, session.login_id
