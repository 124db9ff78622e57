"""Use cases of the partner API. Each handler reads as the case it serves."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import NoReturn, TypeVar

from gateway.domain import channels, ids, legal_basis
from gateway.domain import events as ev
from gateway.domain.application import Application
from gateway.domain.commands import Caller, RecordDecision, SubmitApplication
from gateway.domain.documents import MESSAGES, problem
from gateway.domain.errors import (
    ConflictError,
    FieldProblem,
    ForbiddenError,
    IdempotencyConflictError,
    NotFoundError,
    UnknownMatterError,
    UnsupportedMediaTypeError,
    ValidationFailedError,
)
from gateway.domain.evidence import Evidence
from gateway.domain.identity import require_assurance, require_delegation
from gateway.domain.matters import Assurance, Matter
from gateway.domain.values import local_date
from gateway.services import (
    case_materials,
    certificates,
    commitments,
    evidence,
    residents,
)
from gateway.services.acceptance import MessageAcceptance, accept_message
from gateway.services.milestones import (
    Dependencies,
    acceptance_due,
    canonical_digest,
    deadline_of,
    deadlines,
    registered,
    settle,
    step,
)
from gateway.services.ports import (
    Decoded,
    DocumentCodec,
    StoredResponse,
    UnitOfWork,
)
from gateway.services.validation import assess

__all__ = ["Dependencies", "canonical_digest", "deadline_of"]  # re-exported for the edges

T = TypeVar("T")
CANONICAL = "canonical"
SUBMISSION = "submit_application"  # the Idempotency-Key scope of a submission
_OFFLOAD_BYTES = 64 * 1024  # parse bigger documents in a thread, off the event loop


async def _replayed(
    uow: UnitOfWork, caller: Caller, scope: str, key: str, request_digest: str
) -> StoredResponse | None:
    stored = await uow.idempotency.get(caller.agency_id, scope, key)
    if stored is None:
        return None
    if stored.request_digest != request_digest:
        raise IdempotencyConflictError("this Idempotency-Key was used with another body")
    return dataclasses.replace(stored, replayed=True)


async def _once(
    deps: Dependencies,
    acceptance: MessageAcceptance | None,
    caller: Caller,
    scope: str,
    key: str,
    request_digest: str,
    work: Callable[[UnitOfWork], Awaitable[StoredResponse]],
    *,
    write_only: bool = False,
) -> StoredResponse:
    """Run ``work`` at most once per (agency, scope, Idempotency-Key); replay its stored
    answer. ``scope`` is the use case and the resource it acts on (see :func:`scope_of`):
    the same key sent to another route, or about another case, is another request.

    One unit of work: the message's acceptance (when signed), the Idempotency-Key read,
    ``work``'s writes and its stored answer commit together; ``work`` does not commit.
    ``write_only``: ``work`` reads nothing from the database, so it records its writes in a
    batched unit of work; the key is then checked by its claim in the batch, and a key found
    taken there is answered like any conflict below."""

    async def attempt(uow: UnitOfWork) -> StoredResponse:
        stored = await _replayed(uow, caller, scope, key, request_digest)
        return stored if stored is not None else await work(uow)

    try:
        return await in_one_unit(deps, acceptance, attempt, write_only=write_only)
    except ConflictError as conflict:
        refused = conflict

    async def answered(uow: UnitOfWork) -> StoredResponse:
        # Another request with the same key committed first: answer as it did.
        stored = await _replayed(uow, caller, scope, key, request_digest)
        if stored is None:
            raise refused  # a conflict of its own: rolled back, the edge keeps the refusal
        return stored

    return await in_one_unit(deps, acceptance, answered)


async def in_one_unit(
    deps: Dependencies,
    acceptance: MessageAcceptance | None,
    work: Callable[[UnitOfWork], Awaitable[T]],
    *,
    write_only: bool = False,
) -> T:
    """``work`` in one unit of work that first accepts the signed message; group-committed
    with concurrent requests either way. ``write_only``: ``work`` reads nothing from the
    database, so it records its writes in a batched unit of work (its CPU work done before
    the batch); else it runs inside the batch, in a savepoint of its own, and may read and
    write through its repositories (and await nothing else)."""

    async def accepted(uow: UnitOfWork) -> T:
        if acceptance is not None:
            await accept_message(uow, acceptance)
        return await work(uow)

    if not write_only:
        return await deps.uow.in_batch(accepted)
    async with deps.uow.batched() as uow:
        result = await accepted(uow)
        await uow.commit()
    return result


def scope_of(use_case: str, resource: str = "") -> str:
    """The scope of an Idempotency-Key: ``submit_application``, ``record_decision app_...``."""
    return f"{use_case} {resource}" if resource else use_case


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


async def submit_application(
    cmd: SubmitApplication, deps: Dependencies, acceptance: MessageAcceptance | None = None
) -> StoredResponse:
    """A partner agency submits an application (canonical JSON or its native format), or a
    resident submits their own through a portal, the identity part filled from their login.
    The document is decoded before the unit of work opens (CPU work holds no transaction)."""
    codec = _codec_for(deps, cmd.caller, cmd.media_type)
    body, resident = cmd.body, None
    if cmd.applicant is not None:
        resident = await residents.resident_part(cmd.applicant, deps)
        body = residents.with_applicant(cmd.applicant, resident)
    if len(body) > _OFFLOAD_BYTES:
        decoded = await asyncio.to_thread(codec.decode, body)
    else:
        decoded = codec.decode(body)
    queued = False

    async def work(uow: UnitOfWork) -> StoredResponse:
        nonlocal queued
        response, queued = await _store_submission(uow, cmd, deps, codec, decoded, resident)
        return response

    response = await _once(
        deps,
        acceptance,
        cmd.caller,
        SUBMISSION,
        cmd.idempotency_key,
        cmd.content_digest,
        work,
        # a resident's reads: consents, identities; named uploads are read and bound
        write_only=resident is None
        and not case_materials.named_in(decoded.document.get("materials")),
    )
    if queued:
        deps.outbox_written()
    return response


async def _store_submission(
    uow: UnitOfWork,
    cmd: SubmitApplication,
    deps: Dependencies,
    codec: DocumentCodec,
    decoded: Decoded,
    resident: residents.ResidentPart | None,
) -> tuple[StoredResponse, bool]:
    document = decoded.document
    matter = _matter_of(deps, decoded)
    now = deps.clock.now()
    # an agency's declared legal basis (its signed header, or canonical JSON's member):
    # required of every agency submission, recorded and signed, never forwarded with the case
    basis, basis_problems = legal_basis.declared(cmd.legal_basis, document)
    document = {k: v for k, v in document.items() if k != legal_basis.MEMBER}
    if resident is not None and (basis is not None or basis_problems):
        refused = problem(legal_basis.MEMBER_POINTER, "invalid_value")  # the consent is its basis
        _refuse([*decoded.problems, refused])
    if resident is None and basis is None and not basis_problems:
        basis_problems = [legal_basis.missing()]
    if resident is None:
        submitter = await uow.agencies.get(cmd.caller.agency_id)
        if submitter is None or not submitter.may_handle(str(matter.code)):
            raise ForbiddenError("the agency may not submit applications for this matter")
    else:  # who may act is judged before how the matter is filed (Art. 24, 28, then 17)
        require_assurance(resident.login.assurance, matter)
        if resident.agent_id is not None:
            require_delegation(
                resident.delegation, agent_id=resident.agent_id, matter=matter, at=now
            )
    assessment = assess(document, matter)
    named = await case_materials.resolve(
        uow, document.get("materials"), matter, cmd.caller, deps.material_limits
    )
    call = cmd.call
    offered = (
        []
        if call.channel in matter.channels
        else [channels.refused_channel(call.channel, matter.channels)]
    )  # Art. 17: a matter is filed only on the channels it lists
    identified_by, inspected = channels.inspected_document(call, document.get("applicant"))
    # 告知承诺: each commitment with its text in the applicant's language (Art. 12)
    person = resident.applicant_id if resident is not None else None
    language = await commitments.applicant_language(uow, person, codec.jurisdiction)
    document, committed = commitments.filled(document, matter, language)
    problems = [
        *decoded.problems,
        *basis_problems,
        *assessment.problems,
        *named.problems,
        *offered,
        *inspected,
    ]
    if problems or committed:
        _refuse([*problems, *committed])
    application_id = ids.new_application_id()
    document = case_materials.with_materials(document, named.found, application_id, deps.issuer)
    handlers = {a: await registered(uow.agencies, a) for a in matter.route.handlers}
    consent = None
    if resident is not None and cmd.applicant is not None:
        consent = await residents.admit(
            cmd.applicant, resident, matter, document, handlers, uow, now, cmd.delivery_channel
        )
    today = local_date(now)
    promised, statutory = deadlines(matter, today, deps.calendar)
    shared: tuple[Evidence, ...] = ()
    if resident is not None and deps.evidence_types is not None:  # agencies: docs/evidence.md
        shared = await evidence.plan(
            matter,
            document,
            consent=consent,
            agencies=uow.agencies,
            types=deps.evidence_types,
            now=now,
        )
    app = Application.receive(
        application_id=application_id,
        matter=str(matter.code),
        matter_version=matter.version,
        submitted_by=cmd.caller.agency_id,
        channel=call.channel.value,
        source_format=codec.jurisdiction,
        content_digest=cmd.content_digest,
        document=document,
        handlers=matter.route.handlers,
        missing=assessment.missing,
        deadline=promised,
        statutory_deadline=statutory,
        acceptance=matter.acceptance,
        acceptance_due=acceptance_due(matter, today, deps.calendar),
        delivery_channel=cmd.delivery_channel,
        mapping_version=decoded.mapping_version,
        at=now,
        applicant_id=resident.applicant_id if resident else None,
        consent_id=consent.id if consent else None,
        agent_id=resident.agent_id if resident else None,
        evidence=shared,
        # a counter officer inspected the identity document in person: high (Art. 18)
        filed_assurance=resident.login.assurance
        if resident
        else (Assurance.HIGH if identified_by else None),
        channel_record={
            **call.record(),
            **({"identity_inspected": identified_by[0]} if identified_by else {}),
        }
        if cmd.channel_call is not None
        else None,
        identified_by=identified_by,
        legal_basis=basis.record() if basis is not None else None,
    )
    fetchable = case_materials.listed(document)
    for event in app.pending_events:  # the timeline lists what the handlers may fetch
        if isinstance(event, ev.ApplicationReceived) and fetchable:
            event.data["materials"] = fetchable
    # the milestone step of every move: what is owed (Art. 12), the acceptance's or notice's
    # voucher, forwards, evidence requests, notifications (Art. 19(4), 22) — from what is
    # already in hand; the receipt, signed after it, names what is owed
    messages = await step(app, uow, deps, now, handlers, consent)
    response = _receipted(app, cmd, deps, now)
    await uow.applications.add(app)
    await case_materials.bind(uow, document.get("materials"), named.found, app.id)
    for message in messages:
        await uow.outbox.add(message)
    await uow.idempotency.put(cmd.caller.agency_id, SUBMISSION, cmd.idempotency_key, response, now)
    return response, bool(messages)


def _receipted(
    app: Application, cmd: SubmitApplication, deps: Dependencies, now: datetime
) -> StoredResponse:
    """The 202 answer with its receipt: the signed voucher of receipt (Art. 19(4)), with
    the legal basis an agency declared for sending the applicant's data."""
    basis = {"legal_basis": dict(app.legal_basis)} if app.legal_basis is not None else {}
    receipt = deps.receipts.issue(
        {
            **basis,
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
            # the files it names: each code, material id (uploads) and digest
            "materials": case_materials.receipt_claim(app.document),
            # Art. 17-18: the channel, and a counter's or kiosk's point, officer or device
            **({"channel": app.channel_record} if app.channel_record else {}),
            # 告知承诺 (Art. 12): each commitment's material, language and text digest
            "commitments": commitments.receipt_claim(app.document),
            # 容缺受理 (Art. 12): what is owed after acceptance, and by when
            "owed": [{"material": o.material, "due": o.due} for o in app.owed],
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


async def record_decision(
    cmd: RecordDecision, deps: Dependencies, acceptance: MessageAcceptance | None = None
) -> StoredResponse:
    """A handling agency decides; the case is decided when every handler has."""
    scope = scope_of("record_decision", cmd.application_id)
    queued = False

    async def work(uow: UnitOfWork) -> StoredResponse:
        nonlocal queued
        now = deps.clock.now()
        app = await uow.applications.get(cmd.application_id)
        if app is None or not app.is_party(cmd.caller.agency_id):
            raise NotFoundError("no such application for this agency")
        matter = deps.catalog.get(app.matter, local_date(app.received_at))
        app.decide(
            cmd.caller.agency_id,
            cmd.decision,
            cmd.reasons,
            now,
            owed_before_decision=matter.owed_before_decision,
        )
        issued = None
        if cmd.certificate is not None:  # an approval's e-certificate (Art. 22)
            issued = await certificates.issue(app, cmd.certificate, uow, now)
        queued = await settle(app, uow, deps, now)
        handler = app.handler(cmd.caller.agency_id)
        body = {
            "application_id": app.id,
            "status": app.status.value,
            "handler": {"agency_id": handler.agency_id, "state": handler.state.value},
        }
        if issued is not None:
            body["certificate"] = issued.status_view()
        response = StoredResponse(
            request_digest=cmd.body_digest, status=200, body=body, resource=app.id
        )
        await uow.idempotency.put(cmd.caller.agency_id, scope, cmd.idempotency_key, response, now)
        return response

    response = await _once(
        deps, acceptance, cmd.caller, scope, cmd.idempotency_key, cmd.body_digest, work
    )
    if queued:  # a redress notice or a later stage's forward: the relay, now
        deps.outbox_written()
    return response
