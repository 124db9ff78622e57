"""What every drill shares: the gateway as a child process (start, SIGKILL, restart, stop),
signed calls to it, reads of its database, VmRSS sampling and the progress line.

The partner endpoints are in :mod:`bench.drills.partner`, the load clients with idempotent
retries in :mod:`bench.drills.load`. Everything talks to the gateway the way a partner system
would (signed HTTP); the database is read only to report what the gateway itself believes
(outbox states, retry schedule).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import json
import os
import random
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.sandbox.agencies import ensure_agency_key, sandbox_agency
from gateway.sandbox.personas import persona
from gateway.sandbox.samples import INDIVIDUAL_BUSINESS, hk_individual_business
from gateway.store.database import create_engine
from gateway.store.tables import applications, outbox, timeline
from gateway.trust.keys import (
    SigningKey,
)
from gateway.trust.profile import sign_request

BIN = Path(sys.executable).parent
SUBMITTER = "hk-ird"  # the sandbox agency whose key signs every submission
MATTER = INDIVIDUAL_BUSINESS
REQUEST_TIMEOUT = 15.0  # a submission that takes longer than this is a hang
CHANCE = random.Random()  # noqa: S311 - kill moments and retry pauses, not cryptography


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@functools.cache
def _libc() -> Any:
    return ctypes.CDLL("libc.so.6", use_errno=True)


def _die_with_parent() -> None:
    """In the child, before exec: SIGKILL when the drill dies, so that no gateway outlives
    it (Linux ``PR_SET_PDEATHSIG``). libc is loaded in the parent: a forked child of a
    process with threads must not take the loader's lock."""
    with contextlib.suppress(Exception):
        _libc().prctl(1, signal.SIGKILL)


class Gateway:
    """``gba-gateway sandbox`` (or ``command``, e.g. ``serve --config F``) as a child
    process: start, SIGKILL, restart, stop."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        env: Mapping[str, str] | None = None,
        command: Sequence[str] | None = None,
    ) -> None:
        self.data_dir, self.port = data_dir, port
        self.command = list(
            command or ("sandbox", "--port", str(port), "--data-dir", str(data_dir))
        )
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "GBA_LOG_FORMAT": "json",
            "GBA_LOG_LEVEL": "warning",
            "GBA_RATE_LIMIT_PARTNER": "0",  # drills load the gateway on purpose
            **(env or {}),
        }
        self.process: asyncio.subprocess.Process | None = None
        self.starts: list[float] = []  # seconds from spawn to /readyz 200, each start
        self.kills = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    async def start(self, patience: float = 90.0) -> float:
        """Spawn the gateway and wait for ``/readyz`` 200; returns the seconds it took."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        _libc()
        started = time.monotonic()
        with (self.data_dir / "gateway.log").open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                str(BIN / "gba-gateway"),
                *self.command,
                stdout=log,
                stderr=log,
                env=self.env,
                preexec_fn=_die_with_parent,
            )
        async with aiohttp.ClientSession() as session:
            while time.monotonic() - started < patience:
                if self.process.returncode is not None:
                    raise RuntimeError(f"the gateway exited ({self.process.returncode}); see log")
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    async with session.get(f"{self.url}/readyz", timeout=timeout(2)) as answer:
                        if answer.status == 200:
                            self.starts.append(time.monotonic() - started)
                            return self.starts[-1]
                await asyncio.sleep(0.1)
        raise RuntimeError(f"the gateway was not ready within {patience:.0f} s")

    async def kill(self) -> None:
        """SIGKILL (counted): no shutdown, no last checkpoint, leases left as they were."""
        if await self._signal(signal.SIGKILL):
            self.kills += 1

    async def stop(self) -> None:
        """SIGTERM (a clean shutdown), then SIGKILL after 20 s."""
        try:
            async with asyncio.timeout(20):
                await self._signal(signal.SIGTERM)
        except TimeoutError:
            await self._signal(signal.SIGKILL)

    async def _signal(self, signum: int) -> bool:
        """Signal the running gateway and wait for it to end; False if none was running."""
        if self.process is None or self.process.returncode is not None:
            return False
        self.process.send_signal(signum)
        await self.process.wait()
        return True

    def rss_kb(self) -> int | None:
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except (OSError, AssertionError):
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return None

    async def operate(self, *argv: str) -> tuple[int, str]:
        """``gba-gateway ARGV --sandbox`` on this gateway's database and keys."""
        env = {**self.env, "GBA_SANDBOX_DIR": str(self.data_dir)}
        child = await asyncio.create_subprocess_exec(
            str(BIN / "gba-gateway"),
            *argv,
            "--sandbox",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await child.communicate()
        return child.returncode or 0, out.decode().strip()

    async def audit_verify(self) -> tuple[bool, str]:
        """``gba-gateway audit verify``: True when the chain is intact, and its last line."""
        code, out = await self.operate("audit", "verify")
        return code == 0, out.splitlines()[-1] if out else ""


def timeout(seconds: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=seconds)


def submitter_key(gateway: Gateway) -> SigningKey:
    return ensure_agency_key(gateway.data_dir, sandbox_agency(SUBMITTER))


def sample_body() -> bytes:
    return hk_individual_business(persona("chan-tai-man"))


async def call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    key: SigningKey | None = None,
    json_body: Any = None,
) -> tuple[int, Any]:
    """One request (signed when ``key`` is given); the status and the JSON answer."""
    body = None if json_body is None else json.dumps(json_body).encode()
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if key is not None:
        headers = sign_request(method=method, url=url, key=key, now=datetime.now(UTC), body=body)
    async with session.request(method, url, data=body, headers=headers) as answer:
        raw = await answer.read()
        try:
            return answer.status, json.loads(raw) if raw else None
        except ValueError:
            return answer.status, raw.decode(errors="replace")


