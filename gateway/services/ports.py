"""Ports: what the use cases need from the world, as protocols. Adapters implement them."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import TracebackType
from typing import Any, Protocol, Self, TypeVar

from gateway.domain.agencies import Agency
from gateway.domain.application import Application
from gateway.domain.certificates import Certificate
from gateway.domain.complaints import Complaint
from gateway.domain.contacts import ContactPreferences
from gateway.domain.documents import Decoded
from gateway.domain.identity import (
    CanonicalIdentity,
    Consent,
    Delegation,
    IdentityLink,
    Person,
)
from gateway.domain.materials import StoredMaterial
from gateway.domain.matters import Assurance, Matter

T = TypeVar("T")


class Clock(Protocol):
    def now(self) -> datetime: ...


class AgencyRepository(Protocol):
    async def get(self, agency_id: str) -> Agency | None:
        """The registered agency, or None."""
        ...

    async def still_valid(self, kid: str, at: datetime) -> None:
        """UnknownKeyError unless the key is registered, its agency too, and it is valid at
        ``at`` in the registry as it is when this unit of work commits (a revocation
        committed anywhere meanwhile is honoured)."""
        ...

    async def issuer_of(self, evidence_type: str) -> Agency | None:
        """The registered agency that issues this evidence type (the first by id), or None."""
        ...


class MatterCatalog(Protocol):
    def get(self, code: str, on: date) -> Matter:
        """The version in force on ``on``, or UnknownMatterError."""
        ...

    def all(self, on: date) -> Sequence[Matter]: ...

    def search(self, text: str, on: date) -> Sequence[Matter]:
        """Matters in force whose names contain ``text`` in any script."""
        ...


class DocumentCodec(Protocol):
    """One jurisdiction's wire format <-> canonical application."""

    jurisdiction: str
    media_types: frozenset[str]

    def decode(self, body: bytes) -> Decoded:
        """Parse and translate; MalformedBodyError or ValidationFailedError with every problem."""
        ...

    def encode(self, document: Mapping[str, Any], envelope: Mapping[str, Any]) -> tuple[bytes, str]:
        """The forwarded message body in this format, and its media type; NotExpressibleError
        when the format cannot carry the whole document (nothing is to be sent then)."""
        ...


class ReceiptIssuer(Protocol):
    def issue(self, claims: Mapping[str, Any]) -> str:
        """A signed, offline-verifiable receipt (JWS compact)."""
        ...


class WorkingCalendar(Protocol):
    def add_working_days(self, jurisdiction: str, start: date, days: int) -> date: ...


@dataclass(frozen=True, slots=True)
class StoredResponse:
    request_digest: str
    status: int
    body: dict[str, Any]
    resource: str | None = None
    replayed: bool = field(default=False, compare=False)  # answered from the store


@dataclass(slots=True)
class OutboxMessage:
    id: str
    application_id: str
    destination: str
    media_type: str
    body: bytes
    attempts: int = 0
    next_attempt_at: datetime | None = None
    status: str = "pending"  # pending | in_flight | delivered | dead | withheld
    last_error: str | None = None
    created_at: datetime | None = None  # when the forward was committed (accepted)
    consent_id: str | None = None  # the consent the forward relies on (checked before a send)
    # what the forward relies on: consent, legal_basis (an agency's), resident (a resident's
    # case sent at home); None: queued before it was recorded (the relay reads the case)
    relies_on: str | None = None


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """A partner's verified, signed answer to a forwarded message.

    The rest is the signed exchange itself, kept as evidence of what was sent and received:
    the target and signature headers of the request (``Signature``, ``Signature-Input``,
    ``Content-Digest``, ``Content-Type``, ``Idempotency-Key``; its body is the message's),
    and the answer's body and signature headers. A transport that signs nothing leaves them
    empty.
    """

    status: int
    key_id: str
    body_digest: str
    target: str = ""
    request_headers: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    seq: int
    type: str
    at: datetime
    actor: str
    data: dict[str, Any] = field(default_factory=dict)


