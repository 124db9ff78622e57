"""Acting on a case after submission: examination, supplements, withdrawal, result delivery,
and the lead's re-check of an automatic decision.

Partner agencies sign every call (RFC 9421) and send an Idempotency-Key; residents act on
their own cases with their gateway access token. Each answer is the case's new status, its
missing materials and its deadlines.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.domain.commands import ActOnApplication, Caller
from gateway.domain.documents import MESSAGES
from gateway.domain.errors import FieldProblem, Localized, ValidationFailedError
from gateway.services import agency_messages, lifecycle
from gateway.web.agency_bodies import agency_body, native_request
from gateway.web.auth import idempotency_key_of, read_body, signed_write
from gateway.web.bearer import authenticate_resident
from gateway.web.keys import DEPENDENCIES
from gateway.web.openapi import IDEMPOTENCY_KEY, operation
from gateway.web.partner_routes import channel_call  # the one parser of GBA-Channel
from gateway.web.problems import json_object, json_response

routes = web.RouteTableDef()

_RESULT = {
    "type": "object",
    "required": ["application_id", "status", "missing", "deadlines"],
    "properties": {
        "application_id": {"type": "string"},
        "status": {"type": "string"},
        "missing": {"type": "array", "items": {"type": "string"}},
        "owed": {
            "type": "array",
            "description": "容缺受理 (Art. 12): materials owed after acceptance, by when",
            "items": {
                "type": "object",
                "properties": {"material": {"type": "string"}, "due": {"type": "string"}},
            },
        },
        "deadlines": {"type": "object"},
    },
}
_EXAMINATION = {
    "type": "object",
    "required": ["outcome"],
    "properties": {
        "outcome": {"enum": ["accepted", "not_accepted", "supplement"]},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "missing": {"type": "array", "items": {"type": "string"}},
    },
}
_SUPPLEMENT = {
    "type": "object",
    "description": "Before acceptance: what the one notice listed (materials, commitments, "
    "particulars). After acceptance (容缺受理, Art. 12): materials still owed only (the "
    "case's `owed` list); any other code is a 422 `material_not_owed`; the handlers holding "
    "the case are forwarded the supplemented document.",
    "properties": {
        "materials": {"type": "array", "items": {"type": "object"}},
        "commitments": {
            "type": "array",
            "description": "告知承诺: {material, language?}; the gateway fills in the catalog's "
            "text in that language (zh-Hant, zh-Hans, en, pt) and its digest",
            "items": {
                "type": "object",
                "required": ["material"],
                "properties": {
                    "material": {"type": "string"},
                    "language": {"enum": ["zh-Hant", "zh-Hans", "en", "pt"]},
                },
            },
        },
        "particulars": {"type": "object"},
    },
}
_CONSENT = {
    "type": "object",
    "required": ["categories", "destinations"],
    "description": "The new consent, for this case's matter and agencies: the data categories "
    "of the case and at least the destinations of the consent it replaces",
    "properties": {
        "categories": {"type": "array", "items": {"type": "string"}},
        "destinations": {"type": "array", "items": {"enum": ["GD", "HK", "MO"]}},
        "expires_at": {"type": "string", "format": "date-time"},
    },
}
_DELIVERY = {
    "type": "object",
    "required": ["channel"],
    "properties": {"channel": {"enum": ["electronic", "post", "pickup", "kiosk"]}},
}
_PICKUP = {
    "type": "object",
    "required": ["code"],
    "additionalProperties": False,
    "properties": {
        "code": {
            "type": "string",
            "minLength": 4,
            "maxLength": 32,
            "description": "the pickup code the applicant presents (spaces and case ignored)",
        }
    },
}
_RECHECK = {
    "type": "object",
    "required": ["outcome"],
    "additionalProperties": False,
    "properties": {
        "outcome": {"enum": ["confirmed", "overturned"]},
        "reasons": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "description": "required when overturned: the corrective decision's reasons",
        },
    },
}
_SIGNED_ERRORS: dict[int, str | tuple[str, dict[str, Any]]] = {
    200: ("The case after the action", _RESULT),
    401: "Signature refused",
    400: "Malformed body",
    403: "Not this party's action",
    404: "No such case for this agency",
    409: "Not possible in the case's current state",
    415: "Neither JSON nor the agency's own XML format",
    422: "Invalid body (every problem listed)",
}


_KINDS = {
    "examine": agency_messages.EXAMINATION,
    "supplement": agency_messages.SUPPLEMENT,
    "recheck": agency_messages.RECHECK,
}


async def _as_agency(request: web.Request, action: str) -> web.Response:
    async with signed_write(request) as signed:
        data: dict[str, Any] = {}
        if signed.body and action in _KINDS:
            data = await agency_body(request, signed, _KINDS[action], "the body")
        elif signed.body:
            data = json_object(signed.body, signed.media_type, "the body")
        assert signed.idempotency_key is not None
        stored = await lifecycle.act_on_application(
            ActOnApplication(
                caller=signed.caller,
                application_id=request.match_info["application_id"],
                action=action,
                data=data,
                idempotency_key=signed.idempotency_key,
                body_digest=signed.content_digest,
            ),
            request.app[DEPENDENCIES],
            signed.acceptance,
        )
    return json_response(stored.body, status=stored.status)


@routes.post("/v1/applications/{application_id}/acceptance")
@operation(
    summary="The lead agency's examination: accept, refuse with reasons, or one notice "
    "listing everything missing (Art. 19)",
    tag="applications",
    request=native_request(_EXAMINATION, "Examination (HK) or Exame (Macau)"),
    responses=_SIGNED_ERRORS,
    signed=True,
)
async def examine(request: web.Request) -> web.Response:
    return await _as_agency(request, "examine")


@routes.post("/v1/applications/{application_id}/supplements")
@operation(
    summary="Correct or add materials, commitments or particulars, or supply a material "
    "owed after acceptance (the submitting agency)",
    tag="applications",
    request=native_request(_SUPPLEMENT, "Supplement (HK) or Suplemento (Macau)"),
    responses=_SIGNED_ERRORS,
    signed=True,
)
async def supplement(request: web.Request) -> web.Response:
    return await _as_agency(request, "supplement")


@routes.post("/v1/applications/{application_id}/withdrawal")
@operation(
    summary="Withdraw an open case for the applicant (the submitting agency)",
    tag="applications",
    responses=_SIGNED_ERRORS,
    signed=True,
)
async def withdraw(request: web.Request) -> web.Response:
    return await _as_agency(request, "withdraw")


@routes.post("/v1/applications/{application_id}/result")
@operation(
    summary="The lead agency delivered the decided result by the applicant's chosen channel",
    tag="applications",
    request={"application/json": _DELIVERY},
    responses=_SIGNED_ERRORS,
    signed=True,
)
async def deliver_result(request: web.Request) -> web.Response:
    return await _as_agency(request, "deliver_result")


@routes.post("/v1/applications/{application_id}/pickup")
@operation(
    summary="A counter or kiosk hands over a result to the applicant who presents its pickup "
    "code (Art. 17, 22); state the counter or kiosk in the signed GBA-Channel header. A wrong "
    "code is counted (422 with attempts_left); after 5 the code is locked (409)",
    tag="applications",
    request={"application/json": _PICKUP},
    responses=_SIGNED_ERRORS,
    signed=True,
)
async def collect_result(request: web.Request) -> web.Response:
    async with signed_write(request) as signed:
        data = json_object(signed.body, signed.media_type, "the body") if signed.body else {}
        call = channel_call(request)
        assert signed.idempotency_key is not None
        stored = await lifecycle.collect_result(
            ActOnApplication(
                caller=signed.caller,
                application_id=request.match_info["application_id"],
                action="collect_result",
                data=data,
                idempotency_key=signed.idempotency_key,
                body_digest=signed.content_digest,
            ),
            request.app[DEPENDENCIES],
            signed.acceptance,
            where=call.record() if call is not None else None,
        )
    if stored.status == 422:  # the attempt is committed; the answer is the problem
        left = stored.body["attempts_left"]
        base = MESSAGES["wrong_pickup_code"]
        error = FieldProblem(
            "wrong_pickup_code",
            Localized(
                f"{base.zh_hant}（尚餘 {left} 次）",
                f"{base.zh_hans}（尚余 {left} 次）",
                f"{base.en} ({left} attempt(s) left)",
                f"{base.pt} (resta(m) {left} tentativa(s))",
            ),
            pointer="/code",
        )
        raise ValidationFailedError(f"wrong pickup code; {left} attempt(s) left", errors=[error])
    return json_response(stored.body, status=stored.status)


@routes.post("/v1/applications/{application_id}/recheck")
@operation(
    summary="The lead agency's human re-check of an automatic decision: confirmed, or "
    "overturned with reasons, which issues a signed corrective decision naming the routes of "
    "redress (Art. 25)",
    tag="applications",
    request=native_request(_RECHECK, "Recheck (HK) or Revisao (Macau)"),
    responses=_SIGNED_ERRORS,
    signed=True,
)
async def recheck(request: web.Request) -> web.Response:
    return await _as_agency(request, "recheck")


async def _as_resident(request: web.Request, action: str) -> web.Response:
    grant = await authenticate_resident(request)
    key = idempotency_key_of(request)
    body = await read_body(request)
    data = json_object(body, request.content_type, "the body") if body else {}
    stored = await lifecycle.act_on_application(
        ActOnApplication(
            caller=Caller.resident(grant.person_id, grant.login_id),
            application_id=request.match_info["application_id"],
            action=action,
            data=data,
            idempotency_key=key,
            body_digest=lifecycle.body_digest(body),
        ),
        request.app[DEPENDENCIES],
    )
    return json_response(stored.body, status=stored.status)


_RESIDENT = {
    200: ("The case after the action", _RESULT),
    401: "Access token missing, invalid or expired",
    403: "Not the applicant",
    404: "Not one of the resident's cases",
    409: "Not possible in the case's current state",
    422: "Invalid body",
}


@routes.post("/v1/me/applications/{application_id}/supplements")
@operation(
    summary="Supply what the notice listed, or a material owed after acceptance, on one's own case",
    tag="applicant",
    request={"application/json": _SUPPLEMENT},
    parameters=[IDEMPOTENCY_KEY],
    responses=_RESIDENT,
)
async def my_supplement(request: web.Request) -> web.Response:
    return await _as_resident(request, "supplement")


@routes.post("/v1/me/applications/{application_id}/withdrawal")
@operation(
    summary="Withdraw one's own open case",
    tag="applicant",
    parameters=[IDEMPOTENCY_KEY],
    responses=_RESIDENT,
)
async def my_withdrawal(request: web.Request) -> web.Response:
    return await _as_resident(request, "withdraw")


@routes.post("/v1/me/applications/{application_id}/consent")
@operation(
    summary="Consent again for one's own open case whose consent was withdrawn or lapsed: "
    "the new consent must cover the case's data and destinations; the forwards withheld are "
    "queued again under it (consent.renewed on the timeline)",
    tag="applicant",
    request={"application/json": _CONSENT},
    parameters=[IDEMPOTENCY_KEY],
    responses={**_RESIDENT, 403: "Not the applicant, or the consent does not cover the case"},
)
async def my_consent(request: web.Request) -> web.Response:
    return await _as_resident(request, "consent")
