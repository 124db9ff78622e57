"""Growth: does a status query or a relay claim slow down as the stored backlog grows?

For each backlog size (10^4, 10^5, 10^6 stored applications) a sandbox gateway on SQLite is
seeded with real applications submitted over HTTP, then the backlog is grown in SQL by copying
them (copies keep every row of the case — handlers, timeline, delivered forwards — with an
empty document, so the file stays small enough to build in seconds). Then, with the gateway
serving:

- status query: signed ``GET /v1/applications/{id}`` of the real applications, p99;
- relay claim: the relay's claim of due forwards (a few dozen due among the delivered
  backlog), timed in a transaction rolled back after each claim, p99.

The baseline is the smallest backlog of the same run: a ratio near 1 means no growth.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import sqlite3
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web

from gateway.bootstrap import create_app
from gateway.sandbox.agencies import ensure_agency_key, sandbox_agency
from gateway.sandbox.personas import persona
from gateway.sandbox.samples import hk_individual_business, legal_basis_headers
from gateway.settings import load_settings
from gateway.store.tables import outbox
from gateway.trust.profile import sign_request
from gateway.web.keys import STORE

SIZES = tuple(int(n) for n in os.environ.get("GBA_BENCH_GROWTH", "10000,100000,1000000").split(","))
SEEDS = 40  # real applications, submitted over HTTP
QUERIES = 400
CLAIMS = 60
DUE = 48  # forwards due when the relay claims


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _p99(samples: Sequence[float]) -> float:
    ordered = sorted(samples)
    return ordered[int(len(ordered) * 0.99)] * 1000


async def _serving(directory: Path) -> tuple[web.AppRunner, web.Application, str]:
    port = _free_port()
    settings = load_settings(
        environ={},
        mode="sandbox",
        port=port,
        sandbox_dir=directory,
        log_level="error",
        relay_enabled=False,  # the forwards stay due: the claim is what is measured
        rate_limit_partner=0,  # nor the rate limit
    )
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, app, settings.base_url


async def _signed(
    session: aiohttp.ClientSession, method: str, url: str, directory: Path, body: bytes | None
) -> tuple[int, Any]:
    key = ensure_agency_key(directory, sandbox_agency("hk-ird"))
    headers = sign_request(
        method=method,
        url=url,
        key=key,
        now=datetime.now(UTC),
        body=body,
        content_type="application/xml" if body else None,
        idempotency_key=secrets.token_urlsafe(12) if body else None,
        extra_headers=legal_basis_headers()
        if body
        else None,  # every agency submission declares its basis
    )
    async with session.request(method, url, data=body, headers=headers) as response:
        return response.status, await response.json(content_type=None)


async def _seed(directory: Path) -> list[str]:
    runner, _, base = await _serving(directory)
    body = hk_individual_business(persona("chan-tai-man"))
    try:
        async with aiohttp.ClientSession() as session:
            ids = []
            for _ in range(SEEDS):
                status, answer = await _signed(
                    session, "POST", base + "/v1/applications", directory, body
                )
                if status != 202:
                    raise RuntimeError(f"seeding: unexpected status {status}")
                ids.append(answer["application_id"])
            return ids
    finally:
        await runner.cleanup()


def _grow(database: Path, seeds: list[str], size: int) -> None:
    """Copy the seeded cases until ``size`` applications are stored (copies delivered)."""
    copies = max(size // len(seeds) - 1, 0)
    conn = sqlite3.connect(database)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(
            "CREATE TEMP TABLE n AS WITH RECURSIVE c(i) AS "
            "(SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < ?) SELECT i FROM c",
            (copies,),
        )
        marks = ",".join("?" * len(seeds))

        def copy(table: str, key: str, changes: dict[str, str]) -> None:
            columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]
            values = [changes.get(c, f"t.{c}") for c in columns]
            conn.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) "  # noqa: S608 - our own names
                f"SELECT {', '.join(values)} FROM {table} t, n WHERE t.{key} IN ({marks})",
                seeds,
            )

        suffix = "|| '~' || n.i"
        copy("applications", "id", {"id": f"t.id {suffix}", "document": "'{}'"})
        copy("handlers", "application_id", {"application_id": f"t.application_id {suffix}"})
        copy("timeline_events", "application_id", {"application_id": f"t.application_id {suffix}"})
        copy(
            "outbox",
            "application_id",
            {
                "id": f"t.id {suffix}",
                "application_id": f"t.application_id {suffix}",
                "status": "'delivered'",
                "body": "x''",
            },
        )
        conn.commit()
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # else the gateway's first write pays it
    finally:
        conn.close()


async def _measure(directory: Path, seeds: list[str]) -> dict[str, float]:
    runner, app, base = await _serving(directory)
    try:
        async with aiohttp.ClientSession() as session:
            for application_id in seeds[:5]:  # warm up
                await _signed(
                    session, "GET", f"{base}/v1/applications/{application_id}", directory, None
                )
            query_times = []
            for i in range(QUERIES):
                url = f"{base}/v1/applications/{seeds[i % len(seeds)]}"
                started = time.perf_counter()
                status, _ = await _signed(session, "GET", url, directory, None)
                query_times.append(time.perf_counter() - started)
                if status != 200:
                    raise RuntimeError(f"status query: unexpected status {status}")
        claim_times = []
        now = datetime.now(UTC) + timedelta(seconds=1)
        async with app[STORE]() as uow:
            due = await uow.connection.execute(
                sa.select(sa.func.count()).select_from(outbox).where(outbox.c.status == "pending")
            )
            pending = due.scalar_one()
        for attempt in range(CLAIMS + 5):  # the first five warm up
            async with app[STORE]() as uow:  # never committed: the rows stay due
                started = time.perf_counter()
                claimed = await uow.outbox.claim(now, limit=32, lease_seconds=60, per_destination=4)
                if attempt >= 5:
                    claim_times.append(time.perf_counter() - started)
            if not claimed:
                raise RuntimeError("the relay claimed nothing")
        return {
            "status_p99_ms": _p99(query_times),
            "claim_p99_ms": _p99(claim_times),
            "due": float(pending),
        }
    finally:
        await runner.cleanup()


def growth() -> dict[str, float]:
    import structlog

    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    figures: dict[str, float] = {}
    results = []
    for size in SIZES:
        with tempfile.TemporaryDirectory() as folder:
            directory = Path(folder)
            seeds = asyncio.run(_seed(directory))
            started = time.perf_counter()
            _grow(directory / "gateway.db", seeds, size)
            grown = time.perf_counter() - started
            measured = asyncio.run(_measure(directory, seeds))
            results.append((size, measured))
            print(
                f"    {size:>9,} applications (built in {grown:.0f} s): status p99 "
                f"{measured['status_p99_ms']:.1f} ms, claim p99 {measured['claim_p99_ms']:.1f} ms",
                flush=True,
            )
    (small, base), (large, top) = results[0], results[-1]
    figures["status_p99_ms_largest"] = top["status_p99_ms"]
    figures["status_p99_ms_smallest"] = base["status_p99_ms"]
    figures["status_growth"] = top["status_p99_ms"] / base["status_p99_ms"]
    figures["claim_p99_ms_largest"] = top["claim_p99_ms"]
    figures["claim_p99_ms_smallest"] = base["claim_p99_ms"]
    figures["claim_growth"] = top["claim_p99_ms"] / base["claim_p99_ms"]
    figures["largest_backlog"] = float(large)
    figures["smallest_backlog"] = float(small)
    for size, measured in results:
        figures[f"status_p99_ms_{size}"] = measured["status_p99_ms"]
        figures[f"claim_p99_ms_{size}"] = measured["claim_p99_ms"]
    return figures


if __name__ == "__main__":
    print(json.dumps(growth(), indent=2))
