"""``python -m bench.load``: the write bench's load generator, in a process of its own.

Every request is signed BEFORE the clock starts (a pool of RFC 9421-signed HK XML
submissions, each with its own nonce and Idempotency-Key), so the generator's CPU is not in
the measurement: during the run a client only takes the next prepared request and sends it.
``CLIENTS`` clients at once, each one request at a time (closed loop), for a warm-up and
then a measured window; bounded in count (the pool) and in time. Only 127.0.0.1 is a target.

The result is one JSON object on standard output (progress goes to standard error): requests
completed in the window per second, p50/p99 latency, the statuses seen, and the window's
wall-clock start and end (so that another reader can count what happened inside it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from gateway.sandbox.personas import persona
from gateway.sandbox.samples import hk_individual_business, legal_basis_headers
from gateway.trust.keys import SigningKey, load_private_key
from gateway.trust.profile import sign_request

CLIENTS = 64
# signed requests prepared (about 3 s of signing): 2,500/s for 15 s; when they run out the
# measured window ends there and the summary says ``pool_exhausted``
POOL = 40_000
ACCEPTED = (200, 202)


@dataclass(frozen=True, slots=True)
class Prepared:
    headers: dict[str, str]


def sample_body() -> bytes:
    return hk_individual_business(persona("chan-tai-man"))


def presign(url: str, key: SigningKey, body: bytes, count: int, prefix: str) -> list[Prepared]:
    """``count`` signed submissions of ``body`` to ``url``, each with a fresh nonce and its
    own Idempotency-Key (``prefix``-n)."""
    now = datetime.now(UTC)
    return [
        Prepared(
            sign_request(
                method="POST",
                url=url,
                key=key,
                now=now,
                body=body,
                content_type="application/xml",
                idempotency_key=f"{prefix}-{index:07d}",
                extra_headers=legal_basis_headers(),  # every agency submission declares its basis
            )
        )
        for index in range(count)
    ]


def percentile(ordered: Sequence[float], q: float) -> float:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ascending ``ordered``; 0.0
    when there is nothing."""
    if not ordered:
        return 0.0
    rank = max(1, -(-len(ordered) * q // 100))  # ceil(n * q / 100), at least 1
    return float(ordered[int(rank) - 1])


@dataclass
class Run:
    """What the clients saw: (started, seconds, status) per request (monotonic clock)."""

    samples: list[tuple[float, float, int]]
    window: tuple[float, float]  # monotonic start and end of the measured window
    wall: tuple[float, float]  # the same moments as UNIX times
    exhausted: bool

    def summary(self) -> dict[str, object]:
        start, end = self.window
        inside = [s for s in self.samples if s[0] >= start and s[0] + s[1] <= end]
        latencies = sorted(s[1] for s in inside)
        accepted = sum(1 for s in inside if s[2] in ACCEPTED)
        seconds = max(end - start, 1e-9)
        return {
            "accepted_per_s": accepted / seconds,
            "completed": len(inside),
            "accepted": accepted,
            "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000,
            "statuses": {str(k): v for k, v in sorted(Counter(s[2] for s in self.samples).items())},
            "window_s": seconds,
            "window_start": self.wall[0],
            "window_end": self.wall[1],
            "pool_exhausted": self.exhausted,
            "sent": len(self.samples),
        }


async def drive(
    url: str,
    body: bytes,
    pool: Sequence[Prepared],
    *,
    clients: int,
    warmup: float,
    seconds: float,
    cycle: bool = False,
) -> Run:
    """``clients`` closed-loop clients over ``pool`` (reused round and round when ``cycle``:
    for a target that checks no signature) for ``warmup`` + ``seconds``."""
    if urlsplit(url).hostname != "127.0.0.1":
        raise ValueError("the load generator only targets 127.0.0.1")
    samples: list[tuple[float, float, int]] = []
    position = 0
    exhausted = False
    begin = time.monotonic()
    start, end = begin + warmup, begin + warmup + seconds
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client() -> None:
            nonlocal position, exhausted
            while time.monotonic() < end:
                if position >= len(pool):
                    if not cycle:
                        exhausted = True
                        return
                    position = 0
                prepared = pool[position]
                position += 1
                sent = time.monotonic()
                try:
                    async with session.post(url, data=body, headers=prepared.headers) as answer:
                        await answer.read()
                        status = answer.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                samples.append((sent, time.monotonic() - sent, status))

        async def progress() -> None:
            while True:
                await asyncio.sleep(5)
                done = sum(1 for s in samples if s[0] >= start)
                print(
                    f"  load: {time.monotonic() - begin:5.1f}s, {done} in window", file=sys.stderr
                )

        ticker = asyncio.create_task(progress())
        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(clients):
                    group.create_task(client())
        finally:
            ticker.cancel()
    finished = time.monotonic()
    end = min(end, finished) if exhausted else end
    offset = time.time() - time.monotonic()
    return Run(samples, (start, end), (start + offset, end + offset), exhausted)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load", description=__doc__)
    parser.add_argument("--url", required=True, help="http://127.0.0.1:PORT/v1/applications")
    parser.add_argument("--key", type=Path, required=True, help="the submitter's private key")
    parser.add_argument("--kid", required=True)
    parser.add_argument("--alg", required=True)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--pool", type=int, default=POOL)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--cycle", action="store_true", help="reuse the pool (bare baseline)")
    parser.add_argument("--prefix", default="bench")
    args = parser.parse_args(argv)
    key = SigningKey(args.kid, load_private_key(args.key), args.alg)
    body = sample_body()
    started = time.monotonic()
    pool = presign(args.url, key, body, args.pool, args.prefix)
    print(
        f"  load: {len(pool)} requests signed in {time.monotonic() - started:.1f}s", file=sys.stderr
    )
    run = asyncio.run(
        drive(
            args.url,
            body,
            pool,
            clients=args.clients,
            warmup=args.warmup,
            seconds=args.seconds,
            cycle=args.cycle,
        )
    )
    print(json.dumps(run.summary()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
