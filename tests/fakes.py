"""In-memory fakes of the service ports (``gateway.services.ports``) for unit tests.

They follow the documented behaviour of the ports and of the SQL store that implements them:

- :class:`FakeUnitOfWorkFactory` holds the committed state. Each :class:`FakeUnitOfWork` is one
  transaction: its writes are validated when made, kept aside, and applied (validated again)
  only on :meth:`FakeUnitOfWork.commit`; leaving the ``async with`` block without a commit
  discards them. Reads see the committed state plus the transaction's own writes.
- Every repository call yields to the event loop once, as a database round trip would, so
  concurrent use cases interleave as they would against a real database.
- Applications are deep-copied on the way in and out: a test cannot change storage by
  mutating an object it holds.

Inspection helpers on the factory (``applications()``, ``messages()``, ``timeline()`` ...)
read the committed state only.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

from gateway.domain.application import Application
from gateway.domain.certificates import VALID, Certificate
from gateway.domain.complaints import Complaint
from gateway.domain.errors import (
    ConflictError,
    DeliveryError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from gateway.domain.identity import (
    CanonicalIdentity,
    Consent,
    Delegation,
    IdentityLink,
    LinkStatus,
    Person,
)
from gateway.domain.matters import Assurance
from gateway.services.ports import (
    Acknowledgement,
    Agency,
    OutboxMessage,
    StoredResponse,
    TimelineEntry,
)

# --------------------------------------------------------------------------- storage state


@dataclass(slots=True)
class StoredMessage:
    """One outbox row: the message plus the columns the port does not expose."""

    message: OutboxMessage
    lease_until: datetime | None = None
    delivered_at: datetime | None = None
    ack: Acknowledgement | None = None  # the signed exchange kept at delivery


@dataclass(slots=True)
class StoredKey:
    response: StoredResponse
    created_at: datetime


@dataclass(slots=True)
class State:
    """Everything a database would hold. Only ever replaced whole, on commit."""

    applications: dict[str, Application] = field(default_factory=dict)
    timelines: dict[str, list[TimelineEntry]] = field(default_factory=dict)
    outbox: dict[str, StoredMessage] = field(default_factory=dict)
    idempotency: dict[tuple[str, str, str], StoredKey] = field(default_factory=dict)
    nonces: dict[tuple[str, str], datetime] = field(default_factory=dict)
    audit: list[tuple[str, str, str, dict[str, Any], datetime]] = field(default_factory=list)
    evidence: dict[str, bytes] = field(default_factory=dict)
    persons: dict[str, Person] = field(default_factory=dict)
    accounts: dict[tuple[str, str], str] = field(default_factory=dict)  # -> person id
    links: list[IdentityLink] = field(default_factory=list)
    logins: dict[str, tuple[str, CanonicalIdentity]] = field(default_factory=dict)
    consents: dict[str, Consent] = field(default_factory=dict)
    delegations: dict[str, Delegation] = field(default_factory=dict)
    complaints: dict[str, Complaint] = field(default_factory=dict)
    certificates: dict[str, Certificate] = field(default_factory=dict)


Operation = Callable[[State], None]


def _stored_copy(app: Application) -> Application:
    """What storage keeps of an application: its state, without pending events."""
    stored = copy.deepcopy(app)
    stored.pending_events = []
    return stored


def _append_events(state: State, app: Application) -> None:
    entries = state.timelines.setdefault(app.id, [])
    last = entries[-1].seq if entries else 0
    entries.extend(
        TimelineEntry(last + i, e.type, e.at, e.actor, copy.deepcopy(e.data))
        for i, e in enumerate(app.pending_events, start=1)
    )
    state.audit.extend((e.type, e.actor, app.id, dict(e.data), e.at) for e in app.pending_events)


# --------------------------------------------------------------------------- repositories


class FakeApplications:
    """:class:`~gateway.services.ports.ApplicationRepository` in memory."""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    async def add(self, application: Application) -> None:
        await self._uow.io()
        snapshot = copy.deepcopy(application)

        def op(state: State) -> None:
            if snapshot.id in state.applications:
                raise ValueError(f"duplicate application id {snapshot.id}")
            stored = _stored_copy(snapshot)
            stored.version = 1
            state.applications[snapshot.id] = stored
            state.timelines[snapshot.id] = []
            _append_events(state, snapshot)

        self._uow.write(op)
        application.version = 1
        application.pending_events.clear()

    async def get(self, application_id: str) -> Application | None:
        await self._uow.io()
        found = self._uow.view().applications.get(application_id)
        return _stored_copy(found) if found is not None else None

    async def get_many(self, application_ids: Sequence[str]) -> dict[str, Application]:
        await self._uow.io()
        view = self._uow.view().applications
        return {i: _stored_copy(view[i]) for i in dict.fromkeys(application_ids) if i in view}

    async def save(self, application: Application) -> None:
        """Optimistic concurrency: the stored version must be the one that was read."""
        await self._uow.io()
        snapshot = copy.deepcopy(application)

        def op(state: State) -> None:
            current = state.applications.get(snapshot.id)
            if current is None or current.version != snapshot.version:
                raise ConflictError("the application was changed concurrently; retry")
            stored = _stored_copy(snapshot)
            stored.version = snapshot.version + 1
            state.applications[snapshot.id] = stored
            _append_events(state, snapshot)

        self._uow.write(op)
        application.version += 1
        application.pending_events.clear()

    async def timeline(self, application_id: str) -> list[TimelineEntry]:
        await self._uow.io()
        return list(self._uow.view().timelines.get(application_id, []))

    async def assurance_relying_on(self, consent_id: str) -> Assurance | None:
        await self._uow.io()
        levels = [
            a.filed_assurance
            for a in self._uow.view().applications.values()
            if a.consent_id == consent_id and a.filed_assurance is not None
        ]
        return max(levels, key=lambda level: level.rank, default=None)

    async def awaiting_recheck(
        self, agency_id: str, *, limit: int, after: str | None
    ) -> list[Application]:
        await self._uow.io()
        apps = sorted(
            (
                a
                for a in self._uow.view().applications.values()
                if a.recheck == "queued"
                and a.lead.agency_id == agency_id
                and (after is None or a.id > after)
            ),
            key=lambda a: a.id,
        )
        return [_stored_copy(a) for a in apps[:limit]]

    async def owed_overdue(self, today: str, *, limit: int) -> list[Application]:
        await self._uow.io()
        apps = sorted(
            (
                a
                for a in self._uow.view().applications.values()
                if a.owed_due is not None and a.owed_due < today
            ),
            key=lambda a: a.id,
        )
        return [_stored_copy(a) for a in apps[:limit]]

    async def evidence_overdue(self, now: datetime, *, limit: int) -> list[Application]:
        await self._uow.io()
        apps = sorted(
            (
                a
                for a in self._uow.view().applications.values()
                if any(
                    e.state.value == "requested" and e.due_at and e.due_at < now for e in a.evidence
                )
            ),
            key=lambda a: a.id,
        )
        return [_stored_copy(a) for a in apps[:limit]]

    async def handled_by(
        self, agency_id: str, *, limit: int, after: str | None
    ) -> list[Application]:
        await self._uow.io()
        apps = sorted(
            (
                a
                for a in self._uow.view().applications.values()
                if any(h.agency_id == agency_id for h in a.handlers)
                and (after is None or a.id > after)
            ),
            key=lambda a: a.id,
        )
        return [_stored_copy(a) for a in apps[:limit]]


class FakeOutbox:
    """:class:`~gateway.services.ports.OutboxRepository` in memory, with claim leases."""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    async def add(self, message: OutboxMessage) -> None:
        await self._uow.io()
        if message.next_attempt_at is None:
            raise ValueError("an outbox message needs its first attempt time")
        row = copy.deepcopy(message)
        row.status, row.attempts, row.last_error = "pending", 0, None
        row.created_at = message.next_attempt_at  # as the store: committed, and first due, now

        def op(state: State) -> None:
            if row.id in state.outbox:
                raise ValueError(f"duplicate outbox message id {row.id}")
            state.outbox[row.id] = StoredMessage(copy.deepcopy(row))

        self._uow.write(op)

    async def claim(
        self,
        now: datetime,
        *,
        limit: int,
        lease_seconds: int,
        per_destination: int | None = None,
        in_flight: Mapping[str, int] | None = None,
    ) -> list[OutboxMessage]:
        """Due messages (pending and due, or in flight with an expired lease), oldest first,
        at most ``per_destination`` less ``in_flight`` for each destination.

        Rows claimed by another open transaction are skipped (``SKIP LOCKED``).
        """
        await self._uow.io()
        locked = self._uow.factory.locked_by_others(self._uow)
        due = sorted(
            (
                row
                for row in self._uow.view().outbox.values()
                if row.message.id not in locked
                and (
                    (row.message.status == "pending" and _le(row.message.next_attempt_at, now))
                    or (
                        row.message.status == "in_flight"
                        and row.lease_until is not None
                        and row.lease_until < now
                    )
                )
            ),
            key=lambda row: (row.message.next_attempt_at or now, row.message.id),
        )
        if per_destination is not None:
            room = {d: per_destination - n for d, n in (in_flight or {}).items()}
            chosen = []
            for row in due:
                destination = row.message.destination
                if room.get(destination, per_destination) > 0:
                    room[destination] = room.get(destination, per_destination) - 1
                    chosen.append(row)
            due = chosen
        due = due[: max(limit, 0)]
        ids = [row.message.id for row in due]
        lease_until = now + timedelta(seconds=lease_seconds)

        def op(state: State) -> None:
            for message_id in ids:
                row = state.outbox[message_id]
                row.message.status = "in_flight"
                row.lease_until = lease_until

        self._uow.write(op)
        self._uow.lock(ids)
        claimed = []
        for row in due:
            message = copy.deepcopy(row.message)
            message.status = "in_flight"
            claimed.append(message)
        return claimed

    async def relying_on(self, consent_id: str) -> list[OutboxMessage]:
        await self._uow.io()
        return [
            copy.deepcopy(row.message)
            for _, row in sorted(self._uow.view().outbox.items())
            if row.message.consent_id == consent_id
            and row.message.status in ("pending", "in_flight")
        ]

    async def withhold(self, message_ids: Sequence[str], reason: str) -> set[str]:
        await self._uow.io()
        view = self._uow.view().outbox
        ids = {
            i
            for i in message_ids
            if i in view and view[i].message.status in ("pending", "in_flight")
        }

        def op(state: State) -> None:
            for message_id in ids:
                row = state.outbox[message_id]
                row.message.status = "withheld"
                row.message.last_error = reason
                row.lease_until = None

        self._uow.write(op)
        return ids

    async def delivered(
        self, message_id: str, at: datetime, ack: Acknowledgement | None = None
    ) -> bool:
        """False, changing nothing, when the message was delivered already."""
        await self._uow.io()
        row = self._uow.view().outbox.get(message_id)
        if row is None or row.message.status == "delivered":
            return False

        def op(state: State) -> None:
            row = state.outbox.get(message_id)
            if row is None:
                return
            if row.message.status == "delivered":  # the SQL UPDATE would wait, then match 0
                raise ConflictError("the message was delivered meanwhile; retry")
            row.message.status = "delivered"
            row.message.last_error = None
            row.delivered_at = at
            row.lease_until = None
            row.ack = ack

        self._uow.write(op)
        return True

    async def delivered_many(
        self, deliveries: Sequence[tuple[OutboxMessage, datetime, Acknowledgement]]
    ) -> set[str]:
        """Each as :meth:`delivered`, with the bodies kept as the audit trail keeps them."""
        marked = set()
        for message, at, ack in deliveries:
            if not await self.delivered(message.id, at, ack):
                continue
            marked.add(message.id)
            request_digest = ack.request_headers.get("Content-Digest")
            kept = [(request_digest, message.body)] if request_digest else []
            kept += [(ack.body_digest, ack.body)] if ack.body else []
            for digest, body in kept:
                self._uow.write(lambda state, d=digest, b=body: state.evidence.setdefault(d, b))
        return marked

    async def retry_later(self, message_id: str, at: datetime, error: str) -> None:
        await self._uow.io()

        def op(state: State) -> None:
            row = state.outbox.get(message_id)
            if row is not None and row.message.status == "in_flight":
                row.message.status = "pending"
                row.message.next_attempt_at = at
                row.message.attempts += 1
                row.message.last_error = error[:2000]
                row.lease_until = None

        self._uow.write(op)

    async def dead(self, message_id: str, error: str) -> None:
        await self._uow.io()

        def op(state: State) -> None:
            row = state.outbox.get(message_id)
            if row is not None and row.message.status == "in_flight":
                row.message.status = "dead"
                row.message.attempts += 1
                row.message.last_error = error[:2000]
                row.lease_until = None

        self._uow.write(op)


def _le(when: datetime | None, now: datetime) -> bool:
    return when is not None and when <= now


class FakeIdempotency:
    """:class:`~gateway.services.ports.IdempotencyStore`: one response per (agency, scope,
    key)."""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    async def get(self, agency_id: str, scope: str, key: str) -> StoredResponse | None:
        await self._uow.io()
        found = self._uow.view().idempotency.get((agency_id, scope, key))
        return copy.deepcopy(found.response) if found is not None else None

    async def put(
        self, agency_id: str, scope: str, key: str, response: StoredResponse, at: datetime
    ) -> None:
        await self._uow.io()
        stored = StoredKey(copy.deepcopy(response), at)

        def op(state: State) -> None:
            if (agency_id, scope, key) in state.idempotency:
                raise ConflictError("the Idempotency-Key is being used by another request")
            state.idempotency[(agency_id, scope, key)] = copy.deepcopy(stored)

        self._uow.write(op)


class FakeNonces:
    """:class:`~gateway.services.ports.NonceStore`: False when a nonce is reused."""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    async def use(self, key_id: str, nonce: str, *, now: datetime, expires_at: datetime) -> bool:
        await self._uow.io()
        view = self._uow.view()
        expired = [k for k, until in view.nonces.items() if k[0] == key_id and until < now]
        fresh = (key_id, nonce) not in view.nonces or (key_id, nonce) in expired

        def op(state: State) -> None:
            for k in expired:
                state.nonces.pop(k, None)
            if (key_id, nonce) in state.nonces:
                # Someone else recorded it since: like the unique row, the later insert loses.
                return
            state.nonces[(key_id, nonce)] = expires_at

        self._uow.write(op)
        return fresh


# --------------------------------------------------------------------------- unit of work


class FakeAudit:
    """:class:`~gateway.services.ports.AuditTrail` that keeps committed records in order."""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    def record(
        self, kind: str, actor: str, subject: str, data: Mapping[str, Any], at: datetime
    ) -> None:
        entry = (kind, actor, subject, dict(data), at)
        self._uow.write(lambda state: state.audit.append(entry))

    async def keep_evidence(self, digest: str, media_type: str, body: bytes, at: datetime) -> None:
        self._uow.write(lambda state: state.evidence.setdefault(digest, body))


class FakeCertificates:
    """:class:`~gateway.services.ports.CertificateRepository` in memory."""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    async def add(self, certificate: Certificate) -> None:
        await self._uow.io()
        kept = copy.deepcopy(certificate)
        self._uow.write(lambda state: state.certificates.__setitem__(kept.id, kept))

    async def get(self, certificate_id: str) -> Certificate | None:
        await self._uow.io()
        return copy.deepcopy(self._uow.view().certificates.get(certificate_id))

    async def of_subject(self, subject: str) -> list[Certificate]:
        await self._uow.io()
        found = self._uow.view().certificates.values()
        return sorted(
            (copy.deepcopy(c) for c in found if c.subject == subject),
            key=lambda c: (c.issued_at, c.id),
        )

    async def revoked(self, certificate: Certificate) -> None:
        await self._uow.io()
        kept = copy.deepcopy(certificate)

        def op(state: State) -> None:
            if state.certificates[kept.id].status != VALID:
                raise ConflictError("the certificate was revoked meanwhile")
            state.certificates[kept.id] = kept

        self._uow.write(op)

    async def delivered(self, certificate: Certificate) -> None:
        await self._uow.io()
        kept = copy.deepcopy(certificate)

        def op(state: State) -> None:
            if state.certificates[kept.id].delivered_at is None:
                state.certificates[kept.id].delivered_at = kept.delivered_at

        self._uow.write(op)


class FakeComplaints:
    """:class:`~gateway.services.ports.ComplaintRepository` in memory."""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    async def add(self, complaint: Complaint) -> None:
        await self._uow.io()
        kept = copy.deepcopy(complaint)
        self._uow.write(lambda state: state.complaints.__setitem__(kept.id, kept))

    async def get(self, complaint_id: str) -> Complaint | None:
        await self._uow.io()
        return copy.deepcopy(self._uow.view().complaints.get(complaint_id))

    async def answered(self, complaint: Complaint) -> None:
        await self._uow.io()
        kept = copy.deepcopy(complaint)

        def op(state: State) -> None:
            if state.complaints[kept.id].outcome is not None:
                raise ConflictError("the complaint was answered meanwhile")
            state.complaints[kept.id] = kept

        self._uow.write(op)

    async def of_application(self, application_id: str) -> list[Complaint]:
        await self._uow.io()
        found = self._uow.view().complaints.values()
        return [copy.deepcopy(c) for c in found if c.application_id == application_id]


class FakeIdentities:
    """:class:`~gateway.services.ports.IdentityRepository` in memory, with the unique index
    that links a document to one person at most."""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow

    async def _view(self) -> State:
        await self._uow.io()
        return self._uow.view()

    async def person(self, person_id: str) -> Person | None:
        return (await self._view()).persons.get(person_id)

    async def account_person(self, provider: str, subject: str) -> Person | None:
        state = await self._view()
        found = state.accounts.get((provider, subject))
        return state.persons[found] if found else None

    async def linked(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[IdentityLink, Person]]:
        state = await self._view()
        return {
            link.key: (link, state.persons[link.person_id])
            for link in state.links
            if link.status is LinkStatus.LINKED and link.key in set(keys)
        }

    async def add_person(self, person: Person) -> None:
        await self._uow.io()
        self._uow.write(lambda state: state.persons.__setitem__(person.id, person))

    async def link_account(self, provider: str, subject: str, person_id: str, at: datetime) -> None:
        await self._uow.io()
        self._uow.write(lambda state: state.accounts.setdefault((provider, subject), person_id))

    async def add_links(self, links: Sequence[IdentityLink]) -> None:
        await self._uow.io()

        def op(state: State) -> None:
            taken = {x.key for x in state.links if x.status is LinkStatus.LINKED}
            for link in links:
                if link.status is LinkStatus.LINKED and link.key in taken:
                    raise ConflictError("a document was linked to another person meanwhile")
                taken |= {link.key} if link.status is LinkStatus.LINKED else set()
            state.links.extend(links)

        self._uow.write(op)

    async def links_of(self, person_id: str) -> list[IdentityLink]:
        return [x for x in (await self._view()).links if x.person_id == person_id]

    async def conflicts(self) -> list[IdentityLink]:
        return [x for x in (await self._view()).links if x.status is LinkStatus.CONFLICT]

    async def add_login(
        self, login_id: str, person_id: str, identity: CanonicalIdentity, at: datetime
    ) -> None:
        await self._uow.io()
        self._uow.write(lambda state: state.logins.__setitem__(login_id, (person_id, identity)))

    async def login(self, login_id: str) -> tuple[str, CanonicalIdentity] | None:
        return (await self._view()).logins.get(login_id)

    async def latest_identity(self, person_id: str) -> CanonicalIdentity | None:
        mine = [i for p, i in (await self._view()).logins.values() if p == person_id]
        return mine[-1] if mine else None

    async def add_consent(self, consent: Consent) -> None:
        await self.save_consent(consent)

    async def save_consent(self, consent: Consent) -> None:
        await self._uow.io()
        self._uow.write(lambda state: state.consents.__setitem__(consent.id, consent))

    async def end_grants(self, person_id: str, now: datetime) -> int:
        return 0  # the in-memory unit of work keeps no OpenID Provider state

    async def consent(self, consent_id: str) -> Consent | None:
        return (await self._view()).consents.get(consent_id)

    async def consents_of(self, person_id: str) -> list[Consent]:
        return [c for c in (await self._view()).consents.values() if c.person_id == person_id]

    async def add_delegation(self, delegation: Delegation) -> None:
        await self.save_delegation(delegation)

    async def save_delegation(self, delegation: Delegation) -> None:
        await self._uow.io()
        self._uow.write(lambda state: state.delegations.__setitem__(delegation.id, delegation))

    async def delegation(self, delegation_id: str) -> Delegation | None:
        return (await self._view()).delegations.get(delegation_id)

    async def delegations_of(self, person_id: str) -> list[Delegation]:
        held = {x.document for x in await self.links_of(person_id) if x.status is LinkStatus.LINKED}
        return [
            d
            for d in (await self._view()).delegations.values()
            if person_id in (d.agent_id, d.principal_id) or d.principal_document in held
        ]


class FakeUnitOfWork:
    """One transaction over the factory's state. Rolls back unless :meth:`commit` is called."""

    _numbers = itertools.count(1)

    def __init__(self, factory: FakeUnitOfWorkFactory) -> None:
        self.factory = factory
        self.number = next(self._numbers)
        self._operations: list[Operation] = []
        self._active = False
        self.committed = False
        self.applications = FakeApplications(self)
        self.outbox = FakeOutbox(self)
        self.idempotency = FakeIdempotency(self)
        self.nonces = FakeNonces(self)
        self.agencies = factory.agencies
        self.audit = FakeAudit(self)
        self.identities = FakeIdentities(self)
        self.complaints = FakeComplaints(self)
        self.certificates = FakeCertificates(self)

    async def __aenter__(self) -> Self:
        if self._active or self.committed:
            raise RuntimeError("a unit of work is entered once")
        await self.factory.io()
        self._active = True
        self.factory.opened += 1
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.committed:
            self._operations.clear()
            self.factory.rolled_back += 1
        self._active = False
        self.factory.unlock(self)

    async def commit(self) -> None:
        self._check_active()
        await self.factory.io()
        draft = copy.deepcopy(self.factory.state)
        for operation in self._operations:
            operation(draft)  # validated again against what others committed meanwhile
        self.factory.state = draft
        self._operations.clear()
        self.committed = True
        self.factory.commits += 1

    async def io(self) -> None:
        self._check_active()
        await self.factory.io()

    def view(self) -> State:
        """The committed state with this transaction's own writes applied."""
        self._check_active()
        draft = copy.deepcopy(self.factory.state)
        for operation in self._operations:
            operation(draft)
        return draft

    def write(self, operation: Operation) -> None:
        operation(self.view())  # raises now, as the SQL statement would
        self._operations.append(operation)

    def lock(self, ids: Iterable[str]) -> None:
        self.factory.locks.update(dict.fromkeys(ids, self.number))

    def _check_active(self) -> None:
        if not self._active or self.committed:
            raise RuntimeError("the unit of work is used outside its 'async with' block")