class ApplicationRepository(Protocol):
    async def add(self, application: Application) -> None: ...

    async def get(self, application_id: str) -> Application | None: ...

    async def get_many(self, application_ids: Sequence[str]) -> dict[str, Application]:
        """The applications found among ``application_ids``, by id, each as :meth:`get`
        reads it (a batch reads its cases at once)."""
        ...

    async def save(self, application: Application) -> None:
        """Persist state and append pending events; raises ConflictError on a lost update."""
        ...

    async def timeline(self, application_id: str) -> list[TimelineEntry]: ...

    async def handled_by(
        self, agency_id: str, *, limit: int, after: str | None
    ) -> list[Application]: ...

    async def applied_by(
        self, person_id: str, *, limit: int, after: str | None
    ) -> list[Application]:
        """The resident's own applications, and those they filed for someone else as an
        agent (Art. 24), oldest first."""
        ...

    async def naming(
        self, documents: Sequence[tuple[str, str]], *, limit: int, after: str | None
    ) -> list[Application]:
        """Agency-submitted cases that name one of ``documents`` (type, number) as the
        applicant's, by id after the cursor."""
        ...

    async def assurance_relying_on(self, consent_id: str) -> Assurance | None:
        """The highest assurance a case relying on this consent was filed with."""
        ...

    async def due_for_examination(self, today: str, *, limit: int) -> list[Application]:
        """Cases awaiting the lead's examination whose last day (``acceptance_due``) passed."""
        ...

    async def past_deadline(self, today: str, *, limit: int) -> list[Application]:
        """Open cases past their promised deadline, not yet flagged overdue."""
        ...

    async def awaiting_recheck(
        self, agency_id: str, *, limit: int, after: str | None
    ) -> list[Application]:
        """The automatic decisions whose human re-check by this lead agency is pending,
        oldest first (an index query, Art. 25)."""
        ...

    async def evidence_overdue(self, now: datetime, *, limit: int) -> list[Application]:
        """Cases with an evidence request whose answer was due before ``now``."""
        ...

    async def owed_overdue(self, today: str, *, limit: int) -> list[Application]:
        """Cases with a material owed after acceptance (Art. 12) whose due day is before
        ``today`` (ISO date) and not yet flagged overdue."""
        ...


class RelayObserver(Protocol):
    """What the relay reports as it works (the web layer turns it into metrics)."""

    def claimed(self, count: int) -> None:
        """A claim took ``count`` (one or more) messages."""

    def in_flight(self, count: int) -> None:
        """The relay now holds ``count`` claimed messages not yet finished."""

    def finished(self, outcome: str, accepted_seconds: float | None) -> None:
        """One claimed message ended: ``delivered``, ``retry`` or ``dead``; for a delivery,
        the seconds since its forward was committed (accept to delivered), when known."""

    def recorded(self, count: int, seconds: float) -> None:
        """One transaction recorded the outcomes of ``count`` sends in ``seconds`` (taking
        the database included)."""


class OutboxRepository(Protocol):
    async def add(self, message: OutboxMessage) -> None: ...

    async def claim(
        self,
        now: datetime,
        *,
        limit: int,
        lease_seconds: int,
        per_destination: int | None = None,
        in_flight: Mapping[str, int] | None = None,
    ) -> list[OutboxMessage]:
        """Take due messages for delivery, oldest first; another relay cannot take them until
        the lease ends. With ``per_destination``, at most that many per destination agency,
        less what the caller has ``in_flight`` to it already."""
        ...

    async def relying_on(self, consent_id: str) -> list[OutboxMessage]:
        """The forwards not yet delivered (pending or in flight) that rely on the consent."""
        ...

    async def withhold(self, message_ids: Sequence[str], reason: str) -> set[str]:
        """Cancel forwards not yet delivered (status ``withheld``, never claimed again, the
        reason as last error); the ids withheld now."""
        ...

    async def delivered(
        self, message_id: str, at: datetime, ack: Acknowledgement | None = None
    ) -> bool:
        """Mark a message delivered and keep the signed exchange of ``ack``; False when it
        was delivered already (a repeated acknowledgement changes nothing)."""
        ...

    async def delivered_many(
        self, deliveries: Sequence[tuple[OutboxMessage, datetime, Acknowledgement]]
    ) -> set[str]:
        """:meth:`delivered` for many messages at once, each at its own time, keeping both
        signed bodies as evidence too (once per digest); the ids marked delivered now."""
        ...

    async def retry_later(self, message_id: str, at: datetime, error: str) -> None:
        """Schedule another attempt of a message in flight (others are left as they are)."""
        ...

    async def dead(self, message_id: str, error: str) -> None:
        """Park a message in flight as a dead letter (others are left as they are)."""
        ...


class IdempotencyStore(Protocol):
    """One stored answer per (caller, scope, Idempotency-Key); ``scope`` names the use case
    and the resource it acts on, so one key sent to two routes names two requests."""

    async def get(self, agency_id: str, scope: str, key: str) -> StoredResponse | None: ...

    async def put(
        self, agency_id: str, scope: str, key: str, response: StoredResponse, at: datetime
    ) -> None: ...


class NonceStore(Protocol):
    async def use(self, key_id: str, nonce: str, *, now: datetime, expires_at: datetime) -> bool:
        """Record a nonce; False when it was already used (a replay)."""
        ...


