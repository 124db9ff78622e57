"""Sandbox-only routes for testers: fault switches of the sandbox agencies, matter routing.

``/sandbox/v1/agencies/{id}/faults``: GET reads an agency's switches, PUT replaces them all
(absent fields are healthy), PATCH changes the fields given (RFC 7396), DELETE heals it.
``/sandbox/v1/routes/{matter}``: PUT sends a matter's new cases to the agencies named (for
example the tester's own, registered with ``POST /sandbox/v1/agencies``), DELETE restores the
catalog's route. Cases already received keep the handlers they were received with.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from gateway.domain.documents import FieldProblem, problem
from gateway.domain.errors import NotFoundError, UnknownMatterError, ValidationFailedError
from gateway.domain.matters import Matter, Route
from gateway.domain.values import local_date
from gateway.sandbox.faults import Faults
from gateway.sandbox.routes import FAULTS, ROUTING
from gateway.services import lifecycle
from gateway.web.auth import read_body
from gateway.web.keys import DEPENDENCIES, STORE
from gateway.web.openapi import operation
from gateway.web.problems import json_object, json_response

routes = web.RouteTableDef()

_FAULTS_SCHEMA = {
    "type": "object",
    "properties": {
        "down": {"type": "boolean", "description": "503, unsigned, nothing kept"},
        "latency_ms": {"type": "integer", "minimum": 0, "maximum": 60000},
        "error_status": {"type": ["integer", "null"], "minimum": 500, "maximum": 599},
        "timeout": {"type": "boolean", "description": "never answers in time"},
        "signature": {"type": "string", "enum": ["valid", "wrong", "missing"]},
        "clock_skew_s": {"type": "integer", "minimum": -86400, "maximum": 86400},
        "duplicates": {"type": "boolean", "description": "posts its calls twice"},
        "out_of_order": {"type": "boolean", "description": "decision before acceptance"},
        "lax": {"type": "boolean", "description": "the broken agency: verifies nothing"},
        "e_certificate": {
            "type": "string",
            "enum": ["none", "jws", "document", "forged"],
            "description": "what its approvals carry: no e-certificate, a signed JWS, a signed "
            "document with a detached signature, or a certificate signed by a wrong key",
        },
        "evidence": {
            "type": "string",
            "enum": ["answer", "refuse", "silent"],
            "description": "an evidence issuer: answers, refuses every request, or never answers",
        },
    },
    "additionalProperties": False,
}
_FAULT_RESPONSES: dict[int, str | tuple[str, dict[str, Any]]] = {
    200: ("The agency's fault switches", {"type": "object"}),
    404: "No such sandbox agency",
}


def _faults_json(agency_id: str, faults: Faults) -> dict[str, Any]:
    return {"agency_id": agency_id, **faults.to_json(), "healthy": faults.healthy}


@routes.get("/sandbox/v1/faults")
@operation(
    summary="The fault switches of every sandbox agency",
    tag="sandbox",
    responses={200: ("Fault switches", {"type": "object"})},
    sandbox_only=True,
)
async def all_faults(request: web.Request) -> web.Response:
    board = request.app[FAULTS].all()
    items = [_faults_json(agency_id, faults) for agency_id, faults in sorted(board.items())]
    return json_response({"items": items, "next": None})


@routes.get("/sandbox/v1/agencies/{agency_id}/faults")
@operation(
    summary="A sandbox agency's fault switches",
    tag="sandbox",
    responses=_FAULT_RESPONSES,
    sandbox_only=True,
)
async def get_faults(request: web.Request) -> web.Response:
    agency_id = request.match_info["agency_id"]
    return json_response(_faults_json(agency_id, request.app[FAULTS].get(agency_id)))


async def _change(request: web.Request, *, replace: bool) -> web.Response:
    agency_id = request.match_info["agency_id"]
    board = request.app[FAULTS]
    board.get(agency_id)  # 404 before reading the body
    changes = json_object(await read_body(request), _media_type(request), "fault switches")
    faults = Faults.from_json(changes) if replace else board.update(agency_id, changes)
    board.set(agency_id, faults)
    return json_response(_faults_json(agency_id, faults))


def _media_type(request: web.Request) -> str:
    """A merge patch is JSON too (RFC 7396)."""
    media_type = request.content_type
    return "application/json" if media_type == "application/merge-patch+json" else media_type


_CHANGE = {
    "tag": "sandbox",
    "request": {"application/json": _FAULTS_SCHEMA},
    "responses": {**_FAULT_RESPONSES, 400: "Malformed JSON", 415: "Not JSON", 422: "Bad fields"},
    "sandbox_only": True,
}


@routes.put("/sandbox/v1/agencies/{agency_id}/faults")
@operation(summary="Replace a sandbox agency's fault switches (absent ones: healthy)", **_CHANGE)
async def put_faults(request: web.Request) -> web.Response:
    return await _change(request, replace=True)


@routes.patch("/sandbox/v1/agencies/{agency_id}/faults")
@operation(summary="Change some of a sandbox agency's fault switches", **_CHANGE)
async def patch_faults(request: web.Request) -> web.Response:
    return await _change(request, replace=False)


@routes.delete("/sandbox/v1/agencies/{agency_id}/faults")
@operation(
    summary="Heal a sandbox agency: every fault switch off",
    tag="sandbox",
    responses=_FAULT_RESPONSES,
    sandbox_only=True,
)
async def delete_faults(request: web.Request) -> web.Response:
    agency_id = request.match_info["agency_id"]
    request.app[FAULTS].reset(agency_id)
    return json_response(_faults_json(agency_id, request.app[FAULTS].get(agency_id)))


def _route_json(request: web.Request, matter: Matter) -> dict[str, Any]:
    code = str(matter.code)
    return {
        "matter": code,
        "lead": matter.route.lead,
        "reviewers": list(matter.route.reviewers),
        "overridden": request.app[ROUTING].overridden(code),
    }


def _matter(request: web.Request) -> Matter:
    code = request.match_info["code"]
    today = local_date(request.app[DEPENDENCIES].clock.now())
    try:
        return request.app[ROUTING].get(code, today)
    except UnknownMatterError:
        raise NotFoundError("no such matter in force") from None


@routes.get("/sandbox/v1/routes")
@operation(
    summary="Which agencies handle each matter's new cases",
    tag="sandbox",
    responses={200: ("Routes", {"type": "object"})},
    sandbox_only=True,
)
async def all_routes(request: web.Request) -> web.Response:
    today = local_date(request.app[DEPENDENCIES].clock.now())
    items = [_route_json(request, m) for m in request.app[ROUTING].all(today)]
    return json_response({"items": items, "next": None})


_ROUTE_SCHEMA = {
    "type": "object",
    "required": ["lead"],
    "properties": {
        "lead": {"type": "string", "description": "the agency that accepts and leads"},
        "reviewers": {"type": "array", "items": {"type": "string"}},
        "fields": {
            "type": "object",
            "description": "by agency of the route, the JSON pointers of the fields it is sent "
            "(data minimisation, docs/minimisation.md); an agency not named keeps what the "
            "matter declares for it, else the lead everything and a reviewer the minimum",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "additionalProperties": False,
}
_ROUTE_FIELDS = ("lead", "reviewers", "fields")


@routes.put("/sandbox/v1/routes/{code}")
@operation(
    summary="Send a matter's new cases to the agencies named (e.g. your own)",
    tag="sandbox",
    request={"application/json": _ROUTE_SCHEMA},
    responses={
        200: ("The matter's route", {"type": "object"}),
        404: "No such matter",
        422: "Unknown agencies or agencies not allowed to handle the matter",
    },
    sandbox_only=True,
)
async def put_route(request: web.Request) -> web.Response:
    matter = _matter(request)
    body = json_object(await read_body(request), request.content_type, "a route")
    route = await _valid_route(request, str(matter.code), body)
    request.app[ROUTING].set_route(str(matter.code), route)
    return json_response(_route_json(request, _matter(request)))


async def _valid_route(request: web.Request, code: str, body: dict[str, Any]) -> Route:
    """The route asked for, or every problem with it: agencies must be registered and
    allowed to handle the matter, each named once."""
    problems: list[FieldProblem] = [
        problem(f"/{name}", "unexpected_field") for name in body if name not in _ROUTE_FIELDS
    ]
    lead, reviewers = body.get("lead"), body.get("reviewers", [])
    if not isinstance(lead, str):
        problems.append(problem("/lead", "required" if lead is None else "wrong_type"))
    if not isinstance(reviewers, list) or not all(isinstance(r, str) for r in reviewers):
        problems.append(problem("/reviewers", "wrong_type"))
        reviewers = []
    named = [("/lead", lead)] if isinstance(lead, str) else []
    named += [(f"/reviewers/{i}", r) for i, r in enumerate(reviewers)]
    async with request.app[STORE]() as uow:
        for pointer, agency_id in named:
            agency = await uow.agencies.get(agency_id)
            if agency is None or not agency.may_handle(code):
                problems.append(problem(pointer, "invalid_value"))
    if len({agency_id for _, agency_id in named}) != len(named):
        problems.append(problem("/reviewers", "invalid_value"))
    fields = body.get("fields", {})
    if not isinstance(fields, dict):
        problems.append(problem("/fields", "wrong_type"))
        fields = {}
    for agency_id, pointers in fields.items():
        if agency_id not in {a for _, a in named}:
            problems.append(problem(f"/fields/{agency_id}", "invalid_value"))
        elif not isinstance(pointers, list) or not all(
            isinstance(p, str) and p.startswith("/") for p in pointers
        ):
            problems.append(problem(f"/fields/{agency_id}", "wrong_type"))
    if problems:
        raise ValidationFailedError(f"{len(problems)} problem(s) found", errors=problems)
    assert isinstance(lead, str)
    declared = tuple((a, tuple(p)) for a, p in fields.items())
    return Route(lead=lead, reviewers=tuple(reviewers), fields=declared)


@routes.delete("/sandbox/v1/routes/{code}")
@operation(
    summary="Route a matter's new cases by the catalog again",
    tag="sandbox",
    responses={200: ("The matter's route", {"type": "object"}), 404: "No such matter"},
    sandbox_only=True,
)
async def delete_route(request: web.Request) -> web.Response:
    matter = _matter(request)
    request.app[ROUTING].reset_route(str(matter.code))
    return json_response(_route_json(request, _matter(request)))


_SWEEP_SCHEMA = {
    "type": "object",
    "required": ["today"],
    "properties": {"today": {"type": "string", "format": "date"}},
    "additionalProperties": False,
}


@routes.post("/sandbox/v1/applications/{application_id}/sweep")
@operation(
    summary="Run the deadline sweep (deemed acceptance, Art. 19(3); overdue) for one case as "
    "if it were a later day, without waiting for it",
    tag="sandbox",
    request={"application/json": _SWEEP_SCHEMA},
    responses={
        200: ("What the sweep did", {"type": "object"}),
        422: "today is not a date after the gateway's today",
    },
    sandbox_only=True,
)
async def sweep_as_of(request: web.Request) -> web.Response:
    body = json_object(await read_body(request), request.content_type, "a sweep")
    deps = request.app[DEPENDENCIES]
    try:
        day = date.fromisoformat(str(body.get("today")))
    except ValueError:
        day = None
    if day is None or day <= local_date(deps.clock.now()) or set(body) - {"today"}:
        raise ValidationFailedError(
            "today is a later date", errors=[problem("/today", "invalid_value")]
        )
    done = await lifecycle.sweep_case(deps, request.match_info["application_id"], today=day)
    return json_response(done)
