"""The sandbox serves only its tester: Host names it is known by, and beyond loopback a token.

Attacks, each refused with nothing changed: a DNS-rebinding page (``Host`` a name the
attacker controls) flipping a fault, rerouting a matter or reading the console; and, when
the sandbox listens beyond loopback, anyone on the network doing the same without the token.
"""

from __future__ import annotations

import argparse
import asyncio
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway import cli
from gateway.bootstrap import Overrides, create_app
from gateway.sandbox import access
from gateway.sandbox.access import COOKIE, TOKEN_FILE, beyond_loopback, read_token
from gateway.sandbox.commands import banner_lines
from gateway.sandbox.scenarios.runner import preflight
from gateway.settings import load_settings
from gateway.web.hosts import served_hosts
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.unit.web.test_settings_and_startup import ROUTED, _ca, _production, _registry

MATTER = "11440400MB2C00081P4440120002000"
EVIL = "rebind.attacker.example"


async def _state(session: aiohttp.ClientSession, url: str, **headers: str) -> dict[str, Any]:
    """What an attacker would change: fault switches, the matter's route, the registry."""
    state = {}
    for name, path in (
        ("faults", "/sandbox/v1/faults"),
        ("routes", "/sandbox/v1/routes"),
        ("agencies", "/sandbox/v1/agencies"),
    ):
        async with session.get(url + path, headers=headers) as answer:
            assert answer.status == 200, (path, await answer.text())
            state[name] = await answer.json()
    return state


ATTACKS = [
    ("PUT", "/sandbox/v1/agencies/gd-hq-csb/faults", {"down": True}),
    ("PATCH", "/sandbox/v1/agencies/gd-hq-csb/faults", {"status": 503}),
    ("PUT", f"/sandbox/v1/routes/{MATTER}", {"lead": "hk-ird", "reviewers": []}),
    (
        "POST",
        "/sandbox/v1/agencies",
        {"agency_id": "evil-1", "jurisdiction": "HK", "names": {"en": "x"}, "keys": []},
    ),
    ("GET", "/sandbox/console/cases", None),
    ("GET", "/sandbox/v1/notifications", None),
]


