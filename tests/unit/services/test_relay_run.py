"""The relay's run loop and what it keeps: per-partner bounds, evidence, repeated
acknowledgements, crashes and late outcomes (in memory; the SQL side is in
tests/integration/test_outbox_delivery.py)."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
import structlog

from gateway.services.ports import Acknowledgement, Agency, OutboxMessage
from gateway.services.relay import Relay, RelayPolicy
from tests.fakes import FakeDirectory, FakeUnitOfWorkFactory, FixedClock

NOW = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
SLOW, FAST = "gd-hq-csb", "gd-hq-tax"


class HeldTransport:
    """Holds the sends to the agencies in ``hold`` until ``release``; counts per agency."""

    def __init__(self, hold: set[str] = frozenset(), crash: Exception | None = None) -> None:  # type: ignore[assignment]
        self.hold = set(hold)
        self.released = asyncio.Event()
        self.crash = crash
        self.sent: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.most: Counter[str] = Counter()

    async def deliver(self, agency: Agency, message: OutboxMessage) -> Acknowledgement:
        self.sent[message.id] += 1
        self.in_flight[agency.id] += 1
        self.most[agency.id] = max(self.most[agency.id], self.in_flight[agency.id])
        try:
            if agency.id in self.hold:
                await self.released.wait()
            await asyncio.sleep(0)
            if self.crash is not None:
                raise self.crash
        finally:
            self.in_flight[agency.id] -= 1
        return Acknowledgement(
            200,
            f"{agency.id}-key",
            f"sha-256=:{message.id}-ack:",
            target=agency.endpoint or "",
            request_headers={
                "Content-Digest": f"sha-256=:{message.id}:",
                "Signature": "sig1=:AAAA:",
                "Signature-Input": "sig1=()",
                "Idempotency-Key": message.id,
            },
            headers={"Content-Type": "application/json", "Signature": "sig1=:BBBB:"},
            body=b'{"status": "received"}',
        )


@pytest.fixture
def uow() -> FakeUnitOfWorkFactory:
    factory = FakeUnitOfWorkFactory()
    factory.agencies = FakeDirectory(
        Agency(a, "GD", {"en": a}, f"https://{a}.test/in") for a in (SLOW, FAST)
    )
    return factory


async def _queue(uow: FakeUnitOfWorkFactory, destination: str, count: int) -> list[str]:
    ids = [f"msg_{destination}_{n}" for n in range(count)]
    async with uow() as tx:
        for message_id in ids:
            await tx.outbox.add(
                OutboxMessage(
                    message_id, f"app_{message_id}", destination, "application/json", b"{}", 0, NOW
                )
            )
        await tx.commit()
    return ids


async def _eventually(check: object, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.005)):
        if check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.005)
    raise AssertionError("not true in time")


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel a running relay; it must end promptly (a lost cancellation would hang here)."""
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert done, "the relay did not stop when cancelled"
    assert task.cancelled()


async def test_run_keeps_a_slow_partner_to_its_share_while_others_flow(
    uow: FakeUnitOfWorkFactory,
) -> None:
    slow = await _queue(uow, SLOW, 6)
    fast = await _queue(uow, FAST, 6)
    transport = HeldTransport(hold={SLOW})
    relay = Relay(
        uow, transport, FixedClock(NOW), RelayPolicy(concurrency=3, per_partner=2, idle_poll=0.01)
    )
    task = asyncio.create_task(relay.run())
    await _eventually(lambda: all(uow.message(m).status == "delivered" for m in fast))
    await _eventually(lambda: relay.in_flight == 2)  # a slot is free once its batch is done
    assert transport.in_flight[SLOW] == 2
    assert [uow.message(m).status for m in slow].count("in_flight") == 2

    transport.released.set()
    await _eventually(lambda: {m.status for m in uow.messages()} == {"delivered"})
    await stop(task)
    assert transport.most[SLOW] == 2
    assert transport.most[FAST] <= 1  # the third global slot was all the fast partner had
    assert transport.sent == Counter(dict.fromkeys(slow + fast, 1))


