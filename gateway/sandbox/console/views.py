"""What each console page shows, read through the unit of work and the sandbox's own state.

No SQL here: the repositories of the unit of work, :class:`gateway.store.console.ConsoleReads`
for the cross-agency listings, the fault board, the recording notifier and the audit chain's
own verification (the one ``gba-gateway audit verify`` runs).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.domain.commands import Caller
from gateway.domain.errors import GatewayError, NotFoundError
from gateway.sandbox.faults import Faults
from gateway.sandbox.mailbox import RECEIVED
from gateway.sandbox.notifications import RecordingNotifier
from gateway.sandbox.routes import FAULTS
from gateway.services import queries
from gateway.store.audit import verify_stored_chain
from gateway.store.console import ConsoleReads, ForwardSummary
from gateway.trust.httpsig import HttpMessage, signature_keyid
from gateway.trust.keys import VerificationKey
from gateway.trust.profile import verify_response
from gateway.web.keys import DEPENDENCIES, KEYRING, STORE
from gateway.web.notifier import NOTIFIER

CASES_SHOWN = 50
MESSAGES_SHOWN = 100
NOTIFICATIONS_SHOWN = 200


@dataclass(frozen=True, slots=True)
class AckStatus:
    """The signature on a partner's acknowledgement: verified, refused (why) or pending."""

    state: str  # verified | refused | pending
    reason: str = ""


async def overview(app: web.Application) -> dict[str, int]:
    async with app[STORE]() as uow:
        reads = ConsoleReads(uow.connection)
        counts = {
            "count_agencies": len(await uow.agencies.all()),
            "count_cases": await reads.count("applications"),
            "count_messages": await reads.count("outbox"),
        }
    notifier = app.get(NOTIFIER)
    if isinstance(notifier, RecordingNotifier):
        counts["count_notifications"] = len(notifier.received)
    return counts


def switched_on(faults: Faults) -> list[str]:
    """The switches that differ from a healthy agency, by field name."""
    healthy = Faults()
    return [name for name, value in faults.to_json().items() if value != getattr(healthy, name)]


async def agencies(app: web.Application) -> list[dict[str, Any]]:
    """Every registered agency; the sandbox ones with their fault switches."""
    board = app.get(FAULTS)
    switches = board.all() if board is not None else {}
    async with app[STORE]() as uow:
        registered = await uow.agencies.all()
    return [
        {
            "id": agency.id,
            "names": dict(agency.names),
            "jurisdiction": agency.jurisdiction,
            "endpoint": agency.endpoint,
            "sandbox": sandbox,
            "faults": switches.get(agency.id),
            "on": switched_on(switches[agency.id]) if agency.id in switches else [],
        }
        for agency, sandbox in sorted(registered, key=lambda pair: pair[0].id)
    ]


async def agency(app: web.Application, agency_id: str) -> dict[str, Any]:
    """One agency: its registration, its keys and, for a sandbox agency, its switches."""
    board = app.get(FAULTS)
    async with app[STORE]() as uow:
        found = await uow.agencies.get(agency_id)
        if found is None:
            raise NotFoundError("no such agency")
        keys = [spec for _, spec in await uow.agencies.keys(agency_id)]
        sandbox = any(a.id == agency_id and flag for a, flag in await uow.agencies.all())
    faults = board.all().get(agency_id) if board is not None else None
    return {
        "id": found.id,
        "names": dict(found.names),
        "jurisdiction": found.jurisdiction,
        "receives": found.receives,
        "endpoint": found.endpoint,
        "matters": list(found.matters),
        "sandbox": sandbox,
        "keys": keys,
        "faults": faults,
        "on": switched_on(faults) if faults is not None else [],
    }


async def cases(app: web.Application) -> list[Any]:
    async with app[STORE]() as uow:
        return await ConsoleReads(uow.connection).recent_cases(CASES_SHOWN)


async def case(app: web.Application, application_id: str) -> dict[str, Any]:
    """One case with its whole timeline (every event, raw) and its forwards."""
    async with app[STORE]() as uow:
        found = await uow.applications.get(application_id)
        if found is None:
            raise NotFoundError("no such application")
        timeline = await uow.applications.timeline(application_id)
        forwards = await ConsoleReads(uow.connection).recent_forwards(
            MESSAGES_SHOWN, application_id=application_id
        )
    return {
        "application": found,
        "timeline": timeline,
        "messages": await described(app, forwards),
    }


