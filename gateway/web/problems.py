"""RFC 9457 problem details: the one place errors become responses.

:func:`problem_middleware` turns every :class:`GatewayError`, every aiohttp HTTP error
(404, 405, 413 ...) and every unexpected exception into ``application/problem+json``. An
unexpected exception is a 500 with a trace id, logged once with its stack; the body never
carries a stack trace or personal data.
"""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.domain import errors as e
from gateway.domain.documents import problem
from gateway.mapping.canonical import loads_strict
from gateway.web.keys import METRICS, REQUEST_ID

PROBLEM_JSON = "application/problem+json"
log = structlog.get_logger("gateway.web")

_HTTP_ERRORS: dict[int, type[e.GatewayError]] = {
    400: e.BadRequestError,
    401: e.AuthenticationError,
    403: e.ForbiddenError,
    404: e.NotFoundError,
    405: e.MethodNotAllowedError,
    408: e.RequestTimeoutError,
    409: e.ConflictError,
    413: e.PayloadTooLargeError,
    415: e.UnsupportedMediaTypeError,
    422: e.ValidationFailedError,
    429: e.RateLimitedError,
    503: e.NotReadyError,
}

_DETAILS: dict[int, str] = {
    404: "no resource at this path",
    405: "this method is not allowed on this path",
    413: "the body is larger than the configured limit",
}


def translate_http_error(exc: web.HTTPException) -> e.GatewayError:
    """aiohttp's own errors, mapped to the GatewayError of the same status."""
    cls = _HTTP_ERRORS.get(exc.status, e.BadRequestError if exc.status < 500 else e.GatewayError)
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return cls(_DETAILS.get(exc.status, cls.title), headers=headers)


def problem_document(request: web.Request, error: e.GatewayError, base_url: str) -> dict[str, Any]:
    """The RFC 9457 body of ``error`` as answered to ``request``."""
    body: dict[str, Any] = {
        "type": f"{base_url}/problems/{error.slug}",
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "instance": request.path,
        "trace_id": request.get(REQUEST_ID, ""),
    }
    if error.errors:
        body["errors"] = [p.as_dict() for p in error.errors]
    return body


def problem_response(request: web.Request, error: e.GatewayError, base_url: str) -> web.Response:
    body = problem_document(request, error, base_url)
    request.app[METRICS].refusals.labels(error.slug).inc()
    return web.Response(
        status=error.status,
        body=json.dumps(body, ensure_ascii=False).encode(),
        content_type=PROBLEM_JSON,
        headers=error.headers,
    )


def problem_middleware(base_url: str) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except e.GatewayError as error:
            if error.status >= 500 and not isinstance(error, e.NotReadyError):
                log.exception("request.failed", problem=error.slug)
            return problem_response(request, error, base_url)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return problem_response(request, translate_http_error(exc), base_url)
        except Exception:
            log.exception("request.crashed")
            return problem_response(
                request, e.GatewayError("an unexpected error occurred"), base_url
            )

    return middleware


def json_response(
    data: Any, *, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """JSON in UTF-8 as written (Chinese and Portuguese stay readable, not \\u-escaped)."""
    return web.json_response(
        data, status=status, headers=headers, dumps=partial(json.dumps, ensure_ascii=False)
    )


def json_object(body: bytes, media_type: str, what: str) -> dict[str, Any]:
    """A request body that must be one JSON object (``what`` names it in the problem)."""
    if media_type != "application/json":
        raise e.UnsupportedMediaTypeError(f"{what} is application/json")
    data = loads_strict(body)
    if not isinstance(data, dict):
        raise e.ValidationFailedError(
            f"{what} is a JSON object", errors=[problem("", "wrong_type")]
        )
    return data
