"""Use cases of a case after its first answer (Art. 19–22): the lead agency's examination,
supplements, withdrawal, result delivery, and the sweeps that keep the regulation's clock —
deemed acceptance after 5 working days, overdue cases.

Each action is one transaction: the aggregate moves (or refuses, changing nothing), every
handler that should now have the case gets its forward in the same commit, and every
milestone that the applicant may need to prove gets a signed voucher on the timeline.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime
from typing import Any

import structlog

from gateway.domain import events as ev
from gateway.domain.application import (
    PICKUP_ALPHABET,
    PICKUP_ATTEMPTS,
    PICKUP_CHANNELS,
    PICKUP_CODE_LENGTH,
    Application,
    Status,
    pickup_hash,
)
from gateway.domain.commands import ActOnApplication
from gateway.domain.documents import problem
from gateway.domain.errors import (
    ConflictError,
    FieldProblem,
    ForbiddenError,
    IllegalTransitionError,
    NotFoundError,
    ValidationFailedError,
)
from gateway.domain.identity import require_consent
from gateway.domain.values import local_date
from gateway.services import case_materials, commitments, evidence
from gateway.services.acceptance import MessageAcceptance
from gateway.services.consents import consent_from_request
from gateway.services.handlers import (
    CANONICAL,
    _once,
    _refuse,
    _replayed,
    in_one_unit,
    scope_of,
)
from gateway.services.milestones import (
    Dependencies,
    acceptance_due,
    data_categories,
    deadlines,
    settle,
)
from gateway.services.ports import StoredResponse, TimelineEntry, UnitOfWork
from gateway.services.residents import require_case_assurance
from gateway.services.validation import assess

log = structlog.get_logger("gateway.lifecycle")

Act = Callable[[Application, UnitOfWork, datetime], Awaitable[None]]


async def act_on_application(
    cmd: ActOnApplication, deps: Dependencies, acceptance: MessageAcceptance | None = None
) -> StoredResponse:
    """Run one party's action on a case, at most once per Idempotency-Key."""
    handlers: dict[str, Callable[[ActOnApplication, Dependencies], Act]] = {
        "examine": _examine,
        "supplement": _supplement,
        "recheck": _recheck,
        "withdraw": _withdraw,
        "deliver_result": _deliver_result,
        "consent": _renew_consent,
    }
    if cmd.action not in handlers:
        raise NotFoundError(f"no action {cmd.action!r} on applications")
    act = handlers[cmd.action](cmd, deps)
    scope = scope_of(cmd.action, cmd.application_id)
    queued = False

    async def work(uow: UnitOfWork) -> StoredResponse:
        nonlocal queued
        now = deps.clock.now()
        app = await uow.applications.get(cmd.application_id)
        if app is None or not app.is_party(cmd.caller.agency_id, cmd.caller.person_id):
            raise NotFoundError("no such application for this caller")
        await require_case_assurance(uow, cmd.caller, app)
        await act(app, uow, now)
        queued = await settle(app, uow, deps, now)
        response = StoredResponse(
            request_digest=cmd.body_digest,
            status=200,
            body=_summary(app),
            resource=app.id,
        )
        if cmd.idempotency_key:
            await uow.idempotency.put(
                cmd.caller.agency_id, scope, cmd.idempotency_key, response, now
            )
        return response

    if not cmd.idempotency_key:
        response = await in_one_unit(deps, acceptance, work)
    else:
        response = await _once(
            deps, acceptance, cmd.caller, scope, cmd.idempotency_key, cmd.body_digest, work
        )
    if queued:
        deps.outbox_written()
    return response


