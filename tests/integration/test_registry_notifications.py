"""Registry changes told at once across PostgreSQL processes (``LISTEN/NOTIFY``).

A registry write notifies its new version on the ``gba_registry`` channel in its transaction;
every process's listener (its own asyncpg connection, started and stopped with the app) drops
the snapshot older than that version at once, before any request reads the version. Two apps
on one PostgreSQL schema stand for two processes; two ``gba-gateway sandbox`` processes and the
``gba-gateway agencies revoke`` command are the real thing. SQLite runs no listener.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from bench.drills.harness import Gateway, call, submitter_key
from gateway.bootstrap import LISTENER, Overrides, create_app
from gateway.store.pg_listener import REGISTRY_CHANNEL, PgListener
from gateway.store.registry_cache import RegistryCache, RegistrySnapshot
from gateway.web.keys import SETTINGS, STORE
from tests.conftest import Database, _postgres, free_port, sandbox_settings
from tests.support import CASE_TABLES, agency_key, row_counts, sample_xml, send

XML = "application/xml"


@pytest.fixture
async def postgres() -> AsyncIterator[Database]:
    async for database in _postgres():
        yield database


async def until(check: Callable[[], Any], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not true after {seconds} s")
        await asyncio.sleep(0.01)


@pytest.fixture
async def two_apps(tmp_path: Path, postgres: Database, aiohttp_server: Any) -> tuple[Any, Any]:
    """Two sandbox gateways (two processes' caches and listeners) on one PostgreSQL schema
    and one sandbox directory; each serving on its own port, listening before it is used."""
    apps = []
    for _ in range(2):
        settings = sandbox_settings(tmp_path, postgres, relay_enabled=False)
        app = create_app(settings, Overrides())
        await aiohttp_server(app, host="127.0.0.1", port=settings.port)
        await asyncio.wait_for(app[LISTENER].listening.wait(), 10)
        apps.append(app)
    return apps[0], apps[1]


def _settings(app: Any) -> Any:
    return app[SETTINGS]


@pytest.mark.postgres
async def test_a_revocation_in_one_process_drops_the_others_snapshot_before_its_next_request(
    two_apps: tuple[Any, Any],
) -> None:
    a, b = two_apps
    settings = _settings(a)
    kid = agency_key(settings, "hk-ird").kid
    assert (await send(settings, "GET", "/v1/applications")).status == 200  # A caches the key
    cache: RegistryCache = a[STORE].registry
    loaded, loads, told = cache.version, cache.loads, a[LISTENER].told[REGISTRY_CHANNEL]
    assert loaded is not None

    async with b[STORE]() as uow:  # B revokes it
        assert await uow.agencies.revoke(kid, datetime.now(UTC))
        await uow.commit()
    await until(lambda: cache.version is None)  # told, with no request to A in between
    assert a[LISTENER].told[REGISTRY_CHANNEL] == told + 1
    assert cache.loads == loads  # the listener dropped it; no version read did
    assert cache.at(loaded) is None  # the old snapshot is not served even at the old version

    rows = await row_counts(settings, CASE_TABLES)
    refused = await send(settings, "POST", "/v1/applications", body=sample_xml(), content_type=XML)
    assert refused.status == 401
    assert refused.json()["type"].endswith("/problems/unknown-key")
    assert await row_counts(settings, CASE_TABLES) == rows


@pytest.mark.postgres
async def test_a_rolled_back_registry_write_tells_no_one(two_apps: tuple[Any, Any]) -> None:
    a, b = two_apps
    settings = _settings(a)
    kid = agency_key(settings, "hk-ird").kid
    assert (await send(settings, "GET", "/v1/applications")).status == 200
    cache: RegistryCache = a[STORE].registry
    told = a[LISTENER].told[REGISTRY_CHANNEL]
    async with b[STORE]() as uow:  # not committed
        assert await uow.agencies.revoke(kid, datetime.now(UTC))
    async with b[STORE]() as uow:  # a later committed write is told: the rollback was not
        await uow.agencies.retire_others("gd-hq-csb", "none", datetime.now(UTC) + timedelta(1))
        await uow.commit()
    await until(lambda: a[LISTENER].told[REGISTRY_CHANNEL] > told)
    await asyncio.sleep(0.2)
    assert a[LISTENER].told[REGISTRY_CHANNEL] == told + 1
    assert cache.version is None
    assert (await send(settings, "GET", "/v1/applications")).status == 200  # not revoked


@pytest.mark.postgres
async def test_another_schemas_registry_write_is_ignored_and_a_listener_stops_with_its_app(
    two_apps: tuple[Any, Any], tmp_path: Path, aiohttp_server: Any
) -> None:
    a, _ = two_apps
    assert (await send(_settings(a), "GET", "/v1/applications")).status == 200
    cache: RegistryCache = a[STORE].registry
    loaded, told = cache.version, a[LISTENER].told[REGISTRY_CHANNEL]
    async for other in _postgres():  # another gateway's tables in the same database
        settings = sandbox_settings(tmp_path / "other", other, relay_enabled=False)
        app = create_app(settings, Overrides())
        server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)  # registers
        await asyncio.wait_for(app[LISTENER].listening.wait(), 10)
        await server.close()
        assert not app[LISTENER].listening.is_set()  # stopped with the app, connection closed
    await asyncio.sleep(0.3)
    assert a[LISTENER].told[REGISTRY_CHANNEL] == told
    assert cache.version == loaded


@pytest.mark.postgres
async def test_the_listener_comes_back_after_its_connection_is_killed_and_drops_the_snapshot(
    two_apps: tuple[Any, Any], postgres: Database
) -> None:
    a, b = two_apps
    settings = _settings(a)
    listener: PgListener = a[LISTENER]
    listener.retry = 0.05  # come back at once
    assert (await send(settings, "GET", "/v1/applications")).status == 200
    cache: RegistryCache = a[STORE].registry
    assert cache.version is not None
    admin = await asyncpg.connect(postgres.url)
    try:  # this gateway's listener only: other tests' gateways may listen on the database too
        killed = await admin.fetchval("SELECT pg_terminate_backend($1)", listener.backend_pid)
    finally:
        await admin.close()
    assert killed
    await until(lambda: listener.connections == 2 and listener.listening.is_set())
    assert cache.version is None  # what was missed while away: the snapshot is dropped

    assert (await send(settings, "GET", "/v1/applications")).status == 200
    assert cache.version is not None
    async with b[STORE]() as uow:  # and it is told again
        assert await uow.agencies.revoke(agency_key(settings, "hk-ird").kid, datetime.now(UTC))
        await uow.commit()
    await until(lambda: cache.version is None)
    refused = await send(settings, "GET", "/v1/applications")
    assert refused.status == 401


async def test_sqlite_runs_no_listener(tmp_path: Path, aiohttp_server: Any) -> None:
    settings = sandbox_settings(tmp_path, Database("sqlite", f"sqlite:///{tmp_path / 'g.db'}"))
    app = create_app(settings, Overrides())
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    try:
        assert app[LISTENER] is None
        kid = agency_key(settings, "hk-ird").kid
        async with app[STORE]() as uow:  # a registry write notifies no one, and commits
            assert await uow.agencies.revoke(kid, datetime.now(UTC))
            await uow.commit()
        assert (await send(settings, "GET", "/v1/applications")).status == 401
    finally:
        await server.close()


def test_a_notification_drops_only_older_snapshots() -> None:
    cache = RegistryCache()
    cache.keep(RegistrySnapshot(5, {}, {}))
    cache.told("5")  # this process's own write, already loaded
    assert cache.version == 5
    cache.told("7")
    assert cache.version is None
    cache.keep(RegistrySnapshot(6, {}, {}))  # a load that began before the notification
    assert cache.at(6) is None
    cache.keep(RegistrySnapshot(7, {}, {}))
    assert cache.at(7) is not None
    cache.told(None)  # (re)connected: anything may have been missed
    assert cache.version is None
    cache.keep(RegistrySnapshot(7, {}, {}))
    cache.told("not a version")
    assert cache.version is None
    assert cache.invalidations == 4


@pytest.mark.postgres
async def test_two_gateway_processes_a_cli_revocation_is_refused_by_the_other_at_once(
    tmp_path: Path, postgres: Database
) -> None:
    env = {
        "GBA_DATABASE_URL": postgres.url,
        "GBA_DATABASE_SCHEMA": postgres.schema,
        "GBA_RELAY_ENABLED": "false",
    }
    data = tmp_path / "sandbox"
    first = Gateway(data, free_port(), env=env)
    second = Gateway(data, free_port(), env=env)
    try:
        await first.start()
        await second.start()
        key = submitter_key(first)
        async with aiohttp.ClientSession() as session:
            url = f"{second.url}/v1/applications"
            status, _ = await call(session, "GET", url, key=key)
            assert status == 200  # the second process has the key in its snapshot
            code, out = await first.operate("agencies", "revoke", key.kid)
            assert code == 0, out
            status, problem = await call(session, "GET", url, key=key)
            assert status == 401, problem
            assert problem["type"].endswith("/problems/unknown-key")
    finally:
        await first.stop()
        await second.stop()
