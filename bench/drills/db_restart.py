"""db-restart: PostgreSQL is stopped for a few seconds under load, then started again.

The gateway runs on PostgreSQL (``GBA_DATABASE_URL``, by default the shared test database)
in a fresh schema of its own (``GBA_DATABASE_SCHEMA``), dropped at the end. While signed
submissions arrive at a steady rate and ``/readyz`` is probed four times a second, the
cluster is checkpointed, stopped (``pg_ctlcluster --skip-systemctl-redirect V main stop``,
fast mode: every connection is cut), left down ``AWAY_SECONDS`` and started again, always,
in a ``finally``. Checks: while the database is away ``/readyz`` answers 503 problem+json and
every submission is refused cleanly (503 ``application/problem+json``, never a 500, never a
hang); after it is back, readiness returns and submissions are accepted again; every 202
is stored and delivered once to the drill's partner; the audit chain verifies.

Other people use the same PostgreSQL: the outage is kept short, done once per run.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.drills.harness import (
    REQUEST_TIMEOUT,
    Gateway,
    Records,
    Ticker,
    free_port,
    submitter_key,
    timeout,
)
from bench.drills.load import Answer, Load, stored
from bench.drills.partner import CountingPartner
from bench.drills.verdict import Verdict, delivery_counts, kinds
from gateway.store.database import create_engine

POSTGRES = os.environ.get("GBA_TEST_POSTGRES_DSN") or "postgresql://postgres@127.0.0.1:5432/test"
PG_CTLCLUSTER = shutil.which("pg_ctlcluster") or "/usr/bin/pg_ctlcluster"
RATE = 6.0  # new applications per second
WARM_SECONDS, AWAY_SECONDS, AFTER_SECONDS = 12.0, 4.0, 20.0
DRAIN_SECONDS = 40.0
READY_AGAIN_S = 10.0  # /readyz must answer 200 within this of PostgreSQL being up
SETTLE_S = 2.0  # answers started this long after PostgreSQL is up count as "after"
HANG_S = 10.0  # a refusal slower than this is a hang


@dataclass
class Outage:
    """Moments (monotonic) of the PostgreSQL restart, and the readiness probes."""

    checkpoint_s: float = 0.0  # the CHECKPOINT that keeps the shutdown short
    stop_issued: float = 0.0
    stopped: float = 0.0
    start_issued: float = 0.0
    started: float = 0.0
    probes: list[Answer] = field(default_factory=list)

    @property
    def happened(self) -> bool:
        return self.started > 0.0

    def away(self, at: float) -> bool:
        """Certainly away: after the stop completed, before the start was issued."""
        return self.stopped <= at <= self.start_issued

    def back(self, at: float) -> bool:
        return self.happened and at >= self.started + SETTLE_S

    def changing(self, at: float) -> bool:
        """While stopping, or starting and settling: either answer is fair."""
        return self.stop_issued <= at < self.stopped or self.start_issued <= at < (
            self.started + SETTLE_S
        )


async def run(workdir: Path) -> Verdict:
    verdict = Verdict("db-restart")
    began = time.monotonic()
    schema = f"drill_{secrets.token_hex(4)}"
    admin = create_engine(POSTGRES)
    async with admin.begin() as conn:
        await conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    env = {"GBA_DATABASE_URL": POSTGRES, "GBA_DATABASE_SCHEMA": schema}
    gateway = Gateway(workdir / "db-restart", free_port(), env)
    partner = CountingPartner()
    records = Records(POSTGRES, schema)
    outage = Outage()
    try:
        await partner.start()
        async with aiohttp.ClientSession() as session:
            await gateway.start()
            await partner.trust(session, gateway.url)
            await partner.register(session, gateway.url)
            load = Load(
                session,
                f"{gateway.url}/v1/applications",
                submitter_key(gateway),
                prefix=f"dbrestart-{secrets.token_hex(4)}",
                retry_pause=(0.3, 0.7),
            )
            await _load_with_restart(gateway, session, load, partner, outage, admin)
            drained = await _drain(partner, load, records)
            views = await stored(load, gateway.url)
            states = await records.outbox_states(partner.agency_id)
            in_database = await records.applications()
        await gateway.stop()
        audit_ok, audit_line = await gateway.audit_verify()
    finally:
        await gateway.stop()
        await partner.stop()
        await records.close()
        await _drop(admin, schema)
    delivery_counts(verdict, load, partner.received(), views, in_database)
    _judge_outage(verdict, load, outage)
    verdict.counts["audit_chain_ok"] = audit_ok
    verdict.check("audit chain verifies", audit_ok, audit_line)
    verdict.check(
        "the gateway's outbox is settled: every forward delivered",
        set(states) <= {"delivered"},
        f"outbox {dict(states)}",
    )
    verdict.figures["outbox"] = dict(states)
    verdict.figures["drain after load, s"] = drained
    verdict.figures["schema (dropped)"] = schema
    verdict.seconds = time.monotonic() - began
    return verdict


async def _drop(admin: AsyncEngine, schema: str) -> None:
    """Drop the drill's schema; PostgreSQL may take a moment to accept connections again."""
    for _ in range(20):
        try:
            async with admin.begin() as conn:
                await conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            break
        except Exception:
            await asyncio.sleep(1)
    await admin.dispose()


