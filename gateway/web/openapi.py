"""OpenAPI 3.1, generated from the routes themselves.

Every handler declares its operation with :func:`operation`; :func:`build_document` walks the
router, so a route without a declaration is a bug that a test catches, and the document can
never list a route that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from gateway import __version__

F = Callable[..., Any]
SIGNED_HEADERS = ["Signature-Input", "Signature", "Content-Digest"]

PROBLEM = {"$ref": "#/components/schemas/Problem"}
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
    responses: dict[int, str | tuple[str, dict[str, Any]]],
    request: dict[str, dict[str, Any]] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    signed: bool = False,
    sandbox_only: bool = False,
) -> Callable[[F], F]:
    """Attach the OpenAPI operation of a handler (its responses: status -> description)."""

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


def _response(status: int, spec: str | tuple[str, dict[str, Any]], signed: bool) -> dict[str, Any]:
    description, schema = (spec, None) if isinstance(spec, str) else spec
    out: dict[str, Any] = {"description": description}
    if status >= 400:
        out["content"] = {"application/problem+json": {"schema": PROBLEM}}
    elif schema is not None:
        out["content"] = {"application/json": {"schema": schema}}
    if signed:
        out["headers"] = {
            name: {"schema": {"type": "string"}, "description": "RFC 9421 / RFC 9530"}
            for name in SIGNED_HEADERS
        }
    return out


def _operation(method: str, path: str, meta: dict[str, Any]) -> dict[str, Any]:
    params = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _path_params(path)
    ] + list(meta["parameters"])
    signed = meta["signed"]
    if signed:
        params += [
            {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
            for name in ("Signature-Input", "Signature")
        ]
        if method == "post":
            params.append(
                {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "minLength": 8, "maxLength": 200},
                }
            )
    responses = {
        str(status): _response(status, spec, signed) for status, spec in meta["responses"].items()
    }
    op: dict[str, Any] = {
        "operationId": f"{method}_{path}".replace("/", "_")
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


def _path_params(path: str) -> list[str]:
    return [
        part[1:-1].split(":")[0]
        for part in path.split("/")
        if part.startswith("{") and part.endswith("}")
    ]


def documented_routes(app: web.Application) -> list[tuple[str, str, Any]]:
    """(method, path, handler) of every route a caller can reach, HEAD twins excluded."""
    out = []
    for route in app.router.routes():
        if route.method in ("HEAD", "*") or route.resource is None:
            continue
        out.append((route.method.lower(), route.resource.canonical, route.handler))
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
