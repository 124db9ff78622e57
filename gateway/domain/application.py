"""The Application aggregate and its state machine. No I/O.

::

    received ──► awaiting_supplement ──► received / accepted   (one notice, every problem;
        │  │                                                    any number of rounds)
        │  │
        │  ├──► accepted ──► under_review ──► approved ──┐
        │  │   (voucher;       (in parallel)  └► rejected ─┴─► result_delivered
        │  │    or deemed)
        │  └──► not_accepted (voucher with reasons)
        └──────► withdrawn (by the applicant, from any open state)

A matter's ``acceptance`` is ``automatic`` (the gateway accepts a complete application at
once) or ``agency`` (the lead agency examines it; with no notice within 5 working days of
receipt it is *deemed accepted* as of the receipt date, Art. 19(3)). Each supplement round
restarts that examination from the day the supplement arrived (a new ``acceptance_due``; deemed
acceptance is then as of that day), and every handler already holding the case is sent the
supplemented document (Art. 20). Each handling agency has
its own state (``pending`` → ``delivered`` → ``approved`` / ``rejected``). The case is
``under_review`` once it is accepted and every handler has it, and is decided when every
handler has decided: all must approve; one rejection rejects, with every agency's reasons
(joint handling, Art. 20). Every change appends an event; an illegal change raises
:class:`IllegalTransitionError` and changes nothing.

Evidence by data sharing (:mod:`gateway.domain.evidence`): while an issuer's answer is
outstanding the case stays ``received`` — its acceptance, its lead's examination and the one
notice of everything missing wait — and once every answer is in (or refused, or overdue) it
goes on: materials the issuers did not provide join the missing list of that one notice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from gateway.domain import events as ev
from gateway.domain.documents import problem
from gateway.domain.errors import ForbiddenError, IllegalTransitionError
from gateway.domain.evidence import Evidence, EvidenceState
from gateway.domain.matters import Assurance


class Status(StrEnum):
    RECEIVED = "received"
    AWAITING_SUPPLEMENT = "awaiting_supplement"
    ACCEPTED = "accepted"
    NOT_ACCEPTED = "not_accepted"
    UNDER_REVIEW = "under_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    RESULT_DELIVERED = "result_delivered"
    WITHDRAWN = "withdrawn"


_ALLOWED: dict[Status, frozenset[Status]] = {
    Status.RECEIVED: frozenset(
        {Status.AWAITING_SUPPLEMENT, Status.ACCEPTED, Status.NOT_ACCEPTED, Status.WITHDRAWN}
    ),
    Status.AWAITING_SUPPLEMENT: frozenset(
        {Status.RECEIVED, Status.ACCEPTED, Status.NOT_ACCEPTED, Status.WITHDRAWN}
    ),
    Status.ACCEPTED: frozenset({Status.UNDER_REVIEW, Status.WITHDRAWN}),
    Status.UNDER_REVIEW: frozenset({Status.APPROVED, Status.REJECTED, Status.WITHDRAWN}),
    Status.NOT_ACCEPTED: frozenset(),
    Status.APPROVED: frozenset({Status.RESULT_DELIVERED}),
    Status.REJECTED: frozenset({Status.RESULT_DELIVERED}),
    Status.RESULT_DELIVERED: frozenset(),
    Status.WITHDRAWN: frozenset(),
}
CLOSED = frozenset(
    {
        Status.NOT_ACCEPTED,
        Status.RESULT_DELIVERED,
        Status.WITHDRAWN,
        Status.APPROVED,
        Status.REJECTED,
    }
)
ACCEPTANCE_WORKING_DAYS = 5  # Art. 19(3): no notice within 5 working days -> deemed accepted
DELIVERY_CHANNELS = ("electronic", "post", "pickup", "kiosk")
PICKUP_CHANNELS = ("pickup", "kiosk")  # collected in person with a pickup code (Art. 17, 22)
PICKUP_ATTEMPTS = 5  # wrong codes before the pickup code is locked
AUTOMATIC = "gateway:automatic"  # the actor of automatic decisions (Art. 25)


PICKUP_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read out at a counter
PICKUP_CODE_LENGTH = 8  # 40 bits against PICKUP_ATTEMPTS guesses


def pickup_hash(application_id: str, code: str) -> str:
    """What the case keeps of a pickup code: SHA-256 over the case id and the code (spaces
    and case ignored, as a counter officer types it)."""
    typed = "".join(code.split()).upper()
    return hashlib.sha256(f"{application_id}:{typed}".encode()).hexdigest()


class HandlerState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(slots=True)
class Handler:
    agency_id: str
    role: str  # lead | reviewer
    state: HandlerState = HandlerState.PENDING
    reasons: tuple[str, ...] = ()
    message_id: str | None = None  # the forward queued to this agency, once it is
    blocked: str | None = None  # fingerprint of the problems its last forward was blocked by
    supplement_round: int = 0  # the supplement round of the document last queued to it


@dataclass(slots=True)
class Owed:
    """A material accepted as missing (容缺受理, Art. 12), to be supplied by ``due``."""

    material: str
    due: str  # ISO date: the last day to supply it
    overdue_at: datetime | None = None  # when the sweep found it past its due date

    def to_json(self) -> dict[str, Any]:
        return {
            "material": self.material,
            "due": self.due,
            "overdue_at": self.overdue_at.isoformat() if self.overdue_at else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Owed:
        at = data.get("overdue_at")
        return cls(data["material"], data["due"], datetime.fromisoformat(at) if at else None)


def owed_error(owed: list[Owed]) -> IllegalTransitionError:
    """An approval while materials accepted as missing are still owed (Art. 12): 409
    illegal-transition, one problem per owed material (``/owed/<code>``, ``material_owed``)."""
    listed = ", ".join(f"{o.material} (due {o.due})" for o in owed)
    return IllegalTransitionError(
        f"materials accepted as missing are still owed: {listed}",
        errors=[problem(f"/owed/{o.material}", "material_owed") for o in owed],
    )


@dataclass(slots=True)
class Application:
    """One resident's application, as the gateway knows it, with its pending events."""

    id: str
    matter: str
    matter_version: int
    status: Status
    submitted_by: str
    channel: str
    source_format: str
    content_digest: str
    document: dict[str, Any]
    received_at: datetime
    handlers: list[Handler]
    missing: tuple[str, ...] = ()
    deadline: str | None = None  # the promised time limit's last day, once accepted
    applicant_id: str | None = None  # the resident who applied (themselves or by an agent)
    consent_id: str | None = None  # the consent the cross-border forwards rely on
    filed_assurance: Assurance | None = None  # the applicant's login's; acting needs as much
    mapping_version: str | None = None  # of the translation made at receipt
    acceptance: str = "automatic"  # automatic | agency (the lead agency examines it)
    acceptance_due: str | None = None  # last day for the lead's notice (agency acceptance)
    statutory_deadline: str | None = None
    delivery_channel: str | None = None  # how the applicant wants the result
    overdue_at: datetime | None = None  # when the promised deadline was found passed
    supplement_round: int = 0  # how many supplements were provided (Art. 19(3), 20)
    examined_from: datetime | None = None  # the last supplement's arrival: examination restarts
    recheck: str | None = None  # queued | confirmed | overturned (Art. 25's human re-check)
    evidence: list[Evidence] = field(default_factory=list)  # by-data-sharing materials
    # Art. 17-18: what the channel recorded (service point, officer or device), and at a
    # counter the (type, number) of the identity document the officer inspected in person
    channel_record: dict[str, Any] | None = None
    identified_by: tuple[str, str] | None = None
    # an agency's case: the legal basis it declared for sending the applicant's data (PIPL
    # art. 13): law, article and text; every forward relies on it (or on a consent)
    legal_basis: dict[str, str] | None = None
    pickup_hash: str | None = None  # of the code the result is collected with; never the code
    pickup_attempts: int = 0  # wrong codes presented so far
    # the code just issued, in memory only: told to the applicant's side in the same commit
    issued_pickup_code: str | None = field(default=None, repr=False, compare=False)
    owed: list[Owed] = field(default_factory=list)  # 容缺: accepted as missing, still owed
    version: int = 0
    pending_events: list[ev.Event] = field(default_factory=list)

    @classmethod
    def receive(
        cls,
        *,
        application_id: str,
        matter: str,
        matter_version: int,
        submitted_by: str,
        channel: str,
        source_format: str,
        content_digest: str,
        document: dict[str, Any],
        handlers: tuple[str, ...],
        missing: tuple[str, ...],
        deadline: str | None,
        at: datetime,
        applicant_id: str | None = None,
        consent_id: str | None = None,
        agent_id: str | None = None,
        filed_assurance: Assurance | None = None,
        acceptance: str = "automatic",
        acceptance_due: str | None = None,
        statutory_deadline: str | None = None,
        delivery_channel: str | None = None,
        mapping_version: str | None = None,
        evidence: tuple[Evidence, ...] = (),
        channel_record: dict[str, Any] | None = None,
        identified_by: tuple[str, str] | None = None,
        legal_basis: dict[str, str] | None = None,
    ) -> Application:
        """Record a well-formed submission. Something missing: one notice listing all of it.
        Complete: accepted at once (``automatic``), or left for the lead agency to examine
        (``agency``) by ``acceptance_due``. ``deadline``/``statutory_deadline`` apply once
        accepted. ``evidence``: the by-data-sharing materials, requested or not (those not
        requested are asked of the applicant); while one is requested, everything waits."""
        if acceptance not in ("automatic", "agency"):
            raise IllegalTransitionError("acceptance is 'automatic' or 'agency'")
        if delivery_channel is not None and delivery_channel not in DELIVERY_CHANNELS:
            raise IllegalTransitionError(
                f"the result is delivered by {', '.join(DELIVERY_CHANNELS)}"
            )
        app = cls(
            id=application_id,
            matter=matter,
            matter_version=matter_version,
            status=Status.RECEIVED,
            submitted_by=submitted_by,
            channel=channel,
            source_format=source_format,
            content_digest=content_digest,
            document=document,
            received_at=at,
            handlers=[
                Handler(agency, "lead" if i == 0 else "reviewer")
                for i, agency in enumerate(handlers)
            ],
            missing=missing,
            applicant_id=applicant_id,
            consent_id=consent_id,
            filed_assurance=filed_assurance,
            acceptance=acceptance,
            acceptance_due=acceptance_due if acceptance == "agency" else None,
            delivery_channel=delivery_channel,
            mapping_version=mapping_version,
            evidence=list(evidence),
            channel_record=channel_record,
            identified_by=identified_by,
            legal_basis=legal_basis,
        )
        asked = [e.material for e in evidence if e.state.asked_of_applicant]
        app.missing = tuple(dict.fromkeys((*missing, *asked)))
        resident = {"consent_id": consent_id} if applicant_id else {}
        if agent_id:
            resident["agent"] = agent_id
        stated = {k: v for k, v in (channel_record or {}).items() if k != "channel"}
        if identified_by is not None:  # the type only: the number stays on the case
            stated["identity_inspected"] = identified_by[0]
        if legal_basis is not None:  # shown to the applicant on the timeline
            stated["legal_basis"] = dict(legal_basis)
        app._record(
            ev.ApplicationReceived,
            at,
            submitted_by,
            matter=matter,
            channel=channel,
            format=source_format,
            content_digest=content_digest,
            acceptance=acceptance,
            **stated,
            **resident,
        )
        for e in app.evidence:
            if e.state is EvidenceState.NOT_REQUESTED:
                app._record(
                    ev.EvidenceNotRequested,
                    at,
                    "gateway",
                    material=e.material,
                    evidence_type=e.evidence_type,
                    reason=e.reason,
                )
        if app.awaiting_evidence:
            return app  # the notice or the acceptance waits for the issuers' answers
        if app.missing:
            app._request_supplement(app.missing, at, "gateway")
        elif acceptance == "automatic":
            app._accept(at, "gateway", deadline, statutory_deadline)
        return app

    @property
    def relies_on(self) -> str | None:
        """What a forward of the case relies on: the applicant's ``consent``, the submitting
        agency's declared ``legal_basis``, or ``resident`` (a resident's own case whose
        handlers are all at home: nothing leaves the jurisdiction on it). None: nothing —
        an agency's case filed without a basis, which is never forwarded."""
        if self.consent_id is not None:
            return "consent"
        if self.legal_basis is not None:
            return "legal_basis"
        if self.applicant_id is not None:
            return "resident"
        return None

    @property
    def lead(self) -> Handler:
        return self.handlers[0]

    def handler(self, agency_id: str) -> Handler:
        for h in self.handlers:
            if h.agency_id == agency_id:
                return h
        raise ForbiddenError("the agency does not handle this application")

    def is_party(self, agency_id: str, person_id: str | None = None) -> bool:
        """The submitter, a handling agency, or (``person_id``) the resident applicant."""
        if person_id is not None and person_id == self.applicant_id:
            return True
        return agency_id == self.submitted_by or any(
            h.agency_id == agency_id for h in self.handlers
        )

    def due_forwards(self) -> list[Handler]:
        """Handlers that should have the application now and have no forward of its current
        document queued yet: the lead as soon as a complete case awaits its examination (and
        no issuer's evidence is outstanding); everyone once accepted; and, after a supplement
        round, each handler that holds an earlier document (it is sent the supplemented one)."""
        if (
            self.status is Status.RECEIVED
            and self.acceptance == "agency"
            and not self.missing
            and not self.awaiting_evidence
        ):
            return [self.lead] if self._owed(self.lead) else []
        if self.status in (Status.ACCEPTED, Status.UNDER_REVIEW):
            return [h for h in self.handlers if self._owed(h)]
        return []

    def _owed(self, handler: Handler) -> bool:
        return handler.message_id is None or handler.supplement_round < self.supplement_round

    def forward_blocked(self, agency_id: str, problems: list[dict[str, str]], at: datetime) -> None:
        """The agency's format cannot carry the whole application: nothing is queued for it
        (it stays due and is tried again at the next move), and the timeline says why, as
        JSON pointers and codes — once for the same problems."""
        handler = self.handler(agency_id)
        listed = json.dumps(sorted(problems, key=lambda p: sorted(p.items())), sort_keys=True)
        fingerprint = hashlib.sha256(listed.encode()).hexdigest()
        if handler.blocked == fingerprint:
            return
        handler.blocked = fingerprint
        self._record(ev.ForwardBlocked, at, "gateway", agency=agency_id, problems=problems)

    def forward_withheld(
        self, agency_id: str, reason: str, at: datetime, message_id: str | None = None
    ) -> None:
        """Nothing covers a forward to the agency (no consent in force, or an agency's case
        without a declared legal basis): nothing is sent to it. A due forward stays due (and
        is withheld again at the next move, recorded once per reason); ``message_id``: a
        queued forward cancelled before it was delivered."""
        handler = self.handler(agency_id)
        fingerprint = hashlib.sha256(f"withheld:{reason}:{message_id}".encode()).hexdigest()
        if handler.blocked == fingerprint:
            return
        handler.blocked = fingerprint
        data: dict[str, Any] = {"agency": agency_id, "reason": reason}
        if message_id is not None:
            data["message_id"] = message_id
        self._record(ev.MessageWithheld, at, "gateway", **data)

    def rely_on_consent(
        self, consent_id: str, withheld: Collection[str], at: datetime, actor: str
    ) -> None:
        """The applicant's new consent replaces the one the open case relied on (withdrawn or
        lapsed). Each handler whose last forward was withheld (``withheld``: the ids of the
        case's withheld messages) is due it again: the one it never received, or, holding an
        earlier document, the supplemented one. A forward withheld before it was queued was
        never taken off the due list; the next move queues all of them under the new
        consent."""
        if self.status in CLOSED:
            raise IllegalTransitionError(f"the application is {self.status.value}")
        if self.applicant_id is None or self.consent_id is None:
            raise IllegalTransitionError("the application relies on no consent of the applicant")
        if consent_id == self.consent_id:
            raise IllegalTransitionError("the application already relies on this consent")
        again = []
        for handler in self.handlers:
            if handler.message_id is not None and handler.message_id in withheld:
                if handler.state is HandlerState.PENDING:
                    handler.message_id = None  # its first forward never left
                else:  # it holds an earlier document: the supplemented one is due again
                    handler.supplement_round = max(0, self.supplement_round - 1)
                again.append(handler.agency_id)
            handler.blocked = None  # withheld again, if so, is said again
        previous, self.consent_id = self.consent_id, consent_id
        self._record(
            ev.ConsentRenewed,
            at,
            actor,
            consent_id=consent_id,
            previous=previous,
            forwards_due=again,
        )

    def message_queued(self, agency_id: str, message_id: str, at: datetime) -> None:
        handler = self.handler(agency_id)
        again = handler.message_id is not None
        handler.message_id = message_id
        handler.blocked = None
        handler.supplement_round = self.supplement_round
        data: dict[str, Any] = {"agency": agency_id, "message_id": message_id}
        if again:  # the supplemented document, to a handler that holds an earlier one
            data["supplement_round"] = self.supplement_round
        self._record(ev.MessageQueued, at, "gateway", **data)

    def delivered(self, agency_id: str, message_id: str, ack_digest: str, at: datetime) -> None:
        """A handler acknowledged the forwarded application with a verified signature."""
        handler = self.handler(agency_id)
        if handler.state is not HandlerState.PENDING:
            if message_id == handler.message_id and handler.supplement_round > 0:
                self._record(  # it acknowledged the supplemented document
                    ev.MessageDelivered,
                    at,
                    agency_id,
                    message_id=message_id,
                    ack_digest=ack_digest,
                    supplement_round=handler.supplement_round,
                )
            return  # otherwise a repeated acknowledgement changes nothing
        handler.state = HandlerState.DELIVERED
        self._record(
            ev.MessageDelivered,
            at,
            agency_id,
            message_id=message_id,
            ack_digest=ack_digest,
        )
        self._start_review_if_ready(at)

    def delivery_retried(
        self,
        agency_id: str,
        message_id: str,
        attempt: int,
        error: str,
        next_at: datetime,
        at: datetime,
    ) -> None:
        """A forward failed for now; the relay tries again at ``next_at`` (visible progress)."""
        self._record(
            ev.DeliveryRetryScheduled,
            at,
            "gateway",
            agency=agency_id,
            message_id=message_id,
            attempt=attempt,
            error=error,
            next_attempt_at=next_at.isoformat(),
        )

    def delivery_failed(self, agency_id: str, message_id: str, error: str, at: datetime) -> None:
        self._record(
            ev.DeliveryFailed, at, "gateway", agency=agency_id, message_id=message_id, error=error
        )

    # ---- acceptance (Art. 19) ----------------------------------------------------------

    def examine(
        self,
        agency_id: str,
        outcome: str,
        at: datetime,
        *,
        reasons: tuple[str, ...] = (),
        missing: tuple[str, ...] = (),
        deadline: str | None = None,
        statutory_deadline: str | None = None,
    ) -> None:
        """The lead agency's examination: ``accepted``, ``not_accepted`` (with reasons) or
        ``supplement`` (one notice listing everything missing)."""
        if self.lead.agency_id != agency_id:
            raise ForbiddenError("only the lead agency accepts an application")
        if self.awaiting_evidence:
            raise IllegalTransitionError("evidence requested by data sharing is outstanding")
        if self.status is not Status.RECEIVED:
            raise IllegalTransitionError(
                f"an application is examined when received, not when {self.status.value}"
            )
        if outcome == "accepted":
            self._accept(at, agency_id, deadline, statutory_deadline)
        elif outcome == "not_accepted":
            if not reasons:
                raise IllegalTransitionError("a non-acceptance must state its reasons")
            self._move(Status.NOT_ACCEPTED)
            self._record(ev.ApplicationNotAccepted, at, agency_id, reasons=list(reasons))
        elif outcome == "supplement":
            if not missing:
                raise IllegalTransitionError("a supplement notice lists what is missing")
            self._request_supplement(missing, at, agency_id)
        else:
            raise IllegalTransitionError("the outcome is accepted, not_accepted or supplement")

    def deem_accepted(
        self, at: datetime, *, deadline: str | None, statutory_deadline: str | None
    ) -> None:
        """No notice within the acceptance period: accepted as of the receipt date, or of the
        last supplement's arrival when the examination restarted from it."""
        if (
            self.status is not Status.RECEIVED
            or self.acceptance != "agency"
            or self.awaiting_evidence
        ):
            raise IllegalTransitionError("only an application awaiting examination is deemed")
        self._accept(at, "gateway", deadline, statutory_deadline, deemed=True)

    def supplement(
        self,
        document: dict[str, Any],
        still_missing: tuple[str, ...],
        at: datetime,
        actor: str,
        *,
        deadline: str | None = None,
        statutory_deadline: str | None = None,
        acceptance_due: str | None = None,
    ) -> None:
        """Corrected or added materials (one round): complete now, the case goes on where it
        waited. Under agency acceptance the lead's examination restarts from ``at``: its last
        day is ``acceptance_due`` (5 working days from the supplement's arrival, Art. 19(3)),
        and every handler holding the case is due the supplemented document."""
        if self.status is not Status.AWAITING_SUPPLEMENT:
            raise IllegalTransitionError(
                f"nothing is awaited: the application is {self.status.value}"
            )
        given = {m.get("code") for m in document.get("materials", []) if isinstance(m, dict)}
        asked = [  # what issuers did not provide is the applicant's to give (Art. 19(5))
            e.material
            for e in self.evidence
            if e.state.asked_of_applicant and e.material not in given
        ]
        still_missing = tuple(dict.fromkeys((*still_missing, *asked)))
        if not still_missing and self.acceptance == "agency" and acceptance_due is None:
            raise IllegalTransitionError("a restarted examination needs its last day")
        self.document = document
        self.supplement_round += 1
        provided = sorted(set(self.missing) - set(still_missing))
        self._record(
            ev.SupplementProvided, at, actor, provided=provided, round=self.supplement_round
        )
        self.missing = still_missing
        if still_missing:
            self._record(ev.SupplementRequested, at, "gateway", missing=list(still_missing))
        elif self.acceptance == "automatic":
            self._accept(at, "gateway", deadline, statutory_deadline)
        else:
            self._move(Status.RECEIVED)
            self.acceptance_due = acceptance_due
            self.examined_from = at
            self._record(
                ev.ExaminationRestarted,
                at,
                "gateway",
                round=self.supplement_round,
                acceptance_due=acceptance_due,
            )

    # ---- materials supplied later (容缺受理, Art. 12) ------------------------------------

    def owe(self, materials: tuple[str, ...], due: str, at: datetime) -> list[Owed]:
        """On acceptance: the may-be-missing ``materials`` not given are owed by ``due``
        (once; a material already owed or given is not owed again)."""
        given = {m.get("code") for m in self.document.get("materials", []) if isinstance(m, dict)}
        known = {o.material for o in self.owed}
        new = [Owed(code, due) for code in materials if code not in given and code not in known]
        for item in new:
            self.owed.append(item)
            self._record(ev.MaterialOwed, at, "gateway", material=item.material, due=due)
        return new

    def supply_owed(
        self, document: dict[str, Any], supplied: tuple[str, ...], at: datetime, actor: str
    ) -> None:
        """Owed materials supplied after acceptance: a supplement round of its own (every
        handler holding the case is then due the supplemented document, Art. 20)."""
        if self.status not in (Status.ACCEPTED, Status.UNDER_REVIEW):
            raise IllegalTransitionError(
                f"nothing is owed once the application is {self.status.value}"
            )
        owed = {o.material for o in self.owed}
        if not supplied or not set(supplied) <= owed:
            raise IllegalTransitionError("only materials still owed are supplied after acceptance")
        self.document = document
        self.supplement_round += 1
        late = [o.material for o in self.owed if o.material in supplied and o.overdue_at]
        self.owed = [o for o in self.owed if o.material not in supplied]
        data: dict[str, Any] = {
            "provided": sorted(supplied),
            "round": self.supplement_round,
            "after_acceptance": True,
            "still_owed": [o.material for o in self.owed],
        }
        if late:
            data["late"] = sorted(late)
        self._record(ev.SupplementProvided, at, actor, **data)

    def mark_owed_overdue(self, today: str, at: datetime) -> bool:
        """Flag, once each, owed materials whose due day has passed (ISO dates compare)."""
        if self.status not in (Status.ACCEPTED, Status.UNDER_REVIEW):
            return False
        late = [o for o in self.owed if o.overdue_at is None and o.due < today]
        for item in late:
            item.overdue_at = at
            self._record(ev.MaterialOverdue, at, "gateway", material=item.material, due=item.due)
        return bool(late)

    @property
    def owed_due(self) -> str | None:
        """The earliest due day of an owed material not yet flagged overdue (the sweep's)."""
        if self.status not in (Status.ACCEPTED, Status.UNDER_REVIEW):
            return None
        return min((o.due for o in self.owed if o.overdue_at is None), default=None)

    # ---- evidence by data sharing (Art. 11, 19(5)) ----------------------------------------

    @property
    def awaiting_evidence(self) -> bool:
        """An issuer's answer is outstanding: acceptance and notices wait for it."""
        return any(e.state is EvidenceState.REQUESTED for e in self.evidence)

    def evidence_due(self) -> list[Evidence]:
        """Evidence to request that has no request queued yet."""
        return [
            e for e in self.evidence if e.state is EvidenceState.REQUESTED and e.request_id is None
        ]

    def evidence_of_request(self, request_id: str) -> Evidence | None:
        return next((e for e in self.evidence if e.request_id == request_id), None)

    def evidence_queued(
        self, material: str, request_id: str, issuer: str, due_at: datetime, at: datetime
    ) -> None:
        """A signed evidence request to ``issuer`` is in the outbox, answered by ``due_at``."""
        found = next(e for e in self.evidence if e.material == material)
        found.request_id, found.issuer = request_id, issuer
        found.requested_at, found.due_at = at, due_at
        self._record(
            ev.EvidenceRequested,
            at,
            "gateway",
            material=material,
            evidence_type=found.evidence_type,
            issuer=issuer,
            request_id=request_id,
            due_at=due_at.isoformat(),
        )

    def evidence_received(
        self,
        request_id: str,
        *,
        digest: str,
        media_type: str,
        issued_at: str,
        at: datetime,
        material_id: str | None = None,
        size: int | None = None,
    ) -> bool:
        """The issuer's verified evidence document is kept as the material (bound to the case
        with the material's code); False when no such request awaits an answer."""
        found = self.evidence_of_request(request_id)
        if found is None or found.state is not EvidenceState.REQUESTED:
            return False
        found.state, found.answered_at = EvidenceState.RECEIVED, at
        found.digest, found.material_id = digest, material_id
        item: dict[str, Any] = {
            "code": found.material,
            "digest": digest,
            "media_type": media_type,
            "filename": f"{found.evidence_type}.json",
        }
        if material_id is not None:
            item["material_id"] = material_id
        if size is not None:
            item["size"] = size
        kept = [m for m in self.document.get("materials", []) if m.get("code") != found.material]
        self.document = {**self.document, "materials": [*kept, item]}
        self._record(
            ev.EvidenceReceived,
            at,
            found.issuer or "gateway",
            material=found.material,
            evidence_type=found.evidence_type,
            request_id=request_id,
            digest=digest,
            issued_at=issued_at,
            **({"material_id": material_id} if material_id else {}),
        )
        return True

    def evidence_failed(
        self, request_id: str, state: EvidenceState, reason: str, at: datetime
    ) -> bool:
        """The issuer refused, or did not answer in time: the applicant is asked for the
        material (it joins the missing list). False when no such request awaits."""
        if state not in (EvidenceState.REFUSED, EvidenceState.UNANSWERED):
            raise IllegalTransitionError("evidence fails as refused or unanswered")
        found = self.evidence_of_request(request_id)
        if found is None or found.state is not EvidenceState.REQUESTED:
            return False
        found.state, found.reason, found.answered_at = state, reason, at
        if self.status in (Status.RECEIVED, Status.AWAITING_SUPPLEMENT):
            self.missing = tuple(dict.fromkeys((*self.missing, found.material)))
        kind = ev.EvidenceRefused if state is EvidenceState.REFUSED else ev.EvidenceUnanswered
        actor = found.issuer if state is EvidenceState.REFUSED and found.issuer else "gateway"
        self._record(
            kind,
            at,
            actor,
            material=found.material,
            evidence_type=found.evidence_type,
            request_id=request_id,
            reason=reason,
        )
        return True

    def evidence_settled(
        self, at: datetime, *, deadline: str | None, statutory_deadline: str | None
    ) -> bool:
        """Once no answer is outstanding, the case goes on where it waited: the one notice of
        everything missing, else the acceptance (``automatic``) or the lead's examination
        (``agency``, its forward then due). True when the case moved."""
        if self.status is not Status.RECEIVED or not self.evidence or self.awaiting_evidence:
            return False
        if self.missing:
            self._request_supplement(self.missing, at, "gateway")
            return True
        if self.acceptance == "automatic":
            self._accept(at, "gateway", deadline, statutory_deadline)
            return True
        return False

    # ---- review, result, withdrawal ------------------------------------------------------

    def decide(
        self,
        agency_id: str,
        decision: str,
        reasons: tuple[str, ...],
        at: datetime,
        *,
        owed_before_decision: bool = True,
    ) -> None:
        """A handling agency's decision; the case is decided when every handler has decided.
        No approval while a material is owed (Art. 12), unless the matter allows it
        (``owed_before_decision`` false): :func:`owed_error` names what is owed."""
        handler = self.handler(agency_id)
        if decision not in ("approved", "rejected"):
            raise IllegalTransitionError("a decision is 'approved' or 'rejected'")
        if decision == "approved" and self.owed and owed_before_decision:
            raise owed_error(self.owed)
        if decision == "rejected" and not reasons:
            raise IllegalTransitionError("a rejection must carry its reasons (Art. 21)")
        if self.status is not Status.UNDER_REVIEW or handler.state is not HandlerState.DELIVERED:
            raise IllegalTransitionError(
                f"a decision is not possible while the application is {self.status.value} "
                f"and this handler is {handler.state.value}"
            )
        handler.state = HandlerState(decision)
        handler.reasons = reasons
        self._record(ev.DecisionRecorded, at, agency_id, decision=decision, reasons=list(reasons))
        states = {h.state for h in self.handlers}
        if HandlerState.REJECTED in states and HandlerState.DELIVERED not in states:
            self._move(Status.REJECTED)
            self._record(
                ev.ApplicationRejected,
                at,
                "gateway",
                reasons={h.agency_id: list(h.reasons) for h in self.handlers if h.reasons},
            )
        elif states == {HandlerState.APPROVED}:
            self._move(Status.APPROVED)
            self._record(ev.ApplicationApproved, at, "gateway")

    def deliver_result(
        self, agency_id: str, channel: str, at: datetime, pickup_hash: str | None = None
    ) -> None:
        """The lead agency delivered the result by the channel the applicant chose; for a
        counter or a kiosk (:data:`PICKUP_CHANNELS`) it is made ready for pickup with the
        code whose hash is ``pickup_hash``, and delivered when collected. A code locked by
        wrong attempts is replaced by calling again: a new code, the attempts counted anew."""
        if self.lead.agency_id != agency_id:
            raise ForbiddenError("only the lead agency delivers the result")
        if channel not in DELIVERY_CHANNELS:
            raise IllegalTransitionError(
                f"the result is delivered by {', '.join(DELIVERY_CHANNELS)}"
            )
        if self.delivery_channel is not None and channel != self.delivery_channel:
            raise IllegalTransitionError(
                f"the applicant chose delivery by {self.delivery_channel}, not {channel}"
            )
        if channel in PICKUP_CHANNELS:
            if self.status not in (Status.APPROVED, Status.REJECTED):
                raise IllegalTransitionError(f"a {self.status.value} case has no result")
            reissued = self.pickup_hash is not None
            if reissued and self.pickup_attempts < PICKUP_ATTEMPTS:
                raise IllegalTransitionError("the result already waits for its pickup")
            if not pickup_hash:
                raise IllegalTransitionError("a result collected in person needs a pickup code")
            self.pickup_hash, self.pickup_attempts = pickup_hash, 0
            again = {"reissued": True} if reissued else {}
            self._record(ev.ResultReadyForPickup, at, agency_id, channel=channel, **again)
            return
        self._move(Status.RESULT_DELIVERED)
        self._record(ev.ResultDelivered, at, agency_id, channel=channel)

    def collect_result(
        self, agency_id: str, code_hash: str, at: datetime, where: dict[str, Any]
    ) -> bool:
        """A counter or kiosk hands the result over to whoever presents the pickup code
        (``code_hash``, compared in constant time). A wrong code is counted and recorded
        (False); after :data:`PICKUP_ATTEMPTS` of them the code is locked."""
        if self.pickup_hash is None or self.status not in (Status.APPROVED, Status.REJECTED):
            raise IllegalTransitionError("no result of this case waits for its pickup")
        if self.pickup_attempts >= PICKUP_ATTEMPTS:
            raise IllegalTransitionError("too many wrong pickup codes: the code is locked")
        if not hmac.compare_digest(code_hash, self.pickup_hash):
            self.pickup_attempts += 1
            left = PICKUP_ATTEMPTS - self.pickup_attempts
            self._record(ev.PickupRefused, at, agency_id, attempts_left=left, **where)
            return False
        channel = "kiosk" if where.get("at_channel") == "kiosk" else "pickup"
        self.pickup_hash = None
        self._move(Status.RESULT_DELIVERED)
        self._record(ev.ResultDelivered, at, agency_id, channel=channel, picked_up=True, **where)
        return True

    def mark_overdue(self, today: str, at: datetime) -> bool:
        """Flag, once, a case still open after its promised deadline (ISO dates compare)."""
        open_ = self.status in (Status.ACCEPTED, Status.UNDER_REVIEW)
        if not open_ or self.deadline is None or self.deadline >= today or self.overdue_at:
            return False
        self.overdue_at = at
        pending = [h.agency_id for h in self.handlers if h.state is not HandlerState.APPROVED]
        self._record(ev.DeadlineOverdue, at, "gateway", deadline=self.deadline, waiting_for=pending)
        return True

    def withdraw(self, actor: str, at: datetime) -> None:
        """The applicant (or the agency that submitted for them) withdraws an open case."""
        self._move(Status.WITHDRAWN)
        self._record(ev.ApplicationWithdrawn, at, actor)

    # ---- automatic decisions (Art. 25), complaints (Art. 31) ------------------------------

    def decide_automatically(self, failed: tuple[str, ...], at: datetime, *, recheck: bool) -> None:
        """Each handler holding the case decided by data comparison, recorded by the gateway:
        approved, or rejected with the failed rules as reasons; ``recheck``: drawn for the
        lead agency's human re-check."""
        for h in [h for h in self.handlers if h.state is HandlerState.DELIVERED]:
            n = len(self.pending_events)
            self.decide(h.agency_id, "rejected" if failed else "approved", failed, at)
            data = {**self.pending_events[n].data, "agency": h.agency_id}
            self.pending_events[n] = ev.DecisionRecorded(self.id, at, AUTOMATIC, data)
        if recheck:
            self.recheck = "queued"
            self._record(ev.RecheckQueued, at, AUTOMATIC, agency=self.lead.agency_id)

    def record_recheck(
        self, agency_id: str, outcome: str, reasons: tuple[str, ...], at: datetime
    ) -> None:
        """The lead agency's human re-check of an automatic decision (Art. 25): ``confirmed``,
        or ``overturned`` with its reasons — then a corrective decision replaces the automatic
        one (approved becomes rejected with the lead's reasons; rejected becomes approved),
        and a result already delivered is to be delivered again."""
        if self.lead.agency_id != agency_id:
            raise ForbiddenError("only the lead agency re-checks an automatic decision")
        if outcome not in ("confirmed", "overturned"):
            raise IllegalTransitionError("a re-check is 'confirmed' or 'overturned'")
        if self.recheck != "queued":
            raise IllegalTransitionError(
                "no re-check is pending"
                if self.recheck is None
                else f"the re-check was already recorded: {self.recheck}"
            )
        if outcome == "overturned" and not reasons:
            raise IllegalTransitionError("an overturn must state its reasons (Art. 21, 25)")
        approved = self._decided_approved()
        self.recheck = outcome
        self._record(
            ev.RecheckRecorded,
            at,
            agency_id,
            agency=agency_id,
            outcome=outcome,
            reasons=list(reasons),
        )
        if outcome == "confirmed":
            return
        if approved:
            self.lead.state, self.lead.reasons = HandlerState.REJECTED, reasons
            self.status = Status.REJECTED  # a correction, not a move of the state machine
        else:
            for h in self.handlers:
                h.state, h.reasons = HandlerState.APPROVED, ()
            self.status = Status.APPROVED
        self._record(
            ev.DecisionCorrected,
            at,
            agency_id,
            decision=self.status.value,
            overturned="approved" if approved else "rejected",
            reasons=list(reasons),
        )

    def _decided_approved(self) -> bool:
        if self.status in (Status.APPROVED, Status.REJECTED):
            return self.status is Status.APPROVED
        if self.status is Status.RESULT_DELIVERED:
            return all(h.state is HandlerState.APPROVED for h in self.handlers)
        raise IllegalTransitionError(f"nothing was decided: the application is {self.status.value}")

    def complaint_filed(self, complaint_id: str, actor: str, at: datetime) -> None:
        self._record(ev.ComplaintFiled, at, actor, complaint_id=complaint_id)

    def complaint_answered(
        self, complaint_id: str, agency_id: str, outcome: str, at: datetime
    ) -> None:
        if self.lead.agency_id != agency_id:
            raise ForbiddenError("only the lead agency answers a complaint")
        self._record(
            ev.ComplaintAnswered, at, agency_id, complaint_id=complaint_id, outcome=outcome
        )

    # ---- e-certificates (Art. 22) ------------------------------------------------------

    def certificate_issued(
        self, certificate_id: str, agency_id: str, kid: str, at: datetime
    ) -> None:
        """An approving handler attached an e-certificate to its approval."""
        if self.handler(agency_id).state is not HandlerState.APPROVED:
            raise IllegalTransitionError("only an agency that approved issues an e-certificate")
        self._record(ev.CertificateIssued, at, agency_id, certificate_id=certificate_id, kid=kid)

    def certificate_delivered(self, certificate_id: str, at: datetime) -> None:
        self._record(ev.CertificateDelivered, at, "gateway", certificate_id=certificate_id)

    def certificate_revoked(self, certificate_id: str, agency_id: str, at: datetime) -> None:
        self._record(ev.CertificateRevoked, at, agency_id, certificate_id=certificate_id)

    # ---- internals ---------------------------------------------------------------------

    def _accept(
        self,
        at: datetime,
        actor: str,
        deadline: str | None,
        statutory_deadline: str | None,
        *,
        deemed: bool = False,
    ) -> None:
        self._move(Status.ACCEPTED)
        self.deadline, self.statutory_deadline = deadline, statutory_deadline
        self.acceptance_due = None
        data: dict[str, Any] = {"deadline": deadline, "statutory_deadline": statutory_deadline}
        if deemed:
            data["deemed"] = True
            data["effective"] = (self.examined_from or self.received_at).isoformat()
        self._record(ev.ApplicationAccepted, at, actor, **data)
        self._start_review_if_ready(at)

    def _request_supplement(self, missing: tuple[str, ...], at: datetime, actor: str) -> None:
        self._move(Status.AWAITING_SUPPLEMENT)
        self.missing = missing
        self.acceptance_due = None
        self._record(ev.SupplementRequested, at, actor, missing=list(missing))

    def _start_review_if_ready(self, at: datetime) -> None:
        if self.status is Status.ACCEPTED and all(
            h.state is not HandlerState.PENDING for h in self.handlers
        ):
            self._move(Status.UNDER_REVIEW)
            self._record(
                ev.ReviewStarted, at, "gateway", handlers=[h.agency_id for h in self.handlers]
            )

    def _move(self, to: Status) -> None:
        if to not in _ALLOWED[self.status]:
            raise IllegalTransitionError(f"{self.status.value} -> {to.value} is not allowed")
        self.status = to

    def _record(self, kind: type[ev.Event], at: datetime, actor: str, **data: Any) -> None:
        self.pending_events.append(kind(self.id, at, actor, data))


def can_move(frm: Status, to: Status) -> bool:
    return to in _ALLOWED[frm]
