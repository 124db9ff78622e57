"""crash: SIGKILL the gateway at random moments while clients submit, restart it each time.

Sixteen clients submit signed applications without pause (up to ``TARGET``, for at most
``LOAD_SECONDS``); each is retried with the same
Idempotency-Key and body after a connection error or a 5xx until a 202 comes. Every 2-6 s of
uptime the gateway (SQLite) is killed with SIGKILL and started again; the drill's own partner
agency is registered again and the matter routed to it before the load resumes (routes live
in memory). After the last kill the load runs on quietly, then the relay drains: a message
that was in flight at a kill waits out its 60 s lease and is sent again. Then: every 202
is stored (GET as the submitting agency), delivered once to the partner (which counts every
POST per message id), and ``gba-gateway audit verify`` passes.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import time
from pathlib import Path

import aiohttp

from bench.drills.harness import CHANCE, MATTER, Gateway, Records, Ticker, free_port, submitter_key
from bench.drills.load import Load, stored
from bench.drills.partner import CountingPartner
from bench.drills.verdict import Verdict, delivery_counts

WORKERS = 16
TARGET = 2000  # applications; the load stops at TARGET or after LOAD_SECONDS
LOAD_SECONDS = 110.0
KILLS_UNTIL = 95.0  # a SIGKILL every KILL_EVERY seconds of uptime, until here
KILL_EVERY = (2.0, 6.0)
DRAIN_SECONDS = 90.0  # a message leased at the last kill is claimed again after 60 s


async def run(workdir: Path) -> Verdict:
    verdict = Verdict("crash")
    began = time.monotonic()
    gateway = Gateway(workdir / "crash", free_port())
    partner = CountingPartner()
    await partner.start()
    records = Records(f"sqlite:///{gateway.data_dir}/gateway.db")
    try:
        async with aiohttp.ClientSession() as session:
            await gateway.start()
            await partner.trust(session, gateway.url)
            await partner.register(session, gateway.url)
            load = Load(
                session,
                f"{gateway.url}/v1/applications",
                submitter_key(gateway),
                prefix=f"crash-{secrets.token_hex(4)}",
            )
            await _load_and_kill(gateway, partner, load, session)
            drained = await _drain(partner, load, records)
            views = await stored(load, gateway.url)
            states = await records.outbox_states(partner.agency_id)
            in_database = await records.applications()
            misrouted = sum(
                1 for v in views.values() if v["handlers"][0]["agency_id"] != partner.agency_id
            )
        await gateway.stop()
        audit_ok, audit_line = await gateway.audit_verify()
    finally:
        await gateway.stop()
        await partner.stop()
        await records.close()
    delivery_counts(verdict, load, partner.received(), views, in_database)
    verdict.counts["audit_chain_ok"] = audit_ok
    verdict.check("audit chain verifies", audit_ok, audit_line)
    verdict.check(
        "the gateway's outbox is settled: every forward delivered",
        set(states) <= {"delivered"},
        f"outbox {dict(states)}",
    )
    verdict.check("every case was routed to the drill partner", misrouted == 0, f"{misrouted}")
    broken = sum(1 for a in load.answers if a.status is None)
    verdict.check(
        "the gateway was killed under load",
        gateway.kills > 0 and broken > 0,
        f"{gateway.kills} kills broke {broken} requests in flight",
    )
    restarts = gateway.starts[1:]
    verdict.figures.update(
        {
            "kills (SIGKILL)": gateway.kills,
            "restart to ready, s": {
                "mean": statistics.fmean(restarts) if restarts else 0.0,
                "max": max(restarts, default=0.0),
            },
            "outbox": dict(states),
            "drain after load, s": drained,
            "matter": MATTER,
        }
    )
    verdict.seconds = time.monotonic() - began
    return verdict


async def _load_and_kill(
    gateway: Gateway, partner: CountingPartner, load: Load, session: aiohttp.ClientSession
) -> None:
    t0 = time.monotonic()

    def progress() -> str:
        return (
            f"accepted {len(load.accepted):,} of {load.started:,}, client retries "
            f"{load.retries:,}, kills {gateway.kills}, partner processed "
            f"{len(partner.deliveries):,} (redeliveries {partner.redeliveries})"
        )

    def stop_at(elapsed: float) -> bool:
        return elapsed > LOAD_SECONDS or load.started >= TARGET

    async def chaos() -> None:
        while True:
            await asyncio.sleep(CHANCE.uniform(*KILL_EVERY))
            if time.monotonic() - t0 > KILLS_UNTIL or load.started >= TARGET:
                return
            load.gate.clear()  # no new attempts until the partner is routed again
            await gateway.kill()
            await gateway.start()
            await partner.register(session, gateway.url)
            load.gate.set()

    with Ticker("crash", progress):
        async with asyncio.TaskGroup() as group:
            group.create_task(load.closed_loop(WORKERS, lambda: stop_at(time.monotonic() - t0)))
            group.create_task(chaos())


async def _drain(partner: CountingPartner, load: Load, records: Records) -> float:
    """Wait until the outbox is settled and the partner has every accepted application."""
    started = time.monotonic()
    wanted = set(load.accepted.values())
    states = await records.outbox_states(partner.agency_id)

    def progress() -> str:
        return f"draining: outbox {dict(states)}, partner processed {len(partner.deliveries):,}"

    with Ticker("crash", progress):
        while time.monotonic() - started < DRAIN_SECONDS:
            states = await records.outbox_states(partner.agency_id)
            settled = set(states) <= {"delivered", "dead"}
            if settled and wanted <= set(partner.application.values()):
                break
            await asyncio.sleep(0.5)
    return round(time.monotonic() - started, 1)
