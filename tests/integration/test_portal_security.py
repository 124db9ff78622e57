"""The reference portal's sessions, CSRF tokens and login callback, over HTTP without a browser.

A POST without the session's CSRF token is refused before anything is read or sent on: no
material uploaded, no application filed, no logout. A callback whose state this browser's
session did not send (wrong state, another browser, another issuer) is refused and leaves the
session without tokens. An expired access token is refreshed with the gateway's rotating
refresh token; without one the resident is sent to log in again. A gateway whose access
tokens live one second refuses the portal's token (401) while the portal's clock still says it
is good: the portal refreshes once and repeats the call (a GET, and a POST's JSON body).
Tokens never appear in a page; the session cookie is HttpOnly, SameSite=Lax and scoped to
/portal/; ``next`` never leaves the portal.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import sqlalchemy as sa
from yarl import URL

from gateway.bootstrap import Overrides, create_app
from gateway.identity.tokens import refresh_hash
from gateway.portal.app import STATE, PortalState
from gateway.portal.sessions import COOKIE
from gateway.store.tables import applications, complaints, logins, materials, oidc_refresh_tokens
from gateway.web.keys import STORE
from tests.conftest import RunningGateway, sandbox_settings
from tests.portal_support import application_form, browser, csrf_of, log_in, persona_page, returned
from tests.support import refused_at_the_gateway

HENGQIN_BUSINESS = "11440400MB2C00081P4440120002000"


async def _count(gateway: RunningGateway, table: sa.Table) -> int:
    async with gateway.app[STORE].engine.connect() as conn:  # type: ignore[index]
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar())


def _state(gateway: RunningGateway) -> PortalState:
    return gateway.app[STATE]  # type: ignore[index]


async def test_posts_without_the_csrf_token_are_refused_and_nothing_is_stored(
    gateway: RunningGateway,
) -> None:
    apply = f"{gateway.url}/portal/matters/{HENGQIN_BUSINESS}/apply"
    consent = f"{gateway.url}/portal/matters/{HENGQIN_BUSINESS}/consent"
    async with browser() as client:
        await log_in(client, gateway)
        csrf = await csrf_of(client, apply)
        for token in (None, "forged-" + csrf):
            async with client.post(apply, data=application_form(token)) as response:
                assert response.status == 403
        assert await _count(gateway, materials) == 0  # no file was streamed on
        async with client.get(consent, allow_redirects=False) as response:
            assert response.status == 303  # no draft was kept: back to the form

        async with client.post(apply, data=application_form(csrf)) as response:
            assert response.status == 200
            assert response.url.path.endswith("/consent")
        assert await _count(gateway, materials) == 1
        for form in ({"agree": "yes"}, {"agree": "yes", "csrf": csrf[:-1]}):
            async with client.post(consent, data=form) as response:
                assert response.status == 403
        assert await _count(gateway, applications) == 0

        async with client.post(f"{gateway.url}/portal/logout", data={}) as response:
            assert response.status == 403
        as_multipart = aiohttp.FormData({"csrf": csrf, "agree": "yes"}, default_to_multipart=True)
        async with client.post(consent, data=as_multipart) as response:
            assert response.status == 415  # only the urlencoded form is read
        assert await _count(gateway, applications) == 0
        async with client.get(f"{gateway.url}/portal/applications") as response:
            assert response.status == 200  # still logged in
            assert response.url.path == "/portal/applications"

        async with client.post(consent, data={"agree": "yes", "csrf": csrf}) as response:
            assert response.status == 200
            assert response.url.path.endswith("/receipt")  # the genuine form goes through
        assert await _count(gateway, applications) == 1


async def test_a_callback_this_browser_did_not_start_is_refused_and_keeps_no_tokens(
    gateway: RunningGateway,
) -> None:
    async with browser() as client:
        back = await returned(client, gateway, await persona_page(client, gateway), "chan-tai-man")
        query = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
        callback = URL(f"{gateway.url}/portal/callback")
        spoiled = [
            {**query, "state": query["state"][:-2] + "xx"},
            {k: v for k, v in query.items() if k != "state"},
        ]
        for params in spoiled:
            async with client.get(callback.with_query(params), allow_redirects=False) as response:
                assert response.status == 400
                assert "access_token" not in await response.text()
        assert all(s.tokens is None for s in _state(gateway).sessions._sessions.values())

        # the right answer in another browser (login CSRF): refused, nothing kept there
        async with (
            browser() as other,
            other.get(callback.with_query(query), allow_redirects=False) as response,
        ):
            assert response.status == 400
            assert COOKIE not in response.cookies

        # in the browser that started it, once: a replay is refused
        async with client.get(back, allow_redirects=False) as response:
            assert response.status == 303
            cookie = response.cookies[COOKIE]
            assert cookie["httponly"]
            assert cookie["samesite"] == "Lax"
            assert cookie["path"] == "/portal/"
            assert not cookie["secure"]  # served over http here; Secure under https
        async with client.get(back, allow_redirects=False) as response:
            assert response.status == 400

        # another issuer's answer with this login's state (mix-up): refused, and it burns
        # the login in progress, so the genuine answer after it is refused as well
        back = await returned(client, gateway, await persona_page(client, gateway), "chan-tai-man")
        query = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
        mixed = callback.with_query({**query, "iss": "https://idp.attacker.example"})
        for url in (mixed, back):
            async with client.get(url, allow_redirects=False) as response:
                assert response.status == 400


async def test_tokens_stay_on_the_server_and_a_session_survives_an_access_token_expiry(
    gateway: RunningGateway,
) -> None:
    async with browser() as client:
        await log_in(client, gateway)
        sessions = [s for s in _state(gateway).sessions._sessions.values() if s.tokens]
        assert len(sessions) == 1
        tokens = sessions[0].tokens
        assert tokens is not None
        for path in ("/portal/", "/portal/applications", f"/portal/matters/{HENGQIN_BUSINESS}"):
            async with client.get(gateway.url + path) as response:
                page = await response.text()
                assert tokens.access_token not in page
                assert tokens.id_token not in page
                assert tokens.access_token not in str(response.url)

        # the access token expires: the gateway's rotating refresh token keeps the session
        first_access, first_refresh = tokens.access_token, tokens.refresh_token
        assert first_refresh is not None
        tokens.expires_at = 0
        async with client.get(
            f"{gateway.url}/portal/applications", allow_redirects=False
        ) as response:
            assert response.status == 200
        renewed = sessions[0].tokens
        assert renewed is not None
        assert renewed.access_token != first_access
        assert renewed.refresh_token not in (None, first_refresh)  # rotated

        # without a refresh token (or once it is refused) the resident logs in again
        renewed.expires_at = 0
        renewed.refresh_token = None
        async with client.get(
            f"{gateway.url}/portal/applications", allow_redirects=False
        ) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/portal/login?next=/portal/applications"
        assert sessions[0].tokens is None


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/portal/", "/portal/\\evil", "/elsewhere"],
)
async def test_next_never_leaves_the_portal(gateway: RunningGateway, target: str) -> Any:
    async with browser() as client:
        async with client.get(
            f"{gateway.url}/portal/login", params={"idp": "hk", "next": target}
        ) as response:
            assert response.status == 200
        session = next(iter(_state(gateway).sessions._sessions.values()))
        assert [p.return_to for p in session.pending.values()] == ["/portal/"]


def test_the_session_cookie_is_secure_when_the_public_url_is_https() -> None:
    assert PortalState("https://gateway.example").sessions.secure
    assert not PortalState("http://127.0.0.1:8080").sessions.secure


@pytest.fixture
async def short_token_gateway(
    tmp_path: Any, database: Any, aiohttp_server: Any
) -> AsyncIterator[RunningGateway]:
    """A sandbox gateway whose access tokens live one second (``access_token_seconds``)."""
    settings = sandbox_settings(tmp_path, database, access_token_seconds=1)
    app = create_app(settings, Overrides())
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    yield RunningGateway(settings, settings.base_url, app)
    await server.close()


async def _refresh_rows(gateway: RunningGateway) -> dict[str, Any]:
    """Every refresh token's hash and when it was spent (rotated)."""
    async with gateway.app[STORE].engine.connect() as conn:  # type: ignore[index]
        rows = await conn.execute(
            sa.select(oidc_refresh_tokens.c.token_hash, oidc_refresh_tokens.c.used_at)
        )
        return {row.token_hash: row.used_at for row in rows}


