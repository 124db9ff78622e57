"""The relay against real SQLite and PostgreSQL: racing relays, per-partner bounds,
cancellation, repeated acknowledgements and the evidence kept of each delivery."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from collections import Counter
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.domain.application import Application
from gateway.domain.errors import TransientDeliveryError
from gateway.sandbox.samples import SANDBOX_LEGAL_BASIS
from gateway.services.ports import Acknowledgement, Agency, OutboxMessage
from gateway.services.relay import Relay, RelayPolicy
from gateway.store.database import create_engine, create_schema
from gateway.store.tables import agencies, audit_log, outbox
from gateway.store.unit_of_work import SqlUnitOfWorkFactory
from tests.conftest import Database
from tests.fakes import FixedClock

MATTER = "11440400MB2C00081P4440120002000"
SLOW, FAST = "gd-hq-csb", "gd-hq-tax"
NOW = datetime.now(UTC).replace(microsecond=0)


class CountingTransport:
    """Counts every send per message id; ``hold`` makes one agency's sends wait."""

    def __init__(self, hold: set[str] | None = None) -> None:
        self.sent: Counter[str] = Counter()
        self.acknowledged: list[str] = []
        self.hold = hold or set()
        self.released = asyncio.Event()
        self.in_flight: Counter[str] = Counter()
        self.max_in_flight: Counter[str] = Counter()
        self.failures: list[Exception] = []

    async def deliver(self, agency: Agency, message: OutboxMessage) -> Acknowledgement:
        self.sent[message.id] += 1
        self.in_flight[agency.id] += 1
        self.max_in_flight[agency.id] = max(
            self.max_in_flight[agency.id], self.in_flight[agency.id]
        )
        try:
            if agency.id in self.hold:
                await self.released.wait()
            else:
                await asyncio.sleep(0.001)
            if self.failures:
                raise self.failures.pop(0)
        finally:
            self.in_flight[agency.id] -= 1
        self.acknowledged.append(message.id)
        return _ack(agency, message)


def _ack(agency: Agency, message: OutboxMessage, status: str = "received") -> Acknowledgement:
    body = b'{"message_id": "%s", "status": "%s"}' % (message.id.encode(), status.encode())
    digest = "sha-256=:" + hashlib.sha256(body).hexdigest() + ":"
    request_digest = "sha-256=:" + hashlib.sha256(message.body).hexdigest() + ":"
    return Acknowledgement(
        200,
        f"{agency.id}-key",
        digest,
        target=agency.endpoint or "",
        request_headers={
            "Content-Type": message.media_type,
            "Content-Digest": request_digest,
            "Idempotency-Key": message.id,
            "Signature-Input": 'sig1=("@method" "@target-uri");keyid="gw"',
            "Signature": "sig1=:AAAA:",
        },
        headers={
            "Content-Type": "application/json",
            "Content-Digest": digest,
            "Signature-Input": 'sig1=("@status");keyid="partner"',
            "Signature": "sig1=:BBBB:",
        },
        body=body,
    )


def _agency(agency_id: str) -> Agency:
    return Agency(agency_id, "GD", {"en": agency_id}, f"https://{agency_id}.test/in")


Store = SqlUnitOfWorkFactory


@pytest.fixture
async def engines(database: Database) -> AsyncIterator[list[Store]]:
    """Two stores on the same database, as two gateway processes would have."""
    made = [create_engine(database.url, schema=database.schema or None) for _ in range(2)]
    await create_schema(made[0])
    async with made[0].begin() as conn:
        await conn.execute(
            agencies.insert(),
            [
                {
                    "id": a.id,
                    "jurisdiction": a.jurisdiction,
                    "names": dict(a.names),
                    "endpoint": a.endpoint,
                    "matters": ["*"],
                    "sandbox": True,
                    "updated_at": NOW,
                }
                for a in (_agency(SLOW), _agency(FAST))
            ],
        )
    stores = [Store(engine) for engine in made]
    yield stores
    for store in stores:  # the group committer first: a relay cancelled mid-claim can leave
        await store.close()  # it a batch to finish, on a connection engine.dispose() misses