async def _pg_ctl(action: str) -> None:
    """``pg_ctlcluster V main ACTION`` in a thread: once begun it runs to its end, even if
    the drill is cancelled meanwhile (``asyncio.run`` waits for the thread)."""
    await asyncio.to_thread(_pg_ctl_now, action)


def _pg_ctl_now(action: str) -> None:
    version = os.environ.get("GBA_DRILL_PG_VERSION") or sorted(os.listdir("/etc/postgresql"))[0]
    command = [PG_CTLCLUSTER, "--skip-systemctl-redirect", version, "main", action]
    done = subprocess.run(  # noqa: S603 - our own command
        command, capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"pg_ctlcluster {action}: {(done.stdout + done.stderr).strip()}")


async def _checkpoint(admin: AsyncEngine, outage: Outage) -> None:
    """A checkpoint first: a fast shutdown waits for the one in progress and writes its own,
    which on a busy shared cluster made the database away for 14 s instead of 5-6 s."""
    started = time.monotonic()
    async with admin.connect() as conn:
        await conn.execute(sa.text("CHECKPOINT"))
    outage.checkpoint_s = time.monotonic() - started


async def _restart(outage: Outage) -> None:
    """Stop PostgreSQL, wait, start it again: always started, whatever happens."""
    try:
        outage.stop_issued = time.monotonic()
        await _pg_ctl("stop")
        outage.stopped = time.monotonic()
        await asyncio.sleep(AWAY_SECONDS)
    finally:
        outage.start_issued = time.monotonic()
        await _pg_ctl("start")
        outage.started = time.monotonic()


async def _load_with_restart(
    gateway: Gateway,
    session: aiohttp.ClientSession,
    load: Load,
    partner: CountingPartner,
    outage: Outage,
    admin: AsyncEngine,
) -> None:
    phase = ["up"]

    def progress() -> str:
        last = outage.probes[-1].status if outage.probes else None
        return (
            f"PostgreSQL {phase[0]}: accepted {len(load.accepted):,} of {load.started:,}, "
            f"answers {dict(Counter(a.status for a in load.answers))}, /readyz {last}, "
            f"partner processed {len(partner.deliveries):,}"
        )

    async def restart() -> None:
        await asyncio.sleep(WARM_SECONDS)
        phase[0] = "checkpoint"
        await _checkpoint(admin, outage)
        phase[0] = "restarting"
        await _restart(outage)
        phase[0] = "back"

    async def probe() -> None:
        patience = timeout(REQUEST_TIMEOUT)
        while not outage.happened or time.monotonic() < outage.started + AFTER_SECONDS:
            started = time.monotonic()
            try:
                async with session.get(f"{gateway.url}/readyz", timeout=patience) as answer:
                    raw = await answer.read()
                    seconds = time.monotonic() - started
                    slug = Answer.slug(raw) if answer.status >= 400 else ""
                    outage.probes.append(
                        Answer(started, seconds, answer.status, answer.content_type, slug)
                    )
            except (aiohttp.ClientError, TimeoutError) as exc:
                outage.probes.append(
                    Answer(started, time.monotonic() - started, None, error=type(exc).__name__)
                )
            await asyncio.sleep(0.25)

    with Ticker("db-restart", progress, every=2.0):
        async with asyncio.TaskGroup() as group:
            total = WARM_SECONDS + AWAY_SECONDS + AFTER_SECONDS + 3
            group.create_task(load.open_loop(RATE, total))
            group.create_task(restart())
            group.create_task(probe())


