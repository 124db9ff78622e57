"""Accept -> delivered: how soon a stored application reaches its handling agency.

A sandbox gateway (SQLite, durable commits) with its relay runs in this process; a moderate
load of signed submissions is sent for a few seconds; the Guangdong sandbox agency receives
the forwards over HTTP, verifies their signatures and answers signed acknowledgements (its
automatic decisions are off, so only delivery is measured). Each message's latency is from its
commit with the case (``outbox.created_at``) to its verified acknowledgement being recorded
(``delivered_at``), on the gateway's clock. The baseline is the accept throughput of the same
run: delivery keeps up when the ratio is near 1.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web

from gateway.bootstrap import create_app
from gateway.sandbox.agencies import ensure_agency_key, sandbox_agency
from gateway.sandbox.personas import persona
from gateway.sandbox.routes import PARTNERS
from gateway.sandbox.samples import hk_individual_business, legal_basis_headers
from gateway.settings import load_settings
from gateway.store.tables import outbox
from gateway.trust.profile import sign_request
from gateway.web.keys import STORE

CONCURRENCY = 2  # a moderate load
SECONDS = 4.0
DRAIN_SECONDS = 20.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _run(directory: Path) -> dict[str, float]:
    port = _free_port()
    settings = load_settings(
        environ={},
        mode="sandbox",
        port=port,
        sandbox_dir=directory,
        log_level="error",
        rate_limit_partner=0,  # throughput is measured here, not the rate limit
    )
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    app[PARTNERS].auto_decide = False
    key = ensure_agency_key(directory, sandbox_agency("hk-ird"))
    url = settings.base_url + "/v1/applications"
    body = hk_individual_business(persona("chan-tai-man"))
    accepted = 0

    async def worker(session: aiohttp.ClientSession, deadline: float) -> None:
        nonlocal accepted
        while time.perf_counter() < deadline:
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
                if response.status != 202:
                    raise RuntimeError(f"unexpected status {response.status}")
            accepted += 1

    try:
        started = time.perf_counter()
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY)) as session,
            asyncio.TaskGroup() as group,
        ):
            for _ in range(CONCURRENCY):
                group.create_task(worker(session, started + SECONDS))
        window = time.perf_counter() - started
        rows = await _drained(app, accepted)
    finally:
        await runner.cleanup()
    latencies = sorted((r.delivered_at - r.created_at).total_seconds() for r in rows)
    first = min(r.created_at for r in rows)
    in_window = [r for r in rows if (r.delivered_at - first).total_seconds() <= window]
    return {
        "delivered_per_s": len(in_window) / window,
        "accepted_per_s": accepted / window,
        "ratio": len(in_window) / max(accepted, 1),
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "messages": float(len(rows)),
    }


async def _drained(app: web.Application, expected: int) -> list[Any]:
    """Every forward, once all are delivered (or what is, after DRAIN_SECONDS)."""
    engine = app[STORE].engine
    deadline = time.perf_counter() + DRAIN_SECONDS
    while True:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(outbox.c.created_at, outbox.c.delivered_at).where(
                        outbox.c.status == "delivered"
                    )
                )
            ).all()
        if len(rows) >= expected or time.perf_counter() > deadline:
            if len(rows) < expected:
                raise RuntimeError(f"only {len(rows)} of {expected} forwards were delivered")
            return rows
        await asyncio.sleep(0.1)


def accept_to_delivered() -> dict[str, float]:
    import structlog

    structlog.configure(logger_factory=structlog.ReturnLoggerFactory())
    with tempfile.TemporaryDirectory() as directory:
        return asyncio.run(_run(Path(directory)))


if __name__ == "__main__":
    print(json.dumps(accept_to_delivered(), indent=2))
