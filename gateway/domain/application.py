"""The Application aggregate and its state machine. No I/O.

::

    received ──► awaiting_supplement ──► accepted ──► under_review ──► approved
        │                                   ▲               │
        └───────────────────────────────────┘               └──────► rejected

Each handling agency has its own state (``pending`` → ``delivered`` → ``approved`` /
``rejected``). The case is ``under_review`` once every handler has the application, and is
decided when every handler has decided: all must approve; one rejection rejects (joint
handling, Art. 20). Every change appends an event; an illegal change raises
:class:`IllegalTransitionError` and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from gateway.domain import events as ev
from gateway.domain.errors import ForbiddenError, IllegalTransitionError


class Status(StrEnum):
    RECEIVED = "received"
    AWAITING_SUPPLEMENT = "awaiting_supplement"
    ACCEPTED = "accepted"
    NOT_ACCEPTED = "not_accepted"
    UNDER_REVIEW = "under_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


_ALLOWED: dict[Status, frozenset[Status]] = {
    Status.RECEIVED: frozenset(
        {Status.AWAITING_SUPPLEMENT, Status.ACCEPTED, Status.NOT_ACCEPTED, Status.WITHDRAWN}
    ),
    Status.AWAITING_SUPPLEMENT: frozenset({Status.ACCEPTED, Status.NOT_ACCEPTED, Status.WITHDRAWN}),
    Status.ACCEPTED: frozenset({Status.UNDER_REVIEW, Status.WITHDRAWN}),
    Status.UNDER_REVIEW: frozenset({Status.APPROVED, Status.REJECTED, Status.WITHDRAWN}),
    Status.NOT_ACCEPTED: frozenset(),
    Status.APPROVED: frozenset(),
    Status.REJECTED: frozenset(),
    Status.WITHDRAWN: frozenset(),
}


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
    deadline: str | None = None
    applicant_id: str | None = None  # the resident who applied (themselves or by an agent)
    consent_id: str | None = None  # the consent the cross-border forwards rely on
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
    ) -> Application:
        """Record a well-formed submission; it is accepted at once when nothing is missing."""
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
            deadline=deadline,
            applicant_id=applicant_id,
            consent_id=consent_id,
        )
        resident = {"consent_id": consent_id} if applicant_id else {}
        if agent_id:
            resident["agent"] = agent_id
        app._record(
            ev.ApplicationReceived,
            at,
            submitted_by,
            matter=matter,
            channel=channel,
            format=source_format,
            content_digest=content_digest,
            **resident,
        )
        if missing:
            app._move(Status.AWAITING_SUPPLEMENT)
            app._record(ev.SupplementRequested, at, "gateway", missing=list(missing))
        else:
            app._move(Status.ACCEPTED)
            app._record(ev.ApplicationAccepted, at, "gateway", deadline=deadline)
        return app

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

    def message_queued(self, agency_id: str, message_id: str, at: datetime) -> None:
        self._record(ev.MessageQueued, at, "gateway", agency=agency_id, message_id=message_id)

    def delivered(self, agency_id: str, message_id: str, ack_digest: str, at: datetime) -> None:
        """A handler acknowledged the forwarded application with a verified signature."""
        handler = self.handler(agency_id)
        if handler.state is not HandlerState.PENDING:
            return  # a repeated acknowledgement changes nothing
        handler.state = HandlerState.DELIVERED
        self._record(
            ev.MessageDelivered,
            at,
            agency_id,
            message_id=message_id,
            ack_digest=ack_digest,
        )
        if self.status is Status.ACCEPTED and all(
            h.state is not HandlerState.PENDING for h in self.handlers
        ):
            self._move(Status.UNDER_REVIEW)
            self._record(
                ev.ReviewStarted, at, "gateway", handlers=[h.agency_id for h in self.handlers]
            )

    def delivery_failed(self, agency_id: str, message_id: str, error: str, at: datetime) -> None:
        self._record(
            ev.DeliveryFailed, at, "gateway", agency=agency_id, message_id=message_id, error=error
        )

    def decide(self, agency_id: str, decision: str, reasons: tuple[str, ...], at: datetime) -> None:
        """A handling agency's decision; the case is decided when every handler has decided."""
        handler = self.handler(agency_id)
        if decision not in ("approved", "rejected"):
            raise IllegalTransitionError("a decision is 'approved' or 'rejected'")
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
            self._record(ev.ApplicationRejected, at, "gateway")
        elif states == {HandlerState.APPROVED}:
            self._move(Status.APPROVED)
            self._record(ev.ApplicationApproved, at, "gateway")

    def _move(self, to: Status) -> None:
        if to not in _ALLOWED[self.status]:
            raise IllegalTransitionError(f"{self.status.value} -> {to.value} is not allowed")
        self.status = to

    def _record(self, kind: type[ev.Event], at: datetime, actor: str, **data: Any) -> None:
        self.pending_events.append(kind(self.id, at, actor, data))


def can_move(frm: Status, to: Status) -> bool:
    return to in _ALLOWED[frm]