def body_digest(body: bytes) -> str:
    """RFC 9530 form of a request body's SHA-256 (for Idempotency-Key comparisons)."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"


def _summary(app: Application) -> dict[str, Any]:
    return {
        "application_id": app.id,
        "status": app.status.value,
        "missing": list(app.missing),
        # 容缺受理 (Art. 12): what is owed after acceptance, and by when
        "owed": [{"material": o.material, "due": o.due} for o in app.owed],
        "deadlines": {
            "acceptance_due": app.acceptance_due,
            "promised": app.deadline,
            "statutory": app.statutory_deadline,
        },
    }


def _examine(cmd: ActOnApplication, deps: Dependencies) -> Act:
    outcome = str(cmd.data.get("outcome", ""))
    reasons = _texts(cmd.data, "reasons")
    missing = _texts(cmd.data, "missing")

    async def act(app: Application, uow: UnitOfWork, now: datetime) -> None:
        matter = deps.catalog.get(app.matter, local_date(app.received_at))
        promised, statutory = deadlines(matter, local_date(now), deps.calendar)
        known = {m.code for m in matter.materials}
        unknown = [m for m in missing if m not in known]
        if unknown:
            _refuse([problem("/missing", "unknown_material") for _ in unknown])
        app.examine(
            cmd.caller.agency_id,
            outcome,
            now,
            reasons=reasons,
            missing=missing,
            deadline=promised,
            statutory_deadline=statutory,
        )

    return act


def _supplement(cmd: ActOnApplication, deps: Dependencies) -> Act:
    async def act(app: Application, uow: UnitOfWork, now: datetime) -> None:
        _applicant_side(app, cmd)
        matter = deps.catalog.get(app.matter, local_date(app.received_at))
        supplied = cmd.data.get("materials")
        named = await case_materials.resolve(
            uow, supplied, matter, cmd.caller, deps.material_limits, application_id=app.id
        )
        data = dict(cmd.data)
        if named.found and isinstance(supplied, list):
            data["materials"] = case_materials.filled(supplied, named.found, app.id, deps.issuer)
        after = app.status in (Status.ACCEPTED, Status.UNDER_REVIEW) and bool(app.owed)
        late = _owed_problems(app, cmd.data) if after else []
        document = merged(app.document, data)
        decoded = deps.codecs[CANONICAL].decode(json.dumps(document, ensure_ascii=False).encode())
        assessment = assess(decoded.document, matter)
        language = await commitments.applicant_language(uow, app.applicant_id, app.source_format)
        filled, committed = commitments.filled(decoded.document, matter, language)
        if decoded.problems or assessment.problems or named.problems or committed or late:
            _refuse([*late, *named.problems, *decoded.problems, *assessment.problems, *committed])
        if after:  # 容缺受理: an owed material supplied after acceptance (Art. 12)
            codes = tuple(str(m["code"]) for m in supplied or [])
            app.supply_owed(filled, codes, now, cmd.caller.agency_id)
            await case_materials.bind(uow, supplied, named.found, app.id)
            _list_supplied(app, data)
            return
        arrived = local_date(now)
        promised, statutory = deadlines(matter, arrived, deps.calendar)
        app.supplement(
            filled,
            assessment.missing,
            now,
            cmd.caller.agency_id,
            deadline=promised,
            statutory_deadline=statutory,
            acceptance_due=acceptance_due(matter, arrived, deps.calendar),  # Art. 19(3) again
        )
        await case_materials.bind(uow, supplied, named.found, app.id)
        _list_supplied(app, data)

    return act


def _list_supplied(app: Application, data: Mapping[str, Any]) -> None:
    """Handlers see on the timeline what they may fetch of a supplement."""
    for event in app.pending_events:
        if isinstance(event, ev.SupplementProvided) and "materials" not in event.data:
            event.data["materials"] = case_materials.listed(data)


def _owed_problems(app: Application, data: Mapping[str, Any]) -> list[FieldProblem]:
    """After acceptance a supplement carries owed materials only (Art. 12): every item whose
    code is not owed, and every other member, is a problem."""
    problems = [
        problem(f"/{name}", "unexpected_field") for name in sorted(set(data) - {"materials"})
    ]
    items = data.get("materials")
    if not isinstance(items, list) or not items:
        return [*problems, problem("/materials", "required")]
    owed = {o.material for o in app.owed}
    return problems + [
        problem(f"/materials/{i}/code", "material_not_owed")
        for i, item in enumerate(items)
        if not isinstance(item, dict) or item.get("code") not in owed
    ]


def merged(document: Mapping[str, Any], data: Mapping[str, Any]) -> dict[str, Any]:
    """The application with supplied materials (by code), commitments and particulars."""
    allowed = {"materials", "commitments", "particulars"}
    extra = sorted(set(data) - allowed)
    if extra or not data:
        raise ValidationFailedError(
            "a supplement carries materials, commitments or particulars",
            errors=[problem(f"/{name}", "unexpected_field") for name in extra]
            or [problem("", "required")],
        )
    out = json.loads(json.dumps(document))
    for name, key in (("materials", "code"), ("commitments", "material")):
        items = data.get(name, [])
        if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
            raise ValidationFailedError(
                f"{name} is a list of objects", errors=[problem(f"/{name}", "wrong_type")]
            )
        given = {i.get(key) for i in items}
        out[name] = [i for i in out.get(name, []) if i.get(key) not in given] + items
        if not out[name]:
            out.pop(name)
    particulars = data.get("particulars", {})
    if not isinstance(particulars, dict):
        raise ValidationFailedError(
            "particulars is an object", errors=[problem("/particulars", "wrong_type")]
        )
    if particulars:
        out["particulars"] = {**out.get("particulars", {}), **particulars}
    return out


def _recheck(cmd: ActOnApplication, deps: Dependencies) -> Act:
    """The lead's human re-check of an automatic decision (Art. 25); an overturn's corrective
    decision gets its voucher and routes of redress in :func:`settle`."""
    outcome = str(cmd.data.get("outcome", ""))
    reasons = _texts(cmd.data, "reasons")
    wrong = [
        problem(f"/{name}", "unexpected_field")
        for name in sorted(set(cmd.data) - {"outcome", "reasons"})
    ]
    if outcome not in ("confirmed", "overturned"):
        wrong.append(problem("/outcome", "required" if not outcome else "invalid_value"))
    if outcome == "overturned" and not reasons:
        wrong.append(problem("/reasons", "required"))  # a corrective decision states them
    if wrong:
        _refuse(wrong)

    async def act(app: Application, uow: UnitOfWork, now: datetime) -> None:
        app.record_recheck(cmd.caller.agency_id, outcome, reasons, now)

    return act


def _withdraw(cmd: ActOnApplication, deps: Dependencies) -> Act:
    async def act(app: Application, uow: UnitOfWork, now: datetime) -> None:
        _applicant_side(app, cmd)
        app.withdraw("resident" if cmd.caller.person_id else cmd.caller.agency_id, now)

    return act


def _renew_consent(cmd: ActOnApplication, deps: Dependencies) -> Act:
    """The applicant consents again for an open case whose consent was withdrawn or lapsed:
    the new consent, for this matter and its agencies, must cover at least the destinations
    of the one it replaces and the case's data; the forwards withheld are queued again."""

    async def act(app: Application, uow: UnitOfWork, now: datetime) -> None:
        person = cmd.caller.person_id
        if person is None or person != app.applicant_id:
            raise ForbiddenError("only the applicant consents for their case")
        before = await uow.identities.consent(app.consent_id) if app.consent_id else None
        consent = require_consent(
            consent_from_request(
                cmd.data,
                person_id=person,
                at=now,
                matter=app.matter,
                recipients=sorted(h.agency_id for h in app.handlers),
            ),
            person_id=person,
            matter=app.matter,
            destinations=before.destinations if before is not None else (),
            categories=data_categories(app.document),
            at=now,
        )
        held: list[TimelineEntry] = []  # withheld since the applicant last consented
        for entry in await uow.applications.timeline(app.id):
            if entry.type == "consent.renewed":
                held = []
            elif entry.type == "message.withheld":
                held.append(entry)
        if before is not None and before.active(now) and not held:
            raise IllegalTransitionError(
                "the consent this application relies on is in force and nothing was withheld"
            )
        withheld = {str(e.data["message_id"]) for e in held if e.data.get("message_id")}
        app.rely_on_consent(consent.id, withheld, now, "resident")
        await uow.identities.add_consent(consent)
        uow.audit.record(
            "consent.granted",
            f"person:{person}",
            consent.id,
            {
                "purpose": consent.purpose,
                "categories": list(consent.categories),
                "destinations": list(consent.destinations),
                "matter": consent.matter,
                "application": app.id,
                "replaces": before.id if before is not None else None,
            },
            now,
        )

    return act