# ---- the gateway's own records, and the process's memory ---------------------------------


class Records:
    """Reads of the gateway's database (SQLite file or PostgreSQL schema)."""

    def __init__(self, url: str, schema: str | None = None) -> None:
        self.url, self.schema = url, schema
        self._engine: AsyncEngine | None = None

    @property
    def engine(self) -> AsyncEngine:
        """Made at the first read: an SQLite engine creates its file (0600) at once, and the
        gateway's data folder does not exist before the gateway has started."""
        if self._engine is None:
            self._engine = create_engine(self.url, schema=self.schema)
        return self._engine

    async def outbox_states(self, destination: str) -> Counter[str]:
        query = (
            sa.select(outbox.c.status, sa.func.count())
            .where(outbox.c.destination == destination)
            .group_by(outbox.c.status)
        )
        async with self.engine.connect() as conn:
            return Counter({status: n for status, n in (await conn.execute(query)).all()})

    async def applications(self, submitted_by: str = SUBMITTER) -> int:
        query = sa.select(sa.func.count()).where(applications.c.submitted_by == submitted_by)
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def outbox_rows(self, destination: str) -> list[Any]:
        query = sa.select(
            outbox.c.id,
            outbox.c.application_id,
            outbox.c.status,
            outbox.c.attempts,
            outbox.c.created_at,
            outbox.c.delivered_at,
        ).where(outbox.c.destination == destination)
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).all())

    async def retries(self) -> list[tuple[datetime, dict[str, Any]]]:
        """Every ``message.retry_scheduled`` timeline event: when, and its data."""
        query = sa.select(timeline.c.at, timeline.c.data).where(
            timeline.c.type == "message.retry_scheduled"
        )
        async with self.engine.connect() as conn:
            return [(at, dict(data)) for at, data in (await conn.execute(query)).all()]

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()


class RssSampler:
    """VmRSS of a process every second (kB), as (seconds since start, kB)."""

    def __init__(self, gateway: Gateway, every: float = 1.0) -> None:
        self.gateway, self.every = gateway, every
        self.samples: list[tuple[float, int]] = []
        self.marks: dict[str, int] = {}  # moment -> VmRSS (kB) then
        self._task: asyncio.Task[None] | None = None
        self._t0 = time.monotonic()

    def mark(self, moment: str) -> None:
        rss = self.gateway.rss_kb()
        if rss is not None:
            self.marks[moment] = rss

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            rss = self.gateway.rss_kb()
            if rss is not None:
                self.samples.append((time.monotonic() - self._t0, rss))
            await asyncio.sleep(self.every)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


class Ticker:
    """Prints ``say()`` every few seconds until stopped: the drill's progress line."""

    def __init__(self, name: str, say: Callable[[], str], every: float = 5.0) -> None:
        self.name, self.say, self.every = name, say, every
        self._t0 = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    def line(self, text: str) -> None:
        print(f"[{self.name} {time.monotonic() - self._t0:6.1f}s] {text}", flush=True)

    def __enter__(self) -> Ticker:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.every)
            self.line(self.say())
