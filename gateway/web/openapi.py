"""OpenAPI 3.1, generated from the routes themselves.

Every handler declares its operation with :func:`operation`; :func:`build_document` walks the
router, so a route without a declaration is a bug that a test catches, and the document can
never list a route that does not exist.

What the shared edge answers for every route of a kind is added here (unless the route
declares that status itself), so that no declaration can forget it:

* 401 on every signed operation: ``web/auth.authenticate`` refuses a missing, invalid,
  unknown or replayed signature before the handler runs;
* 400 where an ``Idempotency-Key`` is required (every signed POST, and the resident's POSTs
  that declare :data:`IDEMPOTENCY_KEY`) and where a signed body's Content-Digest is checked;
* 400 (malformed JSON) and 415 (another media type) on every operation taking a JSON body:
  each reads it with ``web/problems.json_object`` or the canonical codec;
* 413 on every operation with a request body (the configured body limit), and 408 when that
  body does not arrive within ``body_timeout`` (``web/serving.body_deadline``);
* 429 on every signed operation (per signing key) and on every route limited per client
  address (``web/rate_limits.address_limited``);
* 421 on every operation: ``web/hosts.host_check`` refuses a ``Host`` the gateway is not
  known by (always in sandbox mode; in production when ``public_url`` or ``allowed_hosts``
  is set).

Errors are ``application/problem+json`` unless a response names its own media type (the OAuth
endpoints answer RFC 6749 JSON). ``tests/fuzz/test_fuzz_openapi.py`` checks every answer of
the sandbox against this document.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway import __version__
from gateway.web.rate_limits import address_limited

F = Callable[..., Any]
SIGNED_HEADERS = ["Signature-Input", "Signature", "Content-Digest"]

PROBLEM = {"$ref": "#/components/schemas/Problem"}
PROBLEM_JSON = "application/problem+json"
OAUTH_ERROR: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}
"""RFC 6749 §5.2 error body, answered as ``application/json`` by the OAuth endpoints."""
IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": True,
    "description": "8 to 200 characters; a retry with the same key replays the first answer",
    "schema": {"type": "string", "minLength": 8, "maxLength": 200},
}
"""The header every state-changing POST needs (signed ones have it added automatically)."""
_JSON = "application/json"

Response = str | tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], str]
_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status"],
    "properties": {
        "type": {"type": "string", "format": "uri"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "trace_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "pointer": {"type": "string"},
                    "xpath": {"type": "string"},
                    "code": {"type": "string"},
                    "message": {
                        "type": "object",
                        "properties": {
                            "zh-Hant": {"type": "string"},
                            "zh-Hans": {"type": "string"},
                            "en": {"type": "string"},
                        },
                    },
                },
            },
        },
    },
}


def operation(
    *,
    summary: str,
    tag: str,
    responses: dict[int, Response],
    request: dict[str, dict[str, Any]] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    signed: bool = False,
    sandbox_only: bool = False,
) -> Callable[[F], F]:
    """Attach the OpenAPI operation of a handler.

    ``responses`` maps a status to its description, to ``(description, schema)``, or to
    ``(description, schema, media_type)``: a success's schema is ``application/json``, an
    error's is the Problem document unless a media type is named. ``parameters`` are query
    or header parameters (:func:`query`), or path parameters (:func:`path_param`) that describe a
    path variable more precisely than the plain string it is by default.
    """

    def decorate(handler: F) -> F:
        handler.__openapi__ = {  # type: ignore[attr-defined]
            "summary": summary,
            "tag": tag,
            "responses": responses,
            "request": request,
            "parameters": parameters or [],
            "signed": signed,
            "sandbox_only": sandbox_only,
        }
        return handler

    return decorate


def query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema or {"type": "string"},
    }


def path_param(
    name: str, description: str, schema: dict[str, Any] | Callable[[], dict[str, Any]]
) -> dict[str, Any]:
    """A path variable's schema, when it is narrower than any string (an enum, a pattern);
    a function gives it when the document is built (what is registered by then)."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": schema,
    }


def _parts(spec: Response) -> tuple[str, dict[str, Any] | None, str | None]:
    """(description, schema, media type) of a declared response."""
    if isinstance(spec, str):
        return spec, None, None
    if len(spec) == 2:
        return spec[0], spec[1], None
    return spec[0], spec[1], spec[2]


def _response(status: int, spec: Response, signed: bool) -> dict[str, Any]:
    description, schema, media_type = _parts(spec)
    out: dict[str, Any] = {"description": description}
    if media_type is not None and schema is not None:
        out["content"] = {media_type: {"schema": schema}}
    elif status >= 400:
        out["content"] = {PROBLEM_JSON: {"schema": PROBLEM}}
    elif schema is not None:
        out["content"] = {"application/json": {"schema": schema}}
    if signed:
        out["headers"] = {
            name: {"schema": {"type": "string"}, "description": "RFC 9421 / RFC 9530"}
            for name in SIGNED_HEADERS
        }
    return out


