"""The portal against a standard OpenID Provider that issues refresh tokens and advertises
RP-initiated logout — what the gateway's OP will offer (issue 18, item 3).

A minimal OP (discovery, RFC 7591 registration, authorization, token endpoint checking the
private_key_jwt assertion against the registered key, JWKS, end_session_endpoint) runs beside
the portal. The resident logs in; the access token expires; the next page is served after a
``refresh_token`` grant with the rotated token kept (the old one is not sent again); logout
goes to the end-session endpoint with the ID token hint and the registered post-logout URI.
"""

from __future__ import annotations

import secrets
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import jwt
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec
from yarl import URL

from gateway.portal.app import STATE, PortalState, install
from tests.conftest import free_port


class FakeOp:
    """Just enough of an OP, strict where the portal must be right."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.registered: dict[str, Any] = {}
        self.codes: dict[str, str] = {}  # code -> nonce
        self.refresh: dict[str, str] = {}  # live refresh token -> access token it replaces
        self.grants: list[dict[str, str]] = []
        self.bearers: list[str] = []

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/.well-known/openid-configuration", self.discovery),
            web.post("/register", self.register),
            web.get("/authorize", self.authorize),
            web.post("/token", self.token),
            web.get("/jwks", self.jwks),
            web.get("/v1/me/applications", self.applications),
            web.get("/v1/matters", self.matters),
        ]

    async def discovery(self, request: web.Request) -> web.Response:
        base = self.issuer
        return web.json_response(
            {
                "issuer": base,
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "jwks_uri": f"{base}/jwks",
                "registration_endpoint": f"{base}/register",
                "end_session_endpoint": f"{base}/logout",
                "id_token_signing_alg_values_supported": ["ES256"],
                "gba_idp_hints_supported": ["hk"],
            }
        )

    async def register(self, request: web.Request) -> web.Response:
        self.registered = await request.json()
        return web.json_response({**self.registered, "client_id": "portal-1"}, status=201)

    async def authorize(self, request: web.Request) -> web.Response:
        q = request.query
        assert q["code_challenge_method"] == "S256"
        assert q["redirect_uri"] in self.registered["redirect_uris"]
        code = secrets.token_urlsafe(12)
        self.codes[code] = q["nonce"]
        back = URL(q["redirect_uri"]).with_query(code=code, state=q["state"], iss=self.issuer)
        raise web.HTTPFound(str(back))

    def _id_token(self, nonce: str | None) -> str:
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": "portal-1", "sub": "pairwise-1", "iat": now}
        claims |= {"exp": now + 300, "name": "陳大文"}
        if nonce:
            claims["nonce"] = nonce
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": "op-1"})

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        jwk = self.registered["jwks"]["keys"][0]
        public = jwt.PyJWK.from_dict(jwk).key
        jwt.decode(form["client_assertion"], public, algorithms=["ES256"], audience=self.issuer)
        self.grants.append({k: str(v) for k, v in form.items() if k != "client_assertion"})
        access, refresh = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
        if form["grant_type"] == "authorization_code":
            nonce = self.codes.pop(str(form["code"]))
            body = {"id_token": self._id_token(nonce)}
        elif form["grant_type"] == "refresh_token" and form["refresh_token"] in self.refresh:
            del self.refresh[str(form["refresh_token"])]  # rotated: good once
            body = {}
        else:
            return web.json_response({"error": "invalid_grant"}, status=400)
        self.refresh[refresh] = access
        body |= {"access_token": access, "refresh_token": refresh, "expires_in": 300}
        return web.json_response({**body, "token_type": "Bearer"})

    async def jwks(self, request: web.Request) -> web.Response:
        public = jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return web.json_response({"keys": [{**public, "kid": "op-1", "alg": "ES256"}]})

    async def applications(self, request: web.Request) -> web.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        self.bearers.append(token)
        if token not in self.refresh.values():
            return web.json_response({"title": "expired"}, status=401)
        return web.json_response({"items": [], "next": None})

    async def matters(self, request: web.Request) -> web.Response:
        return web.json_response({"items": [], "next": None})


async def test_an_expired_access_token_is_refreshed_and_logout_ends_the_op_session(
    aiohttp_server: Any,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    op = FakeOp(base)
    app = web.Application()
    app.add_routes(op.routes())
    install(app, base)
    await aiohttp_server(app, host="127.0.0.1", port=port)
    state: PortalState = app[STATE]

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(f"{base}/portal/login?idp=hk&next=/portal/applications") as page:
            assert page.status == 200
            assert page.url.path == "/portal/applications"
        assert op.registered["post_logout_redirect_uris"] == [f"{base}/portal/"]
        assert op.registered["token_endpoint_auth_method"] == "private_key_jwt"
        (session,) = [s for s in state.sessions._sessions.values() if s.tokens]
        assert session.tokens is not None
        first_refresh = session.tokens.refresh_token
        assert first_refresh in op.refresh

        session.tokens.expires_at = time.time() - 60  # the access token has expired
        async with browser.get(f"{base}/portal/applications", allow_redirects=False) as page:
            assert page.status == 200  # no detour through the login
        assert op.grants[-1]["grant_type"] == "refresh_token"
        assert op.grants[-1]["refresh_token"] == first_refresh
        assert session.tokens.refresh_token != first_refresh  # rotated, the new one kept
        assert op.bearers[-1] == session.tokens.access_token

        session.tokens.expires_at = time.time() - 60
        op.refresh.clear()  # the OP revoked the session: the refresh is refused
        async with browser.get(f"{base}/portal/applications", allow_redirects=False) as page:
            assert page.status == 303
            assert page.headers["Location"] == "/portal/login?next=/portal/applications"
        assert session.tokens is None

        async with browser.get(f"{base}/portal/login?idp=hk") as page:
            landed = page.url  # logged in again; the logout form's token is on the page
            text = await page.text()
        assert landed.path == "/portal/"
        token = text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        (session,) = [s for s in state.sessions._sessions.values() if s.tokens]
        id_token = session.tokens.id_token if session.tokens else ""
        async with browser.post(
            f"{base}/portal/logout", data={"csrf": token}, allow_redirects=False
        ) as answer:
            assert answer.status == 303
            target = urlsplit(answer.headers["Location"])
        assert f"{target.scheme}://{target.netloc}{target.path}" == f"{base}/logout"
        query = {k: v[0] for k, v in parse_qs(target.query).items()}
        assert query == {
            "client_id": "portal-1",
            "post_logout_redirect_uri": f"{base}/portal/",
            "id_token_hint": id_token,
        }
        assert not [s for s in state.sessions._sessions.values() if s.tokens]
