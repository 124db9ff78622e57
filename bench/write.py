"""``python -m bench write [--scenario NAME ...]``: the write path, measured from outside.

Three kinds of process, all in the same run, on the same machine: the load generator
(:mod:`bench.load`, 64 clients, requests signed before the clock starts), the target, and
for the relay scenario a partner agency (:mod:`bench.partner`). The targets:

- ``bare``: :mod:`bench.bare`, an aiohttp handler that parses the same XML and answers 202;
  every ratio is to its accepted/s in this run;
- ``sqlite``: ``gba-gateway serve`` (production settings, SQLite, ``synchronous=FULL``),
  relay paused (``GBA_RELAY_ENABLED=false``): the accept path alone;
- ``postgres`` / ``postgres-2``: the same on PostgreSQL, 1 and ``--workers 2`` (a fresh
  schema each, dropped afterwards);
- ``relay``: ``gba-gateway sandbox`` with its relay delivering to the partner process;
  accept -> delivered is the outbox row's ``created_at`` to its ``delivered_at``;
- ``pipeline``: ``gba-gateway sandbox`` as ``make sandbox`` runs it: accept, forward, the
  sandbox agency's acknowledgement and automatic decision, all in one process.
- ``soak``: ``serve`` on SQLite as ``sqlite``, for 60 s, its RSS read every second: the
  growth over the last 40 s (:mod:`bench.soak`).

Results: a table on standard output with the issue 14 targets as PASS/FAIL, and
``bench/results/write.json`` / ``write.md``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa

from bench.drills.harness import Gateway, Records, free_port
from bench.load import percentile
from bench.production import production
from bench.soak import soak
from bench.targets import tables
from gateway.sandbox.agencies import agency_key_path, ensure_agency_key, sandbox_agency
from gateway.store.tables import applications

RESULTS = Path(__file__).parent / "results"
POSTGRES = os.environ.get("GBA_BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
WARMUP, SECONDS = 3.0, 12.0
DRAIN_SECONDS = 30.0  # the relay's catch-up after the load, at most
PARTNER = "gd-bench-partner"
PAUSED = {"GBA_RELAY_ENABLED": "false", "GBA_LOG_LEVEL": "error"}


def _say(text: str) -> None:
    print(f"bench write: {text}", flush=True)


async def _generate(
    url: str,
    key: Path,
    kid: str,
    alg: str,
    *,
    cycle: bool = False,
    warmup: float = WARMUP,
    seconds: float = SECONDS,
    pool: int | None = None,
) -> dict:
    """Run :mod:`bench.load` in its own process against ``url``; its JSON summary."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.load",
        f"--url={url}",
        f"--key={key}",
        f"--kid={kid}",
        f"--alg={alg}",
        f"--warmup={warmup}",
        f"--seconds={seconds}",
        f"--prefix=bench-{secrets.token_hex(4)}",
        *(["--cycle", "--pool=5000"] if cycle else []),
        *([f"--pool={pool}"] if pool else []),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    if child.returncode:
        raise RuntimeError(f"the load generator exited {child.returncode}")
    summary: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return summary


async def _ready(url: str, patience: float = 60.0) -> None:
    deadline = time.monotonic() + patience
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(url + "/readyz") as answer:
                    if answer.status == 200:
                        return
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} was not ready within {patience:.0f} s")


def _figures(load: dict, bare: dict | None) -> dict[str, Any]:
    figures = dict(load)
    if bare and bare.get("accepted_per_s"):
        figures["ratio"] = load["accepted_per_s"] / bare["accepted_per_s"]
    return figures


async def bare(workdir: Path, _: dict) -> dict[str, Any]:
    port = free_port()
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.bare", f"--port={port}"
    )
    try:
        await _ready(f"http://127.0.0.1:{port}")
        sub = ensure_agency_key(workdir / "bare", sandbox_agency("hk-ird"))
        key = agency_key_path(workdir / "bare", "hk-ird")
        url = f"http://127.0.0.1:{port}/v1/applications"
        return await _generate(url, key, sub.kid, sub.alg, cycle=True)
    finally:
        child.terminate()
        await child.wait()


async def _serve(workdir: Path, database_url: str, schema: str, workers: int, ctx: dict) -> dict:
    port = free_port()
    config = production(workdir, port, database_url, schema)
    argv = ["serve", "--config", str(config), "--workers", str(workers)]
    gateway = Gateway(workdir, port, env=PAUSED, command=argv)
    await gateway.start()
    try:
        if workers > 1:
            await asyncio.sleep(3.0)  # the other workers start one after another
        url = f"{gateway.url}/v1/applications"
        load = await _generate(url, workdir / "submitter.pem", "hk-ird-bench", "ed25519")
    finally:
        await gateway.stop()
    figures = _figures(load, ctx.get("bare"))
    figures["workers"] = workers
    figures["accepted_per_s_per_worker"] = load["accepted_per_s"] / workers
    return figures


async def sqlite(workdir: Path, ctx: dict) -> dict[str, Any]:
    return await _serve(workdir, f"sqlite:///{workdir}/gateway.db", "", 1, ctx)


async def _on_postgres(workdir: Path, ctx: dict, workers: int) -> dict[str, Any]:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES, timeout=5)
    schema = "gba_bench_" + secrets.token_hex(4)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        return await _serve(workdir, POSTGRES, schema, workers, ctx)
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