async def test_a_rebinding_page_is_refused_421_and_changes_nothing(
    gateway: RunningGateway,
) -> None:
    port = gateway.settings.port
    async with aiohttp.ClientSession() as session:
        before = await _state(session, gateway.url)
        for method, path, body in ATTACKS:
            for host in (EVIL, f"{EVIL}:{port}", f"127.0.0.1.{EVIL}:{port}"):
                async with session.request(
                    method, gateway.url + path, json=body, headers={"Host": host}
                ) as answer:
                    assert answer.status == 421, (method, path, host)
                    assert answer.content_type == "application/problem+json"
                    problem = await answer.json()
                    assert problem["type"].endswith("/problems/misdirected-request")
        assert await _state(session, gateway.url) == before
        for host in (f"localhost:{port}", f"127.0.0.1:{port}", "localhost"):
            async with session.get(gateway.url + "/healthz", headers={"Host": host}) as answer:
                assert answer.status == 200, host


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_allowed_hosts_adds_names(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> None:
    settings = sandbox_settings(tmp_path, database, allowed_hosts=("sandbox.lan",))
    app = create_app(settings, Overrides())
    await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    async with aiohttp.ClientSession() as session:
        for host, status in (("sandbox.lan", 200), ("sandbox.lan:1", 421), (EVIL, 421)):
            async with session.get(
                settings.base_url + "/sandbox/v1/personas", headers={"Host": host}
            ) as answer:
                assert answer.status == status, host


def test_served_names_in_each_mode() -> None:
    sandbox = load_settings(environ={}, mode="sandbox")
    assert sandbox.host == "127.0.0.1"  # the sandbox binds to loopback unless told otherwise
    assert not beyond_loopback(sandbox)
    assert served_hosts(sandbox) == {"127.0.0.1:8080"}
    public = load_settings(
        environ={"GBA_ALLOWED_HOSTS": "a.example, b.example:8443"},
        public_url="https://gateway.example",
    )
    assert served_hosts(public) == {
        "gateway.example",
        "gateway.example:443",
        "127.0.0.1:8080",
        "a.example",
        "b.example:8443",
    }
    assert served_hosts(load_settings(environ={})) is None  # production without its name
    with pytest.raises(Exception, match="allowed_hosts"):
        load_settings(environ={"GBA_ALLOWED_HOSTS": "http://x/"})


async def test_production_with_a_public_url_checks_host_too(tmp_path: Path) -> None:
    from gateway.trust import keystore

    keystore.generate(tmp_path / "keys", sandbox=False)
    settings = _production(
        tmp_path,
        keys_dir=tmp_path / "keys",
        trust_anchors_dir=_ca(tmp_path / "certs"),
        agencies_file=_registry(tmp_path, *ROUTED),
        public_url="https://gateway.example",
    )
    from aiohttp.test_utils import TestClient, TestServer

    async with TestClient(TestServer(create_app(settings))) as client:
        for host, status in (("gateway.example", 200), ("localhost:1", 200), (EVIL, 421)):
            answer = await client.get("/v1/matters", headers={"Host": host})
            assert answer.status == status, host


# ---- beyond loopback: the access token ---------------------------------------------------


@pytest.fixture
async def exposed(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> AsyncIterator[RunningGateway]:
    """A sandbox told to listen on every address (served here on loopback for the test)."""
    port_settings = sandbox_settings(tmp_path, database)
    settings = port_settings.with_overrides(
        host="0.0.0.0",  # noqa: S104 - what a tester exposing the sandbox would pass
        public_url=f"http://127.0.0.1:{port_settings.port}",
    )
    app = create_app(settings, Overrides())
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    yield RunningGateway(settings, settings.base_url, app)
    await server.close()


async def test_beyond_loopback_nothing_is_done_without_the_token(exposed: RunningGateway) -> None:
    token = read_token(exposed.settings.sandbox_dir)
    assert token
    path = exposed.settings.sandbox_dir / TOKEN_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    bearer = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session:
        before = await _state(session, exposed.url, **bearer)
        for method, path_, body in ATTACKS:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Cookie": f"{COOKIE}=wrong"}):
                async with session.request(
                    method, exposed.url + path_, json=body, headers=headers
                ) as answer:
                    assert answer.status == 401, (method, path_, headers)
                    assert answer.content_type == "application/problem+json"
                    assert (await answer.json())["type"].endswith("/problems/sandbox-token")
                    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert await _state(session, exposed.url, **bearer) == before
        # What the gateway and browsers call without the token stays open.
        for open_path in ("/healthz", "/sandbox/idp/hk/.well-known/openid-configuration"):
            async with session.get(exposed.url + open_path) as answer:
                assert answer.status == 200, open_path
        # With the token, the tester API works.
        async with session.patch(
            exposed.url + "/sandbox/v1/agencies/gd-hq-csb/faults",
            json={"down": True},
            headers=bearer,
        ) as answer:
            assert answer.status == 200
    lines = "\n".join(banner_lines(exposed.settings))
    assert f"access token   {token}" in lines
    assert f"/sandbox/console?token={token}" in lines


async def test_the_console_link_sets_a_strict_cookie_for_the_console_only(
    exposed: RunningGateway,
) -> None:
    token = read_token(exposed.settings.sandbox_dir)
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        async with session.get(
            exposed.url + "/sandbox/console/agencies?lang=en&token=wrong", allow_redirects=False
        ) as answer:
            assert answer.status == 401
        async with session.get(
            exposed.url + f"/sandbox/console/agencies?lang=en&token={token}", allow_redirects=False
        ) as answer:
            assert answer.status == 303
            assert answer.headers["Location"] == "/sandbox/console/agencies?lang=en"
            cookie = answer.headers["Set-Cookie"]
        for attribute in ("HttpOnly", "SameSite=Strict", "Path=/sandbox/console"):
            assert attribute in cookie
        async with session.get(exposed.url + "/sandbox/console/agencies?lang=en") as answer:
            assert answer.status == 200
            page = await answer.text()
        # The cookie does not open the API, and the console's form token still applies.
        async with session.get(exposed.url + "/sandbox/v1/faults") as answer:
            assert answer.status == 401
        async with session.post(
            exposed.url + "/sandbox/console/agencies/gd-hq-csb/faults",
            data={"down": "on"},
            allow_redirects=False,
        ) as answer:
            assert answer.status == 403
        assert "gd-hq-csb" in page
        async with session.get(exposed.url + "/sandbox/console/agencies/gd-hq-csb") as answer:
            page = await answer.text()
        csrf = page.split('name="csrf" value="', 1)[1].split('"', 1)[0]
        async with session.post(
            exposed.url + "/sandbox/console/agencies/gd-hq-csb/faults",
            data={"csrf": csrf, "down": "on"},
            allow_redirects=False,
        ) as answer:
            assert answer.status == 303


async def test_the_sandbox_commands_read_the_token(
    exposed: RunningGateway, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GBA_SANDBOX_TOKEN", raising=False)
    data = str(exposed.settings.sandbox_dir)
    argv = ["sandbox", "--data-dir", data, "fault", "gd-hq-csb", "--down", "--url", exposed.url]
    assert await asyncio.to_thread(cli.main, argv) == 0
    monkeypatch.setenv("GBA_SANDBOX_TOKEN", "wrong")
    argv = ["sandbox", "--data-dir", data, "faults", "--url", exposed.url]
    assert await asyncio.to_thread(cli.main, argv) == 1
    assert "sandbox access token" in capsys.readouterr().err
    token = read_token(exposed.settings.sandbox_dir)
    assert token is not None
    assert await asyncio.to_thread(cli.main, [*argv, "--token", token]) == 0
    assert "gd-hq-csb" in capsys.readouterr().out


def test_a_token_never_reads_as_a_command_line_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One random token in 64 would start with "-": ``--token -x…`` then fails to parse."""
    monkeypatch.setattr(access.secrets, "token_urlsafe", lambda _n: "-ct7WLhP07Q2wKEuElIk")
    token = access.issue_token(tmp_path)

    assert not token.startswith("-")
    parser = argparse.ArgumentParser()
    parser.add_argument("--token")
    assert parser.parse_args(["--token", token]).token == token
    assert read_token(tmp_path) == token


async def test_the_scenario_runner_sends_the_token_to_the_tester_api(
    exposed: RunningGateway,
) -> None:
    token = read_token(exposed.settings.sandbox_dir)
    async with aiohttp.ClientSession() as session:
        assert (await preflight(session, exposed.url, token)).passed
        refused = await preflight(session, exposed.url, None)
    assert not refused.passed
    assert "/sandbox/v1/personas 401" in refused.seen
