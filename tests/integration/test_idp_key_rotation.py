"""Upstream identity providers rotate their keys while the gateway runs (issue 18 item 4).

Over real sockets: a sandbox provider's key is rotated through the tester route and the next
login succeeds after exactly one key-set refetch; a token signed by a key the provider does
not publish, or by the key it rotated out, is refused and nothing is stored; a flood of
unknown kids costs one fetch per interval; the scheduled refresh picks up a change without
any login, keeps the last good metadata when the provider fails, and stops cleanly.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from gateway.bootstrap import Overrides, create_app
from gateway.cli import main
from gateway.egress.policy import EgressPolicy
from gateway.identity.discovery import ProviderConfig, Upstreams
from gateway.sandbox.idp import IDENTITY_PROVIDERS
from gateway.sandbox.portal import SandboxPortal
from gateway.web.bearer import BROKER
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.integration.test_oidc_flow import get, table_counts, to_callback

NEVER = 3600.0  # an interval no test outlasts: a second fetch within it is the rate limit failing


async def start(
    tmp_path: Path, database: Database, aiohttp_server: Any, **settings: float
) -> tuple[RunningGateway, Any]:
    config = sandbox_settings(tmp_path, database, **settings)
    app = create_app(config, Overrides())
    server = await aiohttp_server(app, host="127.0.0.1", port=config.port)
    return RunningGateway(config, config.base_url, app), server


@pytest.fixture
async def gateway(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> AsyncIterator[RunningGateway]:
    """A sandbox gateway that refetches a key set at most once an hour, never on schedule."""
    running, server = await start(
        tmp_path,
        database,
        aiohttp_server,
        idp_jwks_refetch_seconds=NEVER,
        idp_metadata_refresh_seconds=NEVER,
    )
    yield running
    await server.close()


def upstreams(gateway: RunningGateway) -> Upstreams:
    return gateway.app[BROKER].relying_party.upstreams  # type: ignore[index,no-any-return]


def sandbox_idp(gateway: RunningGateway, name: str) -> Any:
    return gateway.app[IDENTITY_PROVIDERS].provider(name)  # type: ignore[index]


async def cached_kids(gateway: RunningGateway, name: str) -> list[str]:
    return [key["kid"] for key in (await upstreams(gateway).metadata(name)).jwks["keys"]]


async def keys(gateway: RunningGateway, name: str) -> dict[str, Any]:
    status, _, body = await get(f"{gateway.url}/sandbox/v1/idps/{name}/keys")
    assert status == 200, body
    return body  # type: ignore[no-any-return]


async def rotate(gateway: RunningGateway, name: str, **options: Any) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{gateway.url}/sandbox/v1/idps/{name}/rotate-key",
            json=options,
        ) as response,
    ):
        body = await response.json(content_type=None)
        assert response.status == 200, body
        return body  # type: ignore[no-any-return]


async def refused(gateway: RunningGateway, url: str, cookies: dict[str, str]) -> str:
    """The callback (from the browser holding ``cookies``) is refused as login-failed, and no
    table changed."""
    before = await table_counts(gateway.settings)
    status, headers, body = await get(url, cookies=cookies)
    assert status == 401, body
    assert "Location" not in headers
    assert body["type"].endswith("/problems/login-failed"), body
    assert await table_counts(gateway.settings) == before
    return str(body["detail"])


@pytest.mark.parametrize(("idp", "persona"), [("hk", "chan-tai-man"), ("macau", "lei-sio-meng")])
async def test_after_a_rotation_the_next_login_succeeds_after_one_refetch(
    gateway: RunningGateway, idp: str, persona: str
) -> None:
    portal = await SandboxPortal.register(gateway.url)
    await portal.login(idp, persona)
    old_kid = (await keys(gateway, idp))["kid"]
    assert await cached_kids(gateway, idp) == [old_kid]
    fetched = (await keys(gateway, idp))["jwks_requests"]

    rotated = await rotate(gateway, idp)
    assert rotated["kid"] != old_kid
    assert rotated["previous_kid"] == old_kid
    assert rotated["published_kids"] == [rotated["kid"]]  # the old key is dropped at once

    tokens = await portal.login(idp, persona)  # signed with the new kid
    assert tokens.access_token
    assert (await keys(gateway, idp))["jwks_requests"] == fetched + 1
    assert await cached_kids(gateway, idp) == [rotated["kid"]]
    await portal.login(idp, persona)  # the new key is cached now: no further fetch
    assert (await keys(gateway, idp))["jwks_requests"] == fetched + 1

    # the key rotated out is not accepted any more, and nothing is stored
    sandbox_idp(gateway, idp).tamper(signing="previous-key")
    url, cookies = await to_callback(portal, idp, persona)
    assert "kid" in await refused(gateway, url, cookies)


async def test_a_key_kept_beside_the_new_one_is_still_accepted(gateway: RunningGateway) -> None:
    with pytest.raises(ValueError, match="rotate"):  # no key rotated out yet
        sandbox_idp(gateway, "guangdong").tamper(signing="previous-key")
    portal = await SandboxPortal.register(gateway.url)
    await portal.login("guangdong", "zhang-wei")
    rotated = await rotate(gateway, "guangdong", keep_previous=True)
    assert rotated["published_kids"] == [rotated["kid"], rotated["previous_kid"]]
    await portal.login("guangdong", "zhang-wei")  # new kid: refetched
    sandbox_idp(gateway, "guangdong").tamper(signing="previous-key")
    await portal.login("guangdong", "zhang-wei")  # the old key is still published: accepted


async def test_rotation_options_are_checked(gateway: RunningGateway) -> None:
    before = (await keys(gateway, "hk"))["kid"]
    async with aiohttp.ClientSession() as session:
        for body in ({"keep_previous": "yes"}, {"keep_previous": True, "kid": "mine"}):
            async with session.post(
                f"{gateway.url}/sandbox/v1/idps/hk/rotate-key", json=body
            ) as response:
                assert response.status == 422
        for media_type, status in (("text/plain", 415), ("application/json", 400)):
            async with session.post(
                f"{gateway.url}/sandbox/v1/idps/hk/rotate-key",
                data=b"",
                headers={"Content-Type": media_type},
            ) as response:
                assert response.status == status
        async with session.post(f"{gateway.url}/sandbox/v1/idps/nowhere/rotate-key") as response:
            assert response.status == 404
    assert (await keys(gateway, "hk"))["kid"] == before


async def test_the_cli_rotates_and_shows_the_keys(
    gateway: RunningGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (await keys(gateway, "macau"))["kid"]
    argv = ["sandbox", "idp", "rotate", "macau", "--keep-previous", "--url", gateway.url]
    assert await asyncio.to_thread(main, argv) == 0
    after = await keys(gateway, "macau")
    assert after["previous_kid"] == before != after["kid"]
    assert after["published_kids"] == [after["kid"], before]
    assert f"macau: signs with {after['kid']}" in capsys.readouterr().out
    argv = ["sandbox", "idp", "keys", "macau", "--url", gateway.url]
    assert await asyncio.to_thread(main, argv) == 0
    assert (await keys(gateway, "macau"))["kid"] == after["kid"]  # keys changes nothing
    assert f"before         {before}" in capsys.readouterr().out


async def test_a_token_of_an_unpublished_key_is_refused_after_one_refetch(
    gateway: RunningGateway,
) -> None:
    portal = await SandboxPortal.register(gateway.url)
    await portal.login("hk", "wong-siu-ming")
    fetched = (await keys(gateway, "hk"))["jwks_requests"]
    sandbox_idp(gateway, "hk").tamper(signing="unpublished-key")
    url, cookies = await to_callback(portal, "hk", "wong-siu-ming")
    assert "kid" in await refused(gateway, url, cookies)
    assert (await keys(gateway, "hk"))["jwks_requests"] == fetched + 1  # it did look
    assert await cached_kids(gateway, "hk") == [(await keys(gateway, "hk"))["kid"]]


async def test_a_flood_of_unknown_kids_costs_one_fetch(gateway: RunningGateway) -> None:
    portal = await SandboxPortal.register(gateway.url)
    await portal.login("hk", "chan-tai-man")
    fetched = (await keys(gateway, "hk"))["jwks_requests"]
    sandbox_idp(gateway, "hk").tamper(signing="unpublished-key")  # a new kid in every token
    urls = [await to_callback(portal, "hk", "chan-tai-man") for _ in range(12)]
    before = await table_counts(gateway.settings)
    answers = await asyncio.gather(*(get(url, cookies=cookies) for url, cookies in urls))
    assert [status for status, _, _ in answers] == [401] * len(urls)
    assert all(body["type"].endswith("/problems/login-failed") for _, _, body in answers)
    assert await table_counts(gateway.settings) == before
    assert (await keys(gateway, "hk"))["jwks_requests"] == fetched + 1
    # and a genuine rotation within the interval is not picked up by a refetch either:
    # the limit holds for every kid, until the interval or the scheduled refresh
    sandbox_idp(gateway, "hk").tamper()
    await rotate(gateway, "hk")
    url, cookies = await to_callback(portal, "hk", "chan-tai-man")
    await refused(gateway, url, cookies)
    assert (await keys(gateway, "hk"))["jwks_requests"] == fetched + 1


async def test_the_scheduled_refresh_picks_up_a_rotation_without_a_login(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> None:
    running, server = await start(
        tmp_path,
        database,
        aiohttp_server,
        idp_jwks_refetch_seconds=NEVER,
        idp_metadata_refresh_seconds=1,
    )
    try:
        portal = await SandboxPortal.register(running.url)
        await portal.login("macau", "lei-sio-meng")
        rotated = await rotate(running, "macau")
        for _ in range(100):
            if await cached_kids(running, "macau") == [rotated["kid"]]:
                break
            await asyncio.sleep(0.1)
        assert await cached_kids(running, "macau") == [rotated["kid"]]
        await portal.login("macau", "lei-sio-meng")  # no refetch needed: the schedule had it
    finally:
        await server.close()


# -- Upstreams against a provider of our own, whose documents the test changes --------------


class Upstream:
    """A minimal OpenID provider on a real loopback socket: discovery and JWKS, switchable."""

    def __init__(self) -> None:
        self.status = 200
        self.hang = False
        self.jwks: dict[str, Any] = {"keys": [{"kty": "EC", "kid": "one"}]}
        self.token_endpoint = "token"
        self.jwks_requests = 0
        self.issuer = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/.well-known/openid-configuration", self.discovery)
        app.router.add_get("/jwks", self.keys)
        return app

    async def discovery(self, _request: web.Request) -> web.Response:
        if self.hang:
            await asyncio.sleep(NEVER)
        document = {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": f"{self.issuer}/{self.token_endpoint}",
            "jwks_uri": self.issuer + "/jwks",
        }
        return web.json_response(document, status=self.status)

    async def keys(self, _request: web.Request) -> web.Response:
        self.jwks_requests += 1
        await asyncio.sleep(0.05)  # long enough for concurrent callers to meet in flight
        return web.json_response(self.jwks, status=self.status)


@pytest.fixture
async def upstream(aiohttp_server: Any) -> Upstream:
    provider = Upstream()
    server = await aiohttp_server(provider.app(), host="127.0.0.1")
    provider.issuer = str(server.make_url("")).rstrip("/")
    return provider


def relying(upstream: Upstream, **options: Any) -> Upstreams:
    config = ProviderConfig(
        "hk", upstream.issuer + "/.well-known/openid-configuration", "gba-gateway", ("ES256",)
    )
    return Upstreams(
        (config,), egress=EgressPolicy(sandbox=True), timeout=5, sandbox=True, **options
    )


async def test_refetches_are_shared_and_limited_per_interval(upstream: Upstream) -> None:
    clock = [1000.0]
    ups = relying(upstream, refetch_seconds=60, monotonic=lambda: clock[0])
    stale = await ups.metadata("hk")
    assert upstream.jwks_requests == 1  # at start
    upstream.jwks = {"keys": [{"kty": "EC", "kid": "two"}]}
    answers = await asyncio.gather(*(ups.refetch_keys("hk", stale) for _ in range(20)))
    assert upstream.jwks_requests == 2  # twenty logins, one fetch
    assert {a.jwks["keys"][0]["kid"] for a in answers} == {"two"}

    upstream.jwks = {"keys": [{"kty": "EC", "kid": "three"}]}
    current = await ups.metadata("hk")
    clock[0] += 59
    assert (await ups.refetch_keys("hk", current)).jwks["keys"][0]["kid"] == "two"
    assert upstream.jwks_requests == 2  # within the interval: no fetch
    clock[0] += 2
    assert (await ups.refetch_keys("hk", current)).jwks["keys"][0]["kid"] == "three"
    assert upstream.jwks_requests == 3  # the next interval: one more


async def test_a_failed_refetch_keeps_the_keys_and_counts_against_the_limit(
    upstream: Upstream,
) -> None:
    clock = [0.0]
    ups = relying(upstream, refetch_seconds=60, monotonic=lambda: clock[0])
    stale = await ups.metadata("hk")
    upstream.status = 503
    with capture_logs() as logs:
        assert await ups.refetch_keys("hk", stale) is stale
    assert [e["event"] for e in logs] == ["idp.jwks_refetch_failed"]
    upstream.status = 200
    assert await ups.refetch_keys("hk", stale) is stale  # limited: a broken provider is spared
    assert upstream.jwks_requests == 2  # the start's fetch and the failed one


async def test_the_scheduled_refresh_keeps_the_last_good_metadata_and_stops_cleanly(
    upstream: Upstream,
) -> None:
    ups = relying(upstream, refresh_seconds=0.05)
    with capture_logs() as logs:
        running = asyncio.create_task(ups.run())
        first = await ups.metadata("hk")
        assert first.token_endpoint.endswith("/token")

        upstream.token_endpoint = "token2"  # the discovery document changes
        upstream.jwks = {"keys": [{"kty": "EC", "kid": "two"}]}
        for _ in range(100):
            if (await ups.metadata("hk")).token_endpoint.endswith("/token2"):
                break
            await asyncio.sleep(0.02)
        changed = await ups.metadata("hk")
        assert changed.token_endpoint.endswith("/token2")
        assert changed.jwks["keys"][0]["kid"] == "two"

        upstream.status = 500  # the provider fails: the last good metadata is kept
        for _ in range(100):
            if any(e["event"] == "idp.refresh_failed" for e in logs):
                break
            await asyncio.sleep(0.02)
        assert any(e["event"] == "idp.refresh_failed" for e in logs)
        assert await ups.metadata("hk") == changed

        upstream.status, upstream.hang = 200, True  # cancelled while a fetch hangs
        await asyncio.sleep(0.2)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    assert await ups.metadata("hk") == changed
