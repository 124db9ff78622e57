"""``gba-gateway serve --workers N``: a supervisor and N production processes on one port.

The real command in a subprocess, against PostgreSQL (a fresh schema), with production keys,
a trust anchor and a registry made for the test. The supervisor's and the workers' JSON log
lines on stderr say which process is which; every line of a worker, its requests' included,
names the worker, so a request shows who answered it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.settings import REPO_ROOT
from gateway.trust import keystore
from tests.conftest import Database, _postgres, free_port
from tests.unit.web.test_settings_and_startup import ROUTED, _ca, _registry


class Gateway:
    """``serve --workers N`` in a subprocess, its stderr parsed into log events."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.url = f"http://127.0.0.1:{port}"
        self.events: list[dict[str, Any]] = []
        self.other: list[str] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            try:
                self.events.append(json.loads(line))
            except ValueError:
                self.other.append(line.decode(errors="replace"))

    def named(self, event: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("event") == event]

    def ready_pids(self) -> list[int]:
        return [e["pid"] for e in self.named("workers.ready")]

    async def until(self, check: Callable[[], Any], seconds: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + seconds
        while not check():
            if self.process.returncode is not None or asyncio.get_running_loop().time() > deadline:
                raise AssertionError(
                    f"not true after {seconds} s; events {self.events}; other {self.other}"
                )
            await asyncio.sleep(0.05)

    def worker_of(self, pid: int) -> int:
        return next(e["worker"] for e in self.named("workers.started") if e["pid"] == pid)

    async def served_by(self) -> int:
        """The worker that answered a new GET /healthz (every log line names its worker)."""
        before = len(self.named("http.request"))
        assert await self.healthz() == 200
        await self.until(lambda: len(self.named("http.request")) > before)
        return int(self.named("http.request")[-1]["worker"])

    async def healthz(self) -> int:
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
            session.get(self.url + "/healthz", timeout=aiohttp.ClientTimeout(total=5)) as answer,
        ):
            return answer.status


def production_config(tmp_path: Path, port: int, database_url: str, schema: str) -> Path:
    keystore.generate(tmp_path / "keys", sandbox=False)
    config = tmp_path / "gateway.toml"
    values = {
        "host": "127.0.0.1",
        "port": port,
        "database_url": database_url,
        "database_schema": schema,
        "keys_dir": str(tmp_path / "keys"),
        "trust_anchors_dir": str(_ca(tmp_path / "certs")),
        "agencies_file": str(_registry(tmp_path, *ROUTED)),
        "log_format": "json",
    }
    config.write_text(
        "[gateway]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items())
    )
    return config


async def start(config: Path, *args: str) -> asyncio.subprocess.Process:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GBA_")}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli",
        "serve",
        "--config",
        str(config),
        *args,
        cwd=REPO_ROOT,
        env=environ,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


@pytest.fixture
async def postgres() -> AsyncIterator[Database]:
    async for database in _postgres():
        yield database


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_two_workers_serve_a_killed_one_comes_back_and_sigterm_stops_them_all(
    tmp_path: Path, postgres: Database, backend: str
) -> None:
    port = free_port()
    config = production_config(tmp_path, port, postgres.url, postgres.schema)
    gateway = Gateway(await start(config, "--workers", "2"), port)
    try:
        await gateway.until(lambda: len(set(gateway.ready_pids())) == 2)
        first, second = gateway.ready_pids()
        started = {e["pid"] for e in gateway.named("workers.started")}
        assert started == {first, second}  # the supervisor's children, one process each
        assert gateway.process.pid not in started
        assert await gateway.healthz() == 200

        os.kill(first, signal.SIGKILL)
        assert await gateway.served_by() == gateway.worker_of(second)  # serves meanwhile
        await gateway.until(lambda: len(gateway.ready_pids()) == 3)
        replacement = gateway.ready_pids()[2]
        assert replacement not in (first, second)
        exited = gateway.named("workers.exited")
        assert [(e["pid"], e["exitcode"]) for e in exited] == [(first, -signal.SIGKILL)]
        assert gateway.named("workers.restarting")[0]["worker"] == exited[0]["worker"]

        os.kill(second, signal.SIGKILL)
        assert await gateway.served_by() == gateway.worker_of(replacement)  # serves alone
        await gateway.until(lambda: len(gateway.ready_pids()) == 4)
        last = gateway.ready_pids()[3]

        gateway.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(gateway.process.wait(), 15) == 0
        await gateway.reader
        assert not alive(replacement)
        assert not alive(last)
        assert [e["status"] for e in gateway.named("workers.stopped")] == [0]
        stopped = {e["pid"] for e in gateway.named("gateway.stopping")}
        assert {replacement, last} <= stopped, (gateway.events, gateway.other)  # clean stops
        assert [e["exitcode"] for e in gateway.named("workers.exited")[-2:]] == [0, 0]
        assert gateway.other == []  # every line whole JSON, though three processes wrote them
    finally:
        if gateway.process.returncode is None:
            gateway.process.kill()
            await gateway.process.wait()
        gateway.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gateway.reader


