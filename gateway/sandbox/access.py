"""Who may use the sandbox's tester API and console: its tester, when others can reach it.

Bound to loopback (the default, ``host = 127.0.0.1``), the sandbox serves whoever runs on
the machine, and the ``Host`` check (gateway/web/hosts.py) keeps web pages out. Bound beyond
loopback (``--host 0.0.0.0``, a LAN address), everything under ``/sandbox/v1/`` and
``/sandbox/console`` needs the sandbox access token, generated at every start into
``<data dir>/access-token`` (mode 0600) and printed in the banner:

- the API takes it as ``Authorization: Bearer TOKEN``; the sandbox commands read it from
  ``--token``, ``GBA_SANDBOX_TOKEN`` or the data folder;
- a browser opens the console once with ``?token=TOKEN``: the answer sets an HttpOnly,
  SameSite=Strict cookie for ``/sandbox/console`` and redirects to the same page without the
  token, so it stays out of the history and of ``Referer``. The console's own form token and
  origin check still apply to its POST.

The sandbox agencies' inboxes and identity providers stay open: the gateway and the
testers' browsers call them without the token. Anything else answers 401 ``sandbox-token``.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.domain.errors import SandboxTokenError
from gateway.settings import Settings
from gateway.trust.keystore import private_dir, write_private

TOKEN_FILE = "access-token"  # noqa: S105 - a file name, not the token
TOKEN_ENV = "GBA_SANDBOX_TOKEN"  # noqa: S105 - a variable name, not the token
COOKIE = "gba_sandbox_token"
CONSOLE = "/sandbox/console"
API = "/sandbox/v1/"


def beyond_loopback(settings: Settings) -> bool:
    """Whether others than this machine's users can reach the sandbox's listening socket."""
    if settings.host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(settings.host).is_loopback
    except ValueError:  # a name: it may resolve to anything
        return True


def issue_token(data_dir: Path) -> str:
    """A new token for this run, written owner-only (any older file is replaced)."""
    private_dir(data_dir)
    path = data_dir / TOKEN_FILE
    path.unlink(missing_ok=True)  # write_private keeps an existing file's mode
    # prefixed: a bare URL-safe token starts with "-" one time in 64, which a command line
    # (``--token VALUE``) would read as an option
    token = "sbx_" + secrets.token_urlsafe(32)
    write_private(path, token.encode() + b"\n")
    return token


def read_token(data_dir: Path) -> str | None:
    """The token of the running sandbox, when this user can read its data folder."""
    try:
        return (data_dir / TOKEN_FILE).read_text("ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def client_token(option: str | None, data_dir: Path | None) -> str | None:
    """The token a sandbox command sends: --token, else GBA_SANDBOX_TOKEN, else the file."""
    if option:
        return option
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    if data_dir is None:
        from gateway.settings import load_settings

        data_dir = load_settings(mode="sandbox").sandbox_dir
    return read_token(data_dir)


def _protected(path: str) -> bool:
    return path.startswith(API) or path == CONSOLE or path.startswith(CONSOLE + "/")


def _same(offered: str | None, token: str) -> bool:
    return offered is not None and hmac.compare_digest(offered.encode(), token.encode())


def _bearer(request: web.Request) -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def _refused() -> SandboxTokenError:
    return SandboxTokenError(
        "this sandbox is reachable beyond loopback: send the access token printed at start",
        headers={"WWW-Authenticate": 'Bearer realm="gba-sandbox"'},
    )


def token_middleware(token: str) -> Middleware:
    """Refuse the tester API and the console to a request without the token."""

    @web.middleware
    async def sandbox_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not _protected(request.path):
            return await handler(request)
        if request.path.startswith(API):
            if not _same(_bearer(request), token):
                raise _refused()
            return await handler(request)
        if "token" in request.query:  # the console's one-time link
            if request.method != "GET" or not _same(request.query["token"], token):
                raise _refused()
            query = [(k, v) for k, v in request.query.items() if k != "token"]
            answer = web.Response(
                status=303, headers={"Location": str(request.rel_url.with_query(query))}
            )
            answer.set_cookie(
                COOKIE, token, path=CONSOLE, httponly=True, samesite="Strict", secure=request.secure
            )
            return answer
        if not (_same(request.cookies.get(COOKIE), token) or _same(_bearer(request), token)):
            raise _refused()
        return await handler(request)

    return sandbox_token


def install_access(app: web.Application, settings: Settings) -> str | None:
    """Beyond loopback: issue this run's token and require it. The token, or None."""
    if not beyond_loopback(settings):
        return None
    token = issue_token(settings.sandbox_dir)
    app.middlewares.append(token_middleware(token))
    return token
