"""Scheduled work runs in one process at a time (ADR 0011), on SQLite and PostgreSQL.

First the lease itself: two processes (two engines) racing for it, renewal by the holder,
takeover once it ran out, release. Then two gateways on one database: a due deemed
acceptance is applied once, and one process per round writes the audit checkpoint.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from gateway.bootstrap import HOUSEKEEPING, Overrides, create_app, housekeeping_round
from gateway.store.database import create_engine, create_schema
from gateway.store.jobs import JobLease, process_holder, start_up_lock
from gateway.store.unit_of_work import SqlUnitOfWorkFactory
from gateway.web.keys import STORE
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.fakes import FixedClock
from tests.integration.test_lifecycle import FRIDAY, MEDICAL, submit, view

T0 = datetime(2026, 11, 27, 2, 0, tzinfo=UTC)
NAME = "housekeeping"


@pytest.fixture
async def stores(database: Database) -> AsyncIterator[list[SqlUnitOfWorkFactory]]:
    """Two processes' views of one database: an engine each."""
    engines = [create_engine(database.url, schema=database.schema or None) for _ in range(2)]
    await create_schema(engines[0])
    stores = [SqlUnitOfWorkFactory(engine) for engine in engines]
    yield stores
    for store in stores:
        await store.close()  # its committer, then the engine


async def take(store: SqlUnitOfWorkFactory, holder: str, at: datetime, seconds: float = 10) -> bool:
    async with store() as uow:
        held = await uow.jobs.take(NAME, holder, now=at, seconds=seconds)
        await uow.commit()
    return held


async def holder(store: SqlUnitOfWorkFactory, at: datetime) -> str | None:
    async with store() as uow:
        return await uow.jobs.holder(NAME, at)


async def test_of_two_processes_racing_for_a_lease_exactly_one_holds_it(
    stores: list[SqlUnitOfWorkFactory],
) -> None:
    for round_ in range(5):  # a fresh lease each round: the race is for a free or lapsed one
        at = T0 + timedelta(seconds=60 * round_)
        held = await asyncio.gather(
            take(stores[0], "a", at), take(stores[1], "b", at), take(stores[0], "c", at)
        )
        assert sum(held) == 1, held
        winner = "abc"[held.index(True)]
        assert await holder(stores[1], at) == winner
        assert not await take(stores[1], "d", at + timedelta(seconds=9))  # still held


async def test_the_holder_renews_and_a_renewed_lease_is_not_taken(
    stores: list[SqlUnitOfWorkFactory],
) -> None:
    assert await take(stores[0], "a", T0)
    assert await take(stores[0], "a", T0 + timedelta(seconds=8))  # renewed: now until +18
    assert not await take(stores[1], "b", T0 + timedelta(seconds=12))  # past the first term
    assert await holder(stores[1], T0 + timedelta(seconds=17)) == "a"


async def test_a_lease_that_ran_out_is_taken_over_and_the_old_holder_has_lost_it(
    stores: list[SqlUnitOfWorkFactory],
) -> None:
    assert await take(stores[0], "a", T0)
    assert await holder(stores[1], T0 + timedelta(seconds=11)) is None  # nobody holds it
    assert await take(stores[1], "b", T0 + timedelta(seconds=11))
    assert not await take(stores[0], "a", T0 + timedelta(seconds=12))  # came back too late
    assert await holder(stores[0], T0 + timedelta(seconds=12)) == "b"


async def test_a_released_lease_is_free_at_once_and_only_its_holder_releases_it(
    stores: list[SqlUnitOfWorkFactory],
) -> None:
    first = JobLease(stores[0], NAME, seconds=10)
    second = JobLease(stores[1], NAME, seconds=10)
    assert first.holder != second.holder
    assert await first.hold(T0)
    assert first.held
    assert not await second.hold(T0 + timedelta(seconds=1))
    assert not second.held
    async with stores[1]() as uow:
        assert not await uow.jobs.release(NAME, second.holder)  # not its lease
        await uow.commit()
    await second.release()  # not held: nothing to give back
    assert await holder(stores[0], T0 + timedelta(seconds=1)) == first.holder
    await first.release()
    assert not first.held
    assert await second.hold(T0 + timedelta(seconds=2))


def test_a_holder_name_says_which_process_it_is() -> None:
    host, pid, nonce = process_holder().rsplit(":", 2)
    assert host
    assert pid.isdigit()
    assert len(nonce) == 8
    assert process_holder() != process_holder()  # two leases in one process differ too


async def test_processes_on_one_postgresql_database_start_one_after_the_other(
    database: Database,
) -> None:
    steps: list[str] = []

    async def start(name: str) -> None:
        async with start_up_lock(database.url):
            steps.append(f"{name} starts")
            await asyncio.sleep(0.3)
            steps.append(f"{name} started")

    await asyncio.gather(start("a"), start("b"))
    if database.backend == "sqlite":  # one process per file: nothing to wait for
        assert steps[:2] == ["a starts", "b starts"]
    else:
        assert steps in (
            ["a starts", "a started", "b starts", "b started"],
            ["b starts", "b started", "a starts", "a started"],
        )


# ---- two gateways on one database ----------------------------------------------------


Pair = tuple[list[RunningGateway], FixedClock, list[Any]]


