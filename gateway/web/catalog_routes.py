"""Catalog routes: the matters (Art. 10) with their particulars, each matter's JSON Schema,
the lookup by HK or Macao counterpart, and every schema the gateway accepts or emits."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiohttp import web

from gateway.domain import minimisation
from gateway.domain.documents import problem
from gateway.domain.errors import BadRequestError, NotFoundError, ValidationFailedError
from gateway.domain.matters import Matter, Particular
from gateway.domain.values import Jurisdiction, local_date
from gateway.mapping.published import PublishedSchema
from gateway.web.keys import DEPENDENCIES, MATTER_SCHEMAS, SCHEMAS, SETTINGS
from gateway.web.openapi import operation, query
from gateway.web.problems import json_response

routes = web.RouteTableDef()


def particular_json(particular: Particular) -> dict[str, Any]:
    """What a portal needs to build the form field: name, kind, required, labels, values."""
    out: dict[str, Any] = {
        "name": particular.name,
        "kind": particular.kind,
        "required": particular.required,
        "labels": particular.labels.as_dict() if particular.labels else {},
    }
    if particular.values:
        out["values"] = list(particular.values)
    return out


def matter_json(matter: Matter, counterpart_of: Jurisdiction | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "code": str(matter.code),
        "version": matter.version,
        "names": matter.names.as_dict(),
        "type": matter.matter_type,
        "legal_basis": matter.legal_basis,
        "time_limits": {
            "statutory": matter.statutory_limit.as_dict(),
            "promised": matter.promised_limit.as_dict(),
        },
        "fee": matter.fee,
        "channels": [c.value for c in matter.channels],
        "min_assurance": matter.min_assurance.value,
        "agent_allowed": matter.agent_allowed,
        "materials": [
            {"code": m.code, "names": m.names.as_dict(), "rule": m.rule.value}
            for m in matter.materials
        ],
        "particulars": [particular_json(p) for p in matter.particulars],
        "route": {
            "lead": matter.route.lead,
            "reviewers": list(matter.route.reviewers),
            # what leaves for each handler (data minimisation); null: the whole application
            "fields": {
                a: (None if f is None else list(f))
                for a in matter.route.handlers
                for f in [minimisation.fields_for(matter.route, a)]
            },
        },
        "effective_from": matter.effective_from.isoformat(),
    }
    counterparts = matter.counterparts
    if counterpart_of is not None:
        counterparts = tuple(c for c in counterparts if c.jurisdiction is counterpart_of)
    out["counterparts"] = [
        {
            "jurisdiction": c.jurisdiction.value,
            "relation": c.relation,
            "code": c.code,
            "service": c.service,
            "names": c.names.as_dict() if c.names else None,
        }
        for c in counterparts
    ]
    return out


_LABELS = {
    "type": "object",
    "properties": {s: {"type": "string"} for s in ("zh-Hans", "zh-Hant", "en", "pt")},
}
_MATTER = {
    "type": "object",
    "required": ["code", "version", "names", "particulars", "route", "counterparts"],
    "properties": {
        "code": {"type": "string"},
        "version": {"type": "integer"},
        "names": _LABELS,
        "particulars": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "kind", "required", "labels"],
                "properties": {
                    "name": {"type": "string"},
                    "kind": {"enum": ["text", "date", "money", "address", "integer"]},
                    "required": {"type": "boolean"},
                    "labels": _LABELS,
                    "values": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
        "route": {
            "type": "object",
            "properties": {
                "lead": {"type": "string"},
                "reviewers": {"type": "array", "items": {"type": "string"}},
                "agencies": {
                    "type": "object",
                    "description": "GET /v1/matters/{code} only: by handling agency, its "
                    "jurisdiction and names (where the application goes)",
                    "additionalProperties": {
                        "type": "object",
                        "properties": {
                            "jurisdiction": {"enum": ["HK", "MO", "GD"]},
                            "names": _LABELS,
                        },
                    },
                },
                "fields": {
                    "type": "object",
                    "description": "By handling agency, the JSON pointers of the fields it is "
                    "sent (data minimisation); null: the whole application",
                    "additionalProperties": {
                        "type": ["array", "null"],
                        "items": {"type": "string"},
                    },
                },
            },
        },
        "counterparts": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["jurisdiction", "relation", "code"],
                "properties": {
                    "jurisdiction": {"enum": ["HK", "MO"]},
                    "relation": {"type": "string"},
                    "code": {"type": ["string", "null"], "description": "e.g. IRD-BR, DSF-M1"},
                    "service": {"type": ["string", "null"]},
                    "names": {"anyOf": [_LABELS, {"type": "null"}]},
                },
            },
        },
    },
}


def _day(request: web.Request) -> date:
    text = request.query.get("at")
    if not text:
        return local_date(request.app[DEPENDENCIES].clock.now())
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValidationFailedError(
            "at must be YYYY-MM-DD", errors=[problem("/at", "invalid_date")]
        ) from None


def _jurisdiction(request: web.Request) -> Jurisdiction | None:
    text = request.query.get("jurisdiction")
    if not text:
        return None
    try:
        return Jurisdiction.parse(text)
    except ValueError:
        raise ValidationFailedError(
            "jurisdiction is HK, MO or GD", errors=[problem("/jurisdiction", "wrong_type")]
        ) from None


def _counterpart(request: web.Request) -> tuple[Jurisdiction, str] | None:
    """``?counterpart=HK:IRD-BR``: an HK or Macao service by its code."""
    text = request.query.get("counterpart")
    if text is None:
        return None
    prefix, _, code = text.partition(":")
    if prefix.upper() not in ("HK", "MO") or not code.strip():
        raise BadRequestError(
            "counterpart is HK:<code> or MO:<code>, e.g. HK:IRD-BR",
            errors=[problem("/counterpart", "invalid_value")],
        )
    return Jurisdiction.parse(prefix.upper()), code.strip()


@routes.get("/v1/matters")
@operation(
    summary="The matter catalog; ?q= searches names in any script",
    tag="matters",
    parameters=[
        query("q", "text in any script"),
        query("jurisdiction", "HK, MO or GD"),
        query("type", "matter type code (01 行政许可, 07 行政确认, 20 公共服务 ...)"),
        query("channel", "online, counter, kiosk or mobile"),
        query("at", "the date the catalog is read at (YYYY-MM-DD)"),
        query(
            "counterpart",
            "HK:<code> or MO:<code>: the Guangdong matters an HK or Macao service corresponds to",
            {"type": "string", "pattern": "^([Hh][Kk]|[Mm][Oo]):.+$", "examples": ["HK:IRD-BR"]},
        ),
    ],
    responses={
        200: (
            "Matters in force",
            {"type": "object", "properties": {"items": {"type": "array", "items": _MATTER}}},
        ),
        400: "counterpart is not HK:<code> or MO:<code>",
        422: "Bad query",
    },
)
async def list_matters(request: web.Request) -> web.Response:
    catalog = request.app[DEPENDENCIES].catalog
    day, jurisdiction, counterpart = _day(request), _jurisdiction(request), _counterpart(request)
    text = request.query.get("q", "").strip()
    matters = catalog.search(text, day) if text else catalog.all(day)
    if counterpart is not None:
        matters = [m for m in matters if m.has_counterpart(*counterpart)]
    if "type" in request.query:
        matters = [m for m in matters if m.matter_type == request.query["type"]]
    if "channel" in request.query:
        matters = [m for m in matters if request.query["channel"] in m.channels]
    if jurisdiction is not None:
        matters = [
            m
            for m in matters
            if jurisdiction is Jurisdiction.GD or m.counterpart(jurisdiction) is not None
        ]
    return json_response({"items": [matter_json(m, jurisdiction) for m in matters], "next": None})


@routes.get("/v1/matters/{code}")
@operation(
    summary="One matter; ?jurisdiction= gives its counterpart, ?at= the version in force",
    tag="matters",
    parameters=[query("jurisdiction", "HK, MO or GD"), query("at", "YYYY-MM-DD")],
    responses={
        200: ("The matter, its particulars and its counterparts", _MATTER),
        404: "No such matter in force",
        422: "Bad query (at or jurisdiction)",
    },
)
async def get_matter(request: web.Request) -> web.Response:
    deps = request.app[DEPENDENCIES]
    matter = deps.catalog.get(request.match_info["code"], _day(request))
    out = matter_json(matter, _jurisdiction(request))
    async with deps.uow() as uow:
        handlers = {a: await uow.agencies.get(a) for a in matter.route.handlers}
    # who each handler is and where (the consent a resident gives names them, Art. 15)
    out["route"]["agencies"] = {
        a: {"jurisdiction": agency.jurisdiction, "names": dict(agency.names)}
        for a, agency in handlers.items()
        if agency is not None
    }
    # what a material obtained by data sharing is, who issues it and the consent it needs
    for material, shown in zip(matter.materials, out["materials"], strict=True):
        types = deps.evidence_types
        kind = types.get(material.evidence) if material.evidence and types is not None else None
        if kind is not None:
            shown["evidence"] = {
                "type": kind.code,
                "names": kind.names.as_dict(),
                "category": kind.category,
                "jurisdiction": kind.jurisdiction,
            }
    return json_response(out)


@routes.get("/v1/matters/{code}/schema")
@operation(
    summary="The JSON Schema (2020-12) of the matter's canonical application, ?at= its version",
    tag="matters",
    parameters=[query("at", "YYYY-MM-DD")],
    responses={
        200: "The schema (application/schema+json), $id urn:gba:matter:<code>:<version>",
        304: "Not modified (If-None-Match)",
        404: "No such matter in force",
        422: "Bad query (at)",
    },
)
async def get_matter_schema(request: web.Request) -> web.StreamResponse:
    matter = request.app[DEPENDENCIES].catalog.get(request.match_info["code"], _day(request))
    return _schema_response(request, request.app[MATTER_SCHEMAS].published(matter))


_SCHEMA_ITEM = {
    "type": "object",
    "required": ["name", "kind", "media_type", "id", "version", "digest", "href"],
    "properties": {
        "name": {"type": "string"},
        "kind": {"type": "string", "enum": ["json-schema", "xsd"]},
        "media_type": {"type": "string"},
        "id": {"type": "string", "description": "$id or targetNamespace"},
        "version": {"type": ["integer", "null"]},
        "title": {"type": "string"},
        "digest": {"type": "string", "description": "RFC 9530 sha-256 of the schema's bytes"},
        "size": {"type": "integer"},
        "href": {"type": "string"},
    },
}


@routes.get("/v1/schemas")
@operation(
    summary="Every XSD and JSON Schema the gateway accepts or emits, versioned",
    tag="schemas",
    responses={
        200: (
            "The published schemas",
            {"type": "object", "properties": {"items": {"type": "array", "items": _SCHEMA_ITEM}}},
        )
    },
)
async def list_schemas(request: web.Request) -> web.Response:
    base = request.app[SETTINGS].base_url
    items = [s.listing(f"{base}/v1/schemas/{s.name}") for s in request.app[SCHEMAS].values()]
    return json_response({"items": items, "next": None})


@routes.get("/v1/schemas/{name}")
@operation(
    summary="One schema, byte for byte as the gateway validates with it",
    tag="schemas",
    responses={
        200: "The schema (application/schema+json or application/xml)",
        304: "Not modified (If-None-Match)",
        404: "No such schema",
    },
)
async def get_schema(request: web.Request) -> web.StreamResponse:
    schema = request.app[SCHEMAS].get(request.match_info["name"])
    if schema is None:
        raise NotFoundError("no such schema: GET /v1/schemas lists them")
    return _schema_response(request, schema)


def _schema_response(request: web.Request, schema: PublishedSchema) -> web.StreamResponse:
    """The schema's bytes, its digest as the entity tag; 304 when the caller has them."""
    headers = {
        "ETag": f'"{schema.digest}"',
        "Content-Digest": schema.digest,
        "Cache-Control": "public, max-age=3600",
    }
    if headers["ETag"] in {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}:
        return web.Response(status=304, headers=headers)
    return web.Response(body=schema.content, content_type=schema.media_type, headers=headers)
