"""What every move of a case shares: the use cases' dependencies, time limits, forwards to
the handlers who should now have the case, and signed vouchers for its milestones.

:func:`step` runs after any move, the receipt of a case included, in the mover's
transaction (:func:`settle` wraps it for the moves after the receipt, with the save): vouchers
(Art. 19(4)) for the milestones among the pending events, routes of redress on a rejection
(Art. 21), forwards to whoever should have the case now, evidence requests, notifications.
So the state change and its outbox rows commit together, whichever use case made it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Protocol

from gateway.domain import events as ev
from gateway.domain import ids, legal_basis, minimisation
from gateway.domain.agencies import Agency
from gateway.domain.application import (
    ACCEPTANCE_WORKING_DAYS,
    Application,
    HandlerState,
    Status,
)
from gateway.domain.errors import NotExpressibleError, NotReadyError
from gateway.domain.identity import Consent
from gateway.domain.materials import MaterialLimits
from gateway.domain.matters import MaterialRule, Matter, TimeLimit, TimeUnit
from gateway.domain.values import local_date
from gateway.services import case_materials, commitments, evidence, notifications
from gateway.services.ports import (
    AgencyRepository,
    BlobStore,
    Clock,
    DocumentCodec,
    MatterCatalog,
    OutboxMessage,
    ReceiptIssuer,
    UnitOfWork,
    UnitOfWorkFactory,
    WorkingCalendar,
)

VOUCHER_KINDS = {
    ev.ApplicationAccepted: "acceptance",
    ev.ApplicationNotAccepted: "non_acceptance",
    ev.SupplementRequested: "supplement_notice",
    ev.ApplicationApproved: "decision",
    ev.ApplicationRejected: "decision",
    ev.DecisionCorrected: "corrective_decision",
    ev.ResultDelivered: "result_delivery",
    ev.ApplicationWithdrawn: "withdrawal",
}


class AppealCatalog(Protocol):
    def for_refusal(self, jurisdiction: str, decided_on: date) -> list[dict[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class Dependencies:
    """Everything the use cases need, wired once by :mod:`gateway.bootstrap`."""

    uow: UnitOfWorkFactory
    clock: Clock
    catalog: MatterCatalog
    codecs: Mapping[str, DocumentCodec]  # by jurisdiction code, plus "canonical"
    receipts: ReceiptIssuer
    calendar: WorkingCalendar
    issuer: str
    outbox_written: Callable[[], None] = lambda: None
    appeals: AppealCatalog | None = None  # routes of redress named in a rejection
    notify: bool = False  # record notifications of milestones (Art. 22); bootstrap turns it on
    blobs: BlobStore | None = None  # uploaded materials' bytes (None: uploads refused)
    material_limits: MaterialLimits = field(default_factory=MaterialLimits)
    # evidence by data sharing (services/evidence.py): the types, and how long an issuer has
    # to answer before the applicant is asked instead; None: nothing is ever requested
    evidence_types: evidence.EvidenceTypeCatalog | None = None
    evidence_answer_within: timedelta = timedelta(hours=24)


def canonical_digest(document: Mapping[str, Any]) -> str:
    """RFC 9530-form digest of a canonical document in its one serialisation."""
    data = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data.encode()).digest()).decode() + ":"


def deadline_of(limit: TimeLimit, start: date, calendar: WorkingCalendar) -> date:
    """The last day of a time limit counted from ``start`` in the limit's own calendar."""
    if limit.unit is TimeUnit.NATURAL_DAYS:
        return start + timedelta(days=limit.value)
    return calendar.add_working_days(limit.calendar, start, limit.value)


def deadlines(matter: Matter, start: date, calendar: WorkingCalendar) -> tuple[str, str]:
    """The promised and statutory last days of a case accepted on ``start``."""
    return (
        deadline_of(matter.promised_limit, start, calendar).isoformat(),
        deadline_of(matter.statutory_limit, start, calendar).isoformat(),
    )


