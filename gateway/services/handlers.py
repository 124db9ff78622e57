"""Use cases of the partner API. Each handler reads as the case it serves."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, NoReturn

from gateway.domain import ids
from gateway.domain.agencies import Agency
from gateway.domain.application import Application
from gateway.domain.commands import Caller, RecordDecision, SubmitApplication
from gateway.domain.documents import MESSAGES
from gateway.domain.errors import (
    ConflictError,
    FieldProblem,
    ForbiddenError,
    IdempotencyConflictError,
    NotFoundError,
    NotReadyError,
    UnknownMatterError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from gateway.domain.matters import Matter, TimeLimit, TimeUnit
from gateway.domain.values import local_date
from gateway.services import residents
from gateway.services.ports import (
    AgencyRepository,
    Clock,
    Decoded,
    DocumentCodec,
    MatterCatalog,
    OutboxMessage,
    ReceiptIssuer,
    StoredResponse,
    UnitOfWorkFactory,
    WorkingCalendar,
)
from gateway.services.validation import assess

CANONICAL = "canonical"
_OFFLOAD_BYTES = 64 * 1024  # parse bigger documents in a thread, off the event loop


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


def canonical_digest(document: Mapping[str, Any]) -> str:
    """RFC 9530-form digest of a canonical document in its one serialisation."""
    data = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data.encode()).digest()).decode() + ":"


def deadline_of(limit: TimeLimit, start: date, calendar: WorkingCalendar) -> date:
    """The last day of a time limit counted from ``start`` in the limit's own calendar."""
    if limit.unit is TimeUnit.NATURAL_DAYS:
        return start + timedelta(days=limit.value)
    return calendar.add_working_days(limit.calendar, start, limit.value)


async def _replayed(
    deps: Dependencies, caller: Caller, key: str, request_digest: str
) -> StoredResponse | None:
    async with deps.uow() as uow:
        stored = await uow.idempotency.get(caller.agency_id, key)
    if stored is None:
        return None
    if stored.request_digest != request_digest:
        raise IdempotencyConflictError("this Idempotency-Key was used with another body")
    return dataclasses.replace(stored, replayed=True)


async def _once(
    deps: Dependencies,
    caller: Caller,
    key: str,
    request_digest: str,
    work: Callable[[], Awaitable[StoredResponse]],
) -> StoredResponse:
    """Run ``work`` at most once per (agency, Idempotency-Key); replay its stored answer."""
    stored = await _replayed(deps, caller, key, request_digest)
    if stored is not None:
        return stored
    try:
        return await work()
    except ConflictError:
        # Another request with the same key committed first: answer as it did.
        stored = await _replayed(deps, caller, key, request_digest)
        if stored is None:
            raise
        return stored


def _codec_for(deps: Dependencies, caller: Caller, media_type: str) -> DocumentCodec:
    for name in (CANONICAL, caller.jurisdiction):
        codec = deps.codecs.get(name)
        if codec is not None and media_type in codec.media_types:
            return codec
    raise UnsupportedMediaTypeError(
        f"{media_type} is not accepted from a {caller.jurisdiction} agency"
    )


def _refuse(problems: Sequence[FieldProblem]) -> NoReturn:
    """One answer listing every problem found (Art. 19(3)), each reported once."""
    unique = list(dict.fromkeys(problems))
    raise ValidationFailedError(f"{len(unique)} problem(s) found", errors=unique)


def _matter_of(deps: Dependencies, decoded: Decoded) -> Matter:
    """The matter in force that the document names; else every problem found so far."""
    code = decoded.document.get("matter")
    try:
        return deps.catalog.get(str(code or ""), local_date(deps.clock.now()))
    except UnknownMatterError:
        unknown = FieldProblem("unknown_matter", MESSAGES["unknown_matter"], pointer="/matter")
        _refuse([*decoded.problems, unknown])


async def submit_application(cmd: SubmitApplication, deps: Dependencies) -> StoredResponse:
    """A partner agency submits an application (canonical JSON or its native format), or a
    resident submits their own through a portal, the identity part filled from their login."""

    async def work() -> StoredResponse:
        codec = _codec_for(deps, cmd.caller, cmd.media_type)
        body, resident = cmd.body, None
        if cmd.applicant is not None:
            resident = await residents.resident_part(cmd.applicant, deps)
            body = residents.with_applicant(cmd.applicant, resident)
        if len(body) > _OFFLOAD_BYTES:
            decoded = await asyncio.to_thread(codec.decode, body)
        else:
            decoded = codec.decode(body)
        return await _store_submission(cmd, deps, codec, decoded, resident)

    return await _once(deps, cmd.caller, cmd.idempotency_key, cmd.content_digest, work)