def _deliver_result(cmd: ActOnApplication, deps: Dependencies) -> Act:
    channel = str(cmd.data.get("channel", ""))

    async def act(app: Application, uow: UnitOfWork, now: datetime) -> None:
        code = None
        if channel in PICKUP_CHANNELS:  # a short random code; the case keeps its hash only
            code = "".join(secrets.choice(PICKUP_ALPHABET) for _ in range(PICKUP_CODE_LENGTH))
        app.deliver_result(
            cmd.caller.agency_id, channel, now, pickup_hash(app.id, code) if code else None
        )
        app.issued_pickup_code = code  # told to the applicant's side (notifications.record)

    return act


async def collect_result(
    cmd: ActOnApplication,
    deps: Dependencies,
    acceptance: MessageAcceptance | None = None,
    where: Mapping[str, Any] | None = None,
) -> StoredResponse:
    """A counter or kiosk hands the result over to the applicant who presents the pickup code
    (Art. 17, 22): a signed call of a party to the case. A wrong code is counted, recorded on
    the timeline and committed, and answered 422 (``status`` 422 in the returned response,
    for the edge to turn into a problem); the code is locked after
    :data:`~gateway.domain.application.PICKUP_ATTEMPTS` wrong ones (409). ``where``: the
    counter or kiosk of the call (its ``GBA-Channel`` record), kept on the timeline."""
    code = cmd.data.get("code")
    wrong = [problem(f"/{name}", "unexpected_field") for name in sorted(set(cmd.data) - {"code"})]
    if not isinstance(code, str) or not 4 <= len(code) <= 32:
        wrong.append(problem("/code", "required" if code is None else "wrong_type"))
    if wrong:
        _refuse(wrong)
    assert isinstance(code, str)
    at = {("at_channel" if k == "channel" else k): v for k, v in (where or {}).items()}
    scope = scope_of("collect_result", cmd.application_id)

    async def work(uow: UnitOfWork) -> StoredResponse:
        stored = await _replayed(uow, cmd.caller, scope, cmd.idempotency_key, cmd.body_digest)
        if stored is not None:
            return stored
        now = deps.clock.now()
        app = await uow.applications.get(cmd.application_id)
        if app is None or not app.is_party(cmd.caller.agency_id):
            raise NotFoundError("no such application for this agency")
        collected = app.collect_result(cmd.caller.agency_id, pickup_hash(app.id, code), now, at)
        await settle(app, uow, deps, now)
        if not collected:  # the attempt is kept; no Idempotency-Key is spent on it
            left = PICKUP_ATTEMPTS - app.pickup_attempts
            return StoredResponse(cmd.body_digest, 422, {"attempts_left": left}, app.id)
        response = StoredResponse(cmd.body_digest, 200, _summary(app), app.id)
        await uow.idempotency.put(cmd.caller.agency_id, scope, cmd.idempotency_key, response, now)
        return response

    return await in_one_unit(deps, acceptance, work)