async def _queue(store: Store, count: int, destination: str, prefix: str = "app") -> list[str]:
    ids = []
    async with store() as tx:
        for n in range(count):
            app_id = f"{prefix}_{destination}_{n:02d}"
            app = Application.receive(
                application_id=app_id,
                matter=MATTER,
                matter_version=1,
                submitted_by="hk-ird",
                channel="online",
                source_format="canonical",
                content_digest="sha-256=:AAAA:",
                document={"matter": MATTER},
                handlers=(destination,),
                missing=(),
                deadline="2026-03-03",
                at=NOW,
                legal_basis=SANDBOX_LEGAL_BASIS.record(),  # an agency case declares it
            )
            message_id = f"msg_{app_id}"
            app.message_queued(destination, message_id, NOW)
            await tx.applications.add(app)
            await tx.outbox.add(
                OutboxMessage(
                    message_id,
                    app_id,
                    destination,
                    "application/json",
                    b'{"message_id": "%s"}' % message_id.encode(),
                    next_attempt_at=NOW,
                    relies_on="legal_basis",
                )
            )
            ids.append(message_id)
        await tx.commit()
    return ids


async def eventually(check: Callable[[], Any], seconds: float = 10.0) -> None:
    """Wait until ``check()`` (sync or async) is true, polling every 10 ms."""
    for _ in range(int(seconds / 0.01)):
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not true after {seconds} s")


async def _statuses(store: Store) -> dict[str, str]:
    async with store() as tx:
        rows = await tx.outbox.listing(limit=1000)
    return {r.message.id: r.message.status for r in rows}


def _all_delivered(store: Store, ids: list[str] | None = None) -> Callable[[], Any]:
    async def check() -> bool:
        statuses = await _statuses(store)
        return all(statuses[i] == "delivered" for i in (ids or statuses))

    return check


async def _audit_kinds(store: Store, subject: str) -> list[str]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(audit_log.c.kind).where(audit_log.c.subject == subject).order_by("seq")
        )
        return list(rows.scalars())


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel a running relay; it must end promptly (a lost cancellation would hang here)."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert done, "the relay did not stop when cancelled"
    assert task.cancelled()


# --------------------------------------------------------------------------- racing relays


async def test_two_relays_racing_on_one_database_never_send_a_message_twice(
    engines: list[Store],
) -> None:
    ids = await _queue(engines[0], 12, SLOW) + await _queue(engines[0], 12, FAST)
    transport = CountingTransport()
    clock = FixedClock(NOW)
    policy = RelayPolicy(batch=5, per_partner=3, concurrency=4)
    relays = [Relay(store, transport, clock, policy) for store in engines]

    async def drain(relay: Relay) -> int:
        total = 0
        while claimed := await relay.run_once():
            total += claimed
        return total

    claimed = await asyncio.gather(*(drain(r) for r in relays), *(drain(r) for r in relays))

    assert sum(claimed) == len(ids)
    assert transport.sent == Counter(dict.fromkeys(ids, 1))
    assert set((await _statuses(engines[0])).values()) == {"delivered"}


async def test_the_claim_skips_rows_locked_by_another_relay(
    engines: list[Store], database: Database
) -> None:
    await _queue(engines[0], 3, FAST)
    if database.backend != "postgres":
        # SQLite has one writer, so a second claim waits for the first to commit; what holds
        # there too is that the rows the first relay leased are not taken by the second.
        async with engines[0]() as first:
            mine = await first.outbox.claim(NOW, limit=2, lease_seconds=60)
            await first.commit()
        async with engines[1]() as second:
            theirs = await second.outbox.claim(
                NOW, limit=10, lease_seconds=60, per_destination=4, in_flight={}
            )
            await second.commit()
        assert [m.id for m in mine] == [f"msg_app_{FAST}_00", f"msg_app_{FAST}_01"]
        assert [m.id for m in theirs] == [f"msg_app_{FAST}_02"]
        return
    statements: list[str] = []
    sa.event.listen(
        engines[1].engine.sync_engine,
        "before_cursor_execute",
        lambda *args: statements.append(args[2]),
    )

    async with engines[0]() as first:
        mine = await first.outbox.claim(NOW, limit=2, lease_seconds=60)
        async with engines[1]() as second:  # while the first claim is not committed yet
            async with asyncio.timeout(5):  # a claim that waited for the lock would hang
                theirs = await second.outbox.claim(
                    NOW, limit=10, lease_seconds=60, per_destination=4, in_flight={}
                )
            assert [m.id for m in theirs] == [f"msg_app_{FAST}_02"]
            await second.commit()
        await first.commit()

    assert [m.id for m in mine] == [f"msg_app_{FAST}_00", f"msg_app_{FAST}_01"]
    [claim] = [s for s in statements if "row_number" in s]
    assert claim.rstrip().endswith("FOR UPDATE SKIP LOCKED")