class AuditTrail(Protocol):
    """The tamper-evident record: appended in the transaction it describes, sealed at commit."""

    def record(
        self, kind: str, actor: str, subject: str, data: Mapping[str, Any], at: datetime
    ) -> None: ...

    async def keep_evidence(
        self, digest: str, media_type: str, body: bytes, at: datetime
    ) -> None: ...


class IdentityRepository(Protocol):
    """Residents: persons, provider accounts, linked identifiers, logins, consents, delegations."""

    async def person(self, person_id: str) -> Person | None: ...

    async def account_person(self, provider: str, subject: str) -> Person | None: ...

    async def linked(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[IdentityLink, Person]]:
        """The *linked* (not conflicting) records of these (type, number) documents."""
        ...

    async def add_person(self, person: Person) -> None: ...

    async def link_account(self, provider: str, subject: str, person_id: str, at: datetime) -> None:
        """Tie a provider account to a person (first login only; later ones change nothing)."""
        ...

    async def add_links(self, links: Sequence[IdentityLink]) -> None:
        """ConflictError when a document got linked to someone else meanwhile."""
        ...

    async def links_of(self, person_id: str) -> list[IdentityLink]: ...

    async def add_login(
        self, login_id: str, person_id: str, identity: CanonicalIdentity, at: datetime
    ) -> None: ...

    async def login(self, login_id: str) -> tuple[str, CanonicalIdentity] | None:
        """(person id, identity as asserted at that login)."""
        ...

    async def latest_identity(self, person_id: str) -> CanonicalIdentity | None: ...

    async def add_consent(self, consent: Consent) -> None: ...

    async def save_consent(self, consent: Consent) -> None: ...

    async def end_grants(self, person_id: str, now: datetime) -> int:
        """End what the person's logins granted portals beyond their short access tokens
        (the OpenID Provider's refresh tokens); the number ended."""
        ...

    async def consent(self, consent_id: str) -> Consent | None: ...

    async def consents_of(self, person_id: str) -> list[Consent]: ...

    async def add_delegation(self, delegation: Delegation) -> None: ...

    async def save_delegation(self, delegation: Delegation) -> None: ...

    async def delegation(self, delegation_id: str) -> Delegation | None: ...

    async def delegations_of(self, person_id: str) -> list[Delegation]:
        """As agent, as confirmed principal, or naming one of the person's linked documents."""
        ...


APPLICANT = "applicant"  # a notification's recipient: the resident(s) behind an agency's case


@dataclass(slots=True)
class Notification:
    """One milestone told to one recipient (Art. 22), written with the state change it tells.

    ``recipient`` is an agency id, ``resident:<person id>`` or ``applicant`` (an agency's
    case: the residents behind the document it names, found at dispatch); ``body`` is what is
    sent (or shown, for a resident): ids, codes, the status and, for a resident, the message.
    """

    id: str
    application_id: str
    recipient: str
    event: str
    body: dict[str, Any]
    created_at: datetime
    status: str = "pending"  # pending | in_flight | delivered | dead
    attempts: int = 0
    last_error: str | None = None


class NotificationRepository(Protocol):
    async def add(self, notification: Notification) -> None: ...

    async def claim(self, now: datetime, *, limit: int, lease_seconds: int) -> list[Notification]:
        """Take due notifications, oldest first; no other dispatcher takes them until the
        lease ends."""
        ...

    async def delivered(self, notification_id: str, at: datetime) -> bool:
        """Mark one in flight as delivered; False when it was not in flight any more."""
        ...

    async def retry_later(self, notification_id: str, at: datetime, error: str) -> None: ...

    async def dead(self, notification_id: str, error: str) -> None: ...

    async def of_recipient(
        self,
        recipient: str,
        *,
        limit: int,
        after: str | None,
        applicant_of: Sequence[str] = (),
    ) -> list[Notification]:
        """A recipient's notifications, oldest first, after the cursor (a notification id);
        with those written for ``applicant`` on the cases ``applicant_of`` names (an agency's
        cases the resident sees)."""
        ...


class ComplaintRepository(Protocol):
    """Complaints with their texts (personal data: never on the timeline or the audit chain)."""

    async def add(self, complaint: Complaint) -> None: ...

    async def get(self, complaint_id: str) -> Complaint | None: ...

    async def answered(self, complaint: Complaint) -> None:
        """Record the outcome; ConflictError when another answer was recorded meanwhile."""
        ...

    async def of_application(self, application_id: str) -> list[Complaint]: ...


class CertificateRepository(Protocol):
    """E-certificates (Art. 22) with their content and subject (personal data)."""

    async def add(self, certificate: Certificate) -> None: ...

    async def get(self, certificate_id: str) -> Certificate | None: ...

    async def of_subject(self, subject: str) -> list[Certificate]: ...

    async def revoked(self, certificate: Certificate) -> None:
        """Record the revocation; ConflictError when it was revoked meanwhile."""
        ...

    async def delivered(self, certificate: Certificate) -> None:
        """Record the first delivery to the resident (later ones change nothing)."""
        ...