def _applicant_side(app: Application, cmd: ActOnApplication) -> None:
    """Supplements and withdrawals come from the applicant or the agency that submitted."""
    caller = cmd.caller
    if caller.person_id is not None:
        if caller.person_id != app.applicant_id:
            raise ForbiddenError("only the applicant may do this")
    elif caller.agency_id != app.submitted_by:
        raise ForbiddenError("only the agency that submitted the application may do this")


def _texts(data: Mapping[str, Any], name: str) -> tuple[str, ...]:
    value = data.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValidationFailedError(
            f"{name} is a list of texts", errors=[problem(f"/{name}", "wrong_type")]
        )
    return tuple(value)


# ---- sweeps (scheduled; safe to run in several processes: each move is a versioned save) ----


async def sweep(deps: Dependencies, *, limit: int = 100) -> dict[str, int]:
    """Deem accepted every case whose lead issued no notice in time, as of its receipt date
    (or of its last supplement's arrival, after any supplement round); flag cases past their
    promised deadline; mark evidence requests past their time unanswered (the applicant is
    then asked); flag materials owed after acceptance past their due day (Art. 12,
    ``material.overdue``, notified). Returns what was done."""
    now = deps.clock.now()
    today = local_date(now)
    deemed = overdue = unanswered = 0
    async with deps.uow() as uow:
        silent = await uow.applications.evidence_overdue(now, limit=limit)
        due = await uow.applications.due_for_examination(today.isoformat(), limit=limit)
        late = await uow.applications.past_deadline(today.isoformat(), limit=limit)
        owing = await uow.applications.owed_overdue(today.isoformat(), limit=limit)
    for app in silent:  # first: the case then goes on (the notice, or its acceptance)
        unanswered += await _one(deps, app.id, now, _evidence_unanswered)
    for app in due:
        deemed += await _one(deps, app.id, now, _deem)
    for app in late:
        overdue += await _one(deps, app.id, now, _flag_overdue)
    owed_overdue = 0
    for app in owing:  # 容缺: an owed material past its due day (Art. 12)
        owed_overdue += await _one(deps, app.id, now, _flag_owed)
    done = {"deemed_accepted": deemed, "overdue": overdue}
    if unanswered:
        done["evidence_unanswered"] = unanswered
    if owed_overdue:
        done["owed_overdue"] = owed_overdue
    return done


