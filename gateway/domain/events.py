"""Events: what happened to an application, in the past tense, without personal data.

Every event becomes one row of the application's timeline; its ``data`` holds codes, ids,
digests and agency names only, so the timeline can be shown to every party of the case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    application_id: str
    at: datetime
    actor: str
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        """Stable dotted name, e.g. ``application.received``."""
        return _TYPE_NAMES[type(self)]


class ApplicationReceived(Event):
    pass


class ApplicationAccepted(Event):
    pass


class SupplementRequested(Event):
    pass


class SupplementProvided(Event):
    pass


class ApplicationNotAccepted(Event):
    pass


class VoucherIssued(Event):
    """A signed voucher or notice (JWS) issued for the case: receipt, acceptance,
    non-acceptance, supplement notice (Art. 19(4))."""


class ResultDelivered(Event):
    pass


class ApplicationWithdrawn(Event):
    pass


class ResultReadyForPickup(Event):
    """The result waits at a counter or kiosk for the applicant's pickup code (Art. 22)."""


class PickupRefused(Event):
    """A wrong pickup code was presented; ``attempts_left`` before the code is locked."""


class DeadlineOverdue(Event):
    pass


class MessageQueued(Event):
    pass


class MessageDelivered(Event):
    pass


class ForwardBlocked(Event):
    """A forward was not queued: the agency's format cannot carry the whole application
    (``problems``: JSON pointers and codes, never values); nothing was sent to it."""


class MessageWithheld(Event):
    """A forward was not sent: no consent in force covers it (withdrawn, expired, or not
    covering the destination or the data); ``reason`` says which, ``message_id`` names a
    queued forward cancelled by it. Nothing of the case left for that agency."""


class ConsentRenewed(Event):
    """The applicant gave a new consent for an open case whose consent was withdrawn or had
    lapsed; ``consent_id`` replaces ``previous``, and ``forwards_due`` names the agencies
    whose withheld forwards are due again (queued under the new consent)."""


class DeliveryFailed(Event):
    pass


class DeliveryRetryScheduled(Event):
    pass


class ReviewStarted(Event):
    pass


class DecisionRecorded(Event):
    pass


class ApplicationApproved(Event):
    pass


class ApplicationRejected(Event):
    pass


class RecheckQueued(Event):
    """An automatic decision (Art. 25) drawn for a human re-check by the lead agency."""


class RecheckRecorded(Event):
    """The lead agency's re-check of an automatic decision: ``confirmed`` or ``overturned``."""


class DecisionCorrected(Event):
    """A corrective decision after an overturned re-check (Art. 25): ``decision`` replaces
    the automatic ``overturned`` one, with the lead's ``reasons``."""


class ExaminationRestarted(Event):
    """A supplement round completed the case: the lead's examination runs again from the
    supplement's arrival, to ``acceptance_due`` (Art. 19(3))."""


class ComplaintFiled(Event):
    """A complaint about the case (Art. 31); its text is kept apart, never on the timeline."""


class ComplaintAnswered(Event):
    """The lead agency's outcome of a complaint (``upheld`` or ``dismissed``)."""


class CertificateIssued(Event):
    """An approving agency attached an e-certificate to its decision (Art. 22); the event
    names the certificate, its issuer and key only, never its subject."""


class CertificateDelivered(Event):
    """The resident fetched the e-certificate under an ``e_certificate`` consent."""


class CertificateRevoked(Event):
    """The issuing agency revoked its e-certificate."""


class EvidenceRequested(Event):
    """A signed evidence request to its issuer was queued (by data sharing, Art. 19(5))."""


class EvidenceReceived(Event):
    """The issuer answered with a signed evidence document, kept as the material."""


class EvidenceRefused(Event):
    """The issuer refused (no record, or not disclosed): the applicant is asked."""


class EvidenceUnanswered(Event):
    """No answer within the set time: the applicant is asked."""


class EvidenceNotRequested(Event):
    """Nothing was requested (no consent covering it, no issuer, no identifier): why."""


class MaterialOwed(Event):
    """Accepted without a may-be-missing material (容缺受理, Art. 12): owed by ``due``."""


class MaterialOverdue(Event):
    """An owed material was not supplied by its due date."""


_TYPE_NAMES: dict[type[Event], str] = {
    ApplicationReceived: "application.received",
    ApplicationAccepted: "application.accepted",
    SupplementRequested: "application.supplement_requested",
    SupplementProvided: "application.supplement_provided",
    ApplicationNotAccepted: "application.not_accepted",
    VoucherIssued: "voucher.issued",
    ResultDelivered: "application.result_delivered",
    ApplicationWithdrawn: "application.withdrawn",
    ResultReadyForPickup: "application.result_ready_for_pickup",
    PickupRefused: "application.pickup_refused",
    DeadlineOverdue: "deadline.overdue",
    MessageQueued: "message.queued",
    MessageDelivered: "message.delivered",
    ForwardBlocked: "message.forward_blocked",
    MessageWithheld: "message.withheld",
    ConsentRenewed: "consent.renewed",
    DeliveryFailed: "message.dead_lettered",
    DeliveryRetryScheduled: "message.retry_scheduled",
    ReviewStarted: "review.started",
    DecisionRecorded: "decision.recorded",
    ApplicationApproved: "application.approved",
    ApplicationRejected: "application.rejected",
    RecheckQueued: "decision.recheck_queued",
    RecheckRecorded: "decision.rechecked",
    DecisionCorrected: "application.decision_corrected",
    ExaminationRestarted: "application.examination_restarted",
    ComplaintFiled: "complaint.filed",
    ComplaintAnswered: "complaint.answered",
    CertificateIssued: "certificate.issued",
    CertificateDelivered: "certificate.delivered",
    CertificateRevoked: "certificate.revoked",
    EvidenceRequested: "evidence.requested",
    EvidenceReceived: "evidence.received",
    EvidenceRefused: "evidence.refused",
    EvidenceUnanswered: "evidence.unanswered",
    EvidenceNotRequested: "evidence.not_requested",
    MaterialOwed: "material.owed",
    MaterialOverdue: "material.overdue",
}