@pytest.fixture
async def two(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> AsyncIterator[Callable[[float], Awaitable[Pair]]]:
    """Two sandbox gateways (no relay) on one database with one fixed clock, as if two
    processes, with housekeeping every ``interval`` seconds; and their servers, to stop one."""
    servers: list[Any] = []

    async def start(interval: float) -> Pair:
        clock = FixedClock(FRIDAY)
        gateways = []
        for _ in range(2):
            settings = sandbox_settings(
                tmp_path, database, relay_enabled=False, audit_checkpoint_seconds=interval
            )
            app = create_app(settings, Overrides(clock=clock))
            servers.append(await aiohttp_server(app, host="127.0.0.1", port=settings.port))
            gateways.append(RunningGateway(settings, settings.base_url, app))
        return gateways, clock, servers

    yield start
    for server in servers:
        await server.close()


async def checkpoints(gateway: RunningGateway) -> int:
    async with gateway.app[STORE]() as uow:  # type: ignore[index]
        return len(await uow.audit.checkpoint_tokens())


async def eventually(check: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not true after {seconds} s")


async def test_two_gateways_deem_a_silent_case_accepted_once_and_one_writes_checkpoints(
    two: Callable[[float], Awaitable[Pair]],
) -> None:
    gateways, clock, _ = await two(3600)  # rounds when the test says, not on their own
    apps: list[Any] = [g.app for g in gateways]
    received = await submit(gateways[0], MEDICAL)
    clock.current = datetime(2026, 10, 11, 8, 0, tzinfo=UTC)  # acceptance was due on the 10th

    with capture_logs() as logs:
        rounds = [await asyncio.gather(*(housekeeping_round(app) for app in apps))]
        rounds.append(await asyncio.gather(*(housekeeping_round(app) for app in apps)))
    for done in rounds:  # each round: one process did the work, the other stood by
        assert [d is None for d in done].count(True) == 1, rounds
    first, second = (next(d for d in done if d is not None) for done in rounds)
    assert first["deemed_accepted"] == 1
    assert first["checkpoint"] is not None  # the chain moved: the holder signed it
    assert second["deemed_accepted"] == 0
    assert second["checkpoint"] is not None  # the acceptance moved it again
    runner = rounds[0].index(first)
    assert rounds[1].index(second) == runner  # the holder renewed its lease
    taken = [e for e in logs if e["event"] == "housekeeping.lease_taken"]
    assert [e["holder"] for e in taken] == [apps[runner][HOUSEKEEPING].holder]

    case = await view(gateways[0], received["application_id"])
    assert case["status"] == "accepted"
    assert [e["type"] for e in case["timeline"]].count("application.accepted") == 1
    assert await checkpoints(gateways[0]) == 2  # one per round, from one process

    # The holder stops answering (it died): once its lease ran out, the other takes over.
    standby = 1 - runner
    assert await housekeeping_round(apps[standby]) is None  # not yet
    clock.current += timedelta(seconds=apps[runner][HOUSEKEEPING].seconds + 1)
    with capture_logs() as logs:
        assert await housekeeping_round(apps[standby]) is not None
        assert await housekeeping_round(apps[runner]) is None
    assert [(e["event"], e["holder"]) for e in logs if e["event"].startswith("housekeeping")] == [
        ("housekeeping.lease_taken", apps[standby][HOUSEKEEPING].holder),
        ("housekeeping.lease_lost", apps[runner][HOUSEKEEPING].holder),
    ]


async def test_the_housekeeping_loop_runs_in_one_process_and_a_clean_stop_hands_it_over(
    two: Callable[[float], Awaitable[Pair]],
) -> None:
    gateways, clock, servers = await two(1)
    apps: list[Any] = [g.app for g in gateways]
    leases = [app[HOUSEKEEPING] for app in apps]
    received = await submit(gateways[1], MEDICAL)

    async def accepted() -> bool:
        case = await view(gateways[0], received["application_id"])
        return bool(case["status"] == "accepted")

    with capture_logs() as logs:
        # The jump also ends the lease (it was taken for 2 s of the clock): whoever runs the
        # next round holds it from then on.
        clock.current = datetime(2026, 10, 11, 8, 0, tzinfo=UTC)
        await eventually(accepted)
        await asyncio.sleep(1.2)  # a round of each process after the jump
        settled = len(logs)
        await asyncio.sleep(2.2)  # two more rounds each: one holder, renewing
        later = logs[settled:]
        assert [e["deemed_accepted"] for e in logs if e["event"] == "deadline.sweep"] == [1]
        assert not [e for e in logs if e["event"] == "housekeeping.failed"]
        assert not [e for e in later if e["event"].startswith("housekeeping.lease")]
        assert [lease.held for lease in leases].count(True) == 1
        runner = next(i for i, lease in enumerate(leases) if lease.held)

        await servers[runner].close()  # a clean stop gives the lease back ...
        assert not leases[runner].held

        async def handed_over() -> bool:
            return leases[1 - runner].held

        await eventually(handed_over, 3)  # ... and the other takes it at its next round
    handover = [e for e in logs[settled:] if e["event"].startswith("housekeeping.lease")]
    assert handover == [
        {
            "event": "housekeeping.lease_taken",
            "holder": leases[1 - runner].holder,
            "seconds": 2.0,
            "log_level": "info",
        }
    ]
    case = await view(gateways[1 - runner], received["application_id"])
    assert [e["type"] for e in case["timeline"]].count("application.accepted") == 1
