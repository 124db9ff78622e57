"""The accept path over HTTP on loopback: signed XML submissions vs a bare aiohttp handler.

Both servers run in this process with the load generator, on the same two cores, so the
ratio compares like with like: the bare handler reads the same body, parses it as XML and
answers JSON; the gateway verifies the signature, translates, stores durably (SQLite, WAL,
``synchronous=FULL``), signs a receipt and the response, and queues the forward. When
PostgreSQL answers (``GBA_BENCH_POSTGRES_DSN``, default the local ``test`` database), the same
load runs against the gateway on PostgreSQL too, in a throwaway schema. 64 clients at once.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web
from lxml import etree

from gateway.bootstrap import create_app
from gateway.sandbox.agencies import ensure_agency_key, sandbox_agency
from gateway.sandbox.personas import persona
from gateway.sandbox.samples import hk_individual_business, legal_basis_headers
from gateway.settings import load_settings
from gateway.trust.profile import sign_request

CONCURRENCY = 64  # the figure: p50/p99 at 64 concurrent
SECONDS = 4.0


async def _load(make: Callable[[aiohttp.ClientSession], Awaitable[int]]) -> dict[str, float]:
    latencies: list[float] = []
    done = 0
    deadline = time.perf_counter() + SECONDS
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                status = await make(session)
                if status not in (200, 202):
                    raise RuntimeError(f"unexpected status {status}")
                latencies.append(time.perf_counter() - started)
                done += 1

        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(CONCURRENCY):
                group.create_task(worker())
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "per_s": done / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


async def _bare(body: bytes) -> dict[str, float]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

    async def handler(request: web.Request) -> web.Response:
        root = etree.fromstring(await request.read(), parser)
        return web.json_response({"root": root.tag, "status": "accepted"}, status=202)

    app = web.Application()
    app.router.add_post("/v1/applications", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/v1/applications"

    async def post(session: aiohttp.ClientSession) -> int:
        async with session.post(url, data=body, headers={"Content-Type": "application/xml"}) as r:
            await r.read()
            return r.status

    try:
        return await _load(post)
    finally:
        await runner.cleanup()


async def _gateway(body: bytes, directory: Path, **database: str) -> dict[str, float]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = load_settings(
        environ={},
        mode="sandbox",
        port=port,
        sandbox_dir=directory,
        log_level="error",
        rate_limit_partner=0,  # throughput is measured here, not the rate limit
        **database,
    )
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    key = ensure_agency_key(directory, sandbox_agency("hk-ird"))
    url = settings.base_url + "/v1/applications"

    async def post(session: aiohttp.ClientSession) -> int:
        headers = sign_request(
            method="POST",
            url=url,
            key=key,
            now=datetime.now(UTC),
            body=body,
            content_type="application/xml",
            idempotency_key=secrets.token_urlsafe(12),
            extra_headers=legal_basis_headers(),  # every agency submission declares its basis
        )
        async with session.post(url, data=body, headers=headers) as response:
            await response.read()
            return response.status

    try:
        return await _load(post)
    finally:
        await runner.cleanup()


async def _on_postgres(body: bytes, directory: Path, dsn: str) -> dict[str, float] | None:
    """The same load with the gateway on PostgreSQL (a throwaway schema), if it answers."""
    import asyncpg

    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return None
    schema = "gba_bench_" + secrets.token_hex(4)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        return await _gateway(body, directory, database_url=dsn, database_schema=schema)
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


def accept_path() -> dict[str, float]:
    import os

    import structlog

    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    body = hk_individual_business(persona("chan-tai-man"))
    with tempfile.TemporaryDirectory() as directory:
        ours = asyncio.run(_gateway(body, Path(directory)))
    bare = asyncio.run(_bare(body))
    figures = {
        "accepted_per_s": ours["per_s"],
        "bare_aiohttp_per_s": bare["per_s"],
        "ratio": ours["per_s"] / bare["per_s"],
        "p50_ms": ours["p50_ms"],
        "p99_ms": ours["p99_ms"],
        "bare_p50_ms": bare["p50_ms"],
    }
    dsn = os.environ.get("GBA_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
    with tempfile.TemporaryDirectory() as directory:
        postgres = asyncio.run(_on_postgres(body, Path(directory), dsn))
    if postgres is not None:
        figures["postgres_accepted_per_s"] = postgres["per_s"]
        figures["postgres_ratio"] = postgres["per_s"] / bare["per_s"]
        figures["postgres_p99_ms"] = postgres["p99_ms"]
    return figures


if __name__ == "__main__":
    print(json.dumps(accept_path(), indent=2))