# --------------------------------------------------------------------------- per-partner bound


async def test_a_slow_partner_never_has_more_than_its_share_while_others_flow(
    engines: list[Store],
) -> None:
    slow = await _queue(engines[0], 8, SLOW)
    fast = await _queue(engines[0], 8, FAST)
    transport = CountingTransport(hold={SLOW})
    relay = Relay(
        engines[0],
        transport,
        FixedClock(NOW),
        RelayPolicy(batch=32, concurrency=4, per_partner=2, idle_poll=0.05),
    )
    task = asyncio.create_task(relay.run())
    try:
        await eventually(_all_delivered(engines[0], fast))
        statuses = await _statuses(engines[0])
        assert transport.in_flight[SLOW] == 2
        assert [statuses[m] for m in slow].count("in_flight") == 2  # not leased while waiting
        assert all(statuses[m] == "delivered" for m in fast)

        transport.released.set()
        await eventually(_all_delivered(engines[0]))
    finally:
        await stop(task)

    assert transport.max_in_flight[SLOW] == 2
    assert transport.max_in_flight[FAST] <= 2
    assert transport.sent == Counter(dict.fromkeys(slow + fast, 1))
    assert relay.in_flight == 0


# --------------------------------------------------------------------------- cancellation


async def test_a_relay_cancelled_mid_send_leaves_the_row_claimable_after_its_lease(
    engines: list[Store],
) -> None:
    [message_id] = await _queue(engines[0], 1, SLOW)
    clock = FixedClock(NOW)
    stuck = CountingTransport(hold={SLOW})
    relay = Relay(engines[0], stuck, clock, RelayPolicy(lease_seconds=30, idle_poll=0.05))
    task = asyncio.create_task(relay.run())
    await eventually(lambda: stuck.sent)

    await stop(task)

    async with engines[1]() as tx:
        [row] = await tx.outbox.listing()
    assert (row.message.status, row.message.attempts) == ("in_flight", 0)  # no attempt counted
    healthy = CountingTransport()
    again = Relay(engines[1], healthy, clock, RelayPolicy(lease_seconds=30))
    assert await again.run_once() == 0  # still leased
    clock.advance(seconds=31)
    assert await again.run_once() == 1
    assert stuck.sent == healthy.sent == Counter({message_id: 1})
    assert (await _statuses(engines[1]))[message_id] == "delivered"
    assert relay.in_flight == 0


# --------------------------------------------------------------------------- de-duplication


