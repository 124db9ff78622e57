"""Slow clients, header bombs and connection floods, over real sockets (issue 13, items 1-2).

The gateway serves here exactly as ``gba-gateway serve`` does (``gateway/web/serving.py``:
``make_runner`` and ``GuardedSite``), with its timeouts set low so that each test is quick.
A raw asyncio socket client trickles bytes, as a slowloris attacker would.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
import structlog

from gateway.bootstrap import create_app
from gateway.settings import Settings
from gateway.web.serving import GuardedSite, make_runner
from tests.conftest import Database, sandbox_settings
from tests.support import row_counts

Serve = Callable[..., Awaitable[Settings]]


@asynccontextmanager
async def serving(tmp_path: Path, **limits: object) -> AsyncIterator[Settings]:
    """A sandbox gateway on SQLite, served through the production runner and site."""
    database = Database("sqlite", f"sqlite:///{tmp_path / 'gateway.db'}")
    settings = sandbox_settings(tmp_path, database, relay_enabled=False, **limits)
    runner = make_runner(create_app(settings), settings)
    await runner.setup()
    sock = socket.create_server(("127.0.0.1", settings.port))
    await GuardedSite(runner, sock, settings).start()
    try:
        yield settings
    finally:
        await runner.cleanup()


async def _connect(settings: Settings) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", settings.port)


async def _closed_within(reader: asyncio.StreamReader, seconds: float) -> bytes:
    """Everything the server sends until it closes the connection (fails after ``seconds``)."""
    async with asyncio.timeout(seconds):
        try:
            return await reader.read()
        except ConnectionResetError:
            return b""


async def _trickle(writer: asyncio.StreamWriter, data: bytes, every: float) -> float:
    """Send ``data`` a byte at a time; the seconds it went on before the server cut it."""
    started = time.monotonic()
    try:
        for byte in data:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(every)
    except (ConnectionError, OSError):
        pass
    return time.monotonic() - started


async def _healthz(settings: Settings) -> float:
    started = time.monotonic()
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{settings.base_url}/healthz") as response,
    ):
        assert response.status == 200
    return time.monotonic() - started


# --- header timeout, keep-alive ----------------------------------------------------------------


async def test_a_client_trickling_its_header_is_cut_at_the_header_timeout(tmp_path: Path) -> None:
    """Before: the connection stayed open for aiohttp's keep-alive (3630 s)."""
    async with serving(tmp_path, header_timeout=1.0, keepalive_timeout=60.0) as settings:
        reader, writer = await _connect(settings)
        header = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X-Slow: " + b"a" * 200
        trickling = asyncio.create_task(_trickle(writer, header, every=0.1))
        answer = await _closed_within(reader, 10.0)
        seconds = await trickling
        writer.close()
    assert answer == b""  # cut without an answer, as nginx's client_header_timeout does
    assert 0.8 <= seconds < 5.0


async def test_a_header_trickled_on_a_kept_alive_connection_is_cut_too(tmp_path: Path) -> None:
    async with serving(tmp_path, header_timeout=1.0, keepalive_timeout=60.0) as settings:
        reader, writer = await _connect(settings)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status = await reader.readline()
        assert status.startswith(b"HTTP/1.1 200")
        await asyncio.sleep(1.5)  # idle, within keep-alive: still open
        header = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
        seconds = await _trickle(writer, header, every=0.1)
        writer.close()
    assert 0.8 <= seconds < 5.0


async def test_an_idle_connection_is_closed_at_the_keepalive_timeout(tmp_path: Path) -> None:
    async with serving(tmp_path, header_timeout=30.0, keepalive_timeout=1.0) as settings:
        reader, writer = await _connect(settings)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        started = time.monotonic()
        answer = await _closed_within(reader, 10.0)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 200")
    assert time.monotonic() - started < 5.0


async def test_whole_headers_sent_in_pieces_in_time_are_served(tmp_path: Path) -> None:
    async with serving(tmp_path, header_timeout=2.0) as settings:
        reader, writer = await _connect(settings)
        for piece in (b"GET /healthz HT", b"TP/1.1\r\nHost: 127.0.0.1\r\n", b"\r\n"):
            writer.write(piece)
            await asyncio.sleep(0.2)
        status = await reader.readline()
        writer.close()
    assert status.startswith(b"HTTP/1.1 200")


# --- body timeout ------------------------------------------------------------------------------