async def test_more_than_one_worker_on_sqlite_is_refused_with_the_reason(tmp_path: Path) -> None:
    config = production_config(tmp_path, free_port(), f"sqlite:///{tmp_path}/g.db", "")
    process = await start(config, "--workers", "2")
    _, stderr = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 2
    message = stderr.decode()
    assert "workers=2 needs PostgreSQL" in message
    assert "one writer" in message
    assert not (tmp_path / "g.db").exists()  # refused before anything started


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_workers_that_refuse_the_configuration_are_not_restarted(
    tmp_path: Path, postgres: Database, backend: str
) -> None:
    config = production_config(tmp_path, free_port(), postgres.url, postgres.schema)
    _registry(tmp_path, "gd-hq-csb")  # the matters route cases to agencies it lacks
    gateway = Gateway(await start(config, "--workers", "2"), 0)
    assert await asyncio.wait_for(gateway.process.wait(), 25) == 2
    await gateway.reader
    assert gateway.named("workers.configuration_refused")
    assert "unregistered agencies" in gateway.named("workers.configuration_refused")[0]["detail"]
    assert len(gateway.named("workers.started")) == 2  # none restarted
    assert gateway.named("workers.giving_up")
    assert [e["status"] for e in gateway.named("workers.stopped")] == [2]


async def scrape(url: str) -> str:
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session,
        session.get(url + "/metrics", timeout=aiohttp.ClientTimeout(total=5)) as answer,
    ):
        assert answer.status == 200
        return await answer.text()


async def scrape_naming_the_worker(gateway: Gateway) -> tuple[int, str]:
    """A new connection's ``/metrics``, and the worker that answered it."""
    before = len(gateway.named("http.request"))
    body = await scrape(gateway.url)
    await gateway.until(lambda: len(gateway.named("http.request")) > before)
    return int(gateway.named("http.request")[-1]["worker"]), body


def healthz_count(exposition: str) -> float:
    """``gba_http_requests_total`` of ``GET /healthz`` answered 200, from Prometheus text."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "gba_http_requests_total" and sample.labels == {
                "method": "GET",
                "route": "/healthz",
                "status": "200",
            }:
                return sample.value
    return 0.0


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_metrics_from_either_worker_count_the_requests_of_both(
    tmp_path: Path, postgres: Database, backend: str
) -> None:
    port = free_port()
    config = production_config(tmp_path, port, postgres.url, postgres.schema)
    gateway = Gateway(await start(config, "--workers", "2"), port)
    try:
        await gateway.until(lambda: len(set(gateway.ready_pids())) == 2)
        shared = gateway.named("workers.metrics_dir")[0]["path"]
        mode = (await asyncio.to_thread(os.stat, shared)).st_mode
        assert mode & 0o777 == 0o700  # this run's, its user's only

        sent, answered_by = 0, set()  # new connections until both workers answered some
        while len(answered_by) < 2 or sent < 20:
            answered_by.add(await gateway.served_by())
            sent += 1
            assert sent < 400, "the kernel never handed a connection to the other worker"
        scraped_by: dict[int, float] = {}  # worker -> the count its /metrics answered
        for _ in range(200):
            worker, body = await scrape_naming_the_worker(gateway)
            scraped_by[worker] = healthz_count(body)
            if len(scraped_by) == 2:
                break
        assert scraped_by == {0: sent, 1: sent}  # each worker's answer counts both workers
        assert "# HELP gba_http_requests_total HTTP requests answered" in body
        for declared in ("gba_commit_batch_size", "gba_commit_seconds", "gba_relay_batch_size"):
            assert f"# HELP {declared} " in body
        assert "gba_commit_queue_depth 0.0" in body
        assert "gba_relay_in_flight 0.0" in body  # live gauges summed over the workers

        first = gateway.ready_pids()[0]
        files = await asyncio.to_thread(os.listdir, shared)
        assert {f"counter_{first}.db", f"gauge_livesum_{first}.db"} <= set(files)
        os.kill(first, signal.SIGKILL)  # a dead worker's counts stay in the totals
        await gateway.until(lambda: len(gateway.ready_pids()) == 3)
        assert healthz_count(await scrape(gateway.url)) == sent
        files = await asyncio.to_thread(os.listdir, shared)
        assert f"counter_{first}.db" in files
        assert f"gauge_livesum_{first}.db" not in files  # out of the live gauges' sums

        gateway.process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(gateway.process.wait(), 15) == 0
        assert not await asyncio.to_thread(os.path.exists, shared)  # removed with the run
    finally:
        if gateway.process.returncode is None:
            gateway.process.kill()
            await gateway.process.wait()
        gateway.reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await gateway.reader