class FakeUnitOfWorkFactory:
    """:class:`~gateway.services.ports.UnitOfWorkFactory` over one in-memory database."""

    def __init__(self, *, yield_on_io: bool = True) -> None:
        self.state = State()
        self.yield_on_io = yield_on_io
        self.locks: dict[str, int] = {}  # outbox id -> number of the uow that claimed it
        self.opened = 0
        self.commits = 0
        self.rolled_back = 0
        self.reachable = True
        self.agencies = FakeDirectory()

    def __call__(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)

    def batched(self) -> FakeUnitOfWork:
        """The fake has no group commit: a batched unit of work is an ordinary one."""
        return FakeUnitOfWork(self)

    async def in_batch(self, work: Any) -> Any:
        """The fake has no group commit: the work runs in a unit of work of its own."""
        async with self() as uow:
            result = await work(uow)
            await uow.commit()
        return result

    async def ping(self) -> None:
        await self.io()
        if not self.reachable:
            raise ConnectionError("the fake database is unreachable")

    async def io(self) -> None:
        if self.yield_on_io:
            await asyncio.sleep(0)

    def locked_by_others(self, uow: FakeUnitOfWork) -> set[str]:
        return {i for i, owner in self.locks.items() if owner != uow.number}

    def unlock(self, uow: FakeUnitOfWork) -> None:
        for message_id in [i for i, owner in self.locks.items() if owner == uow.number]:
            del self.locks[message_id]

    # Inspection of the committed state (copies: tests cannot change storage through them).

    def applications(self) -> list[Application]:
        return [_stored_copy(a) for a in sorted(self.state.applications.values(), key=_id)]

    def application(self, application_id: str) -> Application:
        return _stored_copy(self.state.applications[application_id])

    def timeline(self, application_id: str) -> list[TimelineEntry]:
        return copy.deepcopy(self.state.timelines.get(application_id, []))

    def event_types(self, application_id: str) -> list[str]:
        return [e.type for e in self.state.timelines.get(application_id, [])]

    def messages(self) -> list[OutboxMessage]:
        return [copy.deepcopy(row.message) for row in self.state.outbox.values()]

    def message(self, message_id: str) -> OutboxMessage:
        return copy.deepcopy(self.state.outbox[message_id].message)

    def lease_until(self, message_id: str) -> datetime | None:
        return self.state.outbox[message_id].lease_until

    def idempotency_keys(self) -> dict[tuple[str, str, str], StoredResponse]:
        return {k: copy.deepcopy(v.response) for k, v in self.state.idempotency.items()}


