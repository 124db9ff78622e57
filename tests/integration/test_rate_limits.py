"""Rate limits (issue 13, item 2): token buckets per signing key and per client address.

Each test sets its limits low; an empty bucket answers 429 ``rate-limited`` as
``application/problem+json`` with ``Retry-After``, and a refused request stores nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.bootstrap import create_app
from gateway.store.tables import nonces
from gateway.trust.keys import SigningKey, generate_private_key
from gateway.trust.profile import sign_request
from gateway.web.keys import STORE
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.support import agency_key, row_counts

Factory = Callable[..., Any]


@pytest.fixture
async def limited(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> AsyncIterator[Factory]:
    """Start a sandbox gateway with the given limits (on each database backend)."""
    servers = []

    async def start(**limits: object) -> RunningGateway:
        settings = sandbox_settings(tmp_path, database, relay_enabled=False, **limits)
        app = create_app(settings)
        servers.append(await aiohttp_server(app, host="127.0.0.1", port=settings.port))
        return RunningGateway(settings, settings.base_url, app)

    yield start
    for server in servers:
        await server.close()


async def _status(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, dict[str, str], dict[str, Any] | None]:
    async with session.request(method, url, allow_redirects=False, **kwargs) as response:
        body = await response.json(content_type=None) if response.status == 429 else None
        return response.status, dict(response.headers), body


def _assert_rate_limited(status: int, headers: dict[str, str], body: Any) -> None:
    assert status == 429
    assert headers["Content-Type"] == "application/problem+json"
    assert int(headers["Retry-After"]) >= 1
    assert body["type"].endswith("/problems/rate-limited")
    assert body["status"] == 429


# --- per client address ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/sandbox/v1/personas", "/oauth2/authorize?client_id=x", "/auth/hk/login", "/sandbox/"],
)
async def test_unauthenticated_routes_are_limited_per_client_address(
    limited: Factory, path: str
) -> None:
    gateway = await limited(rate_limit_address=0.01, rate_limit_address_burst=3)
    async with aiohttp.ClientSession() as session:
        answers = [await _status(session, "GET", gateway.url + path) for _ in range(4)]
        assert all(status != 429 for status, _, _ in answers[:3])
        _assert_rate_limited(*answers[3])
        for _ in range(10):  # routes outside the list are not limited per address
            assert (await _status(session, "GET", gateway.url + "/healthz"))[0] == 200


async def test_a_registration_refused_for_the_rate_stores_nothing(limited: Factory) -> None:
    gateway = await limited(rate_limit_address=0.01, rate_limit_address_burst=1)
    url = gateway.url + "/sandbox/v1/agencies"
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            before = (await response.json())["items"]
        spec = {"id": "flood-agency", "jurisdiction": "HK", "names": {"en": "Flood"}}
        _assert_rate_limited(*await _status(session, "POST", url, json=spec))
        client = {"redirect_uris": ["https://portal.example/cb"], "client_name": "flood"}
        _assert_rate_limited(
            *await _status(session, "POST", gateway.url + "/oauth2/register", json=client)
        )
    async with gateway.app[STORE]() as uow:  # type: ignore[index]
        registered = await uow.agencies.all()
    assert [agency.id for agency, _ in registered] == [item["agency_id"] for item in before]


async def test_x_forwarded_for_counts_only_from_a_trusted_proxy(limited: Factory) -> None:
    url_path = "/sandbox/v1/personas"
    untrusted = await limited(rate_limit_address=0.01, rate_limit_address_burst=2)
    async with aiohttp.ClientSession() as session:
        statuses = [
            (await _status(session, "GET", untrusted.url + url_path, headers=xff))[0]
            for xff in ({"X-Forwarded-For": f"203.0.113.{i}"} for i in range(3))
        ]
    assert statuses[-1] == 429  # a made-up X-Forwarded-For does not buy a fresh bucket

    trusted = await limited(
        rate_limit_address=0.01,
        rate_limit_address_burst=2,
        trusted_proxies=("127.0.0.0/8", "10.0.0.0/8"),
    )
    async with aiohttp.ClientSession() as session:

        async def get(chain: str) -> int:
            return (
                await _status(
                    session, "GET", trusted.url + url_path, headers={"X-Forwarded-For": chain}
                )
            )[0]

        assert [await get("203.0.113.7") for _ in range(3)] == [200, 200, 429]
        assert [await get("198.51.100.9, 10.0.0.1") for _ in range(2)] == [200, 200]
        # the client's own claim left of the proxy's does not matter
        assert await get("198.51.100.1, 198.51.100.9") == 429


# --- per signing key ---------------------------------------------------------------------------


async def test_signed_requests_are_limited_per_key_and_a_refused_one_stores_no_nonce(
    limited: Factory,
) -> None:
    gateway = await limited(rate_limit_partner=0.01, rate_limit_partner_burst=2)
    url = gateway.url + "/v1/applications/app_doesnotexist"

    def signed(agency: str) -> dict[str, str]:
        key = agency_key(gateway.settings, agency)
        return sign_request(method="GET", url=url, key=key, now=datetime.now(UTC))

    async with aiohttp.ClientSession() as session:
        assert [
            (await _status(session, "GET", url, headers=signed("hk-ird")))[0] for _ in range(2)
        ] == [404, 404]
        stored = await row_counts(gateway.settings, [nonces])
        status, headers, body = await _status(session, "GET", url, headers=signed("hk-ird"))
        _assert_rate_limited(status, headers, body)
        assert "Signature" in headers  # a refusal to a partner is signed like any answer
        assert await row_counts(gateway.settings, [nonces]) == stored
        # another agency's key has its own bucket
        assert (await _status(session, "GET", url, headers=signed("mo-dsf")))[0] == 404


async def test_requests_that_do_not_verify_cannot_spend_a_partner_budget(limited: Factory) -> None:
    gateway = await limited(rate_limit_partner=0.01, rate_limit_partner_burst=1)
    url = gateway.url + "/v1/applications/app_doesnotexist"
    victim = agency_key(gateway.settings, "hk-ird")
    forger = SigningKey(victim.kid, generate_private_key("ed25519"), "ed25519")
    async with aiohttp.ClientSession() as session:
        for _ in range(5):  # the victim's key id, the attacker's key
            forged = sign_request(method="GET", url=url, key=forger, now=datetime.now(UTC))
            assert (await _status(session, "GET", url, headers=forged))[0] == 401
        real = sign_request(method="GET", url=url, key=victim, now=datetime.now(UTC))
        assert (await _status(session, "GET", url, headers=real))[0] == 404
