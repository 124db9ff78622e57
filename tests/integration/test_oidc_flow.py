"""The identity broker end to end over real HTTP: portal -> gateway -> sandbox IdP -> portal.

Helpers here are shared by the other ``test_oidc_*`` files.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import jwt
import pytest
import sqlalchemy as sa
from aiohttp import web

from gateway.bootstrap import Overrides, create_app
from gateway.sandbox.portal import SandboxPortal, browser
from gateway.settings import Settings
from gateway.store.database import create_engine
from gateway.store.tables import metadata
from gateway.web.bearer import authenticate_resident
from gateway.web.sessions import LOGIN_COOKIE
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.support import send

PERSONAS = [("hk", "chan-tai-man"), ("macau", "lei-sio-meng"), ("guangdong", "zhang-wei")]
CHANGING = {"oidc_transactions", "nonces"}  # consumed or used by a refused attempt


async def resident_route(request: web.Request) -> web.Response:
    grant = await authenticate_resident(request)
    return web.json_response({"person_id": grant.person_id, "agency_id": grant.agency_id})


resident_route.__openapi__ = {}  # type: ignore[attr-defined]


@pytest.fixture
async def broker(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> AsyncIterator[RunningGateway]:
    """The sandbox gateway, plus a test route guarded by authenticate_resident."""
    settings = sandbox_settings(tmp_path, database)
    app = create_app(settings, Overrides())
    app.router.add_get("/test/me", resident_route)
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    yield RunningGateway(settings, settings.base_url, app)
    await server.close()


async def table_counts(settings: Settings) -> dict[str, int]:
    """Rows in every table but the ones a refused login legitimately touches."""
    engine = create_engine(settings.database_url, schema=settings.database_schema or None)
    try:
        async with engine.connect() as conn:
            return {
                table.name: (
                    await conn.execute(sa.select(sa.func.count()).select_from(table))
                ).scalar_one()
                for table in metadata.sorted_tables
                if table.name not in CHANGING
            }
    finally:
        await engine.dispose()


async def get(
    url: str, headers: dict[str, str] | None = None, cookies: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    """One GET, redirects not followed; ``cookies``: what the browser sends."""
    async with (
        aiohttp.ClientSession(
            cookies=cookies, cookie_jar=aiohttp.CookieJar(unsafe=True)
        ) as session,
        session.get(url, headers=headers, allow_redirects=False) as response,
    ):
        text = await response.text()
        try:
            body: Any = await response.json(content_type=None)
        except ValueError:
            body = text
        return response.status, dict(response.headers), body


async def to_callback(
    portal: SandboxPortal, idp: str, persona: str, **overrides: str | None
) -> tuple[str, dict[str, str]]:
    """Follow the flow until the IdP sends the resident to the gateway's callback (not sent):
    the callback URL and the cookies the browser that started the login holds."""
    url, _ = portal.authorization_url(idp, persona, **overrides)
    async with browser() as session:
        for _ in range(6):
            async with session.get(url, allow_redirects=False) as response:
                assert response.status == 302, await response.text()
                url = response.headers["Location"]
            if urlsplit(url).path.endswith("/callback") and urlsplit(url).path.startswith("/auth/"):
                cookies = {c.key: c.value for c in session.cookie_jar}
                assert set(cookies) == {LOGIN_COOKIE}
                return url, cookies
    raise AssertionError("the flow never reached the gateway's callback")


async def gateway_jwks(base_url: str) -> dict[str, Any]:
    return (await get(base_url + "/.well-known/jwks.json"))[2]


def verify(token: str, jwks: dict[str, Any], *, typ: str, audience: str) -> dict[str, Any]:
    header = jwt.get_unverified_header(token)
    assert header["typ"] == typ
    assert header["alg"] == "ES256"
    (jwk,) = [k for k in jwks["keys"] if k["kid"] == header["kid"]]
    assert jwk["gba_use"] == "oidc"
    return jwt.decode(
        token, jwt.PyJWK(jwk).key, algorithms=["ES256"], audience=audience, options={}
    )


@pytest.mark.parametrize(("idp", "persona"), PERSONAS)
async def test_a_persona_logs_in_at_each_provider_and_the_portal_gets_tokens(
    broker: RunningGateway, idp: str, persona: str
) -> None:
    portal = await SandboxPortal.register(broker.url)
    returned = await portal.authorize(idp, persona)
    assert returned.params["iss"] == broker.url
    assert returned.params["state"] == returned.pending.state
    tokens = await portal.exchange(returned)
    assert tokens.raw["token_type"] == "Bearer"
    assert tokens.expires_in == 300

    keys = await gateway_jwks(broker.url)
    id_claims = verify(tokens.id_token, keys, typ="JWT", audience=portal.client_id)
    assert id_claims["iss"] == broker.url
    assert id_claims["nonce"] == returned.pending.nonce
    assert id_claims["azp"] == portal.client_id
    assert id_claims["acr"].startswith("urn:gba:loa:")
    assert id_claims["gba_idp"] == idp
    assert "gba_documents" not in id_claims  # not asked for, and the portal may not have them
    access = verify(tokens.access_token, keys, typ="at+jwt", audience="gd-hq-csb")
    assert access["exp"] - access["iat"] == 300
    assert access["client_id"] == portal.client_id
    assert access["sub"] == id_claims["sub"]
    assert access["sid"] == id_claims["sid"]

    status, headers, info = await get(
        broker.url + "/oauth2/userinfo", {"Authorization": f"Bearer {tokens.access_token}"}
    )
    assert status == 200
    assert headers["Cache-Control"] == "no-store"
    assert info["sub"] == access["sub"]
    assert info["birthdate"] == id_claims["birthdate"]
    assert "gba_documents" not in info

    status, _, me = await get(
        broker.url + "/test/me", {"Authorization": f"Bearer {tokens.access_token}"}
    )
    assert status == 200
    assert me["agency_id"] == "gd-hq-csb"


async def test_the_subject_is_pairwise_per_partner_agency(broker: RunningGateway) -> None:
    gd = await SandboxPortal.register(broker.url)
    hk = await SandboxPortal.register(broker.url, agency_id="hk-ird")
    keys = await gateway_jwks(broker.url)
    subjects = {}
    for portal, agency in ((gd, "gd-hq-csb"), (hk, "hk-ird")):
        tokens = await portal.login("hk", "chan-tai-man")
        subjects[agency] = verify(tokens.access_token, keys, typ="at+jwt", audience=agency)["sub"]
    assert subjects["gd-hq-csb"] != subjects["hk-ird"]
    again = await gd.login("hk", "chan-tai-man")
    assert (
        verify(again.access_token, keys, typ="at+jwt", audience="gd-hq-csb")["sub"]
        == (subjects["gd-hq-csb"])
    )


async def test_introspection_answers_the_agency_the_token_is_for(broker: RunningGateway) -> None:
    portal = await SandboxPortal.register(broker.url)
    tokens = await portal.login("macau", "lei-sio-meng")
    body = f"token={tokens.access_token}".encode()
    form = "application/x-www-form-urlencoded"
    mine = await send(
        broker.settings, "POST", "/oauth2/introspect", body=body, content_type=form,
        agency="gd-hq-csb",
    )  # fmt: skip
    assert mine.status == 200
    assert mine.json()["active"] is True
    assert mine.json()["aud"] == "gd-hq-csb"
    foreign = await send(
        broker.settings, "POST", "/oauth2/introspect", body=body, content_type=form,
        agency="hk-ird",
    )  # fmt: skip
    assert foreign.json() == {"active": False}
    unsigned = await send(
        broker.settings, "POST", "/oauth2/introspect", body=body, content_type=form, sign=False
    )
    assert unsigned.status == 401


async def test_discovery_describes_the_broker(broker: RunningGateway) -> None:
    status, _, document = await get(broker.url + "/.well-known/openid-configuration")
    assert status == 200
    assert document["issuer"] == broker.url
    assert document["code_challenge_methods_supported"] == ["S256"]
    assert document["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert document["registration_endpoint"] == broker.url + "/oauth2/register"
    assert sorted(document["gba_idp_hints_supported"]) == ["guangdong", "hk", "macau"]
    status, _, ready = await get(broker.url + "/readyz")
    assert status == 200, ready


async def test_registration_refuses_an_unknown_agency(broker: RunningGateway) -> None:
    with pytest.raises(Exception, match="422"):
        await SandboxPortal.register(broker.url, agency_id="no-such-agency")
    assert (await table_counts(broker.settings))["oidc_clients"] == 0
