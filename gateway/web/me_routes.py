"""Applicant API: residents applying themselves through a portal or kiosk holding their token.

Every call carries a gateway access token (``Authorization: Bearer``, ``typ`` at+jwt) from the
gateway's OpenID Provider; the resident sees and changes only what is theirs.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from aiohttp import web

from gateway.domain.commands import Applicant, Caller, SubmitApplication
from gateway.domain.documents import problem
from gateway.domain.errors import ValidationFailedError
from gateway.domain.values import Channel
from gateway.services import contacts, handlers, identity, queries
from gateway.services.identity import Resident
from gateway.web.auth import idempotency_key_of, read_body
from gateway.web.bearer import authenticate_resident
from gateway.web.keys import DEPENDENCIES, METRICS, SETTINGS
from gateway.web.openapi import IDEMPOTENCY_KEY, operation, path_param, query
from gateway.web.problems import json_object, json_response

routes = web.RouteTableDef()

_BEARER = {401: "Access token missing, invalid or expired"}
_OBJECT = {"type": "object"}
_SUBMISSION = {
    "type": "object",
    "required": ["application"],
    "additionalProperties": False,
    "properties": {
        "application": {
            "type": "object",
            "description": "A canonical application WITHOUT `applicant`: it comes from the login",
        },
        "consent": {
            "type": "object",
            "description": "Consent given with this submission: categories, destinations",
        },
        "consent_id": {
            "type": "string",
            "description": "A consent recorded before. An agent (`on_behalf_of`) naming none "
            "relies on the principal's own consent in force that covers the matter, its data "
            "and destinations (one for the matter first, the newest)",
        },
        "on_behalf_of": {"type": "string", "description": "A confirmed delegation id (agents)"},
        "delivery_channel": {
            "enum": ["electronic", "post", "pickup", "kiosk"],
            "description": "How the result is delivered (electronic needs an e_certificate "
            "consent)",
        },
    },
}


async def _resident(request: web.Request) -> Resident:
    grant = await authenticate_resident(request)
    return Resident(
        person_id=grant.person_id,
        login_id=grant.login_id,
        client_id=grant.client_id,
        agency_id=grant.agency_id,
        channel=grant.channel,
    )


def _caller(resident: Resident) -> Caller:
    return Caller.resident(resident.person_id, resident.login_id)


async def _body(request: web.Request, what: str) -> tuple[bytes, dict[str, Any]]:
    body = await read_body(request)
    return body, json_object(body, request.content_type, what)


@routes.get("/v1/me")
@operation(
    summary="The resident: canonical identity, linked documents, consents, delegations",
    tag="applicant",
    responses={200: ("What the gateway holds about the resident", _OBJECT), **_BEARER},
)
async def me(request: web.Request) -> web.Response:
    resident = await _resident(request)
    return json_response(await identity.me(resident, request.app[DEPENDENCIES]))


@routes.post("/v1/me/applications")
@operation(
    summary="Apply: the identity part is filled from the login and never asked again",
    tag="applicant",
    request={"application/json": _SUBMISSION},
    parameters=[IDEMPOTENCY_KEY],
    responses={
        202: ("Stored; the receipt is the signed voucher", _OBJECT),
        **_BEARER,
        403: "Assurance too low, consent or delegation missing",
        422: "Invalid document or Idempotency-Key reuse",
    },
)
async def submit(request: web.Request) -> web.Response:
    resident = await _resident(request)
    key = idempotency_key_of(request)
    body, data = await _body(request, "the submission")
    _check_submission(data)
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    stored = await handlers.submit_application(
        SubmitApplication(
            caller=_caller(resident),
            body=body,
            media_type="application/json",
            content_digest=digest,
            idempotency_key=key,
            channel=Channel(resident.channel),
            delivery_channel=data.get("delivery_channel"),
            applicant=Applicant(
                person_id=resident.person_id,
                login_id=resident.login_id,
                client_id=resident.client_id,
                application=data["application"],
                consent_id=data.get("consent_id"),
                consent=data.get("consent"),
                on_behalf_of=data.get("on_behalf_of"),
            ),
        ),
        request.app[DEPENDENCIES],
    )
    if not stored.replayed:
        request.app[METRICS].applications.labels(stored.body["matter"], stored.body["status"]).inc()
    headers = {}
    if stored.status == 202 and stored.resource:
        base = request.app[SETTINGS].base_url
        headers["Location"] = f"{base}/v1/me/applications/{stored.resource}"
    return json_response(stored.body, status=stored.status, headers=headers)


def _check_submission(data: dict[str, Any]) -> None:
    problems = [
        problem(f"/{name}", "unexpected_field")
        for name in data
        if name not in _SUBMISSION["properties"]
    ]
    if not isinstance(data.get("application"), dict):
        problems.append(problem("/application", "required"))
    if "consent" in data and not isinstance(data["consent"], dict):
        problems.append(problem("/consent", "wrong_type"))
    for name in ("consent_id", "on_behalf_of", "delivery_channel"):
        if name in data and not isinstance(data[name], str):
            problems.append(problem(f"/{name}", "wrong_type"))
    if problems:
        raise ValidationFailedError(f"{len(problems)} problem(s) found", errors=problems)


@routes.get("/v1/me/applications")
@operation(
    summary="The resident's own applications, oldest first",
    tag="applicant",
    parameters=[query("after", "cursor from the previous page")],
    responses={200: ("A page of the resident's cases", _OBJECT), **_BEARER},
)
async def my_applications(request: web.Request) -> web.Response:
    resident = await _resident(request)
    page = await queries.own_applications(
        request.app[DEPENDENCIES],
        resident.person_id,
        limit=50,
        after=request.query.get("after"),
        login_id=resident.login_id,
    )
    return json_response(page)


@routes.get("/v1/me/applications/{application_id}")
@operation(
    summary="One of the resident's applications with its timeline (Art. 22)",
    tag="applicant",
    responses={200: ("The case", _OBJECT), **_BEARER, 404: "Not one of the resident's cases"},
)
async def my_application(request: web.Request) -> web.Response:
    resident = await _resident(request)
    view = await queries.application_view(
        request.app[DEPENDENCIES], _caller(resident), request.match_info["application_id"]
    )
    return json_response(view)


_CONTACT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "email": {"type": ["string", "null"], "format": "email"},
        "phone": {"type": ["string", "null"], "description": "E.164, e.g. +85291234567"},
        "channels": {
            "type": "array",
            "items": {"enum": ["email", "sms"]},
            "description": "Where milestones are pushed (Art. 22: the applicant chooses); "
            "empty: read them at /v1/me/notifications only",
        },
        "language": {
            "enum": ["zh-Hant", "zh-Hans", "en", "pt"],
            "description": "Default: the first of Accept-Language the gateway writes in, "
            "else zh-Hant",
        },
    },
}


_CONTACT_HELD = {
    **_CONTACT,
    "properties": {
        **_CONTACT["properties"],  # type: ignore[dict-item]
        "source": {"enum": ["resident"], "description": "Who set them"},
    },
}


@routes.get("/v1/me/contact")
@operation(
    summary="How the resident is told of their cases: e-mail, phone, channels, language",
    tag="applicant",
    responses={200: ("The contact preferences", _CONTACT_HELD), **_BEARER},
)
async def my_contact(request: web.Request) -> web.Response:
    resident = await _resident(request)
    held = await contacts.contact_of(
        request.app[DEPENDENCIES],
        resident.person_id,
        accept_language=request.headers.get("Accept-Language"),
    )
    return json_response(held)


@routes.put("/v1/me/contact")
@operation(
    summary="Choose how to be told (Art. 22): e-mail and/or SMS, in zh-Hant, zh-Hans, en or pt",
    tag="applicant",
    request={"application/json": _CONTACT},
    responses={
        200: ("The contact preferences now held", _CONTACT_HELD),
        **_BEARER,
        422: "Invalid address, phone number, channel or language (every problem listed)",
    },
)
async def set_my_contact(request: web.Request) -> web.Response:
    resident = await _resident(request)
    _, data = await _body(request, "the contact preferences")
    held = await contacts.set_contact(
        request.app[DEPENDENCIES],
        resident.person_id,
        data,
        accept_language=request.headers.get("Accept-Language"),
    )
    return json_response(held)


@routes.get("/v1/me/consents")
@operation(
    summary="The resident's consents, withdrawn ones included",
    tag="applicant",
    responses={200: ("Consents", _OBJECT), **_BEARER},
)
async def consents(request: web.Request) -> web.Response:
    resident = await _resident(request)
    held = await identity.me(resident, request.app[DEPENDENCIES])
    return json_response({"items": held["consents"], "next": None})


@routes.post("/v1/me/consents")
@operation(
    summary="Give a consent: purpose, data categories, destinations, optional matter and expiry",
    tag="applicant",
    request={"application/json": _OBJECT},
    responses={201: ("The consent recorded", _OBJECT), **_BEARER, 422: "Invalid consent"},
)
async def grant(request: web.Request) -> web.Response:
    resident = await _resident(request)
    _, data = await _body(request, "the consent")
    consent = await identity.grant_consent(resident, data, request.app[DEPENDENCIES])
    return json_response(consent, status=201)


@routes.post("/v1/me/consents/{consent_id}/withdraw")
@operation(
    summary="Withdraw a consent: forwards not yet delivered that rely on it are withheld "
    "(message.withheld on each case), and no later forward relies on it",
    tag="applicant",
    responses={200: ("The consent, withdrawn", _OBJECT), **_BEARER, 404: "Not yours"},
)
async def withdraw(request: web.Request) -> web.Response:
    resident = await _resident(request)
    consent = await identity.withdraw_consent(
        resident, request.match_info["consent_id"], request.app[DEPENDENCIES]
    )
    return json_response(consent)


@routes.post("/v1/me/delegations")
@operation(
    summary="As an agent, ask the holder of an identity document to let you act for them",
    tag="applicant",
    request={"application/json": _OBJECT},
    responses={201: ("The delegation, awaiting confirmation", _OBJECT), **_BEARER, 422: "Invalid"},
)
async def request_delegation(request: web.Request) -> web.Response:
    resident = await _resident(request)
    _, data = await _body(request, "the delegation")
    made = await identity.request_delegation(resident, data, request.app[DEPENDENCIES])
    return json_response(made, status=201)


@routes.post("/v1/me/delegations/{delegation_id}/{action:confirm|revoke}")
@operation(
    summary="As the principal, confirm a delegation online; either party may revoke it",
    tag="applicant",
    parameters=[path_param("action", "confirm or revoke", {"enum": ["confirm", "revoke"]})],
    responses={
        200: ("The delegation", _OBJECT),
        **_BEARER,
        403: "Not yours to confirm",
        404: "No such delegation for you, or an action other than confirm or revoke",
    },
)
async def change_delegation(request: web.Request) -> web.Response:
    resident = await _resident(request)
    changed = await identity.change_delegation(
        resident,
        request.match_info["delegation_id"],
        request.match_info["action"],
        request.app[DEPENDENCIES],
    )
    return json_response(changed)