def acceptance_due(matter: Matter, received: date, calendar: WorkingCalendar) -> str | None:
    """The last day for the lead agency's notice (5 working days, Art. 19(3))."""
    if matter.acceptance != "agency":
        return None
    days = ACCEPTANCE_WORKING_DAYS
    return calendar.add_working_days(matter.statutory_limit.calendar, received, days).isoformat()


async def registered(agencies: AgencyRepository, agency_id: str) -> Agency:
    agency = await agencies.get(agency_id)
    if agency is None:  # refused at start-up; only an agency removed since can get here
        raise NotReadyError("a handling agency of this matter is not registered")
    return agency


def data_categories(document: Mapping[str, Any]) -> set[str]:
    """The personal-data categories a canonical application carries."""
    person = document.get("applicant", {})
    out = {"identity"}
    if "phone" in person or "email" in person:
        out.add("contact")
    if "address" in person:
        out.add("address")
    if document.get("particulars"):
        out.add("application")
    if document.get("materials") or document.get("commitments"):
        out.add("materials")
    return out


def uncovered(
    app: Application,
    consent: Consent | None,
    agency: Agency,
    document: Mapping[str, Any],
    now: datetime,
) -> str | None:
    """Why nothing covers sending ``document`` of the case to the agency (None: something
    does). An agency's case relies on the legal basis its submitter declared (none recorded:
    ``no_legal_basis``); a resident's with every handler at home, on no consent. A consent's
    destinations are the jurisdictions away from the applicant's home that it covers; a
    handler at home needs it in force only."""
    if app.relies_on is None:
        return legal_basis.NO_LEGAL_BASIS
    if app.consent_id is None:
        return None
    if consent is None or consent.id != app.consent_id:
        return "consent_missing"
    if consent.withdrawn_at is not None:
        return "consent_withdrawn"
    if not consent.active(now):
        return "consent_expired"
    away = [agency.jurisdiction] if agency.jurisdiction in consent.destinations else []
    if not consent.covers(
        purpose="cross_border_application",
        categories=data_categories(document),
        destinations=away,
        matter=app.matter,
        at=now,
    ):
        return "consent_not_covering"
    return None


def forwards(
    app: Application,
    deps: Dependencies,
    agencies: Mapping[str, Agency],
    now: datetime,
    consent: Consent | None = None,
) -> list[OutboxMessage]:
    """One message for each handler that should have the case now and has none queued,
    in the format the agency receives, with its translation record and the consent it relies
    on. Only the fields the matter declares the handler needs leave (data minimisation,
    :mod:`gateway.domain.minimisation`), reduced before encoding, so the native encoders and
    the carried check see the reduced document. A resident's case sends nothing that the
    consent it relies on does not cover in force (``consent``, checked again at every
    forward): the timeline records ``message.withheld`` with the reason. A format that cannot
    carry the whole application queues nothing for that agency: the timeline records
    ``message.forward_blocked`` with the problems, the other handlers' forwards still go, and
    the forward is tried again at the case's next move."""
    messages = []
    route = deps.catalog.get(app.matter, local_date(app.received_at)).route
    for handler in app.due_forwards():
        agency = agencies[handler.agency_id]
        document = minimisation.minimised(
            case_materials.addressed(app.document, app.id, deps.issuer),
            minimisation.fields_for(route, agency.id, handler.role),
        )
        reason = uncovered(app, consent, agency, document, now)
        if reason is not None:
            app.forward_withheld(agency.id, reason, now)
            continue
        codec = deps.codecs[agency.receives]
        message_id = ids.new_message_id()
        if handler.message_id is not None:  # it holds an earlier document: the supplemented one
            stage = "supplement"
        else:
            stage = "examination" if app.status is Status.RECEIVED else "review"
        envelope = {
            "message_id": message_id,
            "application_id": app.id,
            "matter": app.matter,
            "matter_version": app.matter_version,
            "role": handler.role,
            "stage": stage,
            "supplement_round": app.supplement_round or None,  # of the document carried
            "submitted_by": "resident" if app.applicant_id else app.submitted_by,
            "channel": app.channel,
            "received_at": app.received_at.isoformat(),
            "deadline": app.deadline,
            "translation": {
                "source_format": app.source_format,
                "source_digest": app.content_digest,
                "mapping_version": app.mapping_version,
                "canonical_digest": canonical_digest(document),  # of what is sent
            },
            "consent_id": app.consent_id,
        }
        try:
            body, media_type = codec.encode(document, envelope)
        except NotExpressibleError as exc:  # nothing leaves with a field silently dropped
            blocked = [
                {"xpath": p.xpath, "code": p.code}
                if p.xpath is not None
                else {"pointer": p.pointer or "", "code": p.code}
                for p in exc.errors
            ]
            app.forward_blocked(agency.id, blocked, now)
            continue
        messages.append(
            OutboxMessage(
                message_id,
                app.id,
                agency.id,
                media_type,
                body,
                next_attempt_at=now,
                consent_id=app.consent_id,
                relies_on=app.relies_on,  # the relay re-checks only what may lapse
            )
        )
        app.message_queued(agency.id, message_id, now)
    return messages