def _id(app: Application) -> str:
    return app.id


# --------------------------------------------------------------------------- other ports


class FixedClock:
    """:class:`~gateway.services.ports.Clock` that only moves when told to.

    ``clock.current`` is settable; ``clock.now()`` answers it; ``advance`` moves it on.
    """

    def __init__(self, current: datetime) -> None:
        if current.tzinfo is None:
            raise ValueError("the clock keeps aware datetimes")
        self.current = current

    def now(self) -> datetime:
        return self.current

    def set(self, current: datetime) -> None:
        self.current = current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


@dataclass(frozen=True, slots=True)
class Delivery:
    agency_id: str
    message: OutboxMessage


class FakeTransport:
    """:class:`~gateway.services.ports.PartnerTransport` that records every call.

    ``fail_next(n, error)`` makes the next ``n`` calls raise ``error`` (a
    :class:`TransientDeliveryError` or :class:`PermanentDeliveryError` class or instance).
    With ``gate`` set, each call waits for the event before answering; ``in_flight`` and
    ``max_in_flight`` count the calls waiting at once.
    """

    def __init__(self, *, gate: asyncio.Event | None = None) -> None:
        self.gate = gate
        self.deliveries: list[Delivery] = []
        self.acknowledged: list[Delivery] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._failures: list[DeliveryError] = []
        self._started = asyncio.Event()

    def fail_next(
        self,
        times: int,
        error: type[DeliveryError] | DeliveryError = TransientDeliveryError,
    ) -> None:
        if isinstance(error, type):
            if not issubclass(error, TransientDeliveryError | PermanentDeliveryError):
                raise TypeError("a transport fails transiently or permanently")
            error = error(f"fake {error.__name__}")
        self._failures.extend([error] * times)

    async def deliver(self, agency: Agency, message: OutboxMessage) -> Acknowledgement:
        delivery = Delivery(agency.id, copy.deepcopy(message))
        self.deliveries.append(delivery)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self._started.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
            else:
                await asyncio.sleep(0)
            if self._failures:
                raise self._failures.pop(0)
        finally:
            self.in_flight -= 1
        self.acknowledged.append(delivery)
        return Acknowledgement(200, f"{agency.id}-key-1", ack_digest(message.id))

    async def wait_in_flight(self, count: int) -> None:
        """Return once ``count`` calls are waiting at the gate at the same time."""
        while self.in_flight < count:
            self._started.clear()
            await self._started.wait()

    def delivered_ids(self) -> list[str]:
        return [d.message.id for d in self.deliveries]


