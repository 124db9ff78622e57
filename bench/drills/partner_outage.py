"""partner-outage: the lead partner is down for a minute under a steady load, then back.

The sandbox agency ``gd-hq-csb`` (the catalog's lead for the individual-business matter)
is switched down through the fault API (``PATCH /sandbox/v1/agencies/gd-hq-csb/faults
{"down": true}``: its inbox answers 503 and keeps nothing) for ``DOWN_SECONDS`` while new
applications keep arriving at ``RATE`` per second; then it is switched up and the relay
drains. Checks: every 202 stored and delivered once after the partner returns, with no dead
letter and no operator action; the retry delays carry jitter at every attempt (from the
``message.retry_scheduled`` timeline events: delay = ``next_attempt_at`` - event time);
the gateway's memory (VmRSS, sampled every second) stays flat. Dead letters, if any, are
then requeued as an operator would (``gba-gateway outbox requeue``) to show nothing was lost.

The relay's backoff comes from the environment like the gateway's (sandbox defaults 0.25 s
and 5 s); ``GBA_RELAY_BACKOFF_MAX=30 python -m bench.drills partner-outage`` tries another.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from bench.drills.harness import (
    Gateway,
    Records,
    RssSampler,
    Ticker,
    call,
    free_port,
    submitter_key,
)
from bench.drills.load import Load, stored
from bench.drills.partner import Received, sandbox_inbox
from bench.drills.verdict import Verdict, delivery_counts

PARTNER = "gd-hq-csb"
RATE = 3.0  # new applications per second, all along
WARM_SECONDS, DOWN_SECONDS, AFTER_SECONDS = 15.0, 60.0, 15.0
DRAIN_SECONDS = 45.0
RSS_GROWTH_MB = 48.0  # allowed growth, load start to end (the sandbox inbox keeps messages)
OUTAGE_GROWTH_MB = 16.0  # allowed growth while the partner is down (the backlog is in the DB)
# Each attempt number's delays must spread: a standard deviation of at least a tenth of their
# mean (a first wait of 0.25 s cannot spread by 0.1 s; a capped one of 5 s must spread more).
JITTER_CV = 0.1


async def run(workdir: Path) -> Verdict:
    verdict = Verdict("partner-outage")
    began = time.monotonic()
    gateway = Gateway(workdir / "partner-outage", free_port())
    records = Records(f"sqlite:///{gateway.data_dir}/gateway.db")
    rss = RssSampler(gateway)
    try:
        async with aiohttp.ClientSession() as session:
            await gateway.start()
            await call(session, "DELETE", f"{gateway.url}/sandbox/v1/agencies/{PARTNER}/faults")
            load = Load(
                session,
                f"{gateway.url}/v1/applications",
                submitter_key(gateway),
                prefix=f"outage-{secrets.token_hex(4)}",
            )
            rss.start()
            back_at = await _load_with_outage(gateway, session, load, records, rss)
            drained = await _drain(records)
            before = await records.outbox_states(PARTNER)
            rows = await records.outbox_rows(PARTNER)
            events = await records.retries()
            await rss.stop()
            requeued = await _requeue(gateway, records) if before.get("dead") else ""
            received = await sandbox_inbox(session, gateway.url, PARTNER)
            views = await stored(load, gateway.url)
            in_database = await records.applications()
        await gateway.stop()
        audit_ok, audit_line = await gateway.audit_verify()
    finally:
        await rss.stop()
        await gateway.stop()
        await records.close()
    _judge(verdict, load, received, views, in_database, before, rows, back_at)
    if requeued:
        verdict.figures["after operator requeue"] = requeued
    _judge_retries(verdict, events)
    _judge_memory(verdict, rss)
    verdict.counts["audit_chain_ok"] = audit_ok
    verdict.check("audit chain verifies", audit_ok, audit_line)
    verdict.figures["drain after load, s"] = drained
    verdict.seconds = time.monotonic() - began
    return verdict


async def _load_with_outage(
    gateway: Gateway,
    session: aiohttp.ClientSession,
    load: Load,
    records: Records,
    rss: RssSampler,
) -> datetime:
    """The load, with the partner down in its middle; returns when it came back (UTC)."""
    back: list[datetime] = []
    states: Counter[str] = Counter()
    phase = ["healthy"]

    def progress() -> str:
        return (
            f"partner {phase[0]}: accepted {len(load.accepted):,}, outbox {dict(states)}, "
            f"RSS {gateway.rss_kb() or 0:,} kB"
        )

    async def outage() -> None:
        faults = f"{gateway.url}/sandbox/v1/agencies/{PARTNER}/faults"
        await asyncio.sleep(WARM_SECONDS)
        rss.mark("partner down")
        await _switch(session, faults, down=True)
        phase[0] = "DOWN"
        await asyncio.sleep(DOWN_SECONDS)
        await _switch(session, faults, down=False)
        back.append(datetime.now(UTC))
        rss.mark("partner back")
        phase[0] = "back up"

    async def watch() -> None:
        while True:
            states.clear()
            states.update(await records.outbox_states(PARTNER))
            await asyncio.sleep(1)

    with Ticker("partner-outage", progress):
        async with asyncio.TaskGroup() as group:
            switch = group.create_task(outage())
            watcher = group.create_task(watch())
            await load.open_loop(RATE, WARM_SECONDS + DOWN_SECONDS + AFTER_SECONDS)
            await switch
            watcher.cancel()
    return back[0]


async def _switch(session: aiohttp.ClientSession, faults: str, *, down: bool) -> None:
    status, answer = await call(session, "PATCH", faults, json_body={"down": down})
    if status != 200 or answer.get("down") is not down:
        raise RuntimeError(f"the fault switch answered {status}: {answer}")


async def _drain(records: Records) -> float:
    """Until no forward to the partner is pending or in flight (dead ones stay dead)."""
    started = time.monotonic()
    states = await records.outbox_states(PARTNER)
    with Ticker("partner-outage", lambda: f"draining: outbox {dict(states)}"):
        while time.monotonic() - started < DRAIN_SECONDS:
            states = await records.outbox_states(PARTNER)
            if not states.get("pending") and not states.get("in_flight"):
                break
            await asyncio.sleep(0.5)
    return round(time.monotonic() - started, 1)


async def _requeue(gateway: Gateway, records: Records) -> str:
    """What an operator would do about dead letters; then wait for them to be delivered."""
    code, out = await gateway.operate("outbox", "requeue", "--destination", PARTNER)
    started = time.monotonic()
    states = await records.outbox_states(PARTNER)
    while time.monotonic() - started < 30 and set(states) != {"delivered"}:
        await asyncio.sleep(0.5)
        states = await records.outbox_states(PARTNER)
    waited = time.monotonic() - started
    said = out.splitlines()[-1] if out else ""
    return f"`outbox requeue` ({code}: {said}); {waited:.0f} s later outbox {dict(states)}"


def _judge(
    verdict: Verdict,
    load: Load,
    received: Received,
    views: dict[str, Any],
    in_database: int,
    before: Counter[str],
    rows: list[Any],
    back_at: datetime,
) -> None:
    delivery_counts(verdict, load, received, views, in_database)
    dead = before.get("dead", 0)
    verdict.counts["dead_lettered"] = dead
    verdict.check(
        "everything delivered after the partner returned, no operator action",
        set(before) <= {"delivered"},
        f"outbox at the end of the drain {dict(before)}",
    )
    late = [(r.delivered_at - back_at).total_seconds() for r in rows if r.delivered_at]
    late = [s for s in late if s > 0]
    waited = [r.attempts for r in rows]
    verdict.figures.update(
        {
            "outbox at the end of the drain": dict(before),
            "messages delivered after the partner returned": len(late),
            "last delivery after the partner returned, s": round(max(late, default=0.0), 1),
            "failed attempts per message": {
                "max": max(waited, default=0),
                "mean": statistics.fmean(waited) if waited else 0.0,
            },
        }
    )
    verdict.check("the outage was felt (messages waited for it)", bool(late), f"{len(late)}")


def _judge_retries(verdict: Verdict, events: list[tuple[datetime, dict[str, Any]]]) -> None:
    """The spread of retry delays per attempt number, and of retry moments across messages."""
    delays: dict[int, list[float]] = defaultdict(list)
    due_per_second: Counter[int] = Counter()
    for at, data in events:
        if data.get("agency") != PARTNER:
            continue
        due = datetime.fromisoformat(data["next_attempt_at"])
        delays[int(data["attempt"])].append((due - at).total_seconds())
        due_per_second[int(due.timestamp())] += 1
    table = {
        f"attempt {n}": {
            "n": len(d),
            "mean_s": round(statistics.fmean(d), 3),
            "stdev_s": round(statistics.pstdev(d), 3),
            "min_s": round(min(d), 3),
            "max_s": round(max(d), 3),
        }
        for n, d in sorted(delays.items())
    }
    verdict.figures["retry delay by attempt (next_attempt_at - failure)"] = table
    everything = [x for d in delays.values() for x in d]
    if everything:
        verdict.figures["retry delays, all"] = {
            "n": len(everything),
            "mean_s": statistics.fmean(everything),
            "stdev_s": statistics.pstdev(everything),
        }
        span = max(due_per_second) - min(due_per_second) + 1
        verdict.figures["retries due per second"] = {
            "mean": len(everything) / span,
            "max": max(due_per_second.values()),
        }
        backoff_max = float(os.environ.get("GBA_RELAY_BACKOFF_MAX", "5"))
        verdict.figures["retry delays exactly at the cap"] = sum(
            1 for x in everything if abs(x - backoff_max) < 0.001
        )
    flat = [
        f"{n} (stdev {row['stdev_s']} s, mean {row['mean_s']} s)"
        for n, row in table.items()
        if row["n"] >= 10 and row["stdev_s"] < JITTER_CV * row["mean_s"]
    ]
    verdict.check("retries were scheduled", bool(everything), f"{len(everything)} retries")
    verdict.check(
        f"retry delays jittered at every attempt (stdev >= {JITTER_CV} x mean)",
        bool(everything) and not flat,
        "no jitter at " + ", ".join(flat) if flat else "",
    )


def _judge_memory(verdict: Verdict, rss: RssSampler) -> None:
    samples = [kb for _, kb in rss.samples]
    if not samples:
        verdict.check("gateway memory sampled", False)
        return
    start, peak, end = samples[0] / 1024, max(samples) / 1024, samples[-1] / 1024
    down = rss.marks.get("partner down", 0) / 1024
    back = rss.marks.get("partner back", 0) / 1024
    verdict.figures["gateway VmRSS, MB"] = {
        "start": start,
        "partner down": down,
        "partner back": back,
        "peak": peak,
        "end": end,
        "samples": len(samples),
    }
    verdict.check(
        f"gateway memory flat (end - start <= {RSS_GROWTH_MB:.0f} MB, "
        f"outage growth <= {OUTAGE_GROWTH_MB:.0f} MB)",
        end - start <= RSS_GROWTH_MB and back - down <= OUTAGE_GROWTH_MB,
        f"start {start:.0f} MB, down {down:.0f}, back {back:.0f}, peak {peak:.0f}, end {end:.0f}",
    )
