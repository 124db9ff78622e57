"""Memory of a gateway process under sustained load: it must stay flat.

A sandbox gateway runs as its own process (``gba-gateway sandbox``, SQLite, relay and the
sandbox agencies deciding); signed submissions are sent for a while at moderate concurrency
and the process's resident set (``VmRSS``) is sampled every second. The figure is the RSS at
the end of the load, the baseline the RSS after a warm-up at the start of the same load: a
ratio near 1 is flat.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from gateway.sandbox.agencies import ensure_agency_key, sandbox_agency
from gateway.sandbox.personas import persona
from gateway.sandbox.samples import hk_individual_business, legal_basis_headers
from gateway.trust.profile import sign_request

SECONDS = float(os.environ.get("GBA_BENCH_MEMORY_SECONDS", "40"))
WARM_UP = 8.0
CONCURRENCY = 4


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def _ready(url: str, process: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if process.poll() is not None:
                raise RuntimeError("the gateway exited while starting")
            try:
                async with session.get(url + "/readyz") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("the gateway did not become ready")


async def _load(url: str, directory: Path, pid: int) -> list[tuple[float, float]]:
    key = ensure_agency_key(directory, sandbox_agency("hk-ird"))
    body = hk_individual_business(persona("chan-tai-man"))
    samples: list[tuple[float, float]] = []
    started = time.perf_counter()
    deadline = started + SECONDS

    async def submit(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            headers = sign_request(
                method="POST",
                url=url + "/v1/applications",
                key=key,
                now=datetime.now(UTC),
                body=body,
                content_type="application/xml",
                idempotency_key=secrets.token_urlsafe(12),
                extra_headers=legal_basis_headers(),  # every agency submission declares its basis
            )
            async with session.post(url + "/v1/applications", data=body, headers=headers) as r:
                await r.read()
                if r.status != 202:
                    raise RuntimeError(f"unexpected status {r.status}")

    async def sample() -> None:
        while time.perf_counter() < deadline:
            samples.append((time.perf_counter() - started, _rss_mb(pid)))
            await asyncio.sleep(1.0)

    async with aiohttp.ClientSession() as session, asyncio.TaskGroup() as group:
        group.create_task(sample())
        for _ in range(CONCURRENCY):
            group.create_task(submit(session))
    return samples


def memory() -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder, socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "GBA_LOG_LEVEL": "error",
            "GBA_LOG_FORMAT": "json",
            "GBA_RATE_LIMIT_PARTNER": "0",  # memory under load is measured, not the limit
        }
        process = subprocess.Popen(  # noqa: S603 - our own command
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "sandbox",
                "--port",
                str(port),
                "--data-dir",
                folder,
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            asyncio.run(_ready(url, process))
            samples = asyncio.run(_load(url, Path(folder), process.pid))
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    warm = [rss for at, rss in samples if at >= WARM_UP]
    start, end, peak = warm[0], sum(warm[-3:]) / len(warm[-3:]), max(warm)
    return {
        "rss_end_mb": end,
        "rss_after_warm_up_mb": start,
        "ratio": end / start,
        "rss_peak_mb": peak,
        "seconds": SECONDS,
    }


if __name__ == "__main__":
    print(json.dumps(memory(), indent=2))