async def _store_submission(
    cmd: SubmitApplication,
    deps: Dependencies,
    codec: DocumentCodec,
    decoded: Decoded,
    resident: residents.ResidentPart | None,
) -> StoredResponse:
    document = decoded.document
    matter = _matter_of(deps, decoded)
    async with deps.uow() as uow:
        now = deps.clock.now()
        if resident is None:
            submitter = await uow.agencies.get(cmd.caller.agency_id)
            if submitter is None or not submitter.may_handle(str(matter.code)):
                raise ForbiddenError("the agency may not submit applications for this matter")
        assessment = assess(document, matter)
        if decoded.problems or assessment.problems:
            _refuse([*decoded.problems, *assessment.problems])
        handlers = {a: await _registered(uow.agencies, a) for a in matter.route.handlers}
        consent = None
        if resident is not None and cmd.applicant is not None:
            consent = await residents.admit(
                cmd.applicant, resident, matter, document, handlers, uow, now
            )
        deadline = None
        if not assessment.missing:
            deadline = deadline_of(matter.promised_limit, local_date(now), deps.calendar)
        app = Application.receive(
            application_id=ids.new_application_id(),
            matter=str(matter.code),
            matter_version=matter.version,
            submitted_by=cmd.caller.agency_id,
            channel=cmd.channel.value,
            source_format=codec.jurisdiction,
            content_digest=cmd.content_digest,
            document=document,
            handlers=matter.route.handlers,
            missing=assessment.missing,
            deadline=deadline.isoformat() if deadline else None,
            at=now,
            applicant_id=resident.applicant_id if resident else None,
            consent_id=consent.id if consent else None,
            agent_id=resident.agent_id if resident else None,
        )
        messages = [] if assessment.missing else _forwards(app, decoded, deps, handlers)
        response = _receipted(app, cmd, deps, now)
        await uow.applications.add(app)
        for message in messages:
            await uow.outbox.add(message)
        await uow.idempotency.put(cmd.caller.agency_id, cmd.idempotency_key, response, now)
        await uow.commit()
    if messages:
        deps.outbox_written()
    return response


async def _registered(agencies: AgencyRepository, agency_id: str) -> Agency:
    agency = await agencies.get(agency_id)
    if agency is None:  # refused at start-up; only an agency removed since can get here
        raise NotReadyError("a handling agency of this matter is not registered")
    return agency


def _receipted(
    app: Application, cmd: SubmitApplication, deps: Dependencies, now: datetime
) -> StoredResponse:
    """The 202 answer with its receipt: the signed voucher of receipt (Art. 19(4))."""
    receipt = deps.receipts.issue(
        {
            "iss": deps.issuer,
            "sub": app.id,
            "iat": int(now.timestamp()),
            "jti": ids.new_receipt_id(),
            "matter": app.matter,
            "status": app.status.value,
            "received_at": now.isoformat(),
            "content_digest": cmd.content_digest,
            "missing": list(app.missing),
            "deadline": app.deadline,
        }
    )
    return StoredResponse(
        request_digest=cmd.content_digest,
        status=202,
        body={
            "application_id": app.id,
            "matter": app.matter,
            "status": app.status.value,
            "receipt": receipt,
        },
        resource=app.id,
    )


def _forwards(
    app: Application, decoded: Decoded, deps: Dependencies, agencies: Mapping[str, Agency]
) -> list[OutboxMessage]:
    """One signed-to-be message per handling agency, in that agency's format."""
    messages = []
    for handler in app.handlers:
        agency = agencies[handler.agency_id]
        codec = deps.codecs[agency.jurisdiction]
        message_id = ids.new_message_id()
        envelope = {
            "message_id": message_id,
            "application_id": app.id,
            "matter": app.matter,
            "matter_version": app.matter_version,
            "role": handler.role,
            "submitted_by": "resident" if app.applicant_id else app.submitted_by,
            "channel": app.channel,
            "received_at": app.received_at.isoformat(),
            "deadline": app.deadline,
            "translation": {
                "source_format": app.source_format,
                "source_digest": app.content_digest,
                "mapping_version": decoded.mapping_version,
                "canonical_digest": canonical_digest(app.document),
            },
            "consent_id": app.consent_id,
        }
        body, media_type = codec.encode(app.document, envelope)
        messages.append(
            OutboxMessage(
                message_id, app.id, agency.id, media_type, body, next_attempt_at=app.received_at
            )
        )
        app.message_queued(agency.id, message_id, app.received_at)
    return messages


async def record_decision(cmd: RecordDecision, deps: Dependencies) -> StoredResponse:
    """A handling agency decides; the case is decided when every handler has."""

    async def work() -> StoredResponse:
        now = deps.clock.now()
        async with deps.uow() as uow:
            app = await uow.applications.get(cmd.application_id)
            if app is None or not app.is_party(cmd.caller.agency_id):
                raise NotFoundError("no such application for this agency")
            app.decide(cmd.caller.agency_id, cmd.decision, cmd.reasons, now)
            await uow.applications.save(app)
            handler = app.handler(cmd.caller.agency_id)
            response = StoredResponse(
                request_digest=cmd.body_digest,
                status=200,
                body={
                    "application_id": app.id,
                    "status": app.status.value,
                    "handler": {"agency_id": handler.agency_id, "state": handler.state.value},
                },
                resource=app.id,
            )
            await uow.idempotency.put(cmd.caller.agency_id, cmd.idempotency_key, response, now)
            await uow.commit()
        return response

    return await _once(deps, cmd.caller, cmd.idempotency_key, cmd.body_digest, work)