async def test_a_trickled_body_is_answered_408_and_nothing_is_stored(tmp_path: Path) -> None:
    async with serving(tmp_path, body_timeout=1.0) as settings:
        before = await _agency_count(settings)
        reader, writer = await _connect(settings)
        body = json.dumps({"agency_id": "slow-agency"}).encode()
        writer.write(
            b"POST /sandbox/v1/agencies HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:5]
        )
        started = time.monotonic()
        async with asyncio.timeout(10.0):
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            payload = await reader.readexactly(length)
        answered = time.monotonic() - started
        writer.close()
        after = await _agency_count(settings)
    assert head.startswith(b"HTTP/1.1 408")
    assert b"Content-Type: application/problem+json" in head
    assert b"Connection: close" in head
    assert json.loads(payload)["type"].endswith("/problems/request-timeout")
    assert 0.9 <= answered < 5.0
    assert after == before


async def _agency_count(settings: Settings) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{settings.base_url}/sandbox/v1/agencies") as response,
    ):
        return len((await response.json())["items"])


# --- open connections --------------------------------------------------------------------------


async def test_connections_beyond_the_limit_are_refused_503(tmp_path: Path) -> None:
    async with serving(tmp_path, max_connections=2, header_timeout=30.0) as settings:
        held = [await _connect(settings) for _ in range(2)]
        await asyncio.sleep(0.2)  # both admitted
        reader, writer = await _connect(settings)
        answer = await _closed_within(reader, 5.0)
        writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503")
        assert b"Retry-After: 1" in head
        assert f"Content-Length: {len(body)}".encode() in head
        assert json.loads(body)["status"] == 503
        for _, held_writer in held:
            held_writer.close()
        await asyncio.sleep(0.3)  # their slots are free again
        assert await _healthz(settings) < 5.0


# --- header bombs ------------------------------------------------------------------------------


async def test_the_largest_signature_header_the_server_accepts_is_refused_fast(
    tmp_path: Path,
) -> None:
    """Before: http_sfv parsed every line (≈480 KB here) on the event loop for seconds.

    The bomb is as many ``Signature-Input`` lines as ``http_max_headers`` lets through, each
    as long as ``http_max_field_size`` allows. The handler must refuse it in well under
    50 ms, and ``/healthz``, asked meanwhile, must be answered within 0.5 s.
    """
    async with serving(tmp_path) as settings:
        line = ("a=1," * (settings.http_max_field_size // 4 - 8)).rstrip(",")
        headers = [("Signature-Input", line)] * (settings.http_max_headers - 8)
        headers.append(("Signature", "sig1=:AAAA:"))
        with structlog.testing.capture_logs() as logs:
            async with aiohttp.ClientSession() as session:
                bomb = asyncio.create_task(_get(session, settings, headers))
                await asyncio.sleep(0.01)
                health = await _healthz(settings)
                status, problem = await bomb
    assert status == 401
    assert problem["type"].endswith("/problems/signature-invalid")
    assert "longer than 4096 bytes" in problem["detail"]
    assert health < 0.5
    handled = [e for e in logs if e["event"] == "http.request" and e["route"] == "/v1/applications"]
    assert len(handled) == 1
    assert handled[0]["ms"] < 50
    assert await row_counts(settings) == {
        "applications": 0,
        "timeline_events": 0,
        "outbox": 0,
        "idempotency_keys": 0,
    }


async def _get(
    session: aiohttp.ClientSession, settings: Settings, headers: list[tuple[str, str]]
) -> tuple[int, dict[str, object]]:
    async with session.get(f"{settings.base_url}/v1/applications", headers=headers) as response:
        return response.status, await response.json(content_type=None)


@pytest.mark.parametrize(
    ("headers", "statuses"),
    [
        ([("Signature-Input", "a=1," * 250_000)], {431, 400}),  # one 1 MB line
        ([(f"X-H{i}", "a") for i in range(200)], {431, 400}),  # more fields than allowed
    ],
    ids=["one-megabyte-line", "too-many-fields"],
)
async def test_header_sections_beyond_the_http_limits_are_refused_by_aiohttp(
    tmp_path: Path, headers: list[tuple[str, str]], statuses: set[int]
) -> None:
    async with serving(tmp_path) as settings:
        reader, writer = await _connect(settings)
        lines = "".join(f"{name}: {value}\r\n" for name, value in headers)
        writer.write(f"GET /v1/applications HTTP/1.1\r\nHost: 127.0.0.1\r\n{lines}\r\n".encode())
        started = time.monotonic()
        health = asyncio.create_task(_healthz(settings))
        answer = await _closed_within(reader, 5.0)
        writer.close()
        assert await health < 0.5
    # the answer, unless the reset for the unread rest of the bomb overtook it
    assert answer == b"" or int(answer.split(b" ", 2)[1]) in statuses
    assert time.monotonic() - started < 2.0
