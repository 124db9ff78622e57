"""Partner API v1: applications and decisions, every call signed both ways."""

from __future__ import annotations

from typing import Any

import http_sfv
from aiohttp import web

from gateway.domain import channels, legal_basis
from gateway.domain.commands import RecordDecision, SubmitApplication
from gateway.domain.documents import problem
from gateway.domain.errors import FieldProblem, ValidationFailedError
from gateway.services import agency_messages, handlers, queries
from gateway.services.ports import StoredResponse
from gateway.web.agency_bodies import agency_body, native_request
from gateway.web.auth import authenticate, signed_write
from gateway.web.certificate_routes import CERTIFICATE_SCHEMA, attached_certificate
from gateway.web.keys import DEPENDENCIES, METRICS, SETTINGS
from gateway.web.openapi import operation, query
from gateway.web.problems import json_response

routes = web.RouteTableDef()

OWED_SCHEMA = {
    "type": "array",
    "description": "容缺受理 (Art. 12): materials accepted as missing and still owed, each "
    "with its due day and whether the deadline sweep found it overdue",
    "items": {
        "type": "object",
        "required": ["material", "due", "overdue"],
        "properties": {
            "material": {"type": "string"},
            "due": {"type": "string", "format": "date"},
            "overdue": {"type": "boolean"},
        },
    },
}
_SUBMIT_RESULT = {
    "type": "object",
    "required": ["application_id", "status", "receipt"],
    "properties": {
        "application_id": {"type": "string"},
        "matter": {"type": "string"},
        "status": {"type": "string", "enum": ["accepted", "awaiting_supplement"]},
        "receipt": {"type": "string", "description": "JWS compact, typ gba-receipt+jwt"},
    },
}
_VIEW = {
    "type": "object",
    "required": ["application_id", "matter", "status", "handlers", "deadlines", "timeline"],
    "properties": {
        "application_id": {"type": "string"},
        "matter": {"type": "string"},
        "status": {"type": "string"},
        "handlers": {"type": "array", "items": {"type": "object"}},
        "deadlines": {"type": "object"},
        "timeline": {"type": "array", "items": {"type": "object"}},
        "evidence": {
            "type": "array",
            "description": "evidence by data sharing, per material: state (requested, "
            "received, refused, unanswered, not_requested), issuer, request id, times",
            "items": {"type": "object"},
        },
        "owed": OWED_SCHEMA,
        "legal_basis": {
            "type": ["object", "null"],
            "description": "an agency's case: the legal basis its submitter declared "
            "(GBA-Legal-Basis), on which every forward of the case rests; null for a "
            "resident's case, which rests on its consent",
            "properties": {
                "law": {"type": "string"},
                "article": {"type": "string"},
                "text": {"type": "string"},
            },
        },
    },
}
_DECISION = {
    "type": "object",
    "required": ["decision"],
    "properties": {
        "decision": {"type": "string", "enum": ["approved", "rejected"]},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "certificate": CERTIFICATE_SCHEMA,
    },
}
_ERRORS = {400: "Malformed body or digest", 401: "Signature refused", 404: "No such case"}