def ack_digest(message_id: str) -> str:
    """The acknowledgement digest the fake transport answers for a message."""
    return "sha-256=:" + hashlib.sha256(message_id.encode()).hexdigest() + ":"


class FakeReceipts:
    """:class:`~gateway.services.ports.ReceiptIssuer`: deterministic strings, claims recorded."""

    def __init__(self) -> None:
        self.claims: list[dict[str, Any]] = []

    def issue(self, claims: Mapping[str, Any]) -> str:
        self.claims.append(copy.deepcopy(dict(claims)))
        return f"fake-receipt.{len(self.claims)}.{claims.get('sub')}"


class FakeDirectory:
    """:class:`~gateway.services.ports.AgencyRepository` over a fixed set of agencies."""

    def __init__(self, agencies: Iterable[Agency] = ()) -> None:
        self._agencies = {a.id: a for a in agencies}

    def add(self, agency: Agency) -> None:
        self._agencies[agency.id] = agency

    async def get(self, agency_id: str) -> Agency | None:
        return self._agencies.get(agency_id)

    async def issuer_of(self, evidence_type: str) -> Agency | None:
        found = [a for a in self._agencies.values() if a.issues(evidence_type)]
        return min(found, key=lambda a: a.id, default=None)

    async def still_valid(self, kid: str, at: datetime) -> None:
        """Keys are not modelled here: the SQL registry's check is tested against SQL."""
