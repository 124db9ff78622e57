"""The relay's outcomes recorded in batches: one transaction for many deliveries.

Each send ends in an :class:`Outcome` (acknowledged, or failed transiently or permanently),
handed to the relay's :class:`OutcomeRecorder`. The recorder takes every outcome waiting (up
to ``record_batch``, after at most ``record_wait`` for more to arrive) and records them all in
one unit of work: the outbox rows marked delivered, retried or dead, the signed exchanges
kept as evidence, the cases moved through the usual settle step, the audit entries sealed
onto the chain once for the batch. One commit, one fsync, one pass through SQLite's gate,
instead of one of each per message.

What a batch must not do is lose an outcome that could have been kept:

- a :class:`ConflictError` on one outcome (its case changed concurrently) rolls the batch
  back; the batch is recorded again without it and the conflicting outcome alone, retried a
  few times as before batching;
- any other error (a conflict raised by the commit, which cannot say whose, a bug in one
  case's settle step) has each outcome of the batch recorded alone, so one poison case
  costs nothing to the others;
- an outcome that still cannot be recorded is logged and left: its row stays in flight and
  is claimed and sent again when its lease runs out (partners de-duplicate on the message
  id), exactly as when the relay is cancelled mid-batch, which rolls the batch back.

The time of a delivery is the time of its acknowledgement, not of the commit that records it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from gateway.domain.application import Application
from gateway.domain.errors import ConflictError, UnknownKeyError
from gateway.services import evidence
from gateway.services.ports import (
    Acknowledgement,
    OutboxMessage,
    RelayObserver,
    StoredBlob,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = structlog.get_logger("gateway.relay")
RECORD_ATTEMPTS = 5  # an outcome recorded alone, retried on conflicts

Settle = Callable[[Application, UnitOfWork, datetime], Awaitable[bool]]
Backoff = Callable[[int], float]  # attempt number -> seconds until the next one


@dataclass(slots=True)
class Outcome:
    """How one send ended: ``ack`` set when the partner acknowledged, else ``error``."""

    message: OutboxMessage
    at: datetime
    ack: Acknowledgement | None = None
    error: str = ""
    permanent: bool = False
    blob: StoredBlob | None = None  # an evidence document's bytes, kept before recording
    done: asyncio.Future[None] | None = field(default=None, repr=False)


@dataclass(slots=True)
class _Effects:
    """What to do once the batch holding an outcome has committed."""

    outcome: str | None = None  # delivered | retry | dead; None: nothing changed
    since: float | None = None
    queued: bool = False
    event: str = ""
    fields: dict[str, object] = field(default_factory=dict)
    warn: bool = False


class _Cases:
    """The cases of a batch, read together at their first use; a case wanted again in the
    same batch (two handlers' acknowledgements) is read again, after the first one's save."""

    def __init__(self, uow: UnitOfWork, application_ids: list[str]) -> None:
        self._uow = uow
        self._wanted = application_ids
        self._read: dict[str, Application] | None = None
        self._used: set[str] = set()

    async def get(self, application_id: str) -> Application | None:
        if application_id in self._used:
            return await self._uow.applications.get(application_id)
        self._used.add(application_id)
        if self._read is None:
            self._read = await self._uow.applications.get_many(self._wanted)
        return self._read.get(application_id)


class _Conflicted(Exception):
    def __init__(self, index: int) -> None:
        self.index = index


class OutcomeRecorder:
    """Gathers outcomes and records them in batches (see the module docstring)."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        settle: Settle,
        observer: RelayObserver,
        backoff: Backoff,
        max_attempts: int,
        batch: int,
        wait: float,
        wake: Callable[[], None],
        check_ack_keys: bool = False,
    ) -> None:
        self._uow = uow
        self._settle = settle
        self._observer = observer
        self._backoff = backoff
        self._max_attempts = max_attempts
        self._batch = max(batch, 1)
        self._wait = wait
        self._wake_relay = wake
        self._check_ack_keys = check_ack_keys
        self._queue: collections.deque[Outcome] = collections.deque()
        self._ready = asyncio.Event()

    @property
    def waiting(self) -> int:
        return len(self._queue)

    async def record(self, outcome: Outcome) -> None:
        """Queue ``outcome`` and return once its batch has ended (recorded or given up)."""
        outcome.done = asyncio.get_running_loop().create_future()
        self._queue.append(outcome)
        self._ready.set()
        await outcome.done

    async def record_all(self, outcomes: list[Outcome]) -> None:
        """Record ``outcomes`` now, in batches of at most ``record_batch`` (``run_once``)."""
        for start in range(0, len(outcomes), self._batch):
            await self._record_batch(outcomes[start : start + self._batch])

    async def run(self) -> None:
        """Record batches until cancelled; a batch cancelled half-way is rolled back."""
        while True:
            await self._ready.wait()
            if self._wait > 0 and len(self._queue) < self._batch:
                await asyncio.sleep(self._wait)  # let the sends ending together join
            self._ready.clear()
            while self._queue:
                batch = [self._queue.popleft() for _ in range(min(self._batch, len(self._queue)))]
                try:
                    await self._record_batch(batch)
                except Exception:  # a bug must not stop the relay: the leases run out
                    log.exception("outbox.record_batch_crashed", size=len(batch))
                finally:
                    for outcome in batch:  # cancelled too: the sender stops waiting
                        if outcome.done is not None and not outcome.done.done():
                            outcome.done.set_result(None)

    async def _record_batch(self, batch: list[Outcome]) -> None:
        started = time.perf_counter()
        pending, alone = list(batch), []
        while pending:
            try:
                effects = await self._commit(pending)
            except _Conflicted as conflict:  # that one alone, the others together again
                alone.append(pending.pop(conflict.index))
                continue
            except Exception:  # whose, if anyone's, is not known: each alone
                if len(pending) > 1:
                    log.warning("outbox.batch_record_failed", size=len(pending))
                alone.extend(pending)
                break
            self._observer.recorded(len(pending), time.perf_counter() - started)
            self._done(pending, effects)
            pending = []
        for outcome in alone:
            await self._record_alone(outcome)

    async def _commit(self, outcomes: list[Outcome]) -> list[_Effects]:
        """The outcomes in one unit of work, run inside the group committer's next batch (its
        statements without an await each, its commit shared with concurrent requests)."""

        async def work(uow: UnitOfWork) -> list[_Effects]:
            effects = []
            checked = await self._checked(uow, outcomes)
            marked = await uow.outbox.delivered_many(
                [(o.message, o.at, o.ack) for o in checked if o.ack is not None]
            )
            cases = _Cases(uow, [o.message.application_id for o in checked])
            for index, outcome in enumerate(checked):
                try:
                    effects.append(await self._apply(uow, outcome, marked, cases))
                except ConflictError as error:
                    if len(checked) == 1:
                        raise
                    raise _Conflicted(index) from error
            return effects

        return await self._uow.in_batch(work)

    async def _record_alone(self, outcome: Outcome) -> None:
        """One outcome in its own transaction, retried when its case moved meanwhile."""
        message = outcome.message
        for attempt in range(RECORD_ATTEMPTS):
            started = time.perf_counter()
            try:
                [effects] = await self._commit([outcome])
            except ConflictError:
                await asyncio.sleep(0.01 * (attempt + 1))
                continue
            except Exception:  # the lease runs out and the message is sent again (deduplicated)
                log.exception("outbox.record_failed", message_id=message.id)
                return
            self._observer.recorded(1, time.perf_counter() - started)
            self._done([outcome], [effects])
            return
        log.error("outbox.record_conflicted", message_id=message.id, attempts=RECORD_ATTEMPTS)

    def _done(self, outcomes: list[Outcome], effects: list[_Effects]) -> None:
        """After the commit: metrics, logs, and a wake when the batch queued forwards."""
        queued = False
        for outcome, effect in zip(outcomes, effects, strict=True):
            queued = queued or effect.queued
            if effect.outcome is not None:
                self._observer.finished(effect.outcome, effect.since)
            emit = log.warning if effect.warn else log.info
            emit(effect.event, message_id=outcome.message.id, **effect.fields)  # type: ignore[arg-type]
        if queued:
            self._wake_relay()

    async def _checked(self, uow: UnitOfWork, outcomes: list[Outcome]) -> list[Outcome]:
        """The transport verified each acknowledgement against the process's registry
        snapshot, which may lag a revocation committed elsewhere: check each key again here,
        where the acknowledgement is recorded. A key's validity is one interval of time, so
        checking it at the first and last acknowledgement of the batch covers those between;
        an acknowledgement whose key fails counts as a failed attempt (sent again later)."""
        if not self._check_ack_keys:
            return outcomes
        spans: dict[str, tuple[datetime, datetime]] = {}
        for outcome in outcomes:
            if outcome.ack is not None:
                first, last = spans.get(outcome.ack.key_id, (outcome.at, outcome.at))
                spans[outcome.ack.key_id] = (min(first, outcome.at), max(last, outcome.at))
        refused = set()
        for kid, (first, last) in spans.items():
            try:
                for at in {first, last}:
                    await uow.agencies.still_valid(kid, at)
            except UnknownKeyError:
                refused.add(kid)
        error = "the acknowledgement's signing key was revoked or is not valid now"
        return [
            Outcome(o.message, o.at, error=error)
            if o.ack is not None and o.ack.key_id in refused
            else o
            for o in outcomes
        ]

    async def _apply(
        self, uow: UnitOfWork, outcome: Outcome, marked: set[str], cases: _Cases
    ) -> _Effects:
        if outcome.ack is not None:
            return await self._acknowledged(uow, outcome, outcome.ack, marked, cases)
        return await self._failed(uow, outcome, cases)

    async def _acknowledged(
        self,
        uow: UnitOfWork,
        outcome: Outcome,
        ack: Acknowledgement,
        marked: set[str],
        cases: _Cases,
    ) -> _Effects:
        """The row is marked and the exchange kept (``delivered_many``): audit, move the case."""
        message, at = outcome.message, outcome.at
        agency = {"agency": message.destination}
        if message.id not in marked:
            return _Effects(event="outbox.ack_repeated", fields=agency)  # nothing changes
        audit_exchange(uow, message, ack, at)
        app = await cases.get(message.application_id)
        queued = False
        if app is not None:
            if app.evidence_of_request(message.id) is not None:  # an issuer's answer
                kept = evidence.record_answer(app, message, ack, at, outcome.blob)
                if kept is not None:
                    await uow.materials.add(kept)
            else:
                app.delivered(message.destination, message.id, ack.body_digest, at)
            queued = await self._settle(app, uow, at)
        since = None if message.created_at is None else (at - message.created_at).total_seconds()
        return _Effects("delivered", since, queued, "outbox.delivered", agency)

    async def _failed(self, uow: UnitOfWork, outcome: Outcome, cases: _Cases) -> _Effects:
        message, error, at = outcome.message, outcome.error, outcome.at
        attempts = message.attempts + 1
        queued = False
        if outcome.permanent or attempts >= self._max_attempts:
            await uow.outbox.dead(message.id, error)
            app = await cases.get(message.application_id)
            if app is not None:
                app.delivery_failed(message.destination, message.id, error, at)
                if evidence.undeliverable(app, message, at):  # the applicant is asked now
                    queued = await self._settle(app, uow, at)
                else:
                    await uow.applications.save(app)
            event, result = "outbox.dead_lettered", "dead"
        else:
            next_at = at + timedelta(seconds=self._backoff(attempts))
            await uow.outbox.retry_later(message.id, next_at, error)
            app = await cases.get(message.application_id)
            if app is not None:  # the case shows its progress, retries included
                app.delivery_retried(message.destination, message.id, attempts, error, next_at, at)
                with contextlib.suppress(ConflictError):  # the case moved meanwhile:
                    await uow.applications.save(app)  # the retry itself still stands
            event, result = "outbox.retry_scheduled", "retry"
        fields = {"agency": message.destination, "attempts": attempts, "error": error}
        return _Effects(result, None, queued, event, fields, warn=True)


def audit_exchange(
    uow: UnitOfWork, message: OutboxMessage, ack: Acknowledgement, now: datetime
) -> None:
    """Put the exchange on the audit chain (its bodies are kept by ``delivered_many``)."""
    request_digest = ack.request_headers.get("Content-Digest")
    uow.audit.record(
        "message.sent",
        "gateway",
        message.application_id,
        {
            "message_id": message.id,
            "agency": message.destination,
            "method": "POST",
            "target": ack.target,
            "content_digest": request_digest,
            "signature": ack.request_headers.get("Signature"),
            "signature_input": ack.request_headers.get("Signature-Input"),
            "idempotency_key": ack.request_headers.get("Idempotency-Key"),
        },
        now,
    )
    uow.audit.record(
        "message.acknowledged",
        message.destination,
        message.application_id,
        {
            "message_id": message.id,
            "status": ack.status,
            "key_id": ack.key_id,
            "content_digest": ack.body_digest,
            "signature": ack.headers.get("Signature"),
            "signature_input": ack.headers.get("Signature-Input"),
        },
        now,
    )
