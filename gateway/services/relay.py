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

Transactions are shared, not per message: one claim takes a batch of due messages and reads
their destination agencies in the same transaction, and the outcomes of the sends are
recorded in batches by :class:`~gateway.services.relay_records.OutcomeRecorder` (which says
how a conflict or a failure in one outcome leaves the others recorded). The relay is woken
at once when outbox rows are committed (:meth:`Relay.wake`: in this process by the use
cases, from other processes through the store's wake-ups), and otherwise every ``idle_poll``.

When a partner acknowledges, the signed request and the signed answer are kept as evidence
(``gateway.store.delivery`` describes where), and ``message.sent`` and
``message.acknowledged`` go on the audit chain, with the application id as subject.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

import structlog
from tenacity import RetryCallState
from tenacity.wait import wait_exponential, wait_random_exponential

from gateway.domain import legal_basis
from gateway.domain.agencies import Agency
from gateway.domain.application import Application
from gateway.domain.errors import PermanentDeliveryError, TransientDeliveryError
from gateway.services import evidence, notifications
from gateway.services.ports import (
    BlobStore,
    Clock,
    OutboxMessage,
    PartnerTransport,
    RelayObserver,
    UnitOfWork,
    UnitOfWorkFactory,
)
from gateway.services.relay_records import Outcome, OutcomeRecorder, Settle

log = structlog.get_logger("gateway.relay")


@dataclass(frozen=True, slots=True)
class RelayPolicy:
    batch: int = 128  # the most messages one claim takes
    # In flight at once, and to one partner: enough for one fast partner to take about a
    # thousand messages a second at a few tens of milliseconds from claim to record, while a
    # slow partner holds at most half the slots.
    concurrency: int = 128
    per_partner: int = 64
    lease_seconds: int = 60
    max_attempts: int = 12
    backoff_initial: float = 1.0
    backoff_max: float = 300.0
    idle_poll: float = 1.0
    record_batch: int = 256  # the most outcomes recorded in one transaction
    record_wait: float = 0.002  # how long a lone outcome waits for others to join it


class Relay:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        transport: PartnerTransport,
        clock: Clock,
        policy: RelayPolicy | None = None,
        settle: Settle | None = None,
        observer: RelayObserver | None = None,
        *,
        check_ack_keys: bool = False,
        blobs: BlobStore | None = None,
        notify: bool = False,
    ) -> None:
        """``check_ack_keys``: the transport verifies acknowledgements against the process's
        registry snapshot, which may lag; the key is then checked again in the transaction
        recording the acknowledgement, so a revocation committed anywhere is honoured."""
        self._uow = uow
        self._transport = transport
        self._clock = clock
        self._blobs = blobs  # where an issuer's evidence document is kept (services/evidence)
        self._notify = notify  # tell the applicant when a send is withheld (Art. 22)
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
        self._records = OutcomeRecorder(
            uow,
            # After an acknowledgement moves a case (e.g. to review): vouchers, automatic
            # decisions, notifications and the save, as every other move (milestones.settle).
            settle=settle or _save,
            observer=self._observer,
            backoff=lambda attempt: float(self._backoff(_attempt_state(attempt))),
            max_attempts=self.policy.max_attempts,
            batch=self.policy.record_batch,
            wait=self.policy.record_wait,
            wake=self.wake,
            check_ack_keys=check_ack_keys,
        )

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
            group.create_task(self._records.run())
            while True:
                self._wake.clear()  # a wake during the claim is kept for the wait below
                room = min(self.policy.batch, self.policy.concurrency - self.in_flight)
                claimed: list[tuple[OutboxMessage, Agency | None]] = []
                if room > 0:
                    try:
                        claimed = await self._claim(room)
                    except Exception:  # the database may be briefly away; keep the loop alive
                        log.exception("relay.batch_failed")
                for message, agency in claimed:
                    group.create_task(self._deliver(message, agency))
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
        if not claimed:
            return 0
        try:
            async with asyncio.TaskGroup() as group:
                sends = [group.create_task(self._send_in_turn(m, a)) for m, a in claimed]
            await self._records.record_all([send.result() for send in sends])
        finally:
            for message, _ in claimed:
                self._release(message)
        return len(claimed)

    async def _claim(self, limit: int) -> list[tuple[OutboxMessage, Agency | None]]:
        """Lease up to ``limit`` due messages and read their agencies, in one transaction."""
        in_flight = dict(self._in_flight)

        async def work(uow: UnitOfWork) -> tuple[list[OutboxMessage], dict[str, Agency | None]]:
            claimed = await uow.outbox.claim(
                self._clock.now(),
                limit=limit,
                lease_seconds=self.policy.lease_seconds,
                per_destination=self.policy.per_partner,
                in_flight=in_flight,
            )
            claimed = await _basis_in_force(uow, claimed, self._clock.now(), self._notify)
            return claimed, {d: await uow.agencies.get(d) for d in {m.destination for m in claimed}}

        # inside the group committer's next batch: its turn on the database is one batch's
        claimed, agencies = await self._uow.in_batch(work)
        if not claimed:
            return []
        self._in_flight.update(m.destination for m in claimed)
        self._observer.claimed(len(claimed))
        self._observer.in_flight(self.in_flight)
        return [(m, agencies[m.destination]) for m in claimed]

    async def _deliver(self, message: OutboxMessage, agency: Agency | None) -> None:
        """Send one message and record its outcome; never lets one failure stop the others.

        Cancelled, it records nothing: the lease runs out and the message is claimed again.
        """
        try:
            await self._records.record(await self._send_in_turn(message, agency))
        finally:
            self._release(message)

    def _release(self, message: OutboxMessage) -> None:
        self._in_flight[message.destination] -= 1
        if self._in_flight[message.destination] <= 0:
            del self._in_flight[message.destination]
        self._observer.in_flight(self.in_flight)
        self._wake.set()  # a slot is free: the partner may have more waiting

    async def _send_in_turn(self, message: OutboxMessage, agency: Agency | None) -> Outcome:
        async with self._limit:
            return await self._send(message, agency)

    async def _send(self, message: OutboxMessage, agency: Agency | None) -> Outcome:
        try:
            if agency is None:
                raise PermanentDeliveryError("the destination agency is not registered")
            ack = await self._transport.deliver(agency, message)
        except TransientDeliveryError as exc:
            return Outcome(message, self._clock.now(), error=str(exc.detail))
        except PermanentDeliveryError as exc:
            return Outcome(message, self._clock.now(), error=str(exc.detail), permanent=True)
        except Exception as exc:  # a bug or a poison message: counted, so it ends up dead
            log.exception("outbox.send_crashed", message_id=message.id)
            error = f"unexpected {type(exc).__name__} while sending"
            return Outcome(message, self._clock.now(), error=error)
        blob = None
        if self._blobs is not None and evidence.is_document(ack.body):
            try:  # content-addressed: kept again on a resend, an unused blob is harmless
                blob = await self._blobs.put(_chunks(ack.body), limit=len(ack.body) + 1)
            except Exception as exc:  # the blob store may be briefly away: send again later
                log.warning("evidence.keep_failed", message_id=message.id, error=repr(exc))
                return Outcome(message, self._clock.now(), error="the evidence could not be kept")
        return Outcome(message, self._clock.now(), ack=ack, blob=blob)


