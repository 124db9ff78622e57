"""Public routes: keys, audit checkpoints, health, metrics, the API's own docs (the catalog
and the schemas are in :mod:`gateway.web.catalog_routes`)."""

from __future__ import annotations

import asyncio

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from gateway import __version__
from gateway.domain.documents import problem
from gateway.domain.errors import NotFoundError, NotReadyError, ValidationFailedError
from gateway.settings import REPO_ROOT
from gateway.web.keys import (
    DEPENDENCIES,
    KEYRING,
    METRICS,
    READINESS,
    SETTINGS,
    STORE,
)
from gateway.web.openapi import build_document, operation, query
from gateway.web.problems import json_response

log = structlog.get_logger("gateway.web")

routes = web.RouteTableDef()
PROBLEM_DOCS = REPO_ROOT / "docs" / "problems"


@routes.get("/v1/audit/checkpoints")
@operation(
    summary="The newest signed audit checkpoints, for partners to keep outside the gateway",
    tag="audit",
    parameters=[
        query("limit", "how many, newest first (1-1000, default 100)", {"type": "integer"})
    ],
    responses={
        200: ("Checkpoints (JWS, typ gba-audit-checkpoint+jwt)", {"type": "object"}),
        422: "Bad limit",
    },
)
async def audit_checkpoints(request: web.Request) -> web.Response:
    try:
        limit = min(max(int(request.query.get("limit", "100")), 1), 1000)
    except ValueError:
        raise ValidationFailedError(
            "limit must be an integer", errors=[problem("/limit", "wrong_type")]
        ) from None
    async with request.app[STORE]() as uow:
        items = await uow.audit.recent_checkpoints(limit)
    return json_response({"items": items, "next": None})


@routes.get("/.well-known/jwks.json")
@operation(
    summary="The gateway's public keys (receipts, vouchers, message signatures)",
    tag="keys",
    responses={200: ("JWK set", {"type": "object"})},
)
async def jwks(request: web.Request) -> web.Response:
    return json_response(
        request.app[KEYRING].jwks(), headers={"Cache-Control": "public, max-age=300"}
    )


@routes.get("/openapi.json")
@operation(summary="This document", tag="meta", responses={200: ("OpenAPI 3.1", {})})
async def openapi(request: web.Request) -> web.Response:
    return json_response(build_document(request.app, request.app[SETTINGS].base_url))


@routes.get("/healthz")
@operation(
    summary="Liveness: the process answers",
    tag="meta",
    responses={200: ("Alive", {"type": "object"})},
)
async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok", "version": __version__})


@routes.get("/readyz")
@operation(
    summary="Readiness: database reachable, keys and mappings loaded",
    tag="meta",
    responses={200: ("Ready", {"type": "object"}), 503: "Not ready"},
)
async def readyz(request: web.Request) -> web.Response:
    checks = dict(request.app[READINESS])
    try:
        await asyncio.wait_for(request.app[DEPENDENCIES].uow.ping(), timeout=2)
        checks["database"] = True
    except Exception:  # any failure to reach the database means not ready
        checks["database"] = False
    if not all(checks.values()):
        failing = ", ".join(sorted(name for name, ok in checks.items() if not ok))
        raise NotReadyError(f"not ready: {failing}")
    return json_response({"status": "ready", "checks": checks})


@routes.get("/metrics")
@operation(summary="Prometheus metrics", tag="meta", responses={200: "Prometheus text"})
async def metrics(request: web.Request) -> web.Response:
    """This app's metrics, or every worker's (gateway/web/metrics.py); the outbox's depth is
    read from the database now (kept from the last scrape if it does not answer in time)."""
    collected = request.app[METRICS]
    try:
        async with asyncio.timeout(2), request.app[STORE]() as tx:
            collected.outbox_pending.set(await tx.outbox.waiting())
    except Exception:  # the database may be away: the rest of the metrics still answer
        log.warning("metrics.outbox_unread", exc_info=True)
    return web.Response(body=collected.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


@routes.get("/problems/{slug}")
@operation(
    summary="What a problem type means and what to do about it",
    tag="meta",
    responses={200: "Markdown", 404: "No such problem type"},
)
async def problem_doc(request: web.Request) -> web.Response:
    slug = request.match_info["slug"]
    path = PROBLEM_DOCS / f"{slug}.md"
    if not slug.replace("-", "").isalnum() or not path.is_file():
        raise NotFoundError("no such problem type")
    return web.Response(text=path.read_text("utf-8"), content_type="text/markdown")


@routes.get("/")
@operation(summary="Where things are", tag="meta", responses={200: ("Links", {})})
async def index(request: web.Request) -> web.Response:
    base = request.app[SETTINGS].base_url
    return json_response(
        {
            "name": "GBA cross-border gateway",
            "version": __version__,
            "mode": request.app[SETTINGS].mode,
            "links": {
                name: base + path
                for name, path in (
                    ("openapi", "/openapi.json"),
                    ("jwks", "/.well-known/jwks.json"),
                    ("matters", "/v1/matters"),
                    ("health", "/healthz"),
                    ("ready", "/readyz"),
                    ("metrics", "/metrics"),
                )
            },
        }
    )
