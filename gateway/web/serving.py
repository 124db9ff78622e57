"""What the HTTP server lets a client do: header sizes, read timeouts, open connections.

aiohttp's defaults let one client hold a connection for an hour and send about 1 MB of
headers. Every limit here is a setting (docs/deploy.md, "Limits on what clients may send"),
kept per process:

* **Header sizes**: ``http_max_line_size`` (request line and each header line),
  ``http_max_field_size`` and ``http_max_headers``, given to aiohttp's parser; beyond them
  aiohttp answers 400 or 431 itself.
* **Header timeout**: a request header must arrive in full within ``header_timeout`` seconds
  of the connection opening, or of its first byte on a connection that was idle. aiohttp
  has no such timeout: :class:`GuardedRequestHandler` adds it and closes the connection
  without an answer (as nginx's ``client_header_timeout`` does).
* **Body timeout**: :func:`body_deadline` reads every body, bounded by ``max_body_bytes``,
  within ``body_timeout`` seconds of the header, before any route runs; else 408
  ``request-timeout`` and the connection closes.
* **Keep-alive**: an idle connection is closed after ``keepalive_timeout`` seconds (aiohttp's
  own timer, which also runs from the connection's start).
* **Open connections**: beyond ``max_connections`` in this process, a new connection gets a
  bare 503 with ``Retry-After`` and is closed before anything is read from it.

:func:`make_runner` and :class:`GuardedSite` are how the gateway serves
(:func:`gateway.workers.run_server`); the integration tests serve through them too.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from typing import Any, TypeVar

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp.web_protocol import RequestHandler

from gateway.domain.errors import RequestTimeoutError
from gateway.settings import Settings
from gateway.web.auth import read_body

__all__ = ["GuardedRequestHandler", "GuardedSite", "body_deadline", "make_runner", "streamed"]
F = TypeVar("F", bound=Callable[..., Any])

log = structlog.get_logger("gateway.serving")
_OVERLOADED_BODY = (
    b'{"type":"about:blank","title":"Service Unavailable","status":503,'
    b'"detail":"too many open connections"}'
)
_OVERLOADED = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: application/problem+json\r\nRetry-After: 1\r\nConnection: close\r\n"
    + f"Content-Length: {len(_OVERLOADED_BODY)}\r\n\r\n".encode()
    + _OVERLOADED_BODY
)


def handler_options(settings: Settings) -> dict[str, Any]:
    """The aiohttp request handler's arguments that the settings decide."""
    return {
        "max_line_size": settings.http_max_line_size,
        "max_field_size": settings.http_max_field_size,
        "max_headers": settings.http_max_headers,
        "keepalive_timeout": settings.keepalive_timeout,
    }


def make_runner(app: web.Application, settings: Settings) -> web.AppRunner:
    """The runner of ``app`` with the header limits and keep-alive of ``settings``."""
    return web.AppRunner(app, access_log=None, handle_signals=False, **handler_options(settings))


class _Gate:
    """Counts this process's open connections against ``max_connections``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0

    def admit(self) -> bool:
        if self.open >= self.limit:
            return False
        self.open += 1
        return True

    def release(self) -> None:
        self.open -= 1


class GuardedRequestHandler(RequestHandler):
    """aiohttp's request handler, with a header timeout and a bound on open connections.

    The header timer starts when the connection opens and when the first byte arrives on a
    connection waiting for its next request; it stops as soon as the parser has read a whole
    header (or refused one). When it fires, the connection is closed.
    """

    def __init__(
        self, manager: web.Server, *, gate: _Gate, header_timeout: float, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._gate = gate
        self._header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self._admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._gate.admit():
            log.warning("http.connections_exceeded", limit=self._gate.limit)
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(_OVERLOADED)
            transport.close()
            return
        self._admitted = True
        super().connection_made(transport)
        self._start_header_timer()

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        waiter = self._waiter  # set while the handler waits for the next request
        if self._header_timer is None and waiter is not None and not waiter.done():
            self._start_header_timer()
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:  # a whole header arrived (or was refused)
            self._stop_header_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._admitted:
            return
        self._admitted = False
        self._gate.release()
        self._stop_header_timer()
        super().connection_lost(exc)

    def _start_header_timer(self) -> None:
        self._header_timer = self._loop.call_later(self._header_timeout, self._header_late)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_late(self) -> None:
        self._header_timer = None
        log.info("http.header_timeout", seconds=self._header_timeout)
        self.force_close()


class GuardedSite(web.BaseSite):
    """Serves a runner on a listening socket through :class:`GuardedRequestHandler`."""

    def __init__(self, runner: web.AppRunner, sock: socket.socket, settings: Settings) -> None:
        super().__init__(runner, backlog=1024)
        self._sock = sock
        self._settings = settings
        host, port = sock.getsockname()[:2]
        self._name = f"http://{f'[{host}]' if ':' in host else host}:{port}"

    @property
    def name(self) -> str:
        return self._name

    async def start(self) -> None:
        await super().start()
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        settings = self._settings
        gate = _Gate(settings.max_connections)
        options = {**handler_options(settings), "access_log": None}

        def protocol() -> GuardedRequestHandler:
            return GuardedRequestHandler(
                server, gate=gate, header_timeout=settings.header_timeout, loop=loop, **options
            )

        self._server = await loop.create_server(protocol, sock=self._sock, backlog=self._backlog)


def streamed(handler: F) -> F:
    """Mark a route whose body streams (an upload): :func:`body_deadline` leaves its body
    unread; the route bounds its size and time itself (``max_material_bytes``,
    ``upload_timeout``)."""
    handler.__streamed__ = True  # type: ignore[attr-defined]
    return handler


def is_streamed(request: web.Request) -> bool:
    return bool(getattr(request.match_info.handler, "__streamed__", False))


def body_deadline(timeout: float) -> Any:
    """Read every request body, bounded in size, within ``timeout`` seconds of its header.

    Routes then read the same bytes from aiohttp's cache (``read``, ``post``, ``json``).
    The routes marked :func:`streamed` read their bodies themselves, chunk by chunk.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.body_exists and not is_streamed(request):
            try:
                async with asyncio.timeout(timeout):
                    await read_body(request)
            except TimeoutError:
                raise RequestTimeoutError(
                    f"the body did not arrive within {timeout:g} s", headers={"Connection": "close"}
                ) from None
        return await handler(request)

    return middleware
