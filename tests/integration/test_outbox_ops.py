"""Operators and dead letters on both databases: ``outbox list|retry|requeue`` against the
relay (``gateway.outbox_ops``)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from gateway.bootstrap import SystemClock
from gateway.cli import main
from gateway.domain.application import Application
from gateway.domain.errors import (
    ConfigurationError,
    ConflictError,
    NotFoundError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from gateway.outbox_ops import outbox_list, outbox_requeue, outbox_retry
from gateway.sandbox.samples import SANDBOX_LEGAL_BASIS
from gateway.services.ports import Acknowledgement, Agency, OutboxMessage
from gateway.services.relay import Relay, RelayPolicy
from gateway.settings import Settings, load_settings
from gateway.store.database import create_engine, create_schema
from gateway.store.tables import agencies, audit_log, outbox
from gateway.store.unit_of_work import SqlUnitOfWorkFactory
from tests.conftest import Database

MATTER = "11440400MB2C00081P4440120002000"
CSB, TAX = "gd-hq-csb", "gd-hq-tax"
SLOW_BACKOFF = RelayPolicy(backoff_initial=600, backoff_max=600)


class Transport:
    """Counts sends per message id; fails the next sends with the errors queued."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.acknowledged: Counter[str] = Counter()
        self.failures: list[Exception] = []

    async def deliver(self, agency: Agency, message: OutboxMessage) -> Acknowledgement:
        self.sent[message.id] += 1
        if self.failures:
            raise self.failures.pop(0)
        self.acknowledged[message.id] += 1
        return Acknowledgement(200, f"{agency.id}-key", "sha-256=:AAAA:")


@pytest.fixture
def settings(tmp_path: Path, database: Database) -> Settings:
    return load_settings(
        environ={},
        mode="sandbox",
        sandbox_dir=tmp_path / "sandbox",
        database_url=database.url,
        database_schema=database.schema,
    )


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[SqlUnitOfWorkFactory]:
    engine = create_engine(settings.database_url or "", schema=settings.database_schema or None)
    await create_schema(engine)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        await conn.execute(
            agencies.insert(),
            [
                {
                    "id": agency_id,
                    "jurisdiction": "GD",
                    "names": {"en": agency_id},
                    "endpoint": f"https://{agency_id}.test/in",
                    "matters": ["*"],
                    "sandbox": True,
                    "updated_at": now,
                }
                for agency_id in (CSB, TAX)
            ],
        )
    factory = SqlUnitOfWorkFactory(engine)
    yield factory
    await factory.close()  # its committer, then the engine


async def _queue(store: SqlUnitOfWorkFactory, app_id: str, destination: str = CSB) -> str:
    now = datetime.now(UTC)
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
        at=now,
        legal_basis=SANDBOX_LEGAL_BASIS.record(),  # an agency case declares it
    )
    message_id = f"msg_{app_id}"
    app.message_queued(destination, message_id, now)
    async with store() as tx:
        await tx.applications.add(app)
        await tx.outbox.add(
            OutboxMessage(
                message_id,
                app_id,
                destination,
                "application/json",
                b"{}",
                next_attempt_at=now,
                relies_on="legal_basis",
            )
        )
        await tx.commit()
    return message_id


async def _message(store: SqlUnitOfWorkFactory, message_id: str) -> OutboxMessage:
    async with store() as tx:
        [row] = [r for r in await tx.outbox.listing(limit=100) if r.message.id == message_id]
    return row.message


def _relay(store: SqlUnitOfWorkFactory, transport: Transport, **policy: float) -> Relay:
    return Relay(store, transport, SystemClock(), replace(SLOW_BACKOFF, **policy))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- dead letters


async def test_a_dead_letter_is_requeued_and_then_delivered_once(
    settings: Settings, store: SqlUnitOfWorkFactory
) -> None:
    dead = await _queue(store, "app_1")
    other = await _queue(store, "app_2", TAX)
    transport = Transport()
    transport.failures += [
        PermanentDeliveryError("gd-hq-csb refused the message (400)"),
        PermanentDeliveryError("gd-hq-tax refused the message (400)"),
    ]
    relay = _relay(store, transport)
    assert await relay.run_once() == 2
    assert (await _message(store, dead)).status == "dead"
    assert await relay.run_once() == 0  # parked: never sent again by itself

    lines: list[str] = []
    await outbox_list(settings, lines.append, status="dead")
    assert len(lines) == 2
    assert lines[0].startswith(f"{dead}  app_1  {CSB}  dead  attempts 1  parked")
    assert lines[0].endswith("last error: gd-hq-csb refused the message (400)")

    said: list[str] = []
    assert await outbox_requeue(settings, said.append, destination=CSB) == 1
    assert said[-1] == f"1 dead letter(s) to {CSB} requeued, due now"
    requeued = await _message(store, dead)
    assert (requeued.status, requeued.attempts) == ("pending", 0)
    assert (await _message(store, other)).status == "dead"  # another destination's stays

    assert await relay.run_once() == 1
    assert await relay.run_once() == 0
    assert transport.sent[dead] == 2
    assert transport.acknowledged == Counter({dead: 1})
    assert (await _message(store, dead)).status == "delivered"
    async with store() as tx:
        timeline = [e.type for e in await tx.applications.timeline("app_1")]
    assert timeline[-3:] == ["message.dead_lettered", "message.delivered", "review.started"]
    async with store.engine.connect() as conn:
        kinds = (
            await conn.execute(
                sa.select(audit_log.c.kind, audit_log.c.actor).where(audit_log.c.subject == "app_1")
            )
        ).all()
    assert ("message.requeued", "operator") in kinds

    assert await outbox_requeue(settings, said.append) == 1  # the other destination's
    assert await outbox_requeue(settings, said.append) == 0
    assert said[-1] == "0 dead letter(s) requeued, due now"


