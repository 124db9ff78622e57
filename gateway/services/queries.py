"""Read-side use cases: a case as a party sees it, and an agency's work list."""

from __future__ import annotations

from typing import Any

from gateway.domain.application import Application
from gateway.domain.commands import Caller
from gateway.domain.errors import NotFoundError
from gateway.services.handlers import Dependencies
from gateway.services.ports import Notification, UnitOfWork
from gateway.services.visibility import viewer, visible_named


async def application_view(deps: Dependencies, caller: Caller, application_id: str) -> dict:
    """The case as a party sees it: state per handler, deadlines, the whole timeline. A
    resident also sees an agency's case naming their linked document (:mod:`visibility`)."""
    async with deps.uow() as uow:
        app = await uow.applications.get(application_id)
        named = app is not None and await _named_applicant(deps, uow, caller, app)
        if app is None or not (named or app.is_party(caller.agency_id, caller.person_id)):
            raise NotFoundError("no such application for this caller")
        timeline = await uow.applications.timeline(application_id)
    own = named or (
        caller.person_id is not None
        and caller.person_id in (app.applicant_id, _person(app.submitted_by))
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
        # an agency's case: the legal basis its submitter declared for sending the
        # applicant's data (law, article, text), which every forward relies on
        "legal_basis": app.legal_basis,
        # per by-data-sharing material: requested, received, refused, unanswered or
        # not_requested, with its issuer, request id and times (docs/evidence.md)
        "evidence": [e.to_json() for e in app.evidence],
        # 容缺受理 (Art. 12): materials accepted as missing and still owed, each with its due
        # day and whether it is overdue (flagged by the deadline sweep)
        "owed": _owed(app),
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


def _owed(app: Application) -> list[dict[str, Any]]:
    return [
        {"material": o.material, "due": o.due, "overdue": o.overdue_at is not None}
        for o in app.owed
    ]


def _person(actor: str) -> str | None:
    return actor.removeprefix("resident:") if actor.startswith("resident:") else None


def _pseudonymous(actor: str) -> str:
    """Agencies see that a resident acted, never the gateway's internal person id (which
    would link one person across agencies; their tokens carry pairwise subjects instead)."""
    return "resident" if actor.startswith("resident:") else actor


async def _named_applicant(
    deps: Dependencies, uow: UnitOfWork, caller: Caller, app: Application
) -> bool:
    """The resident looks at an agency's case that names their linked document, with the
    assurance its matter needs."""
    if caller.person_id is None or caller.login_id is None or app.applicant_id is not None:
        return False
    seen = await viewer(uow, caller.person_id, caller.login_id)
    return seen.sees(app, deps.catalog, deps.clock)


async def own_applications(
    deps: Dependencies,
    person_id: str,
    *,
    limit: int,
    after: str | None,
    login_id: str | None = None,
) -> dict[str, Any]:
    """A resident's applications (Art. 22: progress on every channel), cursor-paged: those
    they filed, for themselves or as an agent for someone else, and, seen through
    ``login_id``, the agencies' naming their linked documents."""
    async with deps.uow() as uow:
        apps = await uow.applications.applied_by(person_id, limit=limit + 1, after=after)
        if login_id is not None:
            seen = await viewer(uow, person_id, login_id)
            apps += await visible_named(
                uow, seen, deps.catalog, deps.clock, limit=limit + 1, after=after
            )
    merged = sorted({a.id: a for a in apps}.values(), key=lambda a: a.id)
    return _page(merged[: limit + 1], limit)


NAMED_CASES = 1000  # an agency's cases naming a resident: more than anyone has


async def own_notifications(
    deps: Dependencies, person_id: str, login_id: str, *, limit: int, after: str | None
) -> tuple[list[Notification], bool]:
    """A resident's notifications, oldest first, cursor-paged: those of their own cases and,
    seen through ``login_id``, those written for ``applicant`` on the agencies' cases naming
    their linked documents (the milestones they are sent). The page, and whether more
    follow."""
    async with deps.uow() as uow:
        seen = await viewer(uow, person_id, login_id)
        named = await visible_named(
            uow, seen, deps.catalog, deps.clock, limit=NAMED_CASES, after=None
        )
        found = await uow.notifications.of_recipient(
            f"resident:{person_id}",
            limit=limit + 1,
            after=after,
            applicant_of=[a.id for a in named],
        )
    return found[:limit], len(found) > limit


async def work_list(
    deps: Dependencies,
    caller: Caller,
    *,
    limit: int,
    after: str | None,
    recheck: bool = False,
) -> dict[str, Any]:
    """The calling agency's cases (only those it handles), oldest first, cursor-paged.
    ``recheck``: only the automatic decisions awaiting its human re-check, as lead (Art. 25);
    a case leaves the list once its re-check outcome is recorded."""
    async with deps.uow() as uow:
        if not recheck:
            apps = await uow.applications.handled_by(caller.agency_id, limit=limit + 1, after=after)
            return _page(apps, limit)
        apps = await uow.applications.awaiting_recheck(
            caller.agency_id, limit=limit + 1, after=after
        )
    return _page(apps, limit)


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
                "owed": _owed(a),
            }
            for a in page
        ],
        "next": page[-1].id if more and page else None,
    }
