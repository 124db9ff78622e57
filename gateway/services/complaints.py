"""Use cases of complaints (Art. 31): file one on a case, answer it, read them.

Each is one transaction: the complaint (with its text) in its own table, its event on the
case's timeline (ids and the outcome only), and — through :func:`settle` — the notifications
that tell the applicant and the lead agency. Filing and answering are idempotent per
Idempotency-Key.
"""

from __future__ import annotations

from typing import Any

from gateway.domain.application import Application
from gateway.domain.commands import Caller
from gateway.domain.complaints import AnswerComplaint, Complaint, FileComplaint, new_complaint_id
from gateway.domain.errors import NotFoundError
from gateway.services.acceptance import MessageAcceptance
from gateway.services.handlers import _once, scope_of
from gateway.services.milestones import Dependencies, settle
from gateway.services.ports import StoredResponse, UnitOfWork
from gateway.services.residents import require_case_assurance


async def file_complaint(
    cmd: FileComplaint, deps: Dependencies, acceptance: MessageAcceptance | None = None
) -> StoredResponse:
    """The applicant or the submitting agency complains about a case, open or closed."""
    scope = scope_of("file_complaint", cmd.application_id)
    queued = False  # whether the move queued forwards

    async def work(uow: UnitOfWork) -> StoredResponse:
        nonlocal queued
        now = deps.clock.now()
        app = await _case(uow, cmd.caller, cmd.application_id)
        await require_case_assurance(uow, cmd.caller, app)
        complaint = Complaint.file(
            app,
            new_complaint_id(),
            caller=cmd.caller.agency_id,
            person_id=cmd.caller.person_id,
            text=cmd.text,
            at=now,
        )
        await uow.complaints.add(complaint)
        queued = await settle(app, uow, deps, now)
        response = StoredResponse(cmd.body_digest, 201, summary(complaint), complaint.id)
        await uow.idempotency.put(cmd.caller.agency_id, scope, cmd.idempotency_key, response, now)
        return response

    response = await _once(
        deps, acceptance, cmd.caller, scope, cmd.idempotency_key, cmd.body_digest, work
    )
    if queued:  # forwards queued by the move: the relay, now
        deps.outbox_written()
    return response


async def answer_complaint(
    cmd: AnswerComplaint, deps: Dependencies, acceptance: MessageAcceptance | None = None
) -> StoredResponse:
    """The lead agency's outcome of a complaint, told to the applicant."""
    scope = scope_of("answer_complaint", cmd.complaint_id)
    queued = False  # whether the move queued forwards

    async def work(uow: UnitOfWork) -> StoredResponse:
        nonlocal queued
        now = deps.clock.now()
        app = await _case(uow, cmd.caller, cmd.application_id)
        complaint = await uow.complaints.get(cmd.complaint_id)
        if complaint is None or complaint.application_id != app.id:
            raise NotFoundError("no such complaint on this case")
        complaint.answer(
            app, agency_id=cmd.caller.agency_id, outcome=cmd.outcome, reply=cmd.reply, at=now
        )
        await uow.complaints.answered(complaint)
        queued = await settle(app, uow, deps, now)
        response = StoredResponse(cmd.body_digest, 200, summary(complaint), complaint.id)
        await uow.idempotency.put(cmd.caller.agency_id, scope, cmd.idempotency_key, response, now)
        return response

    response = await _once(
        deps, acceptance, cmd.caller, scope, cmd.idempotency_key, cmd.body_digest, work
    )
    if queued:  # forwards queued by the move: the relay, now
        deps.outbox_written()
    return response


async def complaints_of(deps: Dependencies, caller: Caller, application_id: str) -> dict[str, Any]:
    """The complaints about a case that this caller may read, with their texts."""
    async with deps.uow() as uow:
        app = await _case(uow, caller, application_id)
        found = await uow.complaints.of_application(app.id)
    readable = [c for c in found if c.readable_by(app, caller.agency_id, caller.person_id)]
    return {"items": [summary(c, texts=True) for c in readable], "next": None}


def summary(complaint: Complaint, *, texts: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "complaint_id": complaint.id,
        "application_id": complaint.application_id,
        "status": "answered" if complaint.outcome else "filed",
        "filed_at": complaint.filed_at.isoformat(),
        "outcome": complaint.outcome,
        "answered_at": complaint.answered_at and complaint.answered_at.isoformat(),
    }
    if texts:
        out["text"], out["reply"] = complaint.text, complaint.reply
    return out


async def _case(uow: UnitOfWork, caller: Caller, application_id: str) -> Application:
    app = await uow.applications.get(application_id)
    if app is None or not app.is_party(caller.agency_id, caller.person_id):
        raise NotFoundError("no such application for this caller")
    return app
