"""Load: signed submissions, each retried with the same Idempotency-Key and body after a
connection error or a 5xx until a 202; and the read-back of every accepted application."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from bench.drills.harness import CHANCE, REQUEST_TIMEOUT, call, sample_body, timeout
from gateway.sandbox.samples import legal_basis_headers
from gateway.trust.keys import SigningKey
from gateway.trust.profile import sign_request


@dataclass(slots=True)
class Answer:
    started: float  # monotonic
    seconds: float
    status: int | None  # None: no HTTP answer (connection error or timeout)
    content_type: str = ""
    error: str = ""  # the exception, when there was no answer; else the problem's type slug

    @staticmethod
    def slug(raw: bytes) -> str:
        """The last segment of a problem's ``type`` (``not-ready`` ...), or ''."""
        try:
            return str(json.loads(raw).get("type", "")).rsplit("/", 1)[-1]
        except (ValueError, AttributeError):
            return ""


@dataclass
class Load:
    """Signed submissions as ``SUBMITTER``; each retried with the same key and body after a
    connection error or a 5xx until a 202. ``gate`` cleared holds new attempts back."""

    session: aiohttp.ClientSession
    url: str
    key: SigningKey
    prefix: str
    body: bytes = field(default_factory=sample_body)
    retry_pause: tuple[float, float] = (0.2, 0.6)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    accepted: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> app id
    refused: dict[str, int] = field(default_factory=dict)  # Idempotency-Key -> 4xx
    answers: list[Answer] = field(default_factory=list)
    started: int = 0
    retries: int = 0
    replay_mismatches: int = 0  # a retry answered with another application id

    def __post_init__(self) -> None:
        self.gate.set()

    async def submit(self, index: int) -> None:
        key = f"{self.prefix}-{index:06d}"
        self.started += 1
        first = True
        while True:
            await self.gate.wait()
            if not first:
                self.retries += 1
            first = False
            answer, application_id = await self._attempt(key)
            self.answers.append(answer)
            if answer.status == 202:
                known = self.accepted.setdefault(key, application_id or "")
                self.replay_mismatches += known != application_id
                return
            if answer.status is not None and answer.status < 500:
                self.refused[key] = answer.status
                return
            await asyncio.sleep(CHANCE.uniform(*self.retry_pause))

    async def _attempt(self, key: str) -> tuple[Answer, str | None]:
        headers = sign_request(
            method="POST",
            url=self.url,
            key=self.key,
            now=datetime.now(UTC),
            body=self.body,
            content_type="application/xml",
            idempotency_key=key,
            extra_headers=legal_basis_headers(),  # every agency submission declares its basis
        )
        started = time.monotonic()
        try:
            async with self.session.post(
                self.url, data=self.body, headers=headers, timeout=timeout(REQUEST_TIMEOUT)
            ) as response:
                raw = await response.read()
                answer = Answer(
                    started, time.monotonic() - started, response.status, response.content_type
                )
                if response.status >= 400:
                    answer.error = Answer.slug(raw)
                if response.status == 202:
                    return answer, str(json.loads(raw)["application_id"])
                return answer, None
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
            return Answer(started, time.monotonic() - started, None, error=type(exc).__name__), None

    async def closed_loop(self, workers: int, until: Callable[[], bool]) -> None:
        """``workers`` clients, each submitting the next application until ``until()``."""
        counter = iter(range(10**9))

        async def worker() -> None:
            while not until():
                await self.submit(next(counter))

        async with asyncio.TaskGroup() as group:
            for _ in range(workers):
                group.create_task(worker())

    async def open_loop(self, rate: float, seconds: float, in_flight: int = 64) -> None:
        """New applications at ``rate`` per second for ``seconds`` (at most ``in_flight``
        unfinished at once: beyond that the arrival waits), each retried until a 202."""
        room = asyncio.Semaphore(in_flight)
        started = time.monotonic()

        async def one(index: int) -> None:
            try:
                await self.submit(index)
            finally:
                room.release()

        async with asyncio.TaskGroup() as group:
            index = 0
            while time.monotonic() - started < seconds:
                await room.acquire()
                group.create_task(one(index))
                index += 1
                await asyncio.sleep(max(0.0, started + index / rate - time.monotonic()))


async def stored(load: Load, base_url: str, workers: int = 8) -> dict[str, Any]:
    """GET every accepted application as the submitting agency: the view (handlers,
    timeline ...) of each one that answers 200."""
    views: dict[str, Any] = {}
    queue = list(load.accepted.values())

    async def worker() -> None:
        while queue:
            application_id = queue.pop()
            for _ in range(5):
                with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                    status, view = await call(
                        load.session,
                        "GET",
                        f"{base_url}/v1/applications/{application_id}",
                        key=load.key,
                    )
                    if status == 200:
                        views[application_id] = view
                    break
                await asyncio.sleep(0.5)

    async with asyncio.TaskGroup() as group:
        for _ in range(workers):
            group.create_task(worker())
    return views
