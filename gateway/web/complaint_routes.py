"""Complaints about a case (Art. 31): filed by the applicant or the submitting agency,
answered by the lead agency; the outcome is notified to the applicant.

Partner agencies sign every call (RFC 9421, an Idempotency-Key on each POST); residents use
their gateway access token. The case's timeline shows ``complaint.filed`` and
``complaint.answered`` with ids and the outcome only; the texts are read here, by the parties.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.domain.commands import Caller
from gateway.domain.complaints import OUTCOMES, AnswerComplaint, FileComplaint
from gateway.services import complaints, lifecycle
from gateway.web.auth import authenticate, idempotency_key_of, read_body, signed_write
from gateway.web.bearer import authenticate_resident
from gateway.web.keys import DEPENDENCIES
from gateway.web.openapi import IDEMPOTENCY_KEY, operation
from gateway.web.problems import json_object, json_response

routes = web.RouteTableDef()

_COMPLAINT = {
    "type": "object",
    "required": ["complaint_id", "application_id", "status", "filed_at"],
    "properties": {
        "complaint_id": {"type": "string"},
        "application_id": {"type": "string"},
        "status": {"enum": ["filed", "answered"]},
        "filed_at": {"type": "string", "format": "date-time"},
        "outcome": {"enum": [*OUTCOMES, None]},
        "answered_at": {"type": ["string", "null"]},
        "text": {"type": "string"},
        "reply": {"type": ["string", "null"]},
    },
}
_FILING = {
    "type": "object",
    "required": ["text"],
    "properties": {"text": {"type": "string", "maxLength": 4000}},
}
_OUTCOME = {
    "type": "object",
    "required": ["outcome", "reply"],
    "properties": {"outcome": {"enum": list(OUTCOMES)}, "reply": {"type": "string"}},
}
_LIST = {"type": "object", "properties": {"items": {"type": "array", "items": _COMPLAINT}}}
_SIGNED: dict[int, str | tuple[str, dict[str, Any]]] = {
    401: "Signature refused",
    403: "Not this party's complaint to file or answer",
    404: "No such case or complaint for this agency",
    409: "The complaint is answered already",
    422: "Invalid body",
}
_BEARER: dict[int, str | tuple[str, dict[str, Any]]] = {
    401: "Access token missing, invalid or expired",
    403: "Not the applicant",
    404: "Not one of the resident's cases",
    422: "Invalid body",
}


@routes.post("/v1/applications/{application_id}/complaints")
@operation(
    summary="File a complaint about a case, open or closed (the submitting agency; Art. 31)",
    tag="complaints",
    request={"application/json": _FILING},
    responses={201: ("The complaint, filed", _COMPLAINT), **_SIGNED},
    signed=True,
)
async def file(request: web.Request) -> web.Response:
    async with signed_write(request) as signed:
        data = json_object(signed.body, signed.media_type, "the complaint")
        assert signed.idempotency_key is not None
        stored = await complaints.file_complaint(
            FileComplaint(
                signed.caller,
                request.match_info["application_id"],
                data.get("text"),
                signed.idempotency_key,
                signed.content_digest,
            ),
            request.app[DEPENDENCIES],
            signed.acceptance,
        )
    return json_response(stored.body, status=stored.status)


@routes.post("/v1/applications/{application_id}/complaints/{complaint_id}/outcome")
@operation(
    summary="Answer a complaint: upheld or dismissed, with a reply (the lead agency)",
    tag="complaints",
    request={"application/json": _OUTCOME},
    responses={200: ("The complaint, answered", _COMPLAINT), **_SIGNED},
    signed=True,
)
async def answer(request: web.Request) -> web.Response:
    async with signed_write(request) as signed:
        data = json_object(signed.body, signed.media_type, "the outcome")
        assert signed.idempotency_key is not None
        stored = await complaints.answer_complaint(
            AnswerComplaint(
                signed.caller,
                request.match_info["application_id"],
                request.match_info["complaint_id"],
                data.get("outcome"),
                data.get("reply"),
                signed.idempotency_key,
                signed.content_digest,
            ),
            request.app[DEPENDENCIES],
            signed.acceptance,
        )
    return json_response(stored.body, status=stored.status)


@routes.get("/v1/applications/{application_id}/complaints")
@operation(
    summary="The complaints about a case with their texts (the complainant and the lead agency)",
    tag="complaints",
    responses={200: ("Complaints", _LIST), 401: "Signature refused", 404: "No such case"},
    signed=True,
)
async def listing(request: web.Request) -> web.Response:
    signed = await authenticate(request, require_idempotency=False)
    page = await complaints.complaints_of(
        request.app[DEPENDENCIES], signed.caller, request.match_info["application_id"]
    )
    return json_response(page)


@routes.post("/v1/me/applications/{application_id}/complaints")
@operation(
    summary="Complain about one's own case, open or closed (Art. 31)",
    tag="applicant",
    request={"application/json": _FILING},
    parameters=[IDEMPOTENCY_KEY],
    responses={201: ("The complaint, filed", _COMPLAINT), **_BEARER},
)
async def my_complaint(request: web.Request) -> web.Response:
    grant = await authenticate_resident(request)
    key = idempotency_key_of(request)
    body = await read_body(request)
    data = json_object(body, request.content_type, "the complaint")
    stored = await complaints.file_complaint(
        FileComplaint(
            Caller.resident(grant.person_id, grant.login_id),
            request.match_info["application_id"],
            data.get("text"),
            key,
            lifecycle.body_digest(body),
        ),
        request.app[DEPENDENCIES],
    )
    return json_response(stored.body, status=stored.status)


@routes.get("/v1/me/applications/{application_id}/complaints")
@operation(
    summary="One's complaints about one's own case, with their outcomes and replies",
    tag="applicant",
    responses={200: ("Complaints", _LIST), **_BEARER},
)
async def my_complaints(request: web.Request) -> web.Response:
    grant = await authenticate_resident(request)
    page = await complaints.complaints_of(
        request.app[DEPENDENCIES],
        Caller.resident(grant.person_id, grant.login_id),
        request.match_info["application_id"],
    )
    return json_response(page)
