"""Complaints about a case (Art. 31): filed by the applicant, answered by the lead agency.

A complaint is linked to its case on the timeline (``complaint.filed``, ``complaint.answered``,
with the complaint id and the outcome only). Its text and the lead agency's reply are personal
data: they live on the :class:`Complaint`, kept apart from the timeline and the audit chain.

Who may do what:

- the resident who applied, or the agency that submitted for them, files a complaint, on any
  case, open or closed;
- the lead agency answers it, once: ``upheld`` or ``dismissed``, with a reply;
- the parties who filed or answer it (and the applicant) may read it; nobody else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.domain import ids
from gateway.domain.application import Application
from gateway.domain.commands import Caller
from gateway.domain.documents import problem
from gateway.domain.errors import ForbiddenError, IllegalTransitionError, ValidationFailedError

OUTCOMES = ("upheld", "dismissed")
MAX_TEXT = 4000  # characters


@dataclass(slots=True)
class Complaint:
    id: str
    application_id: str
    complainant: str  # the agency id, or ``resident:<person id>``
    text: str
    filed_at: datetime
    outcome: str | None = None
    reply: str | None = None
    answered_by: str | None = None
    answered_at: datetime | None = None

    @classmethod
    def file(
        cls,
        app: Application,
        complaint_id: str,
        *,
        caller: str,
        person_id: str | None,
        text: object,
        at: datetime,
    ) -> Complaint:
        """The applicant (``person_id``) or the submitting agency files; the case records it."""
        applicant = person_id is not None and person_id == app.applicant_id
        submitter = person_id is None and caller == app.submitted_by
        if not (applicant or submitter):
            raise ForbiddenError("only the applicant or the submitting agency files a complaint")
        complaint = cls(complaint_id, app.id, caller, _text(text, "/text"), at)
        app.complaint_filed(complaint_id, caller, at)
        return complaint

    def answer(
        self, app: Application, *, agency_id: str, outcome: object, reply: object, at: datetime
    ) -> None:
        """The lead agency's outcome, once; the case records it (without the reply)."""
        if app.lead.agency_id != agency_id:
            raise ForbiddenError("only the lead agency answers a complaint")
        if self.outcome is not None:
            raise IllegalTransitionError("the complaint is answered already")
        if outcome not in OUTCOMES:
            raise ValidationFailedError(
                "the outcome is 'upheld' or 'dismissed'",
                errors=[problem("/outcome", "invalid_value")],
            )
        self.reply = _text(reply, "/reply")
        self.outcome, self.answered_by, self.answered_at = str(outcome), agency_id, at
        app.complaint_answered(self.id, agency_id, self.outcome, at)

    def readable_by(self, app: Application, caller: str, person_id: str | None) -> bool:
        if person_id is not None:
            return person_id == app.applicant_id or caller == self.complainant
        return caller in (self.complainant, app.submitted_by, app.lead.agency_id)


def _text(value: object, pointer: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailedError(
            f"{pointer[1:]} is a non-empty text", errors=[problem(pointer, "required")]
        )
    if len(value) > MAX_TEXT:
        raise ValidationFailedError(
            f"{pointer[1:]} is at most {MAX_TEXT} characters",
            errors=[problem(pointer, "invalid_value")],
        )
    return value.strip()


@dataclass(frozen=True, slots=True)
class FileComplaint:
    caller: Caller
    application_id: str
    text: object
    idempotency_key: str
    body_digest: str


@dataclass(frozen=True, slots=True)
class AnswerComplaint:
    caller: Caller
    application_id: str
    complaint_id: str
    outcome: object
    reply: object
    idempotency_key: str
    body_digest: str


def new_complaint_id() -> str:
    return ids.new_complaint_id()
