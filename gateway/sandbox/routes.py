"""Sandbox-only routes: personas, agencies, fault switches, matter routing, partner inboxes.

They exist only in an application built in sandbox mode; in production these paths are 404.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from gateway.domain.agencies import Agency
from gateway.domain.documents import problem
from gateway.domain.errors import (
    ConflictError,
    NotFoundError,
    ValidationFailedError,
)
from gateway.sandbox.faults import FaultBoard
from gateway.sandbox.partners import SandboxPartners
from gateway.sandbox.personas import PERSONAS
from gateway.sandbox.routing import RoutedCatalog
from gateway.trust.certificates import TrustAnchors
from gateway.trust.registry import KeySpec, registration
from gateway.web.auth import read_body
from gateway.web.keys import DEPENDENCIES, STORE
from gateway.web.openapi import operation
from gateway.web.problems import json_object, json_response

PARTNERS = web.AppKey("sandbox_partners", SandboxPartners)
ANCHORS = web.AppKey("sandbox_anchors", TrustAnchors)
FAULTS = web.AppKey("sandbox_faults", FaultBoard)
ROUTING = web.AppKey("sandbox_routing", RoutedCatalog)
routes = web.RouteTableDef()


@routes.get("/sandbox/v1/personas")
@operation(
    summary="Synthetic residents to apply and log in as",
    tag="sandbox",
    responses={200: ("Personas", {"type": "object"})},
    sandbox_only=True,
)
async def personas(request: web.Request) -> web.Response:
    return json_response({"items": [p.summary() for p in PERSONAS], "next": None})


def _agency_json(agency: Agency, keys: list[KeySpec], sandbox: bool) -> dict[str, Any]:
    return {
        "agency_id": agency.id,
        "jurisdiction": agency.jurisdiction,
        "names": dict(agency.names),
        "endpoint": agency.endpoint,
        "matters": list(agency.matters),
        "receives": agency.receives,
        "issues_evidence": list(agency.issues_evidence),
        "sandbox": sandbox,
        "keys": [
            {
                "kid": k.kid,
                "jwk": k.jwk,
                "not_before": k.not_before and k.not_before.isoformat(),
                "not_after": k.not_after and k.not_after.isoformat(),
                "revoked": k.revoked_at is not None,
            }
            for k in keys
        ],
    }


@routes.get("/sandbox/v1/agencies")
@operation(
    summary="Every registered agency and its public keys",
    tag="sandbox",
    responses={200: ("Agencies", {"type": "object"})},
    sandbox_only=True,
)
async def agencies(request: web.Request) -> web.Response:
    async with request.app[STORE]() as uow:
        registered = await uow.agencies.all()
        keys = await uow.agencies.keys()
    items = [
        _agency_json(agency, [spec for owner, spec in keys if owner == agency.id], sandbox)
        for agency, sandbox in registered
    ]
    return json_response({"items": items, "next": None})


@routes.get("/sandbox/v1/agencies/{agency_id}")
@operation(
    summary="One registered agency and its public keys",
    tag="sandbox",
    responses={200: ("The agency", {"type": "object"}), 404: "No such agency"},
    sandbox_only=True,
)
async def agency(request: web.Request) -> web.Response:
    agency_id = request.match_info["agency_id"]
    async with request.app[STORE]() as uow:
        found = await uow.agencies.get(agency_id)
        keys = await uow.agencies.keys(agency_id)
        sandbox = any(a.id == agency_id and flag for a, flag in await uow.agencies.all())
    if found is None:
        raise NotFoundError("no such agency")
    return json_response(_agency_json(found, [spec for _, spec in keys], sandbox))


_REGISTRATION = {
    "type": "object",
    "required": ["agency_id", "jurisdiction", "keys"],
    "properties": {
        "agency_id": {"type": "string", "pattern": "^[a-z0-9-]{1,64}$"},
        "jurisdiction": {"type": "string", "description": "a registered code: HK, MO, GD"},
        "names": {"type": "object", "additionalProperties": {"type": "string"}},
        "keys": {
            "type": "array",
            "items": {"type": "object"},
            "description": 'public JWKs with kid, or {"certificate": PEM chain}',
        },
        "matters": {"type": "array", "items": {"type": "string"}},
        "endpoint": {"type": "string", "format": "uri"},
        "receives": {
            "type": "string",
            "description": "the format forwards reach it in: a registered jurisdiction's code "
            "(HK, MO, GD) or canonical (default: its jurisdiction's)",
        },
        "issues_evidence": {
            "type": "array",
            "items": {"type": "string", "pattern": "^[a-z]{2}(-[a-z0-9]+)+$"},
            "description": "evidence types it issues, answering the gateway's signed evidence "
            "requests (docs/evidence.md)",
        },
    },
}


@routes.post("/sandbox/v1/agencies")
@operation(
    summary="Register a tester's agency and its keys; its signed calls are accepted at once",
    tag="sandbox",
    request={"application/json": _REGISTRATION},
    responses={
        201: ("The stored agency", {"type": "object"}),
        400: "Malformed JSON",
        409: "The agency or a key id is already registered",
        415: "Not JSON",
        422: "Invalid registration (every problem listed)",
    },
    sandbox_only=True,
)
async def register_agency(request: web.Request) -> web.Response:
    body = json_object(await read_body(request), request.content_type, "a registration")
    keys = body.get("keys") or []
    spec = {**body, "keys": [_key_entry(k) for k in keys] if isinstance(keys, list) else keys}
    deps = request.app[DEPENDENCIES]
    now = deps.clock.now()
    reg = registration(spec, anchors=request.app.get(ANCHORS), now=now, sandbox=True)
    if not reg.keys and not reg.problems:
        reg = dataclasses.replace(reg, problems=(problem("/keys", "required"),))
    if reg.problems:
        raise ValidationFailedError(f"{len(reg.problems)} problem(s) found", errors=reg.problems)
    async with request.app[STORE]() as uow:
        if await uow.agencies.get(reg.agency.id) is not None:
            raise ConflictError("an agency with this id is already registered")
        await uow.agencies.register(reg, now)
        await uow.commit()
    return json_response(
        _agency_json(reg.agency, list(reg.keys), True),
        status=201,
        headers={"Location": f"/sandbox/v1/agencies/{reg.agency.id}"},
    )


def _key_entry(key: Any) -> Any:
    """A bare JWK (DESIGN.md) or a registry entry ({"jwk": ...} / {"certificate": ...})."""
    if isinstance(key, dict) and "kty" in key:
        return {"jwk": key, "kid": key.get("kid")}
    return key


@routes.post("/sandbox/partners/{agency_id}/messages")
@operation(
    summary="A sandbox agency's inbox: verifies, de-duplicates, acknowledges (signed)",
    tag="sandbox",
    request={"application/json": {"type": "object"}, "application/xml": {"type": "string"}},
    responses={
        200: ("Signed acknowledgement", {"type": "object"}),
        401: "Signature refused",
        404: "No such sandbox agency",
    },
    sandbox_only=True,
)
async def inbox(request: web.Request) -> web.Response:
    return await request.app[PARTNERS].receive(request)


@routes.get("/sandbox/partners/{agency_id}/messages")
@operation(
    summary="What a sandbox agency has received",
    tag="sandbox",
    responses={200: ("Received messages", {"type": "object"}), 404: "No such agency"},
    sandbox_only=True,
)
async def inbox_contents(request: web.Request) -> web.Response:
    partners = request.app[PARTNERS]
    agency_id = request.match_info["agency_id"]
    if agency_id not in partners.inboxes:
        raise web.HTTPNotFound()
    box = partners.inboxes[agency_id]
    items = [
        {
            "message_id": mid,
            "application_id": env.get("application_id"),
            "matter": env.get("matter"),
            "translation": env.get("translation"),
        }
        for mid, env in box.messages.items()
    ]
    fetched = [  # the materials it fetched from the gateway (signed GET), digest checked
        {"material_id": f.material_id, "status": f.status, "digest_ok": f.digest_ok}
        for f in box.fetched.values()
    ]
    return json_response(
        {"items": items, "duplicates": box.duplicates, "fetched": fetched, "next": None}
    )