async def test_run_never_claims_more_than_its_free_slots(uow: FakeUnitOfWorkFactory) -> None:
    ids = await _queue(uow, SLOW, 5) + await _queue(uow, FAST, 5)
    transport = HeldTransport(hold={SLOW, FAST})
    relay = Relay(
        uow, transport, FixedClock(NOW), RelayPolicy(concurrency=3, per_partner=4, idle_poll=0.01)
    )
    task = asyncio.create_task(relay.run())
    await _eventually(lambda: sum(transport.in_flight.values()) == 3)
    for _ in range(20):
        await asyncio.sleep(0.005)
    assert [uow.message(m).status for m in ids].count("in_flight") == 3

    await stop(task)  # cancelled mid-send: nothing recorded, the leases will run out
    assert [uow.message(m).status for m in ids].count("in_flight") == 3
    assert all(uow.message(m).attempts == 0 for m in ids)
    assert relay.in_flight == 0


async def test_a_delivery_keeps_the_signed_exchange_and_audits_it(
    uow: FakeUnitOfWorkFactory,
) -> None:
    [message_id] = await _queue(uow, FAST, 1)
    relay = Relay(uow, HeldTransport(), FixedClock(NOW))

    assert await relay.run_once() == 1

    stored = uow.state.outbox[message_id]
    assert stored.ack is not None
    assert stored.ack.request_headers["Idempotency-Key"] == message_id
    assert uow.state.evidence == {
        f"sha-256=:{message_id}:": b"{}",
        f"sha-256=:{message_id}-ack:": b'{"status": "received"}',
    }
    kinds = [(kind, actor, subject) for kind, actor, subject, _data, _at in uow.state.audit]
    assert kinds == [
        ("message.sent", "gateway", f"app_{message_id}"),
        ("message.acknowledged", FAST, f"app_{message_id}"),
    ]
    sent = uow.state.audit[0][3]
    assert sent["content_digest"] == f"sha-256=:{message_id}:"
    assert sent["target"] == f"https://{FAST}.test/in"
    assert uow.state.audit[1][3]["content_digest"] == f"sha-256=:{message_id}-ack:"


async def test_a_repeated_acknowledgement_changes_nothing(uow: FakeUnitOfWorkFactory) -> None:
    [message_id] = await _queue(uow, SLOW, 1)
    clock = FixedClock(NOW)
    slow = HeldTransport(hold={SLOW})
    late = asyncio.create_task(Relay(uow, slow, clock, RelayPolicy(lease_seconds=5)).run_once())
    await _eventually(lambda: slow.sent[message_id] == 1)
    clock.advance(seconds=6)  # the lease ran out: another relay sends it again and is answered
    assert await Relay(uow, HeldTransport(), clock).run_once() == 1
    delivered_at = uow.state.outbox[message_id].delivered_at
    audit = list(uow.state.audit)

    clock.advance(seconds=1)
    with structlog.testing.capture_logs() as logs:
        slow.released.set()
        assert await late == 1

    assert uow.state.outbox[message_id].delivered_at == delivered_at == NOW + timedelta(seconds=6)
    assert uow.state.audit == audit
    assert [e["event"] for e in logs] == ["outbox.ack_repeated"]


async def test_a_crashing_send_counts_as_an_attempt(uow: FakeUnitOfWorkFactory) -> None:
    [message_id] = await _queue(uow, FAST, 1)
    relay = Relay(uow, HeldTransport(crash=ValueError("bug")), FixedClock(NOW))

    with structlog.testing.capture_logs() as logs:
        assert await relay.run_once() == 1

    stored = uow.message(message_id)
    assert (stored.status, stored.attempts) == ("pending", 1)
    assert stored.last_error == "unexpected ValueError while sending"
    assert [e["event"] for e in logs] == ["outbox.send_crashed", "outbox.retry_scheduled"]


async def test_a_late_failure_does_not_undo_a_delivery(uow: FakeUnitOfWorkFactory) -> None:
    [message_id] = await _queue(uow, FAST, 1)
    async with uow() as tx:
        [claimed] = await tx.outbox.claim(NOW, limit=1, lease_seconds=60)
        assert await tx.outbox.delivered(message_id, NOW)
        await tx.outbox.retry_later(message_id, NOW, "late")
        await tx.outbox.dead(message_id, "late")
        assert not await tx.outbox.delivered(message_id, NOW)
        await tx.commit()
    stored = uow.message(message_id)
    assert (stored.status, stored.attempts, stored.last_error) == ("delivered", 0, None)
    assert claimed.id == message_id
