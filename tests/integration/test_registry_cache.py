"""The signed-request edge serves keys and agencies from a per-process snapshot of the registry;
the registry version is checked where each request's writes commit (SQLite and PostgreSQL).

Two unit-of-work factories (or two apps) on one database stand for two processes: each has a
cache of its own. A registry write in one moves the version in its transaction, so the other
reloads at its next request; a revoked key is refused there at once and nothing is stored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from gateway.bootstrap import Overrides, create_app
from gateway.domain.agencies import Agency
from gateway.domain.errors import UnknownKeyError
from gateway.store.database import create_engine, create_schema
from gateway.store.tables import nonces, registry_version
from gateway.store.unit_of_work import SqlUnitOfWorkFactory
from gateway.trust.keys import SigningKey, generate_private_key
from gateway.trust.registry import KeySpec, Registration
from gateway.web.keys import STORE
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.fakes import FixedClock
from tests.support import CASE_TABLES, agency_key, row_counts, sample_xml, send

XML = "application/xml"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
async def two_processes(database: Database) -> AsyncIterator[tuple[Any, Any]]:
    """Two unit-of-work factories (two processes' caches) on one fresh database."""
    engines = [create_engine(database.url, schema=database.schema or None) for _ in range(2)]
    await create_schema(engines[0])
    stores = SqlUnitOfWorkFactory(engines[0]), SqlUnitOfWorkFactory(engines[1])
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()  # its committer, then the engine


def _key(kid: str, **validity: datetime) -> tuple[SigningKey, KeySpec]:
    signing = SigningKey(kid, generate_private_key("ed25519"), "ed25519")
    return signing, KeySpec(kid, signing.jwk(), **validity)  # type: ignore[arg-type]


async def _register(store: Any, agency_id: str, *specs: KeySpec) -> None:
    agency = Agency(agency_id, "HK", {"en": agency_id}, None, ("*",))
    async with store() as uow:
        await uow.agencies.register(Registration(agency, specs), T0)
        await uow.commit()


async def _signer(store: Any, kid: str) -> tuple[Any, Agency | None]:
    async with store() as uow:
        return await uow.agencies.signer(kid)  # type: ignore[no-any-return]


async def _version(store: Any) -> int:
    async with store.connect() as conn:
        return (await conn.execute(sa.select(registry_version.c.version))).scalar_one()  # type: ignore[no-any-return]


@contextmanager
def _statements(store: Any) -> Iterator[list[str]]:
    """Every SQL statement the store's engine sends."""
    sent: list[str] = []

    def execute(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    engine = store.engine.sync_engine
    event.listen(engine, "before_cursor_execute", execute)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", execute)


async def test_a_hit_reads_only_the_version(two_processes: tuple[Any, Any]) -> None:
    store, _ = two_processes
    _, spec = _key("hk-cache-1")
    await _register(store, "hk-cache", spec)
    key, agency = await _signer(store, "hk-cache-1")  # a miss: loads the registry
    assert store.registry.loads == 1
    with _statements(store) as sent:
        again, same_agency = await _signer(store, "hk-cache-1")
    assert store.registry.loads == 1
    assert again is key
    assert same_agency == agency
    assert agency is not None
    assert agency.id == "hk-cache"
    assert agency.matters == ("*",)
    [read] = [s for s in sent if s.lstrip().upper().startswith("SELECT")]
    assert "registry_version" in read


async def test_every_registry_write_moves_the_version_once_per_transaction(
    two_processes: tuple[Any, Any],
) -> None:
    store, _ = two_processes
    before = await _version(store)
    _, one = _key("hk-moves-1")
    _, two = _key("hk-moves-2")
    await _register(store, "hk-moves", one, two)  # agency and two keys: one transaction
    assert await _version(store) == before + 1
    async with store() as uow:
        assert await uow.agencies.revoke("hk-moves-1", T0)
        await uow.commit()
    assert await _version(store) == before + 2
    async with store() as uow:
        await uow.agencies.retire_others("hk-moves", "hk-moves-2", T0)
        await uow.commit()
    assert await _version(store) == before + 3


async def test_a_revocation_in_another_process_is_seen_at_the_next_read(
    two_processes: tuple[Any, Any],
) -> None:
    a, b = two_processes
    _, spec = _key("hk-other-1")
    await _register(b, "hk-other", spec)
    key, _ = await _signer(a, "hk-other-1")
    assert key.revoked_at is None
    revoked_at = datetime.now(UTC)
    async with b() as uow:
        assert await uow.agencies.revoke("hk-other-1", revoked_at)
        await uow.commit()
    key, _ = await _signer(a, "hk-other-1")
    assert key.revoked_at == revoked_at
    assert not key.valid_at(revoked_at)
    assert a.registry.loads == 2


async def test_a_key_registered_in_another_process_is_found(
    two_processes: tuple[Any, Any],
) -> None:
    a, b = two_processes
    _, first = _key("hk-later-1")
    await _register(b, "hk-later", first)
    await _signer(a, "hk-later-1")
    with pytest.raises(UnknownKeyError):
        await _signer(a, "hk-later-2")
    _, second = _key("hk-later-2")
    async with b() as uow:
        await uow.agencies.add_key("hk-later", second, T0)
        await uow.commit()
    key, agency = await _signer(a, "hk-later-2")
    assert key.kid == "hk-later-2"
    assert agency is not None
    assert agency.id == "hk-later"


async def test_a_write_rolled_back_leaves_no_trace_in_the_cache(
    two_processes: tuple[Any, Any],
) -> None:
    store, _ = two_processes
    _, spec = _key("hk-rollback-1")
    await _register(store, "hk-rollback", spec)
    version = await _version(store)
    async with store() as uow:  # not committed: rolled back
        assert await uow.agencies.revoke("hk-rollback-1", T0)
        key, _ = await uow.agencies.signer("hk-rollback-1")  # reads through once written
        assert key.revoked_at == T0
    assert await _version(store) == version
    key, _ = await _signer(store, "hk-rollback-1")
    assert key.revoked_at is None
    _, other = _key("hk-rollback-2")  # a committed write takes the version the rollback had
    async with store() as uow:
        await uow.agencies.add_key("hk-rollback", other, T0)
        await uow.commit()
    assert await _version(store) == version + 1
    key, _ = await _signer(store, "hk-rollback-1")
    assert key.revoked_at is None


async def test_a_validity_window_is_judged_at_each_use_not_at_load(
    two_processes: tuple[Any, Any],
) -> None:
    store, _ = two_processes
    starts, ends = T0 + timedelta(days=1), T0 + timedelta(days=2)
    revoked = T0 + timedelta(days=3)
    _, window = _key("hk-window-1", not_before=starts, not_after=ends)
    _, later = _key("hk-window-2", revoked_at=revoked)
    await _register(store, "hk-window", window, later)
    key, _ = await _signer(store, "hk-window-1")  # loaded before the window opens
    assert not key.valid_at(T0)
    key, _ = await _signer(store, "hk-window-1")
    assert key.valid_at(starts)
    assert not key.valid_at(ends)
    key, _ = await _signer(store, "hk-window-2")
    assert key.valid_at(revoked - timedelta(seconds=1))
    assert not key.valid_at(revoked)
    assert store.registry.loads == 1


async def test_an_unknown_or_overlong_key_id_is_refused_from_the_cache(
    two_processes: tuple[Any, Any],
) -> None:
    store, _ = two_processes
    _, spec = _key("hk-unknown-1")
    await _register(store, "hk-unknown", spec)
    for kid in ("hk-unknown-2", "k" * 5000, ""):
        with pytest.raises(UnknownKeyError):
            await _signer(store, kid)


@pytest.fixture
async def gateway_b(
    gateway: RunningGateway, tmp_path: Path, database: Database, aiohttp_server: Any
) -> AsyncIterator[Any]:
    """A second gateway process on the same database and sandbox directory."""
    settings = sandbox_settings(tmp_path, database)
    app = create_app(settings, Overrides())
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    yield app
    await server.close()


async def _nonce_count(app: Any) -> int:
    async with app[STORE].connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(nonces))).scalar_one()  # type: ignore[no-any-return]


