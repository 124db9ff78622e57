"""The SQL unit of work on both backends: the same test, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.application import Application, Status
from gateway.domain.errors import ConflictError
from gateway.sandbox.samples import SANDBOX_LEGAL_BASIS
from gateway.services.ports import OutboxMessage, StoredResponse
from gateway.store.database import create_engine, create_schema
from gateway.store.unit_of_work import SqlUnitOfWorkFactory
from tests.conftest import Database

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


@pytest.fixture
async def uow(database: Database) -> AsyncIterator[SqlUnitOfWorkFactory]:
    engine = create_engine(database.url, schema=database.schema or None)
    await create_schema(engine)
    factory = SqlUnitOfWorkFactory(engine)
    yield factory
    await factory.close()  # its committer, then the engine


def _application(app_id: str = "app_1", handlers: tuple[str, ...] = ("gd-hq-csb",)) -> Application:
    return Application.receive(
        application_id=app_id,
        matter="11440400MB2C00081P4440120002000",
        matter_version=1,
        submitted_by="hk-ird",
        channel="online",
        source_format="HK",
        content_digest="sha-256=:AAAA:",
        document={"applicant": {"names": {"original": "陳大文"}}},
        handlers=handlers,
        missing=(),
        deadline="2026-11-27",
        at=NOW,
        legal_basis=SANDBOX_LEGAL_BASIS.record(),  # an agency case declares it
    )


async def _store(uow: SqlUnitOfWorkFactory, app: Application, messages: int = 1) -> None:
    async with uow() as tx:
        await tx.applications.add(app)
        for i in range(messages):
            await tx.outbox.add(
                OutboxMessage(
                    f"msg_{app.id}_{i}",
                    app.id,
                    "gd-hq-csb",
                    "application/json",
                    b"{}",
                    next_attempt_at=NOW,
                    relies_on="legal_basis",
                )
            )
        await tx.commit()


async def test_an_application_round_trips_with_its_timeline(uow: SqlUnitOfWorkFactory) -> None:
    await _store(uow, _application())
    async with uow() as tx:
        app = await tx.applications.get("app_1")
        assert app is not None
        assert app.status is Status.ACCEPTED
        assert app.document["applicant"]["names"]["original"] == "陳大文"
        assert app.received_at == NOW
        app.delivered("gd-hq-csb", "msg_app_1_0", "sha-256=:BBBB:", NOW + timedelta(seconds=1))
        await tx.applications.save(app)
        await tx.commit()
    async with uow() as tx:
        events = await tx.applications.timeline("app_1")
        stored = await tx.applications.get("app_1")
    assert [(e.seq, e.type) for e in events] == [
        (1, "application.received"),
        (2, "application.accepted"),
        (3, "message.delivered"),
        (4, "review.started"),
    ]
    assert stored is not None
    assert stored.status is Status.UNDER_REVIEW
    assert stored.version == 2


async def test_an_uncommitted_unit_of_work_leaves_nothing(uow: SqlUnitOfWorkFactory) -> None:
    async with uow() as tx:
        await tx.applications.add(_application())
    async with uow() as tx:
        assert await tx.applications.get("app_1") is None


async def test_a_lost_update_is_refused(uow: SqlUnitOfWorkFactory) -> None:
    await _store(uow, _application())
    async with uow() as tx:
        first = await tx.applications.get("app_1")
    async with uow() as tx:
        second = await tx.applications.get("app_1")
        assert second is not None
        second.delivered("gd-hq-csb", "m", "d", NOW)
        await tx.applications.save(second)
        await tx.commit()
    assert first is not None
    first.delivered("gd-hq-csb", "m", "d", NOW)
    async with uow() as tx:
        with pytest.raises(ConflictError):
            await tx.applications.save(first)


async def test_claimed_messages_are_leased_then_reclaimable(uow: SqlUnitOfWorkFactory) -> None:
    await _store(uow, _application(), messages=3)
    async with uow() as tx:
        claimed = await tx.outbox.claim(NOW, limit=2, lease_seconds=30)
        await tx.commit()
    async with uow() as tx:
        rest = await tx.outbox.claim(NOW, limit=10, lease_seconds=30)
        await tx.commit()
    assert len(claimed) == 2
    assert len(rest) == 1
    async with uow() as tx:
        assert await tx.outbox.claim(NOW + timedelta(seconds=10), limit=10, lease_seconds=30) == []
        await tx.outbox.delivered(claimed[0].id, NOW)
        await tx.outbox.retry_later(claimed[1].id, NOW + timedelta(seconds=5), "timeout")
        await tx.commit()
    async with uow() as tx:
        later = await tx.outbox.claim(NOW + timedelta(seconds=31), limit=10, lease_seconds=30)
        await tx.commit()
    by_id = {m.id: m for m in later}
    assert set(by_id) == {claimed[1].id, rest[0].id}  # retried one and the expired lease
    assert by_id[claimed[1].id].attempts == 1
    assert by_id[claimed[1].id].last_error == "timeout"


async def test_two_relays_racing_never_claim_the_same_message(
    uow: SqlUnitOfWorkFactory,
) -> None:
    for i in range(5):
        await _store(uow, _application(f"app_{i}"), messages=4)

    async def claim() -> list[str]:
        taken: list[str] = []
        while True:
            try:
                async with uow() as tx:
                    batch = await tx.outbox.claim(NOW, limit=3, lease_seconds=60)
                    await tx.commit()
            except ConflictError:
                continue
            if not batch:
                return taken
            taken += [m.id for m in batch]

    first, second = await asyncio.gather(claim(), claim())
    assert len(first) + len(second) == 20
    assert not set(first) & set(second)


async def test_idempotency_keys_and_nonces_are_unique(uow: SqlUnitOfWorkFactory) -> None:
    response = StoredResponse("sha-256=:x:", 202, {"application_id": "app_1"}, "app_1")
    async with uow() as tx:
        await tx.idempotency.put("hk-ird", "submit_application", "key-1", response, NOW)
        await tx.commit()
    async with uow() as tx:
        assert await tx.idempotency.get("hk-ird", "submit_application", "key-1") == response
        assert await tx.idempotency.get("mo-dsf", "submit_application", "key-1") is None
        assert await tx.idempotency.get("hk-ird", "withdraw app_1", "key-1") is None
        with pytest.raises(ConflictError):
            await tx.idempotency.put("hk-ird", "submit_application", "key-1", response, NOW)
    expires = NOW + timedelta(minutes=10)
    async with uow() as tx:
        assert await tx.nonces.use("kid-a", "n1", now=NOW, expires_at=expires) is True
        assert await tx.nonces.use("kid-a", "n1", now=NOW, expires_at=expires) is False
        assert await tx.nonces.use("kid-b", "n1", now=NOW, expires_at=expires) is True
        await tx.commit()
    async with uow() as tx:  # an expired nonce is forgotten; the window makes it stale anyway
        later = expires + timedelta(seconds=1)
        assert await tx.nonces.use("kid-a", "n1", now=later, expires_at=later) is True