async def _basis_in_force(
    uow: UnitOfWork, claimed: list[OutboxMessage], now: datetime, notify: bool = False
) -> list[OutboxMessage]:
    """The claimed messages that still rest on something: the consent they rely on still in
    force, or the legal basis the submitting agency declared. The others are withheld instead
    of sent, in the claim's transaction, and their cases' timelines say so: a resident
    withdrew the consent, or it expired, since the forward was queued (a retry waiting in the
    queue); or the case has neither a consent nor a declared basis (queued before a basis
    was required). A message records what it relies on when queued (``relies_on``), so
    those relying on a basis that cannot lapse (an agency's declared basis, a resident's case
    at home) cost nothing here; only a message queued before that was recorded reads its case."""
    lapsed: dict[str, str] = {}  # message id -> why it is withheld
    unrecorded = [m for m in claimed if m.consent_id is None and m.relies_on is None]
    to_read = sorted({m.application_id for m in unrecorded})
    cases = {a: await uow.applications.get(a) for a in to_read}
    relied = {m.id: m.consent_id for m in claimed if m.consent_id is not None}
    for message in unrecorded:
        app = cases[message.application_id]
        if app is None:
            continue
        if app.relies_on is None:
            lapsed[message.id] = legal_basis.NO_LEGAL_BASIS
        elif app.consent_id is not None:
            relied[message.id] = app.consent_id
    for consent_id in sorted(set(relied.values())):
        consent = await uow.identities.consent(consent_id)
        if consent is None or not consent.active(now):
            withdrawn = consent is None or consent.withdrawn_at is not None
            reason = "consent_withdrawn" if withdrawn else "consent_expired"
            lapsed.update({m: reason for m, c in relied.items() if c == consent_id})
    if not lapsed:
        return claimed
    stopped: dict[str, list[tuple[OutboxMessage, str]]] = {}  # per case, saved once
    for message in claimed:
        reason = lapsed.get(message.id)
        if reason is not None and await uow.outbox.withhold([message.id], reason):
            stopped.setdefault(message.application_id, []).append((message, reason))
            log.info("outbox.withheld", message_id=message.id, reason=reason)
    for application_id, messages in stopped.items():
        app = cases.get(application_id) or await uow.applications.get(application_id)
        if app is None:
            continue
        for message, reason in messages:
            if any(h.agency_id == message.destination for h in app.handlers):
                app.forward_withheld(message.destination, reason, now, message.id)
        if notify:  # the case is on hold: its applicant is told (Art. 22)
            await notifications.record(app, uow, now)
        await uow.applications.save(app)
    return [m for m in claimed if m.id not in lapsed]


class _Unobserved:
    """A relay nobody measures (tests, tools)."""

    def claimed(self, count: int) -> None:
        pass

    def in_flight(self, count: int) -> None:
        pass

    def finished(self, outcome: str, accepted_seconds: float | None) -> None:
        pass

    def recorded(self, count: int, seconds: float) -> None:
        pass


async def _save(app: Application, uow: UnitOfWork, now: datetime) -> bool:
    await uow.applications.save(app)
    return False


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _attempt_state(attempt: int) -> RetryCallState:
    state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
    state.attempt_number = attempt
    return state
