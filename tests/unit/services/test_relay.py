"""The outbox relay: delivery, retries with capped backoff, dead letters, leases, concurrency."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.application import Application
from gateway.domain.errors import PermanentDeliveryError, TransientDeliveryError
from gateway.sandbox.samples import SANDBOX_LEGAL_BASIS
from gateway.services.ports import Agency, OutboxMessage
from gateway.services.relay import Relay, RelayPolicy
from tests.fakes import (
    FakeDirectory,
    FakeTransport,
    FakeUnitOfWorkFactory,
    FixedClock,
    ack_digest,
)

MATTER = "11440400MB2C00081P4440120002000"
NOW = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
LEAD, REVIEWER = "gd-hq-csb", "gd-hq-tax"
AGENCIES = FakeDirectory(
    [
        Agency(LEAD, "GD", {"en": "Hengqin Commercial Services Bureau"}, "https://gd.test/in"),
        Agency(REVIEWER, "GD", {"en": "Hengqin Tax Bureau"}, "https://tax.test/in"),
    ]
)


async def _case(
    uow: FakeUnitOfWorkFactory,
    application_id: str = "app_01",
    handlers: tuple[str, ...] = (LEAD,),
    *,
    basis: bool = True,
) -> list[str]:
    """An accepted application with one queued message per handler; returns the message ids.
    ``basis``: the submitting agency declared its legal basis (else: a case filed before one
    was required, whose messages record nothing they rely on)."""
    app = Application.receive(
        application_id=application_id,
        matter=MATTER,
        matter_version=1,
        submitted_by="hk-ird",
        channel="online",
        source_format="canonical",
        content_digest="sha-256=:AAAA:",
        document={"matter": MATTER},
        handlers=handlers,
        missing=(),
        deadline="2026-03-03",
        at=NOW,
        legal_basis=SANDBOX_LEGAL_BASIS.record() if basis else None,
    )
    ids = [f"msg_{application_id}_{agency}" for agency in handlers]
    async with uow() as tx:
        for message_id, agency in zip(ids, handlers, strict=True):
            app.message_queued(agency, message_id, NOW)
            message = _message(message_id, application_id, agency)
            await tx.outbox.add(message if basis else replace(message, relies_on=None))
        await tx.applications.add(app)
        await tx.commit()
    return ids


def _message(message_id: str, application_id: str, destination: str = LEAD) -> OutboxMessage:
    return OutboxMessage(
        message_id,
        application_id,
        destination,
        "application/json",
        b'{"message_id": "' + message_id.encode() + b'"}',
        next_attempt_at=NOW,
        relies_on="legal_basis",
    )


def _relay(
    uow: FakeUnitOfWorkFactory,
    transport: FakeTransport,
    clock: FixedClock,
    **policy: float,
) -> Relay:
    return Relay(uow, transport, clock, RelayPolicy(**policy))  # type: ignore[arg-type]


@pytest.fixture
def uow() -> FakeUnitOfWorkFactory:
    factory = FakeUnitOfWorkFactory()
    factory.agencies = AGENCIES
    return factory


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport()


# --------------------------------------------------------------------------- delivery


async def test_a_message_of_a_case_resting_on_nothing_is_withheld_not_sent(
    uow: FakeUnitOfWorkFactory, clock: FixedClock, transport: FakeTransport
) -> None:
    [older] = await _case(uow, "app_old", basis=False)
    [current] = await _case(uow, "app_new")
    clock.advance(seconds=2)

    claimed = await _relay(uow, transport, clock).run_once()

    assert claimed == 1
    assert [d.message.id for d in transport.deliveries] == [current]
    held = uow.message(older)
    assert (held.status, held.last_error) == ("withheld", "no_legal_basis")
    [withheld] = [e for e in uow.timeline("app_old") if e.type == "message.withheld"]
    assert withheld.data == {"agency": LEAD, "reason": "no_legal_basis", "message_id": older}
    assert uow.message(current).status == "delivered"


async def test_run_once_delivers_and_starts_the_review(
    uow: FakeUnitOfWorkFactory, clock: FixedClock, transport: FakeTransport
) -> None:
    [message_id] = await _case(uow)
    clock.advance(seconds=2)

    claimed = await _relay(uow, transport, clock).run_once()

    assert claimed == 1
    assert [(d.agency_id, d.message.id) for d in transport.deliveries] == [(LEAD, message_id)]
    stored = uow.message(message_id)
    assert (stored.status, stored.attempts, stored.last_error) == ("delivered", 0, None)
    assert uow.state.outbox[message_id].delivered_at == clock.now()
    assert uow.lease_until(message_id) is None
    app = uow.application("app_01")
    assert app.status.value == "under_review"
    assert app.handler(LEAD).state.value == "delivered"
    timeline = uow.timeline("app_01")
    assert [e.type for e in timeline][-2:] == ["message.delivered", "review.started"]
    delivered = timeline[-2]
    assert delivered.actor == LEAD
    assert delivered.at == clock.now()
    assert delivered.data == {"message_id": message_id, "ack_digest": ack_digest(message_id)}
    assert timeline[-1].data == {"handlers": [LEAD]}


async def test_a_delivered_message_is_not_sent_again(
    uow: FakeUnitOfWorkFactory, clock: FixedClock, transport: FakeTransport
) -> None:
    await _case(uow)
    relay = _relay(uow, transport, clock)
    await relay.run_once()
    clock.advance(hours=1)

    assert await relay.run_once() == 0
    assert len(transport.deliveries) == 1


async def test_a_message_not_yet_due_is_not_claimed(
    uow: FakeUnitOfWorkFactory, clock: FixedClock, transport: FakeTransport
) -> None:
    await _case(uow)
    clock.set(NOW - timedelta(seconds=1))

    assert await _relay(uow, transport, clock).run_once() == 0
    assert transport.deliveries == []
    assert uow.message("msg_app_01_gd-hq-csb").status == "pending"


async def test_acknowledgement_of_a_message_without_its_case_is_still_recorded(
    uow: FakeUnitOfWorkFactory, clock: FixedClock, transport: FakeTransport
) -> None:
    async with uow() as tx:
        await tx.outbox.add(_message("msg_orphan", "app_gone"))
        await tx.commit()

    assert await _relay(uow, transport, clock).run_once() == 1
    assert uow.message("msg_orphan").status == "delivered"


# --------------------------------------------------------------------------- failures


async def test_transient_failure_is_retried_later_with_backoff(
    uow: FakeUnitOfWorkFactory, clock: FixedClock, transport: FakeTransport
) -> None:
    [message_id] = await _case(uow)
    transport.fail_next(1, TransientDeliveryError("partner answered 503"))
    policy = RelayPolicy()
    relay = _relay(uow, transport, clock)

    assert await relay.run_once() == 1

    stored = uow.message(message_id)
    assert (stored.status, stored.attempts) == ("pending", 1)
    assert stored.last_error == "partner answered 503"
    assert stored.next_attempt_at is not None
    delay = (stored.next_attempt_at - clock.now()).total_seconds()
    assert policy.backoff_initial / 2 <= delay <= policy.backoff_initial  # equal jitter
    assert uow.lease_until(message_id) is None
    assert uow.application("app_01").status.value == "accepted"
    assert "message.dead_lettered" not in uow.event_types("app_01")

    assert await relay.run_once() == 0  # not due yet
    clock.set(stored.next_attempt_at)
    assert await relay.run_once() == 1
    assert uow.message(message_id).status == "delivered"
    assert transport.delivered_ids() == [message_id, message_id]


async def test_backoff_grows_and_is_capped(
    uow: FakeUnitOfWorkFactory, clock: FixedClock, transport: FakeTransport
) -> None:
    [message_id] = await _case(uow)
    transport.fail_next(4, TransientDeliveryError)
    relay = _relay(uow, transport, clock, backoff_initial=1.0, backoff_max=3.0)
    delays = []

    for _ in range(4):
        assert await relay.run_once() == 1
        stored = uow.message(message_id)
        assert stored.next_attempt_at is not None
        delays.append((stored.next_attempt_at - clock.now()).total_seconds())
        clock.set(stored.next_attempt_at)

    assert uow.message(message_id).attempts == 4
    assert 0.5 <= delays[0] <= 1.0  # half of 1 * 2**0 fixed, half random
    assert 1.0 <= delays[1] <= 2.0  # of 1 * 2**1
    assert all(1.5 <= d <= 3.0 for d in delays[2:])  # 4 and 8 capped at 3, still jittered


def test_capped_retries_stay_spread_out(
    uow: FakeUnitOfWorkFactory, clock: FixedClock, transport: FakeTransport
) -> None:
    """Messages that failed together must not retry in lockstep, even at the cap."""
    from tenacity import RetryCallState

    relay = _relay(uow, transport, clock, backoff_initial=1.0, backoff_max=4.0)
    state = RetryCallState(None, None, (), {})
    state.attempt_number = 9
    delays = {relay._backoff(state) for _ in range(50)}
    assert all(2.0 <= d <= 4.0 for d in delays)
    assert len(delays) > 40


async def test_backoff_initial_other_than_one_is_honoured_without_warnings(
    uow: FakeUnitOfWorkFactory, clock: FixedClock, transport: FakeTransport
) -> None:
    [message_id] = await _case(uow)
    transport.fail_next(1, TransientDeliveryError)
    relay = _relay(uow, transport, clock, backoff_initial=2.0, backoff_max=30.0)

    assert await relay.run_once() == 1

    stored = uow.message(message_id)
    assert stored.next_attempt_at is not None
    assert 1.0 <= (stored.next_attempt_at - clock.now()).total_seconds() <= 2.0


async def test_after_max_attempts_the_message_is_dead_lettered(
    uow: FakeUnitOfWorkFactory, clock: FixedClock, transport: FakeTransport
) -> None:
    [message_id] = await _case(uow)
    transport.fail_next(3, TransientDeliveryError("connection refused"))
    relay = _relay(uow, transport, clock, max_attempts=3, backoff_initial=1.0, backoff_max=10.0)

    for _ in range(3):
        assert await relay.run_once() == 1
        clock.advance(seconds=11)

    stored = uow.message(message_id)
    assert (stored.status, stored.attempts) == ("dead", 3)
    assert stored.last_error == "connection refused"
    assert len(transport.deliveries) == 3
    assert await relay.run_once() == 0
    assert uow.event_types("app_01").count("message.dead_lettered") == 1
    dead = uow.timeline("app_01")[-1]
    assert dead.type == "message.dead_lettered"
    assert dead.data == {"agency": LEAD, "message_id": message_id, "error": "connection refused"}
    assert uow.application("app_01").status.value == "accepted"


async def test_permanent_failure_is_dead_lettered_at_once(
    uow: FakeUnitOfWorkFactory, clock: FixedClock, transport: FakeTransport
) -> None:
    [message_id] = await _case(uow)
    transport.fail_next(1, PermanentDeliveryError("acknowledgement signature does not verify"))

    assert await _relay(uow, transport, clock).run_once() == 1

    stored = uow.message(message_id)
    assert (stored.status, stored.attempts) == ("dead", 1)
    assert stored.last_error == "acknowledgement signature does not verify"
    assert uow.event_types("app_01")[-1] == "message.dead_lettered"
    clock.advance(days=1)
    assert await _relay(uow, transport, clock).run_once() == 0


async def test_message_to_an_unknown_agency_is_dead_lettered_without_sending(
    uow: FakeUnitOfWorkFactory, clock: FixedClock, transport: FakeTransport
) -> None:
    async with uow() as tx:
        await tx.outbox.add(_message("msg_lost", "app_x", destination="gd-closed"))
        await tx.commit()

    assert await _relay(uow, transport, clock).run_once() == 1

    assert uow.message("msg_lost").status == "dead"
    assert transport.deliveries == []


# --------------------------------------------------------------------------- leases


async def test_a_leased_message_is_claimed_again_after_the_lease(
    uow: FakeUnitOfWorkFactory, clock: FixedClock, transport: FakeTransport
) -> None:
    [message_id] = await _case(uow)
    async with uow() as tx:  # another relay claims the message, then dies
        [claimed] = await tx.outbox.claim(clock.now(), limit=10, lease_seconds=60)
        await tx.commit()
    assert claimed.status == "in_flight"
    assert uow.message(message_id).status == "in_flight"
    assert uow.lease_until(message_id) == NOW + timedelta(seconds=60)
    relay = _relay(uow, transport, clock, lease_seconds=60)

    clock.advance(seconds=60)
    assert await relay.run_once() == 0  # the lease runs until, not through, NOW + 60 s

    clock.advance(seconds=1)
    assert await relay.run_once() == 1
    assert transport.delivered_ids() == [message_id]
    assert uow.message(message_id).status == "delivered"


async def test_a_cancelled_relay_leaves_the_message_to_be_sent_again(
    uow: FakeUnitOfWorkFactory, clock: FixedClock
) -> None:
    [message_id] = await _case(uow)
    stuck = FakeTransport(gate=asyncio.Event())
    relay = _relay(uow, stuck, clock, lease_seconds=30)
    task = asyncio.create_task(relay.run_once())
    async with asyncio.timeout(5):
        await stuck.wait_in_flight(1)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert uow.message(message_id).status == "in_flight"
    assert uow.application("app_01").status.value == "accepted"
    healthy = FakeTransport()
    again = _relay(uow, healthy, clock, lease_seconds=30)
    assert await again.run_once() == 0
    clock.advance(seconds=31)
    assert await again.run_once() == 1
    assert stuck.delivered_ids() == healthy.delivered_ids() == [message_id]  # same message id
    assert uow.message(message_id).status == "delivered"
    assert uow.application("app_01").status.value == "under_review"


async def test_two_relays_do_not_claim_the_same_message(
    uow: FakeUnitOfWorkFactory, clock: FixedClock, transport: FakeTransport
) -> None:
    for n in range(4):
        await _case(uow, f"app_{n}")

    counts = await asyncio.gather(
        _relay(uow, transport, clock).run_once(), _relay(uow, transport, clock).run_once()
    )

    assert sum(counts) == 4
    assert sorted(transport.delivered_ids()) == sorted(m.id for m in uow.messages())
    assert {m.status for m in uow.messages()} == {"delivered"}


# --------------------------------------------------------------------------- concurrency


async def test_concurrency_is_bounded(uow: FakeUnitOfWorkFactory, clock: FixedClock) -> None:
    for n in range(5):
        await _case(uow, f"app_{n}")
    gate = asyncio.Event()
    transport = FakeTransport(gate=gate)
    relay = _relay(uow, transport, clock, concurrency=2, per_partner=5)

    task = asyncio.create_task(relay.run_once())
    async with asyncio.timeout(5):
        await transport.wait_in_flight(2)
    for _ in range(50):  # give a third delivery every chance to start
        await asyncio.sleep(0)
    assert transport.in_flight == 2
    assert len(transport.deliveries) == 2

    gate.set()
    assert await task == 5
    assert transport.max_in_flight == 2
    assert len(transport.deliveries) == 5
    assert {m.status for m in uow.messages()} == {"delivered"}


async def test_batch_limits_how_many_are_claimed(
    uow: FakeUnitOfWorkFactory, clock: FixedClock, transport: FakeTransport
) -> None:
    for n in range(3):
        await _case(uow, f"app_{n}")
    relay = _relay(uow, transport, clock, batch=2)

    assert await relay.run_once() == 2
    assert await relay.run_once() == 1
    assert await relay.run_once() == 0


async def test_joint_case_acknowledgements_delivered_together_both_land(
    uow: FakeUnitOfWorkFactory, clock: FixedClock, transport: FakeTransport
) -> None:
    ids = await _case(uow, handlers=(LEAD, REVIEWER))

    assert await _relay(uow, transport, clock).run_once() == 2

    assert {uow.message(i).status for i in ids} == {"delivered"}
    assert uow.application("app_01").status.value == "under_review"
