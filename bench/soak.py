"""``python -m bench write --scenario soak``: the gateway's memory over a 60 s run at full load.

``gba-gateway serve`` (production settings, SQLite, ``synchronous=FULL``, relay paused: the
accept path, where the committer's queue and the in-memory nonce and Idempotency-Key checks
live) under the write bench's load generator (:mod:`bench.load`, 64 clients, a process of its
own) for ``SECONDS``. The gateway's resident set (``VmRSS`` from ``/proc/PID/status``) is read
every second. The first ``WARM_UP`` seconds are warm-up (caches, pools, the allocator's
arenas); the figure is the growth over the rest, the last 40 s: the mean of its last three
samples over the mean of its first three, in percent, with the least-squares slope in MB per
minute beside it. Target (issue 14, "memory stays flat"): growth < 10 %.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.drills.harness import Gateway, free_port

SECONDS = 60.0
WARM_UP = 20.0  # of SECONDS; the growth is measured over the rest
POOL = 150_000  # signed requests: 60 s at 2,500/s (if they run out, the window ends there)


def rss_kb(pid: int) -> int | None:
    """The process's ``VmRSS`` in kB, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


async def sample_rss(pid: int, samples: list[tuple[float, int]], every: float = 1.0) -> None:
    """Append (UNIX time, VmRSS kB) every ``every`` seconds until cancelled."""
    while True:
        rss = rss_kb(pid)
        if rss is not None:
            samples.append((time.time(), rss))
        await asyncio.sleep(every)


def growth(samples: Sequence[tuple[float, int]], start: float, end: float) -> dict[str, Any]:
    """RSS figures of the samples between ``start`` and ``end`` (UNIX times), the span after
    the warm-up: its growth in percent (mean of the last 3 over the mean of the first 3), the
    least-squares slope in MB/min, its first, last and peak RSS in MB."""
    span = [(t, kb / 1024) for t, kb in samples if start <= t <= end]
    if len(span) < 6:
        return {"rss_samples": len(span)}
    first = sum(mb for _, mb in span[:3]) / 3
    last = sum(mb for _, mb in span[-3:]) / 3
    mean_t = sum(t for t, _ in span) / len(span)
    mean_mb = sum(mb for _, mb in span) / len(span)
    slope = sum((t - mean_t) * (mb - mean_mb) for t, mb in span) / sum(
        (t - mean_t) ** 2 for t, _ in span
    )
    return {
        "rss_growth_pct": (last / first - 1) * 100,
        "rss_slope_mb_per_min": slope * 60,
        "rss_after_warm_up_mb": first,
        "rss_end_mb": last,
        "rss_peak_mb": max(mb for _, mb in span),
        "rss_samples": len(span),
        "measured_s": span[-1][0] - span[0][0],
    }


async def soak(workdir: Path, ctx: dict[str, Any]) -> dict[str, Any]:
    from bench.production import production
    from bench.write import PAUSED, _figures, _generate  # bench.write lists this scenario

    port = free_port()
    config = production(workdir, port, f"sqlite:///{workdir}/gateway.db", "")
    gateway = Gateway(workdir, port, env=PAUSED, command=["serve", "--config", str(config)])
    await gateway.start()
    samples: list[tuple[float, int]] = []
    sampler = asyncio.create_task(sample_rss(gateway.pid, samples))
    try:
        load = await _generate(
            f"{gateway.url}/v1/applications",
            workdir / "submitter.pem",
            "hk-ird-bench",
            "ed25519",
            warmup=0.0,
            seconds=SECONDS,
            pool=POOL,
        )
    finally:
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await gateway.stop()
    start, end = load["window_start"], load["window_end"]
    figures = _figures(load, ctx.get("bare"))
    figures.update(growth(samples, start + WARM_UP, end))
    figures["rss_start_mb"] = next((kb / 1024 for t, kb in samples if t >= start), None)
    figures["rss_mb_per_second"] = [round(kb / 1024, 1) for t, kb in samples if start <= t <= end]
    return figures
