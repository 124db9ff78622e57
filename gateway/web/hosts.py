"""Which ``Host`` names the gateway answers: a defence against DNS rebinding.

A web page can make a browser send requests to a gateway on the tester's own machine by
pointing a name it controls at 127.0.0.1; the browser then sends ``Host: that-name``. So the
gateway answers only the names it is known by and refuses any other with 421 Misdirected
Request (problem+json):

- the public base URL's host (``public_url``, by default ``http://host:port``), with its port
  (and without it when the port is the scheme's default);
- ``host`` itself when it names one address (not ``0.0.0.0`` or ``::``), with ``port``;
- ``localhost``, ``127.0.0.1`` and ``[::1]`` with any port: no web page can rebind these,
  and health checks and test clients use them;
- every name in ``allowed_hosts`` (``name`` or ``name:port``; ``GBA_ALLOWED_HOSTS``,
  comma-separated).

Sandbox mode always checks. Production mode checks when ``public_url`` or ``allowed_hosts``
is set; otherwise it cannot know its names and leaves ``Host`` to the reverse proxy.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.domain.errors import MisdirectedRequestError
from gateway.settings import Settings

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_ANY_ADDRESS = {"0.0.0.0", "::", ""}  # noqa: S104 - names of the wildcard, not a bind


def served_hosts(settings: Settings) -> frozenset[str] | None:
    """The ``Host`` values answered besides the loopback names; None: answer any."""
    if not settings.sandbox and not settings.public_url and not settings.allowed_hosts:
        return None
    names = {name.lower() for name in settings.allowed_hosts}
    parts = urlsplit(settings.base_url)
    names.add(parts.netloc.lower())
    if parts.port is None or parts.port == _DEFAULT_PORTS.get(parts.scheme):
        names.add((parts.hostname or "").lower())
        names.add(f"{parts.hostname}:{_DEFAULT_PORTS.get(parts.scheme, 80)}".lower())
    if settings.host not in _ANY_ADDRESS:
        host = f"[{settings.host}]" if ":" in settings.host else settings.host
        names.add(f"{host}:{settings.port}".lower())
    return frozenset(names)


def _loopback(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name in LOOPBACK_NAMES


def host_check(settings: Settings) -> Middleware | None:
    """The middleware refusing unknown ``Host`` names, or None when nothing is checked."""
    served = served_hosts(settings)
    if served is None:
        return None

    @web.middleware
    async def check_host(request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host", "").strip().lower()
        if host not in served and not _loopback(host):
            raise MisdirectedRequestError(
                "this gateway does not answer that host name; add it to allowed_hosts "
                "(GBA_ALLOWED_HOSTS) or set public_url"
            )
        return await handler(request)

    return check_host
