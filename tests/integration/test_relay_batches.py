"""The relay on real SQLite and PostgreSQL: many outcomes in one transaction with an intact
audit chain, and relays of other processes woken by ``LISTEN``/``NOTIFY`` at the commit that
wrote outbox rows, not at their next poll."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from gateway.domain.agencies import Agency
from gateway.services.relay import Relay, RelayPolicy
from gateway.store.audit import verify_stored_chain
from gateway.store.wakeups import OutboxListener, notify_outbox, notify_outbox_sync
from gateway.trust.registry import Registration
from tests.conftest import Database
from tests.fakes import FixedClock
from tests.integration.test_outbox_delivery import (
    FAST,
    NOW,
    CountingTransport,
    Store,
    _ack,
    _agency,
    _queue,
    _statuses,
    engines,
    eventually,
    stop,
)
from tests.integration.test_registry_cache import _key, _register, _signer, _statements

__all__ = ["engines"]  # the fixture: two stores on one database
# LISTEN/NOTIFY is PostgreSQL's: these run on it only (not skipped on SQLite: not collected)
ON_POSTGRES = pytest.mark.parametrize(
    "database", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def _commits(store: Store) -> list[int]:
    """Every commit: the engine's, and on SQLite the group committer's writer's (explicit
    ``COMMIT`` statements on a connection of its own)."""
    counted: list[int] = []
    event.listen(store.engine.sync_engine, "commit", lambda _conn: counted.append(1))
    if store.sqlite_writer is not None:

        def statement(_conn: object, _cursor: object, text: str, *_: object) -> None:
            if text == "COMMIT":
                counted.append(1)

        event.listen(store.sqlite_writer.engine, "before_cursor_execute", statement)
    return counted


async def test_acknowledgements_are_recorded_in_one_transaction(engines: list[Store]) -> None:
    store = engines[0]
    ids = await _queue(store, 12, FAST)
    commits = _commits(store)
    relay = Relay(store, CountingTransport(), FixedClock(NOW), RelayPolicy(record_wait=0.05))

    assert await relay.run_once() == 12

    assert len(commits) == 2  # the claim, then the twelve outcomes together
    assert set((await _statuses(store)).values()) == {"delivered"}
    async with store.engine.connect() as conn:
        kept = await conn.execute(sa.text("SELECT count(*) FROM delivery_evidence"))
        assert kept.scalar_one() == len(ids)
    report = await verify_stored_chain(store, {})
    assert report.ok, report.detail
    assert report.count >= 2 * len(ids)


@ON_POSTGRES
async def test_a_relay_in_another_process_is_woken_by_the_commit(
    engines: list[Store], database: Database
) -> None:
    writer, reader = engines
    relay = Relay(reader, CountingTransport(), FixedClock(NOW), RelayPolicy(idle_poll=30))
    woken: list[float] = []

    def wake() -> None:
        woken.append(time.monotonic())
        relay.wake()

    listener = OutboxListener(database.url, wake, schema=database.schema)
    tasks = [asyncio.create_task(relay.run()), asyncio.create_task(listener.run())]
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        await asyncio.sleep(0.2)  # the relay has claimed nothing and waits for its poll
        woken.clear()

        committed = time.monotonic()
        [message_id] = await _queue(writer, 1, FAST)  # the other store: another process
        await eventually(lambda: woken, seconds=5)
        assert woken[0] - committed < 0.25  # at the commit, not 30 s later
        await eventually(lambda: _delivered(reader, message_id), seconds=2)
    finally:
        for task in tasks:
            await stop(task)


@ON_POSTGRES
async def test_a_notification_waits_for_the_commit_and_is_not_sent_on_rollback(
    engines: list[Store], database: Database
) -> None:
    heard: list[int] = []
    listener = OutboxListener(database.url, lambda: heard.append(1), schema=database.schema)
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        await eventually(lambda: heard)  # the call after connecting, for what it missed
        heard.clear()
        async with engines[0].engine.connect() as conn:
            await conn.begin()
            await notify_outbox(conn)
            await asyncio.sleep(0.2)
            assert heard == []  # not before the commit
            await conn.rollback()
        await asyncio.sleep(0.2)
        assert heard == []  # nor after a rollback
        async with engines[0].engine.begin() as conn:
            await notify_outbox(conn)
            await notify_outbox(conn)  # folded into one
        await eventually(lambda: heard)
        await asyncio.sleep(0.1)
        assert heard == [1]
        async with engines[0].engine.begin() as conn:  # as the group committer's writer does
            await conn.run_sync(notify_outbox_sync)
        await eventually(lambda: len(heard) == 2)
    finally:
        await stop(task)


@ON_POSTGRES
async def test_the_listener_reconnects_when_its_connection_is_killed(
    engines: list[Store], database: Database
) -> None:
    heard: list[int] = []
    listener = OutboxListener(
        database.url, lambda: heard.append(1), schema=database.schema, retry_after=0.05
    )
    task = asyncio.create_task(listener.run())
    try:
        await asyncio.wait_for(listener.listening.wait(), 10)
        async with engines[0].engine.begin() as conn:
            await conn.execute(
                sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": listener.backend_pid}
            )
        await eventually(lambda: not listener.listening.is_set(), seconds=5)
        await asyncio.wait_for(listener.listening.wait(), 10)
        heard.clear()
        async with engines[0].engine.begin() as conn:
            await notify_outbox(conn)
        await eventually(lambda: heard, seconds=5)
    finally:
        await stop(task)


async def _delivered(store: Store, message_id: str) -> bool:
    return (await _statuses(store)).get(message_id) == "delivered"


async def test_an_acknowledgement_signed_by_a_key_revoked_meanwhile_is_not_recorded(
    engines: list[Store],
) -> None:
    """The transport verifies against this process's registry snapshot, which may lag a
    revocation committed elsewhere; the recording transaction checks the key again."""
    writer, reader = engines
    kept, revoked = "gd-acks-kept", "gd-acks-revoked"
    for agency_id in (kept, revoked):
        _, spec = _key(f"{agency_id}-key")
        await _register(writer, agency_id, spec)
    good = await _queue(writer, 1, kept)
    bad = await _queue(writer, 1, revoked)
    await _signer(reader, f"{revoked}-key")  # the reader's snapshot knows the key as valid
    async with writer() as uow:
        assert await uow.agencies.revoke(f"{revoked}-key", datetime.now(UTC))
        await uow.commit()
    clock = FixedClock(datetime.now(UTC) + timedelta(seconds=1))
    relay = Relay(reader, CountingTransport(), clock, RelayPolicy(), check_ack_keys=True)

    assert await relay.run_once() == 2

    statuses = await _statuses(reader)
    assert statuses[good[0]] == "delivered"
    assert statuses[bad[0]] == "pending"  # retried later, never recorded as delivered
    async with reader() as uow:
        [row] = await uow.outbox.listing(destination=revoked)
    assert "revoked" in (row.message.last_error or "")


async def test_delivered_many_marks_each_at_its_own_time_and_keeps_each_body_once(
    engines: list[Store],
) -> None:
    store = engines[0]
    ids = await _queue(store, 3, FAST)
    async with store() as uow:
        claimed = await uow.outbox.claim(NOW, limit=3, lease_seconds=60)
        await uow.commit()
    by_id = {m.id: m for m in claimed}
    agency = _agency(FAST)
    times = {i: NOW + timedelta(seconds=n + 1) for n, i in enumerate(ids)}
    deliveries = [(by_id[i], times[i], _ack(agency, by_id[i])) for i in ids]
    async with store() as uow:
        assert await uow.outbox.delivered_many(deliveries[:2]) == set(ids[:2])
        assert await uow.outbox.delivered_many(deliveries) == {ids[2]}  # two were already
        await uow.commit()

    async with store() as uow:
        rows = {r.message.id: r for r in await uow.outbox.listing(limit=10)}
        kept = await uow.outbox.delivery_evidence(by_id[ids[0]].application_id)
    assert {i: rows[i].delivered_at for i in ids} == times
    assert [e.message_id for e in kept] == [ids[0]]
    assert kept[0].request.body == by_id[ids[0]].body
    assert kept[0].ack.body is not None
    async with store.engine.connect() as conn:
        count = await conn.execute(sa.text("SELECT count(*) FROM evidence"))
        assert count.scalar_one() == 2 * len(ids)  # each request and answer, once


async def test_a_transaction_reads_each_agency_once_until_it_writes_to_the_registry(
    engines: list[Store],
) -> None:
    """A batch moving many cases of the same agencies reads each agency once."""
    store = engines[0]
    async with store() as uow:
        with _statements(store) as sent:
            first = await uow.agencies.get(FAST)
            again = await uow.agencies.get(FAST)
            missing = [await uow.agencies.get("gd-nobody") for _ in range(2)]
        assert first == again
        assert first is not None
        assert missing == [None, None]
        assert sum("FROM agencies" in s for s in sent) == 2  # FAST once, the unknown once
        _, spec = _key("gd-acks-late-key")
        await uow.agencies.register(
            Registration(Agency("gd-nobody", "GD", {"en": "late"}, None, ("*",)), (spec,)), NOW
        )
        assert await uow.agencies.get("gd-nobody") is not None  # read through after a write