async def test_after_max_attempts_a_message_is_dead_until_requeued(
    settings: Settings, store: SqlUnitOfWorkFactory
) -> None:
    message_id = await _queue(store, "app_1")
    transport = Transport()
    transport.failures += [TransientDeliveryError("gd-hq-csb answered 503")] * 2
    relay = _relay(store, transport, max_attempts=2, backoff_initial=0, backoff_max=0)
    assert await relay.run_once() == 1
    assert await relay.run_once() == 1
    stored = await _message(store, message_id)
    assert (stored.status, stored.attempts) == ("dead", 2)

    await outbox_requeue(settings, lambda _line: None)
    assert await relay.run_once() == 1
    assert (await _message(store, message_id)).status == "delivered"
    assert transport.acknowledged == Counter({message_id: 1})


# --------------------------------------------------------------------------- retry now


async def test_retry_sends_a_message_waiting_for_its_backoff_now(
    settings: Settings, store: SqlUnitOfWorkFactory
) -> None:
    message_id = await _queue(store, "app_1")
    transport = Transport()
    transport.failures.append(TransientDeliveryError("gd-hq-csb answered 503"))
    relay = _relay(store, transport)
    assert await relay.run_once() == 1
    waiting = await _message(store, message_id)
    assert waiting.status == "pending"
    assert waiting.next_attempt_at is not None
    assert waiting.next_attempt_at > datetime.now(UTC) + timedelta(minutes=4)  # half of 10, fixed
    assert await relay.run_once() == 0  # the backoff holds it

    said: list[str] = []
    await outbox_retry(settings, message_id, said.append)
    assert said == [f"{message_id} (pending, 1 attempt(s)) is due now"]

    assert await relay.run_once() == 1
    assert transport.acknowledged == Counter({message_id: 1})
    assert (await _message(store, message_id)).status == "delivered"


async def test_retry_takes_over_an_expired_lease_but_not_a_live_one(
    settings: Settings, store: SqlUnitOfWorkFactory
) -> None:
    message_id = await _queue(store, "app_1")
    async with store() as tx:  # a relay claimed it, then died
        assert await tx.outbox.claim(datetime.now(UTC), limit=1, lease_seconds=600)
        await tx.commit()

    with pytest.raises(ConflictError, match="being sent"):
        await outbox_retry(settings, message_id, lambda _line: None)

    async with store.engine.begin() as conn:  # ... and its lease ran out
        await conn.execute(
            outbox.update().values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    said: list[str] = []
    await outbox_retry(settings, message_id, said.append)
    assert said == [f"{message_id} (in_flight, 0 attempt(s)) is due now"]
    assert (await _message(store, message_id)).status == "pending"
    transport = Transport()
    assert await _relay(store, transport).run_once() == 1
    assert transport.acknowledged == Counter({message_id: 1})

    with pytest.raises(ConflictError, match="delivered already"):
        await outbox_retry(settings, message_id, lambda _line: None)
    with pytest.raises(NotFoundError):
        await outbox_retry(settings, "msg_nope", lambda _line: None)


async def test_list_filters_and_refuses_unknown_statuses(
    settings: Settings, store: SqlUnitOfWorkFactory
) -> None:
    first = await _queue(store, "app_1")
    await _queue(store, "app_2", TAX)
    lines: list[str] = []

    assert await outbox_list(settings, lines.append, destination=CSB) == 1
    assert lines[0].startswith(f"{first}  app_1  {CSB}  pending  attempts 0  next attempt ")
    assert await outbox_list(settings, lines.append, limit=1) == 1
    assert await outbox_list(settings, lines.append, status="delivered") == 0
    assert lines[-1] == "no outbox messages match"
    with pytest.raises(ConfigurationError):
        await outbox_list(settings, lines.append, status="lost")


async def test_the_outbox_commands_list_and_requeue(
    settings: Settings,
    store: SqlUnitOfWorkFactory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dead = await _queue(store, "app_1")
    transport = Transport()
    transport.failures.append(PermanentDeliveryError("gd-hq-csb refused the message (400)"))
    assert await _relay(store, transport).run_once() == 1
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'mode = "sandbox"\ndatabase_url = "{settings.database_url}"\n'
        f'database_schema = "{settings.database_schema}"\nsandbox_dir = "{settings.sandbox_dir}"\n',
        "utf-8",
    )

    listed = await asyncio.to_thread(
        main, ["outbox", "list", "--status", "dead", "--config", str(config)]
    )
    requeued = await asyncio.to_thread(main, ["outbox", "requeue", "--config", str(config)])
    unknown = await asyncio.to_thread(
        main, ["outbox", "retry", "msg_UNKNOWN", "--config", str(config)]
    )

    assert (listed, requeued, unknown) == (0, 0, 2)
    printed = capsys.readouterr()
    assert dead in printed.out
    assert "requeued" in printed.out
    assert "msg_UNKNOWN" in printed.err
    assert (await _message(store, dead)).status == "pending"