async def settle(app: Application, uow: UnitOfWork, deps: Dependencies, now: datetime) -> bool:
    """After a move: :func:`step`, then the save and the outbox rows — all in the caller's
    transaction. True when forwards were queued. Reads the handling agencies and the consent
    the case relies on; the submission, which holds both already, calls :func:`step` itself."""
    agencies = {h.agency_id: await registered(uow.agencies, h.agency_id) for h in app.handlers}
    consent = await uow.identities.consent(app.consent_id) if app.consent_id else None
    messages = await step(app, uow, deps, now, agencies, consent)
    await uow.applications.save(app)
    for message in messages:
        await uow.outbox.add(message)
    return bool(messages)


async def step(
    app: Application,
    uow: UnitOfWork,
    deps: Dependencies,
    now: datetime,
    agencies: Mapping[str, Agency],
    consent: Consent | None,
) -> list[OutboxMessage]:
    """The one milestone step every move of a case takes, its receipt included: vouchers for
    the milestones, forwards to whoever should have the case now, evidence requests, and the
    notifications; the messages to queue are returned for the caller to store with the case.
    A case of a matter decidable by data comparison is decided as it moves to review (Art.
    25), and every milestone is written as notifications in the same transaction (Art. 22).
    A case whose evidence by data sharing is all in (or failed) goes on where it waited, and
    evidence still to request is queued to its issuers (services/evidence.py). Reads nothing
    but what it is given (the submission's write-only unit of work, ADR 0012)."""
    _settle_evidence(app, deps, now)
    owe_at_acceptance(app, deps, now)  # accepted, at receipt or later: what is owed (Art. 12)
    _decide_automatically(app, deps, now)
    if app.status in (Status.REJECTED, Status.APPROVED):
        _appeal_routes(app, agencies, deps, now)  # before the decision's voucher is signed
    _vouchers(app, deps, now)
    messages = forwards(app, deps, agencies, now, consent) + evidence_requests(app, deps, now)
    if deps.notify:
        await notifications.record(app, uow, now)
    return messages


def evidence_requests(app: Application, deps: Dependencies, now: datetime) -> list[OutboxMessage]:
    """The signed evidence requests the case still has to send (none without evidence types)."""
    if deps.evidence_types is None:
        return []
    return evidence.requests(app, deps.evidence_types, deps.evidence_answer_within, now)


def _settle_evidence(app: Application, deps: Dependencies, now: datetime) -> None:
    """No issuer's answer is outstanding any more: the one notice of everything missing, or
    the acceptance with its time limits counted from today (as after a supplement)."""
    if app.status is not Status.RECEIVED or not app.evidence or app.awaiting_evidence:
        return
    matter = deps.catalog.get(app.matter, local_date(app.received_at))
    promised, statutory = deadlines(matter, local_date(now), deps.calendar)
    app.evidence_settled(now, deadline=promised, statutory_deadline=statutory)


