"""Delivery outcomes recorded in batches: one transaction for many acknowledgements, a
conflict or a poison case costing the others nothing, cancellation leaving every row to be
claimed again (in memory; the SQL side is in tests/integration/test_relay_batches.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
import structlog

from gateway.domain.application import Application
from gateway.domain.errors import TransientDeliveryError
from gateway.services.ports import UnitOfWork
from gateway.services.relay import Relay, RelayPolicy
from tests.fakes import FakeTransport, FakeUnitOfWorkFactory, FixedClock
from tests.unit.services.test_relay import AGENCIES, LEAD, NOW, REVIEWER, _case


class Recorded:
    """A relay observer that keeps the size of every recording transaction."""

    def __init__(self) -> None:
        self.sizes: list[int] = []
        self.outcomes: list[str] = []

    def claimed(self, count: int) -> None:
        pass

    def in_flight(self, count: int) -> None:
        pass

    def finished(self, outcome: str, accepted_seconds: float | None) -> None:
        self.outcomes.append(outcome)

    def recorded(self, count: int, seconds: float) -> None:
        assert seconds >= 0
        self.sizes.append(count)


@pytest.fixture
def uow() -> FakeUnitOfWorkFactory:
    factory = FakeUnitOfWorkFactory()
    factory.agencies = AGENCIES
    return factory


async def _cases(uow: FakeUnitOfWorkFactory, count: int) -> list[str]:
    ids = []
    for n in range(count):
        ids += await _case(uow, f"app_{n:02d}")
    return ids


def _exchanges(uow: FakeUnitOfWorkFactory) -> list[str]:
    """The relay's audit entries (the cases' own events are audited too)."""
    kinds = ("message.sent", "message.acknowledged")
    return [kind for kind, *_ in uow.state.audit if kind in kinds]


def _relay(uow: FakeUnitOfWorkFactory, observer: Recorded, **policy: object) -> Relay:
    settings = {"record_wait": 0.05, **policy}
    return Relay(
        uow,
        FakeTransport(),
        FixedClock(NOW),
        RelayPolicy(**settings),  # type: ignore[arg-type]
        observer=observer,
    )


async def _save(app: Application, tx: UnitOfWork, now: datetime) -> bool:
    await tx.applications.save(app)
    return False


async def test_acknowledgements_are_recorded_together_in_one_transaction(
    uow: FakeUnitOfWorkFactory,
) -> None:
    ids = await _cases(uow, 10)
    observer = Recorded()
    commits = uow.commits

    assert await _relay(uow, observer).run_once() == 10

    assert {uow.message(m).status for m in ids} == {"delivered"}
    assert uow.commits - commits == 2  # the claim, then every outcome at once
    assert observer.sizes == [10]
    assert observer.outcomes == ["delivered"] * 10
    kinds = _exchanges(uow)
    assert kinds == ["message.sent", "message.acknowledged"] * 10
    assert all(uow.application(f"app_{n:02d}").status.value == "under_review" for n in range(10))


async def test_a_batch_holds_at_most_record_batch_outcomes(uow: FakeUnitOfWorkFactory) -> None:
    ids = await _cases(uow, 10)
    observer = Recorded()

    assert await _relay(uow, observer, record_batch=4).run_once() == 10

    assert {uow.message(m).status for m in ids} == {"delivered"}
    assert sum(observer.sizes) == 10
    assert max(observer.sizes) <= 4


async def test_failures_are_recorded_in_the_batch_too(uow: FakeUnitOfWorkFactory) -> None:
    ids = await _cases(uow, 6)
    observer = Recorded()
    transport = FakeTransport()
    transport.fail_next(2, TransientDeliveryError)
    policy = RelayPolicy(record_wait=0.05)
    relay = Relay(uow, transport, FixedClock(NOW), policy, observer=observer)

    assert await relay.run_once() == 6

    statuses = sorted(uow.message(m).status for m in ids)
    assert statuses == ["delivered"] * 4 + ["pending"] * 2
    assert observer.sizes == [6]
    assert sorted(observer.outcomes) == ["delivered"] * 4 + ["retry"] * 2


async def test_a_conflict_on_one_case_loses_none_of_the_others(
    uow: FakeUnitOfWorkFactory,
) -> None:
    ids = await _cases(uow, 8)
    moved: list[str] = []

    async def settle(app: Application, tx: UnitOfWork, now: datetime) -> bool:
        if app.id == "app_03" and not moved:  # another handler moves the case meanwhile
            moved.append(app.id)
            async with uow() as other:
                concurrent = await other.applications.get(app.id)
                assert concurrent is not None
                await other.applications.save(concurrent)
                await other.commit()
        return await _save(app, tx, now)

    observer = Recorded()
    policy = RelayPolicy(record_wait=0.05)
    relay = Relay(uow, FakeTransport(), FixedClock(NOW), policy, settle, observer)
    rolled_back = uow.rolled_back

    assert await relay.run_once() == 8

    assert moved == ["app_03"]
    assert {uow.message(m).status for m in ids} == {"delivered"}
    assert uow.rolled_back - rolled_back == 1  # the first try of the batch, nothing else
    assert observer.sizes == [7, 1]  # the others together again, the conflicting one alone
    assert uow.application("app_03").handler(LEAD).state.value == "delivered"
    kinds = _exchanges(uow)
    assert kinds == ["message.sent", "message.acknowledged"] * 8  # nothing kept twice


async def test_a_case_that_cannot_be_recorded_costs_the_others_nothing(
    uow: FakeUnitOfWorkFactory,
) -> None:
    ids = await _cases(uow, 5)
    poison = "msg_app_02_" + LEAD

    async def settle(app: Application, tx: UnitOfWork, now: datetime) -> bool:
        if app.id == "app_02":
            raise ValueError("a bug in one case's settle step")
        return await _save(app, tx, now)

    relay = Relay(uow, FakeTransport(), FixedClock(NOW), RelayPolicy(record_wait=0.05), settle)
    with structlog.testing.capture_logs() as logs:
        assert await relay.run_once() == 5

    assert {m: uow.message(m).status for m in ids if m != poison} == dict.fromkeys(
        [m for m in ids if m != poison], "delivered"
    )
    assert uow.message(poison).status == "in_flight"  # its lease runs out: sent again
    events = [e["event"] for e in logs]
    assert events.count("outbox.batch_record_failed") == 1
    assert events.count("outbox.record_failed") == 1
    assert events.count("outbox.delivered") == 4


async def test_cancelled_mid_batch_every_row_can_be_claimed_again(
    uow: FakeUnitOfWorkFactory,
) -> None:
    ids = await _cases(uow, 6)
    entered, never = asyncio.Event(), asyncio.Event()

    async def settle(app: Application, tx: UnitOfWork, now: datetime) -> bool:
        if app.id == "app_04":
            entered.set()
            await never.wait()  # the batch is half written when the relay is cancelled
        return await _save(app, tx, now)

    clock = FixedClock(NOW)
    relay = Relay(uow, FakeTransport(), clock, RelayPolicy(record_wait=0.05, idle_poll=60), settle)
    task = asyncio.create_task(relay.run())
    await asyncio.wait_for(entered.wait(), 5)
    task.cancel()
    done, _ = await asyncio.wait({task}, timeout=5)
    assert done
    assert task.cancelled()

    assert {uow.message(m).status for m in ids} == {"in_flight"}  # nothing of the batch kept
    assert _exchanges(uow) == []
    assert relay.in_flight == 0

    clock.advance(seconds=61)  # the leases ran out: another relay takes them all
    again = Relay(uow, FakeTransport(), clock, RelayPolicy(record_wait=0.05))
    assert await again.run_once() == 6
    assert {uow.message(m).status for m in ids} == {"delivered"}


async def test_the_running_relay_gathers_the_outcomes_that_end_together(
    uow: FakeUnitOfWorkFactory,
) -> None:
    ids = await _cases(uow, 10)
    observer = Recorded()
    relay = _relay(uow, observer, idle_poll=60)
    commits = uow.commits
    task = asyncio.create_task(relay.run())
    try:
        for _ in range(1000):
            if {uow.message(m).status for m in ids} == {"delivered"}:
                break
            await asyncio.sleep(0.005)
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=5)

    assert {uow.message(m).status for m in ids} == {"delivered"}
    assert observer.sizes == [10]  # gathered for record_wait, then one transaction
    # the claim, the ten outcomes together, and perhaps the next (empty) claim: it runs in
    # the group committer's batch like any other work, so it commits too
    assert uow.commits - commits in (2, 3)


async def test_two_acknowledgements_of_one_case_in_one_batch_both_move_it(
    uow: FakeUnitOfWorkFactory,
) -> None:
    """The batch reads its cases at once; the second handler's delivery of the same case must
    see the first one's save, in the same transaction (not a conflict, not lost)."""
    ids = await _case(uow, "app_joint", handlers=(LEAD, REVIEWER))
    observer = Recorded()

    assert await _relay(uow, observer).run_once() == 2

    assert observer.sizes == [2]
    assert {uow.message(m).status for m in ids} == {"delivered"}
    app = uow.application("app_joint")
    assert [app.handler(a).state.value for a in (LEAD, REVIEWER)] == ["delivered", "delivered"]
    assert app.status.value == "under_review"