async def test_a_key_revoked_by_another_process_is_refused_at_the_next_request(
    gateway: RunningGateway, gateway_b: Any
) -> None:
    settings = gateway.settings
    kid = agency_key(settings, "hk-ird").kid
    first = await send(settings, "GET", "/v1/applications")  # app A caches the key
    assert first.status == 200
    loads = gateway.app[STORE].registry.loads  # type: ignore[index]
    assert (await send(settings, "GET", "/v1/applications")).status == 200
    assert gateway.app[STORE].registry.loads == loads  # type: ignore[index]  # served from memory

    async with gateway_b[STORE]() as uow:  # app B revokes it
        assert await uow.agencies.revoke(kid, datetime.now(UTC))
        await uow.commit()
    rows, used = await row_counts(settings, CASE_TABLES), await _nonce_count(gateway_b)

    refused = await send(settings, "POST", "/v1/applications", body=sample_xml(), content_type=XML)
    assert refused.status == 401
    assert refused.json()["type"].endswith("/problems/unknown-key")
    assert await row_counts(settings, CASE_TABLES) == rows
    assert await _nonce_count(gateway_b) == used


async def test_a_revocation_dated_later_applies_when_its_time_comes_without_a_reload(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> None:
    at = datetime.now(UTC).replace(microsecond=0)
    clock = FixedClock(at)
    settings = sandbox_settings(tmp_path, database, relay_enabled=False)
    app = create_app(settings, Overrides(clock=clock))
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    try:
        kid = agency_key(settings, "hk-ird").kid
        async with app[STORE]() as uow:
            assert await uow.agencies.revoke(kid, at + timedelta(minutes=5))
            await uow.commit()
        assert (await send(settings, "GET", "/v1/applications", now=at)).status == 200
        loads = app[STORE].registry.loads
        rows, used = await row_counts(settings, CASE_TABLES), await _nonce_count(app)

        later = clock.advance(minutes=6)
        refused = await send(
            settings, "POST", "/v1/applications", body=sample_xml(), content_type=XML, now=later
        )
        assert refused.status == 401
        assert refused.json()["type"].endswith("/problems/unknown-key")
        assert app[STORE].registry.loads == loads  # the same snapshot, judged at the new time
        assert await row_counts(settings, CASE_TABLES) == rows
        assert await _nonce_count(app) == used
    finally:
        await server.close()
