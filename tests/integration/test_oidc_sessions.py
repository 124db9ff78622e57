"""The OpenID Provider for browsers: the provider chooser, browser-bound logins, the OP
session cookie, rotating refresh tokens and RP-initiated logout (issue 18, items 2 and 3).

Every refusal is checked to issue and store nothing; every test runs on both databases.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
import sqlalchemy as sa

from gateway.domain.values import local_date
from gateway.identity.jose import sign_jwt
from gateway.sandbox.personas import persona
from gateway.sandbox.portal import DEFAULT_LOGOUT_URI, PortalError, Returned, SandboxPortal
from gateway.sandbox.samples import canonical_sample
from gateway.store.database import create_engine, create_schema
from gateway.store.tables import oidc_refresh_tokens, oidc_sessions
from gateway.trust.keys import SigningKey, generate_private_key
from gateway.web.keys import DEPENDENCIES
from gateway.web.sessions import LOGIN_COOKIE, SESSION_COOKIE
from tests.conftest import Database, RunningGateway
from tests.integration.test_oidc_flow import broker, gateway_jwks, get, table_counts, to_callback
from tests.integration.test_progress_page import CONSENT, HENGQIN_BUSINESS

__all__ = ["broker"]  # the fixture, shared with test_oidc_flow

CHOOSER_TITLES = {
    "zh-Hant": "選擇登入方式",
    "zh-Hans": "选择登录方式",
    "en": "Choose how to log in",
    "pt": "Escolha como iniciar sessão",
}


@pytest.fixture
async def portal(broker: RunningGateway) -> SandboxPortal:
    return await SandboxPortal.register(broker.url)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A browser: it keeps the cookies the gateway sets (loopback included)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        yield browser


async def browse(
    browser: aiohttp.ClientSession, portal: SandboxPortal, url: str, pending: Any
) -> Returned:
    """Follow redirects in ``browser`` until it is back at the portal's redirect URI."""
    for _ in range(10):
        async with browser.get(url, allow_redirects=False) as response:
            assert response.status == 302, await response.text()
            url = response.headers["Location"]
        if url.startswith(portal.redirect_uri + "?"):
            return Returned(url, dict(parse_qsl(urlsplit(url).query)), pending)
    raise AssertionError("never back at the portal")


def cookie(browser: aiohttp.ClientSession, name: str) -> Any:
    found = [c for c in browser.cookie_jar if c.key == name]
    return found[0] if found else None


async def refresh_rows(broker: RunningGateway) -> list[dict[str, Any]]:
    settings = broker.settings
    engine = create_engine(settings.database_url, schema=settings.database_schema or None)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(sa.select(oidc_refresh_tokens))
            return [dict(r._mapping) for r in rows]
    finally:
        await engine.dispose()


async def userinfo_status(broker: RunningGateway, access_token: str) -> int:
    headers = {"Authorization": f"Bearer {access_token}"}
    return (await get(broker.url + "/oauth2/userinfo", headers))[0]


# ---- the provider chooser -----------------------------------------------------------------


@pytest.mark.parametrize("lang", list(CHOOSER_TITLES))
async def test_without_idp_hint_the_resident_chooses_a_provider_in_their_language(
    broker: RunningGateway, portal: SandboxPortal, lang: str
) -> None:
    url, pending = portal.authorization_url(None, "lei-sio-meng")
    before = await table_counts(broker.settings)
    status, headers, page = await get(url, {"Accept-Language": f"{lang};q=0.9, fr;q=0.5"})
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    assert headers["Content-Language"] == lang
    assert "Set-Cookie" not in headers  # nothing to bind yet: no login has started
    assert f'<html lang="{lang}">' in page
    assert CHOOSER_TITLES[lang] in page
    links = dict(re.findall(r'id="provider-(\w+)" href="([^"]+)"', page))
    assert set(links) == {"hk", "macau", "guangdong"}
    for name, href in links.items():
        params = dict(parse_qsl(urlsplit(href.replace("&amp;", "&")).query))
        assert params["idp_hint"] == name
        assert params["state"] == pending.state  # the same authorization request continues
        assert params["client_id"] == portal.client_id
    assert await table_counts(broker.settings) == before


