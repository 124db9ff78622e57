"""The OP's browser cookies: HttpOnly, SameSite=Lax, path-limited, Secure over https only."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from gateway.web import sessions
from gateway.web.keys import SETTINGS


def _request(base_url: str, cookie: str | None = None) -> web.Request:
    app = web.Application()
    app[SETTINGS] = SimpleNamespace(base_url=base_url)  # type: ignore[assignment]
    headers = {"Cookie": cookie} if cookie else {}
    return make_mocked_request("GET", "/auth/hk/callback", headers=headers, app=app)


@pytest.mark.parametrize(
    ("base_url", "secure"), [("https://gw.example", True), ("http://127.0.0.1:8080", False)]
)
def test_cookies_are_httponly_lax_path_limited_and_secure_over_https(
    base_url: str, secure: bool
) -> None:
    request, response = _request(base_url), web.Response()
    sessions.set_login_cookie(request, response, "a" * 43)
    sessions.set_session_cookie(request, response, "b" * 43)
    login, session = (
        response.cookies[sessions.LOGIN_COOKIE],
        response.cookies[sessions.SESSION_COOKIE],
    )
    assert (login["path"], session["path"]) == ("/auth/", "/me/")
    assert (login["max-age"], session["max-age"]) == ("600", str(8 * 3600))
    for cookie in (login, session):
        assert cookie["httponly"] is True
        assert cookie["samesite"] == "Lax"
        assert bool(cookie["secure"]) is secure

    cleared = web.Response()
    sessions.clear_session_cookie(request, cleared)
    assert cleared.cookies[sessions.SESSION_COOKIE]["max-age"] == "0"


@pytest.mark.parametrize(
    ("value", "kept"),
    [("A" * 43, True), ("A" * 42, False), ("A" * 42 + "!", False), ("", False), ("A" * 44, False)],
)
def test_only_a_cookie_of_the_shape_the_gateway_sets_is_read(value: str, kept: bool) -> None:
    request = _request("https://gw.example", f"{sessions.LOGIN_COOKIE}={value}")
    assert sessions.cookie_secret(request, sessions.LOGIN_COOKIE) == (value if kept else None)
