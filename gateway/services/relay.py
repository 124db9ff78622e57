"""The outbox relay: delivers committed messages to partner agencies, exactly once in effect.

A message is claimed with a lease, sent, and marked delivered in the same transaction that
records the acknowledgement on the case. The relay is safe to cancel at any point: a message
whose lease runs out unacknowledged is claimed again and sent again with the same message id,
on which partners de-duplicate. The retry schedule lives in the database; tenacity only
computes the capped, jittered backoff.

Two bounds hold at once: at most ``concurrency`` deliveries in flight in this relay, and at
most ``per_partner`` to any one agency, so a slow partner cannot take every slot. Both are
applied when claiming: :meth:`Relay.run` claims only what it has room for, so a row is never
leased while it waits for a slot, and one partner's backlog never hides another's messages.

When a partner acknowledges, the signed request and the signed answer are kept as evidence
(``gateway.store.delivery`` describes where), and ``message.sent`` and
``message.acknowledged`` go on the audit chain, with the application id as subject.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

import structlog
from tenacity import RetryCallState
from tenacity.wait import wait_exponential, wait_random_exponential

from gateway.domain.application import Application
from gateway.domain.errors import (
    ConflictError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from gateway.services.ports import (
    Acknowledgement,
    Clock,
    OutboxMessage,
    PartnerTransport,
    RelayObserver,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = structlog.get_logger("gateway.relay")
_RECORD_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class RelayPolicy:
    batch: int = 32
    concurrency: int = 8
    per_partner: int = 4
    lease_seconds: int = 60
    max_attempts: int = 12
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    idle_poll: float = 1.0


class Relay:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        transport: PartnerTransport,
        clock: Clock,
        policy: RelayPolicy | None = None,
        settle: Settle | None = None,
        observer: RelayObserver | None = None,
    ) -> None:
        self._uow = uow
        self._transport = transport
        self._clock = clock
        # After an acknowledgement moves a case (e.g. to review): vouchers, automatic
        # decisions, notifications and the save, as every other move (milestones.settle).
        self._settle: Settle = settle or _save
        self.policy = policy or RelayPolicy()
        self._observer: RelayObserver = observer or _Unobserved()
        self._wake = asyncio.Event()
        self._limit = asyncio.Semaphore(self.policy.concurrency)
        self._in_flight: Counter[str] = Counter()  # destination -> claimed, not yet finished
        # Equal jitter at every attempt, the capped ones included: half the exponential wait
        # fixed, the other half random, so messages that failed together spread out.
        half_initial, half_max = self.policy.backoff_initial / 2, self.policy.backoff_max / 2
        self._backoff = wait_exponential(
            multiplier=half_initial, max=half_max
        ) + wait_random_exponential(multiplier=half_initial, max=half_max)

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows: deliver now, not at the next poll."""
        self._wake.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight.total()

    async def run(self) -> None:
        """Deliver until cancelled: claim as many due messages as there are free slots, start
        them, and claim again when woken, when a delivery ends, or every ``idle_poll``."""
        async with asyncio.TaskGroup() as group:
            while True:
                self._wake.clear()  # a wake during the claim is kept for the wait below
                room = min(self.policy.batch, self.policy.concurrency - self.in_flight)
                claimed: list[OutboxMessage] = []
                if room > 0:
                    try:
                        claimed = await self._claim(room)
                    except Exception:  # the database may be briefly away; keep the loop alive
                        log.exception("relay.batch_failed")
                for message in claimed:
                    group.create_task(self._deliver(message))
                if claimed and len(claimed) == room:
                    await asyncio.sleep(0)  # more may be due: claim again at once
                    continue
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation
                # that arrives as the wake does, and the relay would never stop.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.policy.idle_poll):
                        await self._wake.wait()

    async def run_once(self) -> int:
        """Claim one batch of due messages and deliver them all; returns how many were claimed.

        The batch respects the per-partner bound; ``concurrency`` bounds how many of it are
        in flight at once.
        """
        claimed = await self._claim(self.policy.batch)
        if claimed:
            async with asyncio.TaskGroup() as group:
                for message in claimed:
                    group.create_task(self._deliver(message))
        return len(claimed)

    async def _claim(self, limit: int) -> list[OutboxMessage]:
        async with self._uow() as uow:
            claimed = await uow.outbox.claim(
                self._clock.now(),
                limit=limit,
                lease_seconds=self.policy.lease_seconds,
                per_destination=self.policy.per_partner,
                in_flight=dict(self._in_flight),
            )
            if claimed:  # an empty claim changed nothing: no commit to wait for
                await uow.commit()
        if claimed:
            self._in_flight.update(m.destination for m in claimed)
            self._observer.claimed(len(claimed))
            self._observer.in_flight(self.in_flight)
        return claimed

    async def _deliver(self, message: OutboxMessage) -> None:
        """Send one message and record the outcome; never lets one failure stop the others.

        Cancelled, it records nothing: the lease runs out and the message is claimed again.
        """
        try:
            async with self._limit:
                await self._send(message)
        finally:
            self._in_flight[message.destination] -= 1
            if self._in_flight[message.destination] <= 0:
                del self._in_flight[message.destination]
            self._observer.in_flight(self.in_flight)
            self._wake.set()  # a slot is free: the partner may have more waiting

    async def _send(self, message: OutboxMessage) -> None:
        try:
            async with self._uow() as uow:
                agency = await uow.agencies.get(message.destination)
            if agency is None:
                raise PermanentDeliveryError("the destination agency is not registered")
            ack = await self._transport.deliver(agency, message)
        except TransientDeliveryError as exc:
            record = partial(self._failed, message, str(exc.detail), permanent=False)
        except PermanentDeliveryError as exc:
            record = partial(self._failed, message, str(exc.detail), permanent=True)
        except Exception as exc:  # a bug or a poison message: counted, so it ends up dead
            log.exception("outbox.send_crashed", message_id=message.id)
            error = f"unexpected {type(exc).__name__} while sending"
            record = partial(self._failed, message, error, permanent=False)
        else:
            record = partial(self._acknowledged, message, ack)
        await self._record(message, record)

    async def _record(self, message: OutboxMessage, record: Callable[[], Awaitable[None]]) -> None:
        """Commit an outcome, retrying when another handler's outcome changed the case first."""
        for attempt in range(_RECORD_ATTEMPTS):
            try:
                await record()
                return
            except ConflictError:
                await asyncio.sleep(0.01 * (attempt + 1))
            except Exception:  # the lease runs out and the message is sent again (deduplicated)
                log.exception("outbox.record_failed", message_id=message.id)
                return
        log.error("outbox.record_conflicted", message_id=message.id, attempts=_RECORD_ATTEMPTS)

    async def _acknowledged(self, message: OutboxMessage, ack: Acknowledgement) -> None:
        now = self._clock.now()
        async with self._uow() as uow:
            if not await uow.outbox.delivered(message.id, now, ack):
                log.info("outbox.ack_repeated", message_id=message.id, agency=message.destination)
                return  # delivered already: nothing changes
            await _keep_exchange(uow, message, ack, now)
            app = await uow.applications.get(message.application_id)
            queued = False
            if app is not None:
                app.delivered(message.destination, message.id, ack.body_digest, now)
                queued = await self._settle(app, uow, now)
            await uow.commit()
        if queued:
            self.wake()
        since = None if message.created_at is None else (now - message.created_at).total_seconds()
        self._observer.finished("delivered", since)
        log.info("outbox.delivered", message_id=message.id, agency=message.destination)

    async def _failed(self, message: OutboxMessage, error: str, *, permanent: bool) -> None:
        attempts = message.attempts + 1
        now = self._clock.now()
        async with self._uow() as uow:
            if permanent or attempts >= self.policy.max_attempts:
                await uow.outbox.dead(message.id, error)
                app = await uow.applications.get(message.application_id)
                if app is not None:
                    app.delivery_failed(message.destination, message.id, error, now)
                    await uow.applications.save(app)
                event, outcome = "outbox.dead_lettered", "dead"
            else:
                delay = self._backoff(_attempt_state(attempts))
                next_at = now + timedelta(seconds=delay)
                await uow.outbox.retry_later(message.id, next_at, error)
                app = await uow.applications.get(message.application_id)
                if app is not None:  # the case shows its progress, retries included
                    app.delivery_retried(
                        message.destination, message.id, attempts, error, next_at, now
                    )
                    with contextlib.suppress(ConflictError):  # the case moved meanwhile:
                        await uow.applications.save(app)  # the retry itself still stands
                event, outcome = "outbox.retry_scheduled", "retry"
            await uow.commit()
        self._observer.finished(outcome, None)
        log.warning(
            event, message_id=message.id, agency=message.destination, attempts=attempts, error=error
        )


Settle = Callable[[Application, UnitOfWork, datetime], Awaitable[bool]]


class _Unobserved:
    """A relay nobody measures (tests, tools)."""

    def claimed(self, count: int) -> None:
        pass

    def in_flight(self, count: int) -> None:
        pass

    def finished(self, outcome: str, accepted_seconds: float | None) -> None:
        pass


async def _save(app: Application, uow: UnitOfWork, now: datetime) -> bool:
    await uow.applications.save(app)
    return False


async def _keep_exchange(
    uow: UnitOfWork, message: OutboxMessage, ack: Acknowledgement, now: datetime
) -> None:
    """Keep both signed bodies and put the exchange on the audit chain."""
    request_digest = ack.request_headers.get("Content-Digest")
    if request_digest:
        await uow.audit.keep_evidence(request_digest, message.media_type, message.body, now)
    if ack.body:
        media_type = ack.headers.get("Content-Type", "application/octet-stream")
        await uow.audit.keep_evidence(ack.body_digest, media_type, ack.body, now)
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


def _attempt_state(attempt: int) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    return state