async def test_a_repeated_acknowledgement_changes_nothing(engines: list[Store]) -> None:
    """The lease of a slow send runs out, another relay delivers, then the slow ack lands."""
    [message_id] = await _queue(engines[0], 1, SLOW)
    app_id = f"app_{SLOW}_00"
    clock = FixedClock(NOW)
    slow = CountingTransport(hold={SLOW})
    first = Relay(engines[0], slow, clock, RelayPolicy(lease_seconds=5))
    late = asyncio.create_task(first.run_once())
    await eventually(lambda: slow.sent)
    clock.advance(seconds=6)
    assert await Relay(engines[1], CountingTransport(), clock).run_once() == 1
    async with engines[0]() as tx:
        before = await tx.outbox.delivery_evidence(app_id)
        timeline = await tx.applications.timeline(app_id)
    audit_before = await _audit_kinds(engines[0], app_id)

    clock.advance(seconds=1)
    slow.released.set()
    assert await late == 1

    async with engines[0]() as tx:
        assert await tx.outbox.delivery_evidence(app_id) == before
        assert await tx.applications.timeline(app_id) == timeline
        [row] = await tx.outbox.listing()
    assert await _audit_kinds(engines[0], app_id) == audit_before
    assert [e.type for e in timeline].count("message.delivered") == 1
    assert audit_before.count("message.sent") == audit_before.count("message.acknowledged") == 1
    assert row.delivered_at == NOW + timedelta(seconds=6)
    assert slow.sent == Counter({message_id: 1})


# --------------------------------------------------------------------------- evidence


async def test_each_delivery_keeps_the_signed_request_and_answer_as_evidence(
    engines: list[Store],
) -> None:
    [message_id] = await _queue(engines[0], 1, FAST)
    app_id = f"app_{FAST}_00"
    transport = CountingTransport()
    transport.failures.append(TransientDeliveryError("partner answered 503"))
    clock = FixedClock(NOW)
    relay = Relay(engines[0], transport, clock, RelayPolicy(backoff_initial=1, backoff_max=1))
    assert await relay.run_once() == 1  # fails; nothing is kept of a failed attempt
    async with engines[0]() as tx:
        assert await tx.outbox.delivery_evidence(app_id) == []
    clock.advance(seconds=2)
    assert await relay.run_once() == 1

    async with engines[0]() as tx:
        [kept] = await tx.outbox.delivery_evidence(app_id)
        assert await tx.outbox.delivery_evidence("app_other") == []
    agency = _agency(FAST)
    async with engines[0]() as tx:
        [row] = await tx.outbox.listing()
    expected = _ack(agency, row.message)
    assert (kept.message_id, kept.application_id, kept.destination) == (message_id, app_id, FAST)
    assert kept.target == "https://gd-hq-tax.test/in"
    assert kept.request.body == row.message.body
    assert kept.request.media_type == "application/json"
    assert kept.request.headers == dict(expected.request_headers)
    assert kept.request.digest == expected.request_headers["Content-Digest"]
    assert (kept.ack_status, kept.ack_key_id) == (200, f"{FAST}-key")
    assert kept.ack.body == expected.body
    assert kept.ack.digest == expected.body_digest
    assert kept.ack.headers == dict(expected.headers)
    assert kept.delivered_at == clock.now()
    kinds = await _audit_kinds(engines[0], app_id)
    assert kinds[-4:] == [
        "message.sent",
        "message.acknowledged",
        "message.delivered",
        "review.started",
    ]
    async with engines[0].engine.connect() as conn:
        entries = (
            await conn.execute(
                sa.select(audit_log.c.entry).where(
                    audit_log.c.subject == app_id, audit_log.c.kind.in_(["message.sent"])
                )
            )
        ).scalars()
        [sent] = [bytes(e) for e in entries]
    assert expected.request_headers["Content-Digest"].encode() in sent
    assert b'"idempotency_key":"' + message_id.encode() + b'"' in sent


async def test_outbox_rows_move_only_from_in_flight(engines: list[Store]) -> None:
    """A late failure never undoes a delivery (the relay's outcome guard)."""
    [message_id] = await _queue(engines[0], 1, FAST)
    async with engines[0]() as tx:
        await tx.outbox.claim(NOW, limit=1, lease_seconds=5)
        assert await tx.outbox.delivered(message_id, NOW)
        assert not await tx.outbox.delivered(message_id, NOW)
        await tx.outbox.retry_later(message_id, NOW, "late failure")
        await tx.outbox.dead(message_id, "late failure")
        await tx.commit()
    async with engines[1].engine.connect() as conn:
        row = (await conn.execute(sa.select(outbox).where(outbox.c.id == message_id))).one()
    assert (row.status, row.attempts, row.last_error) == ("delivered", 0, None)