async def test_the_recorder_outlives_a_crash_while_finishing_a_batch(
    uow: FakeUnitOfWorkFactory,
) -> None:
    """A bug after the commit (here in the observer) is logged; the relay keeps delivering."""
    first = await _cases(uow, 1)

    class Crashing(Recorded):
        def recorded(self, count: int, seconds: float) -> None:
            if not self.sizes:
                self.sizes.append(count)
                raise RuntimeError("a bug in a metric")
            super().recorded(count, seconds)

    observer = Crashing()
    relay = _relay(uow, observer, idle_poll=0.01)
    task = asyncio.create_task(relay.run())
    try:
        with structlog.testing.capture_logs() as logs:
            for _ in range(400):
                if uow.message(first[0]).status == "delivered" and relay.in_flight == 0:
                    break
                await asyncio.sleep(0.005)
            later = await _case(uow, "app_later")
            relay.wake()
            for _ in range(400):
                if uow.message(later[0]).status == "delivered":
                    break
                await asyncio.sleep(0.005)
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=5)

    assert uow.message(later[0]).status == "delivered"
    assert "outbox.record_batch_crashed" in [e["event"] for e in logs]
    assert not task.done() or task.cancelled()


async def test_a_wake_delivers_at_once_not_at_the_next_poll(uow: FakeUnitOfWorkFactory) -> None:
    relay = _relay(uow, Recorded(), idle_poll=60, record_wait=0)
    task = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(0.05)  # it claimed nothing and waits for its minute-long poll
        [message_id] = await _case(uow, "app_woken")
        woken = asyncio.get_running_loop().time()
        relay.wake()  # what Dependencies.outbox_written does after the use case's commit
        while uow.message(message_id).status != "delivered":
            assert asyncio.get_running_loop().time() - woken < 1.0, "not woken"
            await asyncio.sleep(0.002)
    finally:
        task.cancel()
        await asyncio.wait({task}, timeout=5)