async def test_the_chooser_language_is_switchable_and_follows_ui_locales(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    url, _ = portal.authorization_url(None)
    status, _, page = await get(url + "&lang=pt", {"Accept-Language": "en"})
    assert (status, CHOOSER_TITLES["pt"] in page) == (200, True)
    switch = dict(re.findall(r'<a href="([^"]+)" lang="([\w-]+)"', page))
    assert {v for v in switch.values()} == set(CHOOSER_TITLES)
    to_hans = next(k for k, v in switch.items() if v == "zh-Hans").replace("&amp;", "&")
    assert "client_id=" in to_hans  # the switcher keeps the authorization request
    status, _, page = await get(broker.url + to_hans)
    assert CHOOSER_TITLES["zh-Hans"] in page
    _, _, page = await get(url + "&ui_locales=pt-MO%20en")
    assert CHOOSER_TITLES["pt"] in page


async def test_a_provider_chosen_on_the_chooser_completes_the_login(
    broker: RunningGateway, portal: SandboxPortal, session: aiohttp.ClientSession
) -> None:
    url, pending = portal.authorization_url(None, "zhang-wei")
    async with session.get(url) as response:
        page = await response.text()
    href = dict(re.findall(r'id="provider-(\w+)" href="([^"]+)"', page))["guangdong"]
    returned = await browse(session, portal, broker.url + href.replace("&amp;", "&"), pending)
    assert returned.params["state"] == pending.state
    tokens = await portal.exchange(returned)
    assert await userinfo_status(broker, tokens.access_token) == 200


async def test_a_bad_request_without_idp_hint_is_refused_before_any_chooser(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    status, headers, _ = await get(portal.authorization_url(None, response_type="token")[0])
    assert status == 302  # a valid client and redirect URI: told at the redirect URI
    assert "error=unsupported_response_type" in headers["Location"]


# ---- the login is bound to the browser that started it (login CSRF) ------------------------


async def test_the_login_cookie_is_httponly_lax_and_path_limited(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    async with aiohttp.ClientSession() as client:
        url, _ = portal.authorization_url("hk", "chan-tai-man")
        async with client.get(url, allow_redirects=False) as response:
            assert response.status == 302
            set_cookie = response.headers["Set-Cookie"]
    assert set_cookie.startswith(LOGIN_COOKIE + "=")
    attributes = {a.strip().split("=")[0].lower() for a in set_cookie.split(";")[1:]}
    assert {"httponly", "samesite", "path", "max-age"} <= attributes
    assert "SameSite=Lax" in set_cookie
    assert "Path=/auth/" in set_cookie
    assert "secure" not in attributes  # the sandbox is served over http on loopback


@pytest.mark.parametrize("other", [None, "another browser"])
async def test_a_callback_opened_in_another_browser_is_refused_and_issues_nothing(
    broker: RunningGateway, portal: SandboxPortal, other: str | None
) -> None:
    await portal.login("hk", "chan-tai-man")  # warm: one login on record
    url, own = await to_callback(portal, "hk", "chan-tai-man")  # the attacker's login
    cookies = None
    if other:  # the victim's browser holds a login cookie of its own
        _, cookies = await to_callback(portal, "macau", "lei-sio-meng")
        assert cookies != own
    before = await table_counts(broker.settings)
    status, headers, body = await get(url, cookies=cookies)
    assert status == 401
    assert "Location" not in headers
    assert "Set-Cookie" not in headers
    assert "another browser" in body["detail"]
    assert await table_counts(broker.settings) == before
    # the pending login is spent: not even the browser that started it may finish it now
    status, _, body = await get(url, cookies=own)
    assert (status, "state" in body["detail"]) == (401, True)


# ---- the OP session cookie and the progress page ------------------------------------------


async def test_the_progress_page_opens_with_the_session_cookie_until_logout(
    broker: RunningGateway, portal: SandboxPortal, session: aiohttp.ClientSession
) -> None:
    url, pending = portal.authorization_url("hk", "chan-tai-man")
    tokens = await portal.exchange(await browse(session, portal, url, pending))
    op_session = cookie(session, SESSION_COOKIE)
    assert op_session is not None
    assert (op_session["path"], op_session["httponly"], op_session["samesite"]) == (
        "/me/",
        True,
        "Lax",
    )
    deps = broker.app[DEPENDENCIES]  # type: ignore[index]
    matter = deps.catalog.get(HENGQIN_BUSINESS, local_date(deps.clock.now()))
    sample = canonical_sample(matter, persona("chan-tai-man"))
    body = {"application": {k: v for k, v in sample.items() if k != "applicant"}}
    body["consent"] = CONSENT
    headers = {"Authorization": f"Bearer {tokens.access_token}", "Idempotency-Key": "cookie-1"}
    async with session.post(broker.url + "/v1/me/applications", json=body, headers=headers) as r:
        assert r.status == 202, await r.text()
        case_id = (await r.json())["application_id"]

    page = f"{broker.url}/me/applications/{case_id}?lang=pt"
    async with session.get(page) as response:  # no Authorization header: the cookie
        assert response.status == 200
        assert "Andamento do pedido" in await response.text()
    status, _, _ = await get(page)  # a browser without the cookie
    assert status == 401
    forged = {SESSION_COOKIE: "A" * 43}
    assert (await get(page, cookies=forged))[0] == 401
    status, _, _ = await get(page, {"Authorization": f"Bearer {tokens.access_token}"})
    assert status == 200  # the bearer still works

    status, location = await portal.logout(tokens, state="bye")
    assert status == 302
    assert location == DEFAULT_LOGOUT_URI + "?state=bye"
    async with session.get(page) as response:  # the stale cookie is dead server-side
        assert response.status == 401


# ---- refresh tokens -------------------------------------------------------------------------


async def test_discovery_advertises_refresh_and_logout(broker: RunningGateway) -> None:
    _, _, document = await get(broker.url + "/.well-known/openid-configuration")
    assert document["grant_types_supported"] == ["authorization_code", "refresh_token"]
    assert document["end_session_endpoint"] == broker.url + "/oauth2/logout"


async def test_a_refresh_rotates_and_keeps_subject_and_acr(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    first = await portal.login("macau", "lei-sio-meng")
    keys = await gateway_jwks(broker.url)
    second = await portal.refresh(first)
    assert second.refresh_token != first.refresh_token
    assert second.expires_in == 300
    from tests.integration.test_oidc_flow import verify

    old = verify(first.access_token, keys, typ="at+jwt", audience="gd-hq-csb")
    new = verify(second.access_token, keys, typ="at+jwt", audience="gd-hq-csb")
    assert (new["sub"], new["acr"], new["auth_time"], new["sid"]) == (
        old["sub"],
        old["acr"],
        old["auth_time"],
        old["sid"],
    )
    assert new["jti"] != old["jti"]
    id_claims = verify(second.id_token, keys, typ="JWT", audience=portal.client_id)
    assert "nonce" not in id_claims  # OpenID Connect Core §12.2
    assert await userinfo_status(broker, second.access_token) == 200
    # stored hashed, never in clear
    rows = await refresh_rows(broker)
    hashes = {r["token_hash"] for r in rows}
    for token in (first.refresh_token, second.refresh_token):
        assert hashlib.sha256(token.encode()).hexdigest() in hashes
        assert token not in {str(v) for r in rows for v in r.values()}


async def test_a_rotated_refresh_token_used_again_revokes_its_whole_family(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    first = await portal.login("hk", "chan-tai-man")
    second = await portal.refresh(first)
    with pytest.raises(PortalError, match="invalid_grant"):
        await portal.refresh(first)  # the thief (or the portal) replays the rotated token
    # the legitimate holder's newer tokens are dead too (RFC 9700 §4.14.2)
    with pytest.raises(PortalError, match="invalid_grant"):
        await portal.refresh(second)
    assert await userinfo_status(broker, second.access_token) == 401
    assert await userinfo_status(broker, first.access_token) == 401
    assert all(r["revoked_at"] is not None for r in await refresh_rows(broker))
    # another login of the same resident is untouched
    other = await portal.login("hk", "chan-tai-man")
    assert await userinfo_status(broker, (await portal.refresh(other)).access_token) == 200


async def test_a_refresh_token_is_bound_to_its_client(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    tokens = await portal.login("guangdong", "zhang-wei")
    thief = await SandboxPortal.register(broker.url)
    before = await refresh_rows(broker)
    with pytest.raises(PortalError, match="another client"):
        await thief.refresh(tokens)
    assert await refresh_rows(broker) == before  # nothing issued, nothing spent
    status, body = await thief.token_request(
        {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token,
         "client_assertion": None, "client_assertion_type": None}
    )  # fmt: skip
    assert (status, body["error"]) == (401, "invalid_client")
    assert await refresh_rows(broker) == before
    assert (await portal.refresh(tokens)).access_token  # its own client still may


@pytest.mark.parametrize(
    "form",
    [
        {"refresh_token": "not-a-token"},
        {"refresh_token": None},
        {"scope": "openid identity_documents"},
    ],
)
async def test_a_bad_refresh_is_refused(
    broker: RunningGateway, portal: SandboxPortal, form: dict[str, Any]
) -> None:
    tokens = await portal.login("hk", "chan-tai-man")
    status, body = await portal.token_request(
        {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token, **form}
    )
    assert status == 400
    assert body["error"] in ("invalid_grant", "invalid_scope")


# ---- RP-initiated logout --------------------------------------------------------------------


async def test_logout_ends_the_logins_refresh_and_access_tokens(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    tokens = await portal.login("macau", "lei-sio-meng")
    refreshed = await portal.refresh(tokens)
    kept = await portal.login("hk", "chan-tai-man")  # another login: not ended
    status, location = await portal.logout(refreshed, redirect=False)
    assert (status, location) == (200, "")
    with pytest.raises(PortalError, match="invalid_grant"):
        await portal.refresh(refreshed)
    assert await userinfo_status(broker, refreshed.access_token) == 401
    assert await userinfo_status(broker, (await portal.refresh(kept)).access_token) == 200


def _foreign_id_token(claims: dict[str, Any]) -> str:
    key = SigningKey(
        kid="evil",
        private_key=generate_private_key("ecdsa-p256-sha256"),
        alg="ecdsa-p256-sha256",
        sandbox=True,
        purpose="oidc",
    )
    return sign_jwt(key, claims, typ="JWT")


@pytest.mark.parametrize(
    "spoil",
    ["unregistered_uri", "forged_hint", "no_hint", "other_client"],
)
async def test_a_bad_logout_is_an_error_page_and_ends_nothing(
    broker: RunningGateway, portal: SandboxPortal, spoil: str
) -> None:
    tokens = await portal.login("hk", "chan-tai-man")
    params: dict[str, str] = {
        "id_token_hint": tokens.id_token,
        "post_logout_redirect_uri": DEFAULT_LOGOUT_URI,
    }
    if spoil == "unregistered_uri":
        params["post_logout_redirect_uri"] = "https://evil.example/after"
    elif spoil == "forged_hint":
        claims = jwt_claims(tokens.id_token)
        params["id_token_hint"] = _foreign_id_token(claims)
    elif spoil == "no_hint":
        del params["id_token_hint"]
    else:
        other = await SandboxPortal.register(broker.url)
        params["client_id"] = other.client_id
    before = await refresh_rows(broker)
    query = "&".join(f"{k}={v}" for k, v in params.items())
    status, headers, body = await get(f"{broker.url}/oauth2/logout?{query}")
    assert status == 400
    assert "Location" not in headers
    assert body["type"].endswith("/problems/bad-request")
    assert await refresh_rows(broker) == before
    assert await userinfo_status(broker, tokens.access_token) == 200


def jwt_claims(token: str) -> dict[str, Any]:
    import jwt

    return dict(jwt.decode(token, options={"verify_signature": False}))


async def test_logout_by_post_form(broker: RunningGateway, portal: SandboxPortal) -> None:
    tokens = await portal.login("hk", "chan-tai-man")
    form = {"id_token_hint": tokens.id_token, "post_logout_redirect_uri": DEFAULT_LOGOUT_URI}
    async with (
        aiohttp.ClientSession() as client,
        client.post(broker.url + "/oauth2/logout", data=form, allow_redirects=False) as response,
    ):
        assert response.status == 302
        assert response.headers["Location"] == DEFAULT_LOGOUT_URI
        assert f"{SESSION_COOKIE}=" in response.headers["Set-Cookie"]
        assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert await userinfo_status(broker, tokens.access_token) == 401


# ---- consent withdrawal ---------------------------------------------------------------------


async def test_withdrawing_a_consent_revokes_the_residents_refresh_tokens(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    tokens = await portal.login("hk", "chan-tai-man")
    someone_else = await portal.login("macau", "lei-sio-meng")
    headers = {"Authorization": f"Bearer {tokens.access_token}"}
    async with aiohttp.ClientSession() as client:
        async with client.post(
            broker.url + "/v1/me/consents", json=CONSENT, headers=headers
        ) as response:
            assert response.status == 201, await response.text()
            consent = (await response.json())["consent_id"]
        path = f"{broker.url}/v1/me/consents/{consent}/withdraw"
        async with client.post(path, headers=headers) as response:
            assert response.status == 200, await response.text()
    with pytest.raises(PortalError, match="invalid_grant"):
        await portal.refresh(tokens)
    assert (await portal.refresh(someone_else)).access_token


# ---- migration --------------------------------------------------------------------------------

OLD_SHAPE = sa.MetaData()
sa.Table(  # oidc_sessions as create_schema made it before the OP session cookie
    "oidc_sessions",
    OLD_SHAPE,
    sa.Column("login_id", sa.String(40), primary_key=True),
    sa.Column("person_id", sa.String(40), nullable=False),
    sa.Column("acr", sa.String(40), nullable=False),
    sa.Column("auth_time", sa.BigInteger, nullable=False),
    sa.Column("claims", sa.JSON, nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)


async def test_an_old_database_gains_the_session_columns_and_the_refresh_table(
    database: Database,
) -> None:
    engine = create_engine(database.url, schema=database.schema or None)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(OLD_SHAPE.create_all)
            await conn.execute(
                OLD_SHAPE.tables["oidc_sessions"]
                .insert()
                .values(
                    login_id="login-old",
                    person_id="p-1",
                    acr="urn:gba:loa:high",
                    auth_time=1,
                    claims={},
                    expires_at=datetime(2026, 12, 6, tzinfo=UTC),
                )
            )
        await create_schema(engine)
        await create_schema(engine)  # and again: nothing left to do

        def shape(sync: Any) -> tuple[set[str], set[str], bool]:
            inspector = sa.inspect(sync)
            columns = {c["name"] for c in inspector.get_columns("oidc_sessions")}
            indexes = {i["name"] for i in inspector.get_indexes("oidc_sessions")}
            return columns, indexes, inspector.has_table("oidc_refresh_tokens")

        async with engine.connect() as conn:
            columns, indexes, refresh_table = await conn.run_sync(shape)
            kept = (await conn.execute(sa.select(oidc_sessions))).one()
        assert "browser_hash" in columns
        assert "ix_oidc_sessions_browser" in indexes
        assert refresh_table
        assert (kept.login_id, kept.browser_hash) == ("login-old", None)
    finally:
        await engine.dispose()
