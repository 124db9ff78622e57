"""Request id and access logs, metrics, and the signature on every answer to a partner.

Order, outermost first: :func:`request_context` (request id, log context, metrics, access
log) -> :func:`sign_partner_responses` -> the problem middleware -> the route. So every
answer to a partner request whose signature verified, a problem included, leaves signed,
bound to that request's signature; an unauthenticated request gets an unsigned answer (a
signature over it would bind nothing and hand out signing work for free).
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.services.ports import Clock
from gateway.trust.keystore import KeyRing
from gateway.trust.profile import sign_response
from gateway.web.keys import AGENCY_ID, METRICS, REQUEST_ID, VERIFIED_KEYID
from gateway.web.messages import request_message

log = structlog.get_logger("gateway.access")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request id (the caller's if well-formed), bound into every log line of the request."""
    offered = request.headers.get("X-Request-Id", "")
    request_id = offered if _REQUEST_ID.match(offered) else secrets.token_hex(12)
    request[REQUEST_ID] = request_id
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.perf_counter()
    try:
        response = await handler(request)
    except Exception:  # the problem middleware answers everything; this is the last resort
        log.exception("request.crashed")
        response = web.json_response(
            {
                "type": "about:blank",
                "title": "Internal error",
                "status": 500,
                "trace_id": request_id,
            },
            status=500,
            content_type="application/problem+json",
        )
    elapsed = time.perf_counter() - started
    response.headers["X-Request-Id"] = request_id
    route = request.match_info.route.resource
    route_name = route.canonical if route is not None else "unmatched"
    metrics = request.app[METRICS]
    metrics.requests.labels(request.method, route_name, str(response.status)).inc()
    metrics.latency.labels(route_name).observe(elapsed)
    log.info(
        "http.request",
        method=request.method,
        route=route_name,
        status=response.status,
        ms=round(elapsed * 1000, 2),
        agency=request.get(AGENCY_ID),
    )
    return response


def sign_partner_responses(keyring: KeyRing, base_url: str, clock: Clock) -> Any:
    """Sign the answer to every partner request on /v1 whose signature verified."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if not request.path.startswith("/v1/") or request.get(VERIFIED_KEYID) is None:
            return response
        if not isinstance(response, web.Response) or response.body is None:
            return response
        body = response.body if isinstance(response.body, bytes) else b""
        headers = sign_response(
            status=response.status,
            body=body,
            content_type=response.headers.get("Content-Type", "application/octet-stream"),
            request=request_message(request, base_url),
            key=keyring.current("http"),
            now=clock.now(),
        )
        response.headers.update(headers)
        return response

    return middleware