class ContactRepository(Protocol):
    """How each resident wants to be told (personal data: never logged)."""

    async def get(self, person_id: str) -> ContactPreferences | None: ...

    async def put(self, preferences: ContactPreferences) -> None:
        """Replace the person's preferences whole."""
        ...


class EmailSender(Protocol):
    async def send_email(self, to: str, subject: str, text: str, *, message_id: str) -> None:
        """Send one plain-text e-mail (``message_id``: stable across retries, so that a
        mail client shows a resent one once); TransientDeliveryError to try again later,
        PermanentDeliveryError to give up. Never logs the address or the text."""
        ...


class SmsSender(Protocol):
    async def send_sms(self, to: str, text: str, *, message_id: str) -> None:
        """Send one text message to an E.164 number; errors as :class:`EmailSender`."""
        ...


class Notifier(Protocol):
    async def notify(self, agency: Agency | None, notification: Notification) -> None:
        """Hand one notification over (``agency``: the recipient agency, None for a resident);
        TransientDeliveryError to try again later, PermanentDeliveryError to give up."""
        ...


@dataclass(frozen=True, slots=True)
class StoredBlob:
    """What a blob store holds under ``key`` (lowercase hex SHA-256 of the bytes)."""

    key: str
    digest: str  # RFC 9530 form: sha-256=:<base64>:
    size: int
    created: bool  # False: the same bytes were stored already (content-addressed)


class BlobStore(Protocol):
    """Bytes by their SHA-256: written whole or not at all, never held in memory whole."""

    async def put(self, chunks: AsyncIterable[bytes], *, limit: int) -> StoredBlob:
        """Store the bytes ``chunks`` yield, computing SHA-256 on the way. Visible under its
        key only once complete and durable; PayloadTooLargeError beyond ``limit`` bytes and
        any error ``chunks`` raises leave nothing visible (the partial write is removed, or
        swept later should the process die)."""
        ...

    def open(self, key: str) -> AsyncIterator[bytes]:
        """The blob's bytes, chunk by chunk; NotFoundError when there is no such blob."""
        ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None:
        """Remove the blob (nothing when it is not there)."""
        ...

    async def sweep(self, older_than: datetime) -> int:
        """Remove partial writes started before ``older_than`` (a crash left them)."""
        ...

    async def keys(self) -> list[str]:
        """Every complete blob's key (tests and repair; not for the request path)."""
        ...


class MaterialRepository(Protocol):
    async def add(self, material: StoredMaterial) -> None: ...

    async def get(self, material_id: str) -> StoredMaterial | None: ...

    async def get_many(self, material_ids: Sequence[str]) -> dict[str, StoredMaterial]:
        """The materials found among ``material_ids``, by id."""
        ...

    async def bind(self, material_id: str, application_id: str, code: str) -> None:
        """Bind an unbound material to an application as ``code``; ConflictError when it is
        bound elsewhere already or gone."""
        ...

    async def of_application(self, application_id: str) -> list[StoredMaterial]:
        """Every material bound to the application (replaced ones too), oldest first."""
        ...

    async def unbound_expired(self, now: datetime, *, limit: int) -> list[StoredMaterial]:
        """Uploads never bound to an application whose time ran out, oldest first."""
        ...

    async def remove(self, material_id: str) -> None: ...

    async def references(self, blob_key: str) -> int:
        """How many materials name this blob."""
        ...


class UnitOfWork(Protocol):
    """One transaction. Rolls back on exit unless :meth:`commit` was called."""

    applications: ApplicationRepository
    agencies: AgencyRepository
    outbox: OutboxRepository
    idempotency: IdempotencyStore
    nonces: NonceStore
    audit: AuditTrail
    identities: IdentityRepository
    notifications: NotificationRepository
    complaints: ComplaintRepository
    certificates: CertificateRepository
    materials: MaterialRepository
    contacts: ContactRepository

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...

    def batched(self) -> UnitOfWork:
        """A unit of work for a use case that decides without reading the database: its
        repositories read from memory and its writes are committed with those of concurrent
        requests in one transaction (group commit). Anything else needs ``__call__``."""
        ...

    async def in_batch(self, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """``work``'s reads and writes inside the next group-commit batch, in a savepoint of
        its own (it may await its repositories, nothing else); its result once committed."""
        ...

    async def ping(self) -> None:
        """Raise when the database cannot be reached."""
        ...


class PartnerTransport(Protocol):
    async def deliver(self, agency: Agency, message: OutboxMessage) -> Acknowledgement:
        """Send one signed message; TransientDeliveryError or PermanentDeliveryError on failure."""
        ...