async def postgres(workdir: Path, ctx: dict) -> dict[str, Any]:
    return await _on_postgres(workdir, ctx, 1)


async def postgres_2(workdir: Path, ctx: dict) -> dict[str, Any]:
    return await _on_postgres(workdir, ctx, 2)


async def _sandbox(workdir: Path) -> tuple[Gateway, Path, str, str]:
    port = free_port()
    agency = sandbox_agency("hk-ird")
    key = ensure_agency_key(workdir, agency)
    gateway = Gateway(workdir, port, env={"GBA_LOG_LEVEL": "error"})
    await gateway.start()
    return gateway, agency_key_path(workdir, "hk-ird"), key.kid, key.alg


def _at(moment: datetime) -> float:
    return moment.timestamp()  # UTCDateTime columns are aware


async def relay(workdir: Path, ctx: dict) -> dict[str, Any]:
    gateway, key, kid, alg = await _sandbox(workdir)
    records = Records(f"sqlite:///{workdir}/gateway.db")
    partner = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.partner",
        f"--gateway={gateway.url}",
        f"--agency={PARTNER}",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert partner.stdout is not None
        line = await asyncio.wait_for(partner.stdout.readline(), 30)
        if not line.startswith(b"ready"):
            raise RuntimeError("the partner process did not register")
        load = await _generate(f"{gateway.url}/v1/applications", key, kid, alg)
        deadline = time.monotonic() + DRAIN_SECONDS
        while time.monotonic() < deadline:
            states = await records.outbox_states(PARTNER)
            if not states["pending"] and not states["in_flight"]:
                break
            await asyncio.sleep(0.5)
        rows = await records.outbox_rows(PARTNER)
    finally:
        partner.terminate()
        received, _ = await partner.communicate()
        await records.close()
        await gateway.stop()
    start, end = load["window_start"], load["window_end"]
    delivered = [r for r in rows if r.delivered_at is not None]
    in_window = [r for r in delivered if start <= _at(r.delivered_at) <= end]
    latencies = sorted(
        (r.delivered_at - r.created_at).total_seconds()
        for r in delivered
        if start <= _at(r.created_at) <= end
    )
    figures = _figures(load, ctx.get("bare"))
    figures["delivered_per_s"] = len(in_window) / load["window_s"]
    figures["delivered_ratio"] = figures["delivered_per_s"] / max(load["accepted_per_s"], 1e-9)
    figures["delivered_p50_ms"] = percentile(latencies, 50) * 1000
    figures["delivered_p99_ms"] = percentile(latencies, 99) * 1000
    figures["forwards"] = len(rows)
    figures["undelivered_after_drain"] = len(rows) - len(delivered)
    with contextlib.suppress(ValueError, IndexError):
        figures["partner"] = json.loads(received.decode().strip().splitlines()[-1])
    return figures


async def pipeline(workdir: Path, ctx: dict) -> dict[str, Any]:
    gateway, key, kid, alg = await _sandbox(workdir)
    records = Records(f"sqlite:///{workdir}/gateway.db")
    try:
        load = await _generate(f"{gateway.url}/v1/applications", key, kid, alg)
        await asyncio.sleep(3.0)  # let the forwards, acks and decisions in flight land
        query = sa.select(applications.c.status, sa.func.count()).group_by(applications.c.status)
        async with records.engine.connect() as conn:
            statuses = {status: n for status, n in (await conn.execute(query)).all()}
    finally:
        await records.close()
        await gateway.stop()
    figures = _figures(load, ctx.get("bare"))
    figures["application_statuses"] = statuses
    return figures


SCENARIOS: dict[str, Callable[[Path, dict], Awaitable[dict[str, Any]]]] = {
    "bare": bare,
    "sqlite": sqlite,
    "postgres": postgres,
    "postgres-2": postgres_2,
    "relay": relay,
    "pipeline": pipeline,
    "soak": soak,
}


async def _run(names: list[str]) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    ordered = ["bare", *[n for n in SCENARIOS if n in names and n != "bare"]]
    for name in ordered:
        _say(f"{name} ...")
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix=f"gba-bench-{name}-") as directory:
            try:
                results[name] = await SCENARIOS[name](Path(directory), results)
            except Exception as exc:  # a scenario that cannot run says so; the others go on
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
                log = Path(directory) / "gateway.log"
                if log.exists():  # the folder goes away: show why before it does
                    print(*log.read_text(errors="replace").splitlines()[-20:], sep="\n")
        figures = results[name]
        failed = f" FAILED {figures['error']}" if "error" in figures else ""
        failed += " (the signed pool ran out)" if figures.get("pool_exhausted") else ""
        _say(
            f"{name}: {figures.get('accepted_per_s', 0):,.1f} accepted/s, "
            f"p50 {figures.get('p50_ms', 0):,.1f} ms, p99 {figures.get('p99_ms', 0):,.1f} ms "
            f"({time.monotonic() - started:.0f} s){failed}"
        )
    return results


def write_bench(names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Run the chosen scenarios (all by default; ``bare`` always, first), print the tables
    and write ``bench/results/write.json`` and ``write.md``."""
    results = asyncio.run(_run(names or list(SCENARIOS)))
    table = tables(results)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "write.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    (RESULTS / "write.md").write_text(table)
    print(table, flush=True)
    return results