def owe_at_acceptance(app: Application, deps: Dependencies, now: datetime) -> None:
    """容缺受理 (Art. 12): when a case has just been accepted, each may-be-missing material it
    does not have is owed, due within the matter's ``owed_within`` from today; the acceptance
    (and so its voucher) lists what is owed with its due day, and the commitments accepted in
    place of materials (material, language, digest of the text), however they came in."""
    accepted = next((e for e in app.pending_events if isinstance(e, ev.ApplicationAccepted)), None)
    if accepted is None or app.status not in (Status.ACCEPTED, Status.UNDER_REVIEW):
        return
    matter = deps.catalog.get(app.matter, local_date(app.received_at))
    may_miss = tuple(m.code for m in matter.materials if m.rule is MaterialRule.MAY_BE_MISSING)
    due = deadline_of(matter.owed_limit, local_date(now), deps.calendar).isoformat()
    app.owe(may_miss, due, now)
    if app.owed:
        accepted.data["owed"] = [{"material": o.material, "due": o.due} for o in app.owed]
    committed = commitments.receipt_claim(app.document)
    if committed:  # 告知承诺: the commitments accepted, each text's digest and language
        accepted.data["commitments"] = committed


def _decide_automatically(app: Application, deps: Dependencies, now: datetime) -> None:
    """Art. 25: a case of a matter with ``automatic_decision`` that has just moved to review is
    decided for every handler by its rules; a deterministic sample is queued for re-check.
    While a material is owed (Art. 12) the decision waits; it is made when the last owed
    material arrives."""
    if app.status is not Status.UNDER_REVIEW:
        return
    started = any(isinstance(e, ev.ReviewStarted) for e in app.pending_events)
    supplied = any(
        isinstance(e, ev.SupplementProvided) and e.data.get("after_acceptance")
        for e in app.pending_events
    )
    if not (started or supplied):
        return
    matter = deps.catalog.get(app.matter, local_date(app.received_at))
    if app.owed and matter.owed_before_decision:
        return
    rules = matter.automatic_decision
    if rules is not None and any(h.state is HandlerState.DELIVERED for h in app.handlers):
        recheck = rules.sampled(app.id)
        app.decide_automatically(rules.failed(app.document), now, recheck=recheck)


def _vouchers(app: Application, deps: Dependencies, now: datetime) -> None:
    """A signed voucher (Art. 19(4)) for each milestone among the pending events."""
    for event in list(app.pending_events):
        kind = VOUCHER_KINDS.get(type(event))
        if kind is None:
            continue
        claims = {
            "iss": deps.issuer,
            "sub": app.id,
            "iat": int(now.timestamp()),
            "jti": ids.new_receipt_id(),
            "kind": kind,
            "matter": app.matter,
            "status": app.status.value,
            "event": event.type,
            "at": event.at.isoformat(),
            **{k: v for k, v in event.data.items() if k != "voucher"},
        }
        voucher = deps.receipts.issue(claims)
        app.pending_events.append(
            ev.VoucherIssued(app.id, now, "gateway", {"kind": kind, "voucher": voucher})
        )


def _appeal_routes(
    app: Application, agencies: Mapping[str, Any], deps: Dependencies, now: datetime
) -> None:
    """Art. 21: a rejection names the routes of redress and their last days, per refusing
    agency's jurisdiction; so does a corrective decision (Art. 25), for the lead's. Put on the
    event before its voucher is signed."""
    if deps.appeals is None:
        return
    for event in app.pending_events:
        if isinstance(event, ev.DecisionCorrected) and "appeal" not in event.data:
            # Art. 25: a corrective decision is a new decision, open to redress where its
            # deciding (lead) agency sits, whichever way it went
            refusing = [agencies[app.lead.agency_id].jurisdiction]
        elif isinstance(event, ev.ApplicationRejected) and "appeal" not in event.data:
            refusing = sorted(
                {agencies[h.agency_id].jurisdiction for h in app.handlers if h.reasons}
            )
        else:
            continue
        event.data["appeal"] = {j: deps.appeals.for_refusal(j, local_date(now)) for j in refusing}
