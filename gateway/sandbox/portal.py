"""A browserless sandbox portal: the gateway's OpenID Provider side, driven from code.

It does what a real portal does, without a browser: registers itself by RFC 7591 dynamic
client registration with a fresh ES256 key, sends the resident to
``/oauth2/authorize?idp_hint=..&login_hint=<persona>``, follows the redirects through the
sandbox identity provider and back (aiohttp, keeping cookies like a browser: the gateway binds
the login to the browser that started it), and exchanges the code with PKCE S256 and a
private_key_jwt client assertion. :meth:`SandboxPortal.refresh` rotates a refresh token and
:meth:`SandboxPortal.logout` ends a login (RP-initiated logout). Tests and scripts use it; each
step is also callable alone so that tests can spoil one of them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from yarl import URL

from gateway.identity.jose import sign_jwt
from gateway.trust.keys import SigningKey, generate_private_key

DEFAULT_REDIRECT_URI = "https://portal.sandbox.example/callback"
DEFAULT_LOGOUT_URI = "https://portal.sandbox.example/logged-out"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_HOPS = 10


class PortalError(RuntimeError):
    """A step of the flow did not answer what a portal expects."""


@dataclass(frozen=True, slots=True)
class Pending:
    """What the portal keeps between sending the resident away and their return."""

    state: str
    nonce: str
    verifier: str


@dataclass(frozen=True, slots=True)
class Returned:
    """Where the resident landed: the portal's redirect URI with its parameters."""

    location: str
    params: dict[str, str]
    pending: Pending

    @property
    def code(self) -> str:
        if "code" not in self.params:
            raise PortalError(f"no code: {self.params.get('error', 'unexpected answer')}")
        return self.params["code"]


@dataclass(frozen=True, slots=True)
class Tokens:
    access_token: str
    id_token: str
    scope: str
    expires_in: int
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def refresh_token(self) -> str:
        return str(self.raw["refresh_token"])