async def applicant_view(app: web.Application, application_id: str) -> dict[str, Any]:
    """The case as its applicant sees it (the same read as ``GET /v1/me/applications/{id}``);
    for an agency's submission, as the submitting agency sees it."""
    deps = app[DEPENDENCIES]
    async with deps.uow() as uow:
        found = await uow.applications.get(application_id)
    if found is None:
        raise NotFoundError("no such application")
    if found.applicant_id is not None:
        caller = Caller(f"resident:{found.applicant_id}", "", "console", found.applicant_id)
    else:
        caller = Caller(found.submitted_by, "", "console")
    return await queries.application_view(deps, caller, application_id)


async def messages(app: web.Application) -> list[dict[str, Any]]:
    async with app[STORE]() as uow:
        forwards = await ConsoleReads(uow.connection).recent_forwards(MESSAGES_SHOWN)
    return await described(app, forwards)


async def described(app: web.Application, forwards: list[ForwardSummary]) -> list[dict[str, Any]]:
    """Each forward with the kid that signed it and the state of the partner's signature."""
    next_kid = app[KEYRING].current("http").kid
    out = []
    async with app[STORE]() as uow:
        for forward in forwards:
            out.append(
                {
                    "forward": forward,
                    "kid": _signing_kid(forward),
                    "next_kid": next_kid,
                    "ack": await acknowledgement(forward, uow.agencies.key),
                }
            )
    return out


def _signing_kid(forward: ForwardSummary) -> str | None:
    """The gateway key that signed the delivered forward, from its kept signature."""
    if forward.exchange is None:
        return None
    request = HttpMessage.request(
        "POST", forward.exchange.target, dict(forward.exchange.request_headers)
    )
    try:
        return signature_keyid(request)
    except GatewayError:
        return None


async def acknowledgement(
    forward: ForwardSummary, key_of: Callable[[str], Awaitable[VerificationKey]]
) -> AckStatus:
    """Verify the kept acknowledgement again (at the time it arrived), against the key
    registered for its kid; a forward without one is refused when the relay's last error says
    its signature failed, and pending otherwise."""
    exchange = forward.exchange
    if exchange is None:
        error = forward.last_error or ""
        if "acknowledgement" in error:
            return AckStatus("refused", error)
        return AckStatus("pending")
    if exchange.ack_body is None:
        return AckStatus("refused", "the acknowledgement's body was not kept")
    request = HttpMessage.request("POST", exchange.target, dict(exchange.request_headers))
    answer = HttpMessage.response(exchange.ack_status, dict(exchange.ack_headers))
    try:
        key = await key_of(exchange.ack_key_id)
        verified = verify_response(
            answer,
            exchange.ack_body,
            request=request,
            resolve_key=lambda _kid: key,
            now=exchange.delivered_at,
        )
    except GatewayError as exc:
        return AckStatus("refused", f"{exc.slug}: {exc.detail}")
    if verified.key.owner != forward.destination:
        return AckStatus("refused", f"signed by {verified.key.owner}, not the destination")
    return AckStatus("verified", verified.keyid)


def notifications(app: web.Application) -> dict[str, Any] | None:
    """The sandbox recorder's notifications, newest first (None: another notifier)."""
    notifier = app.get(NOTIFIER)
    if not isinstance(notifier, RecordingNotifier):
        return None
    received = list(reversed(notifier.received))[:NOTIFICATIONS_SHOWN]
    return {"items": received, "duplicates": notifier.duplicates, "total": len(notifier.received)}


def sinks(app: web.Application) -> dict[str, Any] | None:
    """What the SMTP and SMS sinks received, newest first (None: no sinks installed)."""
    received = app.get(RECEIVED)
    if received is None:
        return None
    items = [{"channel": "email", **m} for m in received.emails]
    items += [{"channel": "sms", "subject": "", **m, "to": [m["to"]]} for m in received.sms]
    items.sort(key=lambda m: m["received_at"], reverse=True)
    return {"items": items[:NOTIFICATIONS_SHOWN], "deferred": received.deferred}


async def audit(app: web.Application) -> dict[str, Any]:
    """The chain's length and head, the last checkpoint, and the result of verifying it all
    against the signed checkpoints with the gateway's own keys."""
    store = app[STORE]
    async with store() as uow:
        seq, head = await uow.audit.head()
        checkpoints = await uow.audit.recent_checkpoints(1)
    try:
        report: Mapping[str, Any] = _report(await verify_stored_chain(store, app[KEYRING].jwks()))
    except GatewayError as exc:  # a checkpoint that does not verify
        report = {"ok": False, "count": 0, "problem": exc.slug, "seq": None, "detail": exc.detail}
    return {
        "length": seq,
        "head": head,
        "checkpoint": checkpoints[0] if checkpoints else None,
        "report": report,
    }


def _report(report: Any) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "count": report.count,
        "problem": report.problem,
        "seq": report.seq,
        "detail": report.detail,
    }