def _operation(method: str, route: str, meta: dict[str, Any]) -> dict[str, Any]:
    declared = {p["name"] for p in meta["parameters"] if p["in"] == "path"}
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _path_params(route)
        if name not in declared
    ] + [
        {**p, "schema": p["schema"]()} if callable(p.get("schema")) else p
        for p in meta["parameters"]
    ]
    signed = meta["signed"]
    if signed:
        params += [
            {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
            for name in ("Signature-Input", "Signature")
        ]
        if method == "post":
            params.append(IDEMPOTENCY_KEY)
    specs: dict[int, Response] = dict(meta["responses"])
    for status, description in _edge_responses(meta, params, route).items():
        specs.setdefault(status, description)
    responses = {str(status): _response(status, spec, signed) for status, spec in specs.items()}
    op: dict[str, Any] = {
        "operationId": f"{method}_{route}".replace("/", "_")
        .replace("{", "")
        .replace("}", "")
        .replace(".", "_")
        .replace("-", "_"),
        "summary": meta["summary"],
        "tags": [meta["tag"]],
        "parameters": params,
        "responses": responses,
    }
    if meta["request"]:
        op["requestBody"] = {
            "required": True,
            "content": {media: {"schema": schema} for media, schema in meta["request"].items()},
        }
    if signed:
        op["security"] = [{"httpMessageSignature": []}]
    if meta["sandbox_only"]:
        op["description"] = "Sandbox mode only; answers 404 elsewhere."
    return op


def _edge_responses(
    meta: dict[str, Any], params: list[dict[str, Any]], route: str
) -> dict[int, str]:
    """What the shared edge answers for an operation of this kind (see the module docstring)."""
    reasons: dict[int, list[str]] = {}
    body = meta["request"] or {}
    if meta["signed"]:
        reasons.setdefault(401, []).append(
            "Signature refused: missing, invalid, by an unknown key, or replayed"
        )
    if any(p["in"] == "header" and p["name"] == "Idempotency-Key" for p in params):
        reasons.setdefault(400, []).append("Idempotency-Key missing or not 8 to 200 characters")
    if meta["signed"] and body:
        reasons.setdefault(400, []).append("Content-Digest does not match the body")
    if _JSON in body:
        reasons.setdefault(400, []).append("Malformed JSON")
        reasons.setdefault(415, []).append(f"Content-Type is not {' or '.join(body)}")
    if body:
        reasons.setdefault(413, []).append("The body is larger than the configured limit")
        reasons.setdefault(408, []).append("The body did not arrive within the body timeout")
    if meta["signed"]:
        reasons.setdefault(429, []).append("Too many requests with this signing key")
    if address_limited(route):
        reasons.setdefault(429, []).append("Too many requests from this client address")
    reasons.setdefault(421, []).append("The Host is not a name this gateway answers")
    return {status: "; ".join(texts) for status, texts in sorted(reasons.items())}


def _path_params(path: str) -> list[str]:
    return [
        part[1:-1].split(":")[0]
        for part in path.split("/")
        if part.startswith("{") and part.endswith("}")
    ]


def documented_routes(app: web.Application) -> list[tuple[str, str, Any]]:
    """(method, path, handler) of every route a caller can reach, HEAD twins excluded.
    A mounted sub-application (the sandbox's reference portal, a client of this API over
    HTTP) is not part of the API and is left out."""
    out = []
    for resource in app.router.resources():
        if isinstance(resource, web.PrefixedSubAppResource):
            continue
        for route in resource:
            if route.method in ("HEAD", "*"):
                continue
            out.append((route.method.lower(), resource.canonical, route.handler))
    return out


def build_document(app: web.Application, base_url: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, handler in documented_routes(app):
        meta = getattr(handler, "__openapi__", None)
        if meta is None:
            continue  # tests/unit fail on any such route
        paths.setdefault(path, {})[method] = _operation(method, path, meta)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "GBA cross-border gateway: partner API",
            "version": __version__,
            "description": "Partner API v1. Requests and responses on /v1 are signed with "
            "RFC 9421 HTTP Message Signatures; bodies carry RFC 9530 Content-Digest; errors "
            "are RFC 9457 problem details.",
        },
        "servers": [{"url": base_url}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": {"Problem": _PROBLEM_SCHEMA},
            "securitySchemes": {
                "httpMessageSignature": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Signature",
                    "description": "RFC 9421 signature (label sig1, tag gba-gateway) by a "
                    "registered agency key; see DESIGN.md Partner API v1.",
                }
            },
        },
    }