def channel_call(request: web.Request) -> channels.ChannelCall | None:
    """The channel the call states in its (signed) ``GBA-Channel`` header, an RFC 8941 item:
    ``counter;point="GZ-TH-01";officer="OFF-0042";document=HKID``, ``kiosk;point=..;device=..``,
    ``mobile`` or ``online``. Absent: None (an online call)."""
    value = request.headers.get(channels.HEADER)
    if value is None:
        return None
    item = http_sfv.Item()
    try:
        item.parse(value.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        errors = [problem("/headers/gba-channel", "unknown_channel")]
        raise ValidationFailedError("GBA-Channel is not a structured item", errors=errors) from None
    params = {str(k): (str(v) if isinstance(v, str) else v) for k, v in item.params.items()}
    try:
        return channels.ChannelCall.of(str(item.value), params)
    except channels.ChannelProblems as refused:
        raise ValidationFailedError(str(refused), errors=list(refused.problems)) from None


def legal_basis_call(request: web.Request) -> legal_basis.LegalBasis | None:
    """The legal basis the call declares in its (signed) ``GBA-Legal-Basis`` header, an RFC
    9651 dictionary of strings or display strings: ``law=%"...", article="13(1)(3)"``, and
    optionally ``text=%"..."``. Absent: None (the service refuses an agency's submission
    without a basis, listing it with the document's other problems)."""
    value = request.headers.get(legal_basis.HEADER)
    if value is None:
        return None
    members = http_sfv.Dictionary()
    try:
        members.parse(value.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        errors = [problem(legal_basis.HEADER_POINTER, "wrong_type")]
        raise ValidationFailedError(
            "GBA-Legal-Basis is not a structured dictionary", errors=errors
        ) from None
    texts = {  # a string or display string is text; anything else is of the wrong type
        str(name): str(item.value) if isinstance(getattr(item, "value", None), str) else None
        for name, item in members.items()
    }
    try:
        return legal_basis.LegalBasis.of(texts, legal_basis.HEADER_POINTER)
    except legal_basis.LegalBasisProblems as refused:
        raise ValidationFailedError(str(refused), errors=list(refused.problems)) from None


def _answer(request: web.Request, stored: StoredResponse) -> web.Response:
    headers = {}
    if stored.resource and stored.status == 202:
        headers["Location"] = f"{request.app[SETTINGS].base_url}/v1/applications/{stored.resource}"
    return json_response(stored.body, status=stored.status, headers=headers)


@routes.post("/v1/applications")
@operation(
    summary="Submit an application (canonical JSON or the agency's native format)",
    tag="applications",
    request={"application/json": {"type": "object"}, "application/xml": {"type": "string"}},
    parameters=[
        {
            "name": "GBA-Channel",
            "in": "header",
            "required": False,
            "description": (
                "The channel of the call (Art. 17-18), an RFC 8941 item covered by the "
                "signature: online (the default when absent), mobile, "
                'kiosk;point="<service point>";device="<terminal>", or '
                'counter;point="<service point>";officer="<officer>";document=<type of '
                "the applicant's identity document inspected in person> (the case is then "
                "filed at high assurance). A matter refuses a channel it does not list (422)."
            ),
            "schema": {"type": "string"},
        },
        {
            "name": "GBA-Legal-Basis",
            "in": "header",
            "required": False,
            "description": (
                "The legal basis on which the submitting agency sends the applicant's "
                "personal information without a consent of the applicant (GBA "
                "personal-information rules; PIPL art. 13), an RFC 9651 dictionary covered "
                'by the signature: law=%"<law or instrument>", article="<article>" and '
                'optionally text=%"<one sentence>" (strings, or display strings for text '
                "beyond ASCII; at most 200, 100 and 500 characters). Required of every "
                "agency submission in every format (canonical JSON may carry it as the "
                "document's legal_basis member instead); without it the submission is "
                "refused 422 (legal_basis_required at /headers/gba-legal-basis) and nothing "
                "is stored. Recorded on the case, signed into the receipt (legal_basis "
                "claim), shown to the applicant; every forward of the case relies on it."
            ),
            "schema": {"type": "string"},
        },
    ],
    responses={
        202: ("Stored; the receipt is the signed voucher", _SUBMIT_RESULT),
        **_ERRORS,
        403: "The agency may not submit this matter",
        413: "Body too large",
        415: "Unsupported content type",
        422: "Invalid document, no legal basis declared, a channel the matter does not list, "
        "or Idempotency-Key reuse",
    },
    signed=True,
)
async def submit(request: web.Request) -> web.Response:
    async with signed_write(request) as signed:
        assert signed.idempotency_key is not None
        call = channel_call(request)
        basis = legal_basis_call(request)
        stored = await handlers.submit_application(
            SubmitApplication(
                caller=signed.caller,
                body=signed.body,
                media_type=signed.media_type,
                content_digest=signed.content_digest,
                idempotency_key=signed.idempotency_key,
                channel_call=call,
                legal_basis=basis,
            ),
            request.app[DEPENDENCIES],
            signed.acceptance,
        )
        if not stored.replayed:
            metrics = request.app[METRICS]
            metrics.applications.labels(stored.body["matter"], stored.body["status"]).inc()
    return _answer(request, stored)


@routes.get("/v1/applications")
@operation(
    summary="The calling agency's work list (cases it handles)",
    tag="applications",
    parameters=[
        query("after", "cursor from the previous page"),
        query("limit", "page size, 1-200", {"type": "integer"}),
        query(
            "recheck",
            "true: only cases decided automatically and sampled for human re-check (Art. 25)",
            {"type": "boolean"},
        ),
    ],
    responses={
        200: (
            "A page of cases",
            {
                "type": "object",
                "properties": {
                    "items": {
                        "type": "array",
                        "items": {"type": "object", "properties": {"owed": OWED_SCHEMA}},
                    },
                    "next": {"type": ["string", "null"]},
                },
            },
        ),
        401: "Signature refused",
        422: "limit is not an integer",
    },
    signed=True,
)
async def work_list(request: web.Request) -> web.Response:
    signed = await authenticate(request, require_idempotency=False)
    try:
        limit = min(max(int(request.query.get("limit", "50")), 1), 200)
    except ValueError:
        raise ValidationFailedError(
            "limit must be an integer", errors=[problem("/limit", "wrong_type")]
        ) from None
    page = await queries.work_list(
        request.app[DEPENDENCIES],
        signed.caller,
        limit=limit,
        after=request.query.get("after"),
        recheck=request.query.get("recheck") == "true",
    )
    return json_response(page)


@routes.get("/v1/applications/{application_id}")
@operation(
    summary="A case: status, each handler's state, deadlines and the whole timeline",
    tag="applications",
    responses={200: ("The case", _VIEW), 401: "Signature refused", 404: "No such case"},
    signed=True,
)
async def get_application(request: web.Request) -> web.Response:
    signed = await authenticate(request, require_idempotency=False)
    view = await queries.application_view(
        request.app[DEPENDENCIES], signed.caller, request.match_info["application_id"]
    )
    return json_response(view)


def _decision_of(data: dict[str, Any]) -> tuple[str, tuple[str, ...], list[FieldProblem]]:
    problems: list[FieldProblem] = []
    decision = data.get("decision")
    if decision not in ("approved", "rejected"):
        problems.append(problem("/decision", "required"))
    reasons = data.get("reasons", [])
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        problems.append(problem("/reasons", "wrong_type"))
        reasons = []
    if decision == "rejected" and not reasons:
        problems.append(problem("/reasons", "reasons_required"))
    return str(decision), tuple(reasons), problems


@routes.post("/v1/applications/{application_id}/decisions")
@operation(
    summary="A handling agency's decision on a case",
    tag="applications",
    request=native_request(_DECISION, "Decision (HK) or Decisao (Macau)"),
    responses={
        200: ("Recorded", {"type": "object"}),
        **_ERRORS,
        409: "Not decidable in the case's current state; an approval while a material is "
        "owed (Art. 12) lists each as /owed/<code>, material_owed",
        415: "Neither JSON nor the agency's own XML format",
        422: "Invalid decision or e-certificate signature (every problem listed)",
    },
    signed=True,
)
async def post_decision(request: web.Request) -> web.Response:
    async with signed_write(request) as signed:
        body = await agency_body(request, signed, agency_messages.DECISION, "a decision")
        decision, reasons, problems = _decision_of(body)
        certificate, refused = await attached_certificate(
            request, signed.caller, body.get("certificate"), decision
        )
        if problems or refused:  # every problem at once; nothing kept
            errors = [*problems, *refused]
            raise ValidationFailedError(f"{len(errors)} problem(s) found", errors=errors)
        assert signed.idempotency_key is not None
        stored = await handlers.record_decision(
            RecordDecision(
                caller=signed.caller,
                application_id=request.match_info["application_id"],
                decision=decision,
                reasons=reasons,
                idempotency_key=signed.idempotency_key,
                body_digest=signed.content_digest,
                certificate=certificate,
            ),
            request.app[DEPENDENCIES],
            signed.acceptance,
        )
    return _answer(request, stored)