async def _drain(partner: CountingPartner, load: Load, records: Records) -> float:
    started = time.monotonic()
    wanted = set(load.accepted.values())
    states = await records.outbox_states(partner.agency_id)
    with Ticker("db-restart", lambda: f"draining: outbox {dict(states)}"):
        while time.monotonic() - started < DRAIN_SECONDS:
            states = await records.outbox_states(partner.agency_id)
            if set(states) <= {"delivered", "dead"} and wanted <= set(partner.application.values()):
                break
            await asyncio.sleep(0.5)
    return round(time.monotonic() - started, 1)


def _kinds(answers: list[Answer]) -> dict[str, int]:
    return kinds(answers, media_type=True)


def _judge_outage(verdict: Verdict, load: Load, outage: Outage) -> None:
    verdict.check("PostgreSQL was restarted", outage.happened)
    if not outage.happened:
        return
    away = [a for a in load.answers if outage.away(a.started)]
    after = [a for a in load.answers if outage.back(a.started)]
    probes_away = [p for p in outage.probes if outage.away(p.started)]
    back = [p for p in outage.probes if p.started >= outage.started and p.status == 200]
    ready_again = back[0].started + back[0].seconds - outage.started if back else None
    verdict.figures.update(
        {
            "PostgreSQL away, s": round(outage.started - outage.stop_issued, 1),
            "stop, wait, start, s": [
                round(outage.stopped - outage.stop_issued, 1),
                round(outage.start_issued - outage.stopped, 1),
                round(outage.started - outage.start_issued, 1),
            ],
            "CHECKPOINT before the stop, s": round(outage.checkpoint_s, 1),
            "submissions while away": _kinds(away),
            "submissions while stopping/starting": _kinds(
                [a for a in load.answers if outage.changing(a.started)]
            ),
            "slowest answer while away, s": round(max((a.seconds for a in away), default=0), 2),
            "/readyz while away": _kinds(probes_away),
            "/readyz 200 again after start, s": "never"
            if ready_again is None
            else round(ready_again, 2),
            f"submissions from {SETTLE_S:.0f} s after start": _kinds(after),
        }
    )
    clean = [a for a in away if a.status == 503 and a.content_type == "application/problem+json"]
    verdict.check(
        "submissions refused cleanly while away (503 problem+json)",
        bool(away) and len(clean) == len(away),
        f"{len(clean)} of {len(away)}: {_kinds(away)}",
    )
    around = [a for a in load.answers if outage.away(a.started) or outage.changing(a.started)]
    hung = [a for a in around if a.seconds > HANG_S or a.error == "TimeoutError"]
    verdict.check(
        "no submission hung around the outage", not hung, f"{len(hung)} over {HANG_S:.0f} s"
    )
    not_ready = [p for p in probes_away if p.status == 503 and "problem" in p.content_type]
    verdict.check(
        "/readyz 503 problem while away",
        bool(probes_away) and len(not_ready) == len(probes_away),
        f"{len(not_ready)} of {len(probes_away)}: {_kinds(probes_away)}",
    )
    verdict.check(
        f"/readyz 200 within {READY_AGAIN_S:.0f} s of PostgreSQL being up",
        ready_again is not None and ready_again <= READY_AGAIN_S,
        f"{ready_again:.1f} s" if ready_again is not None else "never",
    )
    failed = [a for a in after if a.status is None or a.status >= 500]
    verdict.check(
        f"no 5xx from {SETTLE_S:.0f} s after PostgreSQL is up",
        bool(after) and not failed,
        f"{len(failed)} of {len(after)}: {_kinds(failed)}",
    )
