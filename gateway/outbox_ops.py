"""Operator commands on the outbox: ``gba-gateway outbox list|retry|requeue``.

Like ``gateway/operations.py``, each command opens the configured database (the same settings
as ``serve``), does one transaction and prints what it did through ``say``. A message made due
here is sent at once on PostgreSQL (the commit notifies every listening relay,
``gateway.store.wakeups``), or else by whichever gateway process's relay next polls (within
``idle_poll``, one second by default); nothing has to be restarted. Every change is put on
the audit chain as ``message.requeued`` (actor ``operator``, subject the application id), so
the case's record shows that a person intervened.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from gateway.bootstrap import database_url
from gateway.domain.errors import ConfigurationError, ConflictError, NotFoundError
from gateway.services.ports import OutboxMessage
from gateway.settings import Settings
from gateway.store.database import create_engine, create_schema
from gateway.store.unit_of_work import SqlUnitOfWork, SqlUnitOfWorkFactory

Say = Callable[[str], None]
STATUSES = ("pending", "in_flight", "delivered", "dead", "withheld")
_ERROR_SHOWN = 200  # characters of the last error on a listing line


async def _store(settings: Settings) -> SqlUnitOfWorkFactory:
    engine = create_engine(database_url(settings), schema=settings.database_schema or None)
    await create_schema(engine)
    return SqlUnitOfWorkFactory(engine)


def _when(at: datetime | None) -> str:
    return at.isoformat(timespec="seconds") if at is not None else "-"


async def outbox_list(
    settings: Settings,
    say: Say,
    status: str | None = None,
    destination: str | None = None,
    limit: int = 50,
) -> int:
    """Print outbox messages in the order they are due; returns how many were printed."""
    if status is not None and status not in STATUSES:
        raise ConfigurationError(f"status must be one of {', '.join(STATUSES)}")
    if limit < 1:
        raise ConfigurationError("limit must be at least 1")
    store = await _store(settings)
    try:
        async with store() as uow:
            rows = await uow.outbox.listing(status=status, destination=destination, limit=limit)
    finally:
        await store.engine.dispose()
    if not rows:
        say("no outbox messages match")
    for row in rows:
        m = row.message
        due = f"lease until {_when(row.lease_until)}" if m.status == "in_flight" else ""
        if m.status == "pending":
            due = f"next attempt {_when(m.next_attempt_at)}"
        elif m.status == "delivered":
            due = f"delivered {_when(row.delivered_at)}"
        error = f"  last error: {m.last_error[:_ERROR_SHOWN]}" if m.last_error else ""
        say(
            f"{m.id}  {m.application_id}  {m.destination}  {m.status}  "
            f"attempts {m.attempts}  {due or 'parked'}{error}"
        )
    return len(rows)


async def outbox_retry(settings: Settings, message_id: str, say: Say) -> None:
    """Make one message due now: pending (waiting for its backoff), dead (its attempts are
    kept), or in flight with an expired lease. A delivered message, or one in flight under a
    live lease (a relay is sending it), is refused."""
    now = datetime.now(UTC)
    store = await _store(settings)
    try:
        async with store() as uow:
            outcome, before = await uow.outbox.retry_now(message_id, now)
            if outcome == "missing" or before is None:
                raise NotFoundError(f"no outbox message {message_id!r}")
            if outcome == "delivered":
                raise ConflictError(f"{message_id} was delivered already: nothing to retry")
            if outcome == "withheld":
                raise ConflictError(
                    f"{message_id} was withheld: the consent it relied on is no longer in force"
                )
            if outcome == "leased":
                raise ConflictError(f"{message_id} is being sent now; retry after its lease")
            _audit(uow, before, now, reset=False)
            await uow.commit()
    finally:
        await store.engine.dispose()
    say(f"{message_id} ({before.status}, {before.attempts} attempt(s)) is due now")


async def outbox_requeue(settings: Settings, say: Say, destination: str | None = None) -> int:
    """Every dead letter (of one destination) back to pending, attempts reset, due now;
    returns how many."""
    now = datetime.now(UTC)
    store = await _store(settings)
    try:
        async with store() as uow:
            requeued = await uow.outbox.requeue_dead(now, destination=destination)
            for message in requeued:
                _audit(uow, message, now, reset=True)
            await uow.commit()
    finally:
        await store.engine.dispose()
    for message in requeued:
        say(f"requeued {message.id}  {message.application_id}  {message.destination}")
    scope = f" to {destination}" if destination else ""
    say(f"{len(requeued)} dead letter(s){scope} requeued, due now")
    return len(requeued)


def _audit(uow: SqlUnitOfWork, message: OutboxMessage, now: datetime, *, reset: bool) -> None:
    uow.audit.record(
        "message.requeued",
        "operator",
        message.application_id,
        {
            "message_id": message.id,
            "agency": message.destination,
            "previous_status": message.status,
            "attempts": message.attempts,
            "attempts_reset": reset,
            "last_error": (message.last_error or "")[:_ERROR_SHOWN] or None,
        },
        now,
    )