async def _file_application(client: aiohttp.ClientSession, gateway: RunningGateway) -> str:
    apply = f"{gateway.url}/portal/matters/{HENGQIN_BUSINESS}/apply"
    consent = f"{gateway.url}/portal/matters/{HENGQIN_BUSINESS}/consent"
    csrf = await csrf_of(client, apply)
    async with client.post(apply, data=application_form(csrf)) as response:
        assert response.url.path.endswith("/consent")
    async with client.post(consent, data={"agree": "yes", "csrf": csrf}) as response:
        assert response.url.path.endswith("/receipt")
        return response.url.path.rsplit("/", 2)[-2]


async def test_a_401_for_an_expired_access_token_is_refreshed_and_the_call_made_once_more(
    short_token_gateway: RunningGateway,
) -> None:
    """The portal's clock says the token is good (its ``expires_at`` far ahead), the gateway's
    says it has expired: the gateway answers 401, the portal refreshes once and repeats the
    call, and the resident sees the page without logging in again."""
    gateway = short_token_gateway
    async with browser() as client:
        await log_in(client, gateway)
        (session,) = [s for s in _state(gateway).sessions._sessions.values() if s.tokens]
        tokens = session.tokens
        assert tokens is not None
        assert tokens.refresh_token is not None
        tokens.expires_at = time.time() + 3600  # the portal does not know it has expired
        await refused_at_the_gateway(gateway.url, tokens.access_token)
        spent = refresh_hash(tokens.refresh_token)
        assert (await _refresh_rows(gateway))[spent] is None
        logins_before = await _count(gateway, logins)

        async with client.get(
            f"{gateway.url}/portal/applications", allow_redirects=False
        ) as response:
            assert response.status == 200  # no redirect to log in
            assert response.url.path == "/portal/applications"
        renewed = session.tokens
        assert renewed is not None
        assert renewed.access_token != tokens.access_token
        assert renewed.refresh_token not in (None, tokens.refresh_token)
        rows = await _refresh_rows(gateway)
        assert rows[spent] is not None  # rotated at the gateway
        assert rows[refresh_hash(renewed.refresh_token)] is None
        assert await _count(gateway, logins) == logins_before  # no new login

        # a POST with a JSON body is repeated too: the complaint is filed once
        case = await _file_application(client, gateway)
        renewed.expires_at = time.time() + 3600
        await refused_at_the_gateway(gateway.url, renewed.access_token)
        spent = refresh_hash(renewed.refresh_token or "")
        async with client.post(
            f"{gateway.url}/portal/applications/{case}/complaints",
            data={"csrf": session.csrf, "text": "Nobody answered the phone."},
            allow_redirects=False,
        ) as response:
            assert response.status == 303
            assert response.headers["Location"] == f"/portal/applications/{case}"
        assert session.notice == "complaint_filed"
        assert await _count(gateway, complaints) == 1
        assert (await _refresh_rows(gateway))[spent] is not None

        # a second 401 after the refresh (the token revoked, the refresh refused): log in again
        assert session.tokens is not None
        session.tokens.expires_at = time.time() + 3600
        session.tokens.refresh_token = "not-a-refresh-token-of-this-gateway"
        await refused_at_the_gateway(gateway.url, session.tokens.access_token)
        async with client.get(
            f"{gateway.url}/portal/applications", allow_redirects=False
        ) as response:
            assert response.status == 303
            assert response.headers["Location"] == "/portal/login?next=/portal/applications"
        assert session.tokens is None
