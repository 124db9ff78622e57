"""aiohttp requests and responses as framework-free :class:`HttpMessage` values.

``@target-uri`` is rebuilt from the configured public base URL and the raw request target,
never from ``Host``, ``Forwarded`` or ``X-Forwarded-*`` (DESIGN.md: behind a TLS-terminating
proxy those are unauthenticated).
"""

from __future__ import annotations

from aiohttp import ClientResponse, web

from gateway.trust.httpsig import HttpMessage


def request_message(request: web.Request, base_url: str) -> HttpMessage:
    return HttpMessage.request(
        request.method, base_url + request.raw_path, list(request.headers.items())
    )


def client_response_message(response: ClientResponse) -> HttpMessage:
    return HttpMessage.response(response.status, list(response.headers.items()))