async def _one(
    deps: Dependencies,
    application_id: str,
    now: datetime,
    change: Callable[[Application, Dependencies, datetime], bool],
    *,
    attempts: int = 3,
) -> int:
    """Apply ``change`` to the case as it now stands and save it. A case another writer moved
    between our read and our save (the relay recording a delivery, a resident acting) is read
    again and the change decided afresh; after ``attempts`` lost races it is left to the next
    sweep rather than failing the sweep for every other case."""
    for _ in range(attempts):
        try:
            async with deps.uow() as uow:
                app = await uow.applications.get(application_id)
                if app is None or not change(app, deps, now):
                    return 0
                queued = await settle(app, uow, deps, now)
                await uow.commit()
        except ConflictError:
            continue
        if queued:
            deps.outbox_written()
        return 1
    log.warning("sweep.case_contended", application=application_id, attempts=attempts)
    return 0


def _evidence_unanswered(app: Application, deps: Dependencies, now: datetime) -> bool:
    return evidence.unanswered(app, now)


def _deem(app: Application, deps: Dependencies, now: datetime) -> bool:
    if app.status is not Status.RECEIVED or app.acceptance != "agency" or app.missing:
        return False
    received: date = local_date(app.received_at)
    matter = deps.catalog.get(app.matter, received)
    effective = local_date(app.examined_from or app.received_at)
    promised, statutory = deadlines(matter, effective, deps.calendar)  # as of the effective day
    try:
        app.deem_accepted(now, deadline=promised, statutory_deadline=statutory)
    except IllegalTransitionError:
        return False
    return True


def _flag_overdue(app: Application, deps: Dependencies, now: datetime) -> bool:
    return app.mark_overdue(local_date(now).isoformat(), now)


def _flag_owed(app: Application, deps: Dependencies, now: datetime) -> bool:
    return app.mark_owed_overdue(local_date(now).isoformat(), now)


async def sweep_case(
    deps: Dependencies, application_id: str, *, today: date | None = None
) -> dict[str, int]:
    """The sweep for one case; ``today`` the day its dates are compared with (the sandbox
    passes a later day to show a deemed acceptance without waiting five working days; the
    events and vouchers still carry the clock's time)."""
    now = deps.clock.now()
    day = (today or local_date(now)).isoformat()

    def deem_if_due(app: Application, deps: Dependencies, now: datetime) -> bool:
        due = app.acceptance_due
        return due is not None and due < day and _deem(app, deps, now)

    def overdue(app: Application, deps: Dependencies, now: datetime) -> bool:
        return app.mark_overdue(day, now)

    def owed(app: Application, deps: Dependencies, now: datetime) -> bool:
        return app.mark_owed_overdue(day, now)

    deemed = await _one(deps, application_id, now, deem_if_due)
    flagged = await _one(deps, application_id, now, overdue)
    owed_flagged = await _one(deps, application_id, now, owed)
    return {"deemed_accepted": deemed, "overdue": flagged, "owed_overdue": owed_flagged}
