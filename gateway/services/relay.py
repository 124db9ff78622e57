"""The outbox relay: delivers committed messages to partner agencies, exactly once in effect.

A message is claimed with a lease, sent, and marked delivered in the same transaction that
records the acknowledgement on the case. The relay is safe to cancel at any point: a message
whose lease runs out unacknowledged is claimed again and sent again with the same message id,
on which partners de-duplicate. The retry schedule lives in the database; tenacity only
computes the capped, jittered backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import partial

import structlog
from tenacity import RetryCallState
from tenacity.wait import wait_exponential_jitter

from gateway.domain.errors import (
    ConflictError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from gateway.services.ports import (
    Clock,
    OutboxMessage,
    PartnerTransport,
    UnitOfWorkFactory,
)

log = structlog.get_logger("gateway.relay")
_RECORD_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class RelayPolicy:
    batch: int = 32
    concurrency: int = 8
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
    ) -> None:
        self._uow = uow
        self._transport = transport
        self._clock = clock
        self.policy = policy or RelayPolicy()
        self._wake = asyncio.Event()
        self._limit = asyncio.Semaphore(self.policy.concurrency)
        self._backoff = wait_exponential_jitter(
            multiplier=self.policy.backoff_initial, max=self.policy.backoff_max
        )

    def wake(self) -> None:
        """Called after a commit that wrote outbox rows: deliver now, not at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled."""
        while True:
            try:
                sent = await self.run_once()
            except Exception:  # the database may be briefly away; keep the loop alive
                log.exception("relay.batch_failed")
                sent = 0
            if sent < self.policy.batch:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.policy.idle_poll)

    async def run_once(self) -> int:
        """Claim one batch of due messages and deliver them; returns how many were claimed."""
        async with self._uow() as uow:
            claimed = await uow.outbox.claim(
                self._clock.now(), limit=self.policy.batch, lease_seconds=self.policy.lease_seconds
            )
            await uow.commit()
        if claimed:
            async with asyncio.TaskGroup() as group:
                for message in claimed:
                    group.create_task(self._deliver(message))
        return len(claimed)

    async def _deliver(self, message: OutboxMessage) -> None:
        """Send one message and record the outcome; never lets one failure stop the batch."""
        async with self._limit:
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
            else:
                record = partial(self._acknowledged, message, ack.body_digest)
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

    async def _acknowledged(self, message: OutboxMessage, ack_digest: str) -> None:
        now = self._clock.now()
        async with self._uow() as uow:
            await uow.outbox.delivered(message.id, now)
            app = await uow.applications.get(message.application_id)
            if app is not None:
                app.delivered(message.destination, message.id, ack_digest, now)
                await uow.applications.save(app)
            await uow.commit()
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
                event = "outbox.dead_lettered"
            else:
                delay = self._backoff(_attempt_state(attempts))
                await uow.outbox.retry_later(message.id, now + timedelta(seconds=delay), error)
                event = "outbox.retry_scheduled"
            await uow.commit()
        log.warning(
            event, message_id=message.id, agency=message.destination, attempts=attempts, error=error
        )


def _attempt_state(attempt: int) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    return state