def browser() -> aiohttp.ClientSession:
    """A client session that keeps cookies as a browser does, on loopback addresses too."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


@dataclass
class SandboxPortal:
    base_url: str
    client_id: str
    key: SigningKey
    redirect_uri: str
    timeout: float = 30.0  # a whole login: several hops, an upstream key refetch, a busy host
    scope: str = "openid"  # what authorization requests ask for

    @classmethod
    async def register(
        cls,
        base_url: str,
        *,
        agency_id: str | None = None,
        channel: str | None = None,
        redirect_uri: str = DEFAULT_REDIRECT_URI,
        name: str = "sandbox portal",
        identity_documents: bool = False,
    ) -> SandboxPortal:
        """A new client of the gateway (dynamic registration, sandbox mode only);
        ``identity_documents``: allowed, and asking for, the residents' document numbers."""
        key = SigningKey(
            kid="portal-" + generate_token(12),
            private_key=generate_private_key("ecdsa-p256-sha256"),
            alg="ecdsa-p256-sha256",
            sandbox=True,
            purpose="oidc",
        )
        metadata: dict[str, Any] = {
            "client_name": name,
            "redirect_uris": [redirect_uri],
            "post_logout_redirect_uris": [DEFAULT_LOGOUT_URI],
            "jwks": {"keys": [key.jwk()]},
            "token_endpoint_auth_method": "private_key_jwt",
        }
        if agency_id:
            metadata["agency_id"] = agency_id
        if channel:
            metadata["channel"] = channel
        if identity_documents:
            metadata["identity_documents"] = True
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{base_url}/oauth2/register", json=metadata) as response,
        ):
            body = await response.json(content_type=None)
            if response.status != 201:
                raise PortalError(f"registration refused ({response.status}): {body}")
        scope = "openid identity_documents" if identity_documents else "openid"
        return cls(base_url, body["client_id"], key, redirect_uri, scope=scope)

    def authorization_url(
        self, idp_hint: str | None, login_hint: str | None = None, **overrides: str | None
    ) -> tuple[str, Pending]:
        """The URL to send the resident to; ``overrides`` replace (None: remove) parameters."""
        pending = Pending(generate_token(24), generate_token(24), generate_token(64))
        params: dict[str, str | None] = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": self.scope,
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": create_s256_code_challenge(pending.verifier),
            "code_challenge_method": "S256",
            "idp_hint": idp_hint,
            "login_hint": login_hint,
        }
        params.update(overrides)
        query = {k: v for k, v in params.items() if v is not None}
        return str(URL(f"{self.base_url}/oauth2/authorize").with_query(query)), pending

    async def follow(self, url: str, pending: Pending) -> Returned:
        """Follow redirects from ``url`` until the resident is back at the redirect URI."""
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(
            timeout=timeout, cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as session:
            for _ in range(MAX_HOPS):
                async with session.get(url, allow_redirects=False) as response:
                    if response.status not in (302, 303):
                        body = await response.text()
                        raise PortalError(f"{response.status} at {urlsplit(url).path}: {body}")
                    url = response.headers["Location"]
                if url.startswith(self.redirect_uri + "?"):
                    query = parse_qs(urlsplit(url).query, keep_blank_values=True)
                    params = {k: v[0] for k, v in query.items()}
                    return Returned(url, params, pending)
        raise PortalError("too many redirects")

    async def authorize(
        self, idp_hint: str | None, login_hint: str | None = None, **overrides: str | None
    ) -> Returned:
        url, pending = self.authorization_url(idp_hint, login_hint, **overrides)
        return await self.follow(url, pending)

    def assertion(
        self, *, aud: str | None = None, jti: str | None = None, lifetime: int = 60
    ) -> str:
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.base_url if aud is None else aud,
            "iat": now,
            "exp": now + lifetime,
            "jti": jti or generate_token(24),
        }
        return sign_jwt(self.key, claims, typ="JWT")

    async def token_request(self, form: dict[str, str | None]) -> tuple[int, dict[str, Any]]:
        """POST ``form`` to the token endpoint; a client assertion is added unless given."""
        body = {
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(),
            "client_id": self.client_id,
            **form,
        }
        data = {k: v for k, v in body.items() if v is not None}
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{self.base_url}/oauth2/token", data=data) as response,
        ):
            return response.status, await response.json(content_type=None)

    async def exchange(self, returned: Returned, **overrides: str | None) -> Tokens:
        status, body = await self.token_request(
            {
                "grant_type": "authorization_code",
                "code": returned.code,
                "redirect_uri": self.redirect_uri,
                "code_verifier": returned.pending.verifier,
                **overrides,
            }
        )
        return _tokens(status, body)

    async def refresh(self, tokens: Tokens | str, **overrides: str | None) -> Tokens:
        """Rotate a refresh token: new tokens, the presented refresh token spent."""
        token = tokens if isinstance(tokens, str) else tokens.refresh_token
        status, body = await self.token_request(
            {"grant_type": "refresh_token", "refresh_token": token, **overrides}
        )
        return _tokens(status, body)

    async def logout(
        self, tokens: Tokens, *, state: str | None = None, redirect: bool = True
    ) -> tuple[int, str]:
        """RP-initiated logout of the login ``tokens`` came from: the status and where the
        gateway sent the resident (the registered post-logout URI with ``state``)."""
        params = {"id_token_hint": tokens.id_token, "client_id": self.client_id}
        if redirect:
            params["post_logout_redirect_uri"] = DEFAULT_LOGOUT_URI
        if state:
            params["state"] = state
        url = URL(f"{self.base_url}/oauth2/logout").with_query(params)
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, allow_redirects=False) as response,
        ):
            return response.status, response.headers.get("Location", "")

    async def login(self, idp_hint: str, login_hint: str) -> Tokens:
        """The whole flow for one sandbox persona: authorize, follow, exchange."""
        return await self.exchange(await self.authorize(idp_hint, login_hint))


def _tokens(status: int, body: dict[str, Any]) -> Tokens:
    if status != 200:
        raise PortalError(f"token request refused ({status}): {body}")
    return Tokens(body["access_token"], body["id_token"], body["scope"], body["expires_in"], body)
