"""Sandbox-only routes: personas, sandbox agencies, mock partner inboxes.

They exist only in an application built in sandbox mode; in production these paths are 404.
"""

from __future__ import annotations

from aiohttp import web

from gateway.sandbox.partners import SandboxPartners
from gateway.sandbox.personas import PERSONAS
from gateway.web.keys import REGISTRY
from gateway.web.openapi import operation
from gateway.web.problems import json_response

PARTNERS = web.AppKey("sandbox_partners", SandboxPartners)
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


@routes.get("/sandbox/v1/agencies")
@operation(
    summary="The sandbox partner agencies and their key ids",
    tag="sandbox",
    responses={200: ("Agencies", {"type": "object"})},
    sandbox_only=True,
)
async def agencies(request: web.Request) -> web.Response:
    registry = request.app[REGISTRY]
    items = [
        {
            "agency_id": a.id,
            "jurisdiction": a.jurisdiction,
            "names": dict(a.names),
            "endpoint": a.endpoint,
            "matters": list(a.matters),
            "keys": [{"kid": k.kid, "alg": k.alg} for k in registry.keys_of(a.id)],
        }
        for a in registry.agencies()
    ]
    return json_response({"items": items, "next": None})


@routes.post("/sandbox/partners/{agency_id}/messages")
@operation(
    summary="A sandbox agency's inbox: verifies, de-duplicates, acknowledges (signed)",
    tag="sandbox",
    request={"application/json": {"type": "object"}},
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
    return json_response({"items": items, "duplicates": box.duplicates, "next": None})
