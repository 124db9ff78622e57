"""Read-side use cases: a case as a party sees it, and an agency's work list."""

from __future__ import annotations

from typing import Any

from gateway.domain.application import Application
from gateway.domain.commands import Caller
from gateway.domain.errors import NotFoundError
from gateway.services.handlers import Dependencies

RECHECK = "decision.recheck_queued"


async def application_view(deps: Dependencies, caller: Caller, application_id: str) -> dict:
    """The case as a party sees it: state per handler, deadlines, the whole timeline."""
    async with deps.uow() as uow:
        app = await uow.applications.get(application_id)
        if app is None or not app.is_party(caller.agency_id, caller.person_id):
            raise NotFoundError("no such application for this caller")
        timeline = await uow.applications.timeline(application_id)
    own = caller.person_id is not None and caller.person_id in (
        app.applicant_id,
        _person(app.submitted_by),
    )
    hide = (lambda value: value) if own else _pseudonymous
    return {
        "application_id": app.id,
        "matter": app.matter,
        "status": app.status.value,
        "submitted_by": hide(app.submitted_by),
        "channel": app.channel,
        "received_at": app.received_at.isoformat(),
        "missing": list(app.missing),
        "handlers": [
            {
                "agency_id": h.agency_id,
                "role": h.role,
                "state": h.state.value,
                "reasons": list(h.reasons),
            }
            for h in app.handlers
        ],
        "deadlines": {
            "acceptance_due": app.acceptance_due,
            "promised": app.deadline,
            "statutory": app.statutory_deadline,
            "overdue": app.overdue_at is not None,
        },
        "delivery_channel": app.delivery_channel,
        # per by-data-sharing material: requested, received, refused, unanswered or
        # not_requested, with its issuer, request id and times (docs/evidence.md)
        "evidence": [e.to_json() for e in app.evidence],
        "timeline": [
            {
                "seq": e.seq,
                "type": e.type,
                "at": e.at.isoformat(),
                "actor": hide(e.actor),
                **(
                    e.data
                    if own
                    else {k: "resident" if k == "agent" else v for k, v in e.data.items()}
                ),
            }
            for e in timeline
        ],
    }


def _person(actor: str) -> str | None:
    return actor.removeprefix("resident:") if actor.startswith("resident:") else None


def _pseudonymous(actor: str) -> str:
    """Agencies see that a resident acted, never the gateway's internal person id (which
    would link one person across agencies; their tokens carry pairwise subjects instead)."""
    return "resident" if actor.startswith("resident:") else actor


async def own_applications(
    deps: Dependencies, person_id: str, *, limit: int, after: str | None
) -> dict[str, Any]:
    """A resident's own applications (Art. 22: progress on every channel), cursor-paged."""
    async with deps.uow() as uow:
        apps = await uow.applications.applied_by(person_id, limit=limit + 1, after=after)
    return _page(apps, limit)


async def work_list(
    deps: Dependencies,
    caller: Caller,
    *,
    limit: int,
    after: str | None,
    recheck: bool = False,
) -> dict[str, Any]:
    """The calling agency's cases (only those it handles), oldest first, cursor-paged.
    ``recheck``: only the automatic decisions queued for its human re-check, as lead (Art. 25)."""
    async with deps.uow() as uow:
        if not recheck:
            apps = await uow.applications.handled_by(caller.agency_id, limit=limit + 1, after=after)
            return _page(apps, limit)
        apps, cursor = [], after
        while len(apps) <= limit:
            batch = await uow.applications.handled_by(caller.agency_id, limit=200, after=cursor)
            for app in batch:
                if app.lead.agency_id == caller.agency_id and RECHECK in {
                    e.type for e in await uow.applications.timeline(app.id)
                }:
                    apps.append(app)
            if len(batch) < 200:
                break
            cursor = batch[-1].id
    return _page(apps[: limit + 1], limit)


def _page(apps: list[Application], limit: int) -> dict[str, Any]:
    page, more = apps[:limit], len(apps) > limit
    return {
        "items": [
            {
                "application_id": a.id,
                "matter": a.matter,
                "status": a.status.value,
                "received_at": a.received_at.isoformat(),
                "deadline": a.deadline,
            }
            for a in page
        ],
        "next": page[-1].id if more and page else None,
    }
