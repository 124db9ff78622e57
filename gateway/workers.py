"""Serving: one gateway process, or ``serve --workers N`` processes on one listening socket.

With one worker, :func:`run_server` serves in this process, as ``serve`` always did. With N,
:func:`supervise` binds the listening socket once (a port in use is reported once, before
anything starts) and starts N children with multiprocessing's ``spawn`` context. Each child
runs the whole gateway (:func:`~gateway.bootstrap.create_app`) on the inherited socket, and
the kernel hands each new connection to one of them. The parent supervises:

- SIGTERM or SIGINT stops every child with SIGTERM; each finishes its in-flight requests
  (aiohttp's shutdown timeout, 60 s) and its cleanup. A child still running after
  :data:`GRACE` seconds, or when a second signal arrives, is killed.
- A child that exits unexpectedly is restarted after a backoff that doubles with each quick
  death (:data:`RESTART_FIRST` up to :data:`RESTART_MAX`; a child that ran
  :data:`STABLE` seconds starts the count again). Exit status 2, a configuration refused, is
  not retried: the parent stops the others and exits 2.
- A child whose parent dies stops by itself.
- ``/metrics`` counts every worker (:mod:`gateway.web.metrics`): the parent makes a fresh
  directory for the run (0700, in the temporary directory), gives it to the children as
  ``PROMETHEUS_MULTIPROC_DIR``, marks each dead child's live gauges gone, and removes the
  directory when it stops.

The processes share nothing but the socket and the database: every request is served from
the database, outbox rows are claimed ``FOR UPDATE SKIP LOCKED`` and scheduled work runs
under a lease (ADR 0011). That needs PostgreSQL: :func:`check_workers` refuses more than one
worker on SQLite, and in sandbox mode, whose agencies and identity providers keep their
state in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import multiprocessing
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, MutableMapping
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any, TextIO

import structlog
from prometheus_client import multiprocess

from gateway.bootstrap import create_app
from gateway.domain.errors import ConfigurationError
from gateway.observability import configure_logging
from gateway.settings import Settings
from gateway.store.jobs import start_up_lock
from gateway.web.metrics import MULTIPROCESS_ENV
from gateway.web.serving import GuardedSite, make_runner

GRACE = 75.0  # seconds a stopping child gets: aiohttp's 60 s for requests, then cleanup
RESTART_FIRST = 0.5  # seconds before restarting a child that died
RESTART_MAX = 10.0
STABLE = 30.0  # a child that ran this long had no start-up problem: its death is not a streak
CONFIGURATION_REFUSED = 2  # a child's exit status when the configuration is refused

log = structlog.get_logger("gateway.workers")


def check_workers(settings: Settings) -> None:
    """More than one worker needs a database several processes can share."""
    if settings.workers == 1:
        return
    if settings.sandbox:
        raise ConfigurationError(
            f"workers={settings.workers}: sandbox mode runs one process (its sandbox agencies, "
            "fault switches and identity providers keep their state in memory); "
            "run it with one worker"
        )
    if not settings.database_url.startswith(("postgresql:", "postgres:", "postgresql+")):
        raise ConfigurationError(
            f"workers={settings.workers} needs PostgreSQL: an SQLite file has one writer and "
            "the gateway keeps one connection to it per process (ADR 0002), so several "
            "processes would contend for it; run one worker, or set database_url to "
            "postgresql://… (docs/deploy.md)"
        )


def bind(settings: Settings) -> socket.socket:
    """The listening socket every worker accepts on."""
    family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
    return socket.create_server((settings.host, settings.port), family=family, backlog=1024)


async def run_server(
    settings: Settings,
    *,
    sock: socket.socket | None = None,
    started: Callable[[], None] | None = None,
    parent: int | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM (or until the file descriptor ``parent`` becomes
    readable: the supervisor died), then finish in-flight requests and clean up."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # from here on, a signal stops it cleanly
        loop.add_signal_handler(sig, stop.set)
    if parent is not None:
        loop.add_reader(parent, stop.set)
    app = create_app(settings)
    runner = make_runner(app, settings)  # header limits and timeouts: gateway/web/serving.py
    async with start_up_lock(settings.database_url):  # processes start one after the other
        await runner.setup()
    try:
        if not stop.is_set():  # told to stop while starting: never listen
            listening = sock if sock is not None else bind(settings)
            await GuardedSite(runner, listening, settings).start()
            if started is not None:
                started()
            await stop.wait()
    finally:
        log.info("gateway.stopping", pid=os.getpid())
        await runner.cleanup()


def whole_lines() -> TextIO:
    """Standard error written one whole line per write(2), so that the log lines of the
    supervisor and its workers, which share it, never interleave. (``sys.stderr`` writes a
    line and its newline apart when unbuffered, as under ``PYTHONUNBUFFERED``.)"""
    raw = io.FileIO(sys.stderr.fileno(), "w", closefd=False)
    return io.TextIOWrapper(
        io.BufferedWriter(raw, buffer_size=1 << 16),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
    )


def _worker(settings: Settings, sock: socket.socket, index: int) -> None:
    """A child's life (spawned: it configures its own logging)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent tells it to stop (SIGTERM)
    configure_logging(settings.log_level, settings.log_format, whole_lines())

    def tagged(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
        event.setdefault("worker", index)  # on every line, requests' included
        return event

    structlog.configure(processors=[tagged, *structlog.get_config()["processors"]])
    parent = multiprocessing.parent_process()
    try:
        asyncio.run(
            run_server(
                settings,
                sock=sock,
                started=lambda: log.info("workers.ready", worker=index, pid=os.getpid()),
                parent=parent.sentinel if parent is not None else None,
            )
        )
    except ConfigurationError as exc:
        log.error("workers.configuration_refused", worker=index, detail=exc.detail)
        sys.exit(CONFIGURATION_REFUSED)
    finally:  # stopped already: the parent's SIGTERM must not cut the interpreter's exit short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


class Supervisor:
    """Starts, restarts and stops the worker processes (see the module's docstring)."""

    def __init__(
        self,
        settings: Settings,
        sock: socket.socket,
        *,
        grace: float = GRACE,
        metrics_dir: str | None = None,
    ) -> None:
        self.settings = settings
        self.sock = sock
        self.metrics_dir = metrics_dir  # the children's PROMETHEUS_MULTIPROC_DIR, if any
        self.grace = grace
        self.context = multiprocessing.get_context("spawn")
        self.children: dict[int, BaseProcess] = {}
        self.started_at: dict[int, float] = {}
        self.streak: dict[int, int] = {}  # quick deaths in a row, per worker
        self.restart_at: dict[int, float] = {}
        self.signals = 0
        self.status = 0
        self.wakeup: socket.socket

    def _signalled(self, _signum: int, _frame: FrameType | None) -> None:
        self.signals += 1  # the loop notices at once (wakeup fd); no I/O in a signal handler

    def run(self, started: Callable[[], None] | None = None) -> int:
        """Run the workers until a signal (or a refused configuration); the exit status."""
        previous = {
            sig: signal.signal(sig, self._signalled) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        # A signal also writes a byte here, so that waiting for the children wakes at once.
        self.wakeup, wakeup_w = socket.socketpair()
        for end in (self.wakeup, wakeup_w):
            end.setblocking(False)
        previous_fd = signal.set_wakeup_fd(wakeup_w.fileno())
        try:
            for index in range(self.settings.workers):
                self._start(index)
            if started is not None:
                started()
            while not self.signals and not self.status:
                self._watch()
            self._stop()
        finally:
            signal.set_wakeup_fd(previous_fd)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.wakeup.close()
            wakeup_w.close()
        log.info("workers.stopped", status=self.status)
        return self.status

    def _start(self, index: int) -> None:
        child = self.context.Process(
            target=_worker,
            args=(self.settings, self.sock, index),
            name=f"gba-gateway-worker-{index}",
        )
        child.start()
        self.children[index] = child
        self.started_at[index] = time.monotonic()
        log.info("workers.started", worker=index, pid=child.pid)

    def _watch(self) -> None:
        """Wait for a child to die (reap it) or a restart to fall due (start it)."""
        now = time.monotonic()
        due = [i for i, at in self.restart_at.items() if at <= now]
        for index in due:
            del self.restart_at[index]
            self._start(index)
        timeout = min([1.0, *(at - now for at in self.restart_at.values())])
        for index in self._wait(max(timeout, 0.0)):
            self._reap(index)

    def _wait(self, timeout: float) -> list[int]:
        """The workers that exited within ``timeout`` seconds (fewer when a signal came)."""
        by_sentinel = {child.sentinel: i for i, child in self.children.items()}
        ready = wait([*by_sentinel, self.wakeup], timeout)
        if self.wakeup in ready:
            with contextlib.suppress(BlockingIOError):
                self.wakeup.recv(512)
        return [by_sentinel[r] for r in ready if r is not self.wakeup]

    def _reap(self, index: int) -> None:
        child = self.children.pop(index)
        child.join()
        self._gone(child)
        log.warning("workers.exited", worker=index, pid=child.pid, exitcode=child.exitcode)
        if self.signals:
            return
        if child.exitcode == CONFIGURATION_REFUSED:
            log.error("workers.giving_up", worker=index, reason="configuration refused")
            self.status = CONFIGURATION_REFUSED
            return
        lived = time.monotonic() - self.started_at[index]
        streak = 0 if lived >= STABLE else self.streak.get(index, 0)
        delay = min(RESTART_FIRST * 2**streak, RESTART_MAX)
        self.streak[index] = streak + 1
        self.restart_at[index] = time.monotonic() + delay
        log.warning("workers.restarting", worker=index, delay=delay)

    def _stop(self) -> None:
        """SIGTERM every child; kill those still running after the grace period, or at once
        when another signal arrives meanwhile."""
        self.restart_at.clear()
        self.sock.close()  # the children's copies close as they stop: new connections fail fast
        log.info("workers.stopping", pids=sorted(c.pid or 0 for c in self.children.values()))
        for child in self.children.values():
            child.terminate()
        signals, deadline, killed = self.signals, time.monotonic() + self.grace, False
        while self.children:
            if not killed and (time.monotonic() >= deadline or self.signals > signals):
                for index, child in self.children.items():
                    log.warning("workers.killed", worker=index, pid=child.pid)
                    child.kill()
                killed = True
            for index in self._wait(0.5):
                child = self.children.pop(index)
                child.join()
                self._gone(child)
                log.info("workers.exited", worker=index, pid=child.pid, exitcode=child.exitcode)

    def _gone(self, child: BaseProcess) -> None:
        """A dead child's live gauges leave the sums (its counters stay in the totals)."""
        if self.metrics_dir is not None and child.pid is not None:
            multiprocess.mark_process_dead(child.pid, self.metrics_dir)


@contextlib.contextmanager
def shared_metrics() -> Iterator[str]:
    """A fresh directory for this run's metrics (0700: ``mkdtemp``), in the environment the
    children inherit, removed with everything in it at the end."""
    path = tempfile.mkdtemp(prefix="gba-metrics-")
    previous = os.environ.get(MULTIPROCESS_ENV)
    os.environ[MULTIPROCESS_ENV] = path
    log.info("workers.metrics_dir", path=path)
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(MULTIPROCESS_ENV, None)
        else:
            os.environ[MULTIPROCESS_ENV] = previous
        shutil.rmtree(path, ignore_errors=True)


def supervise(settings: Settings, started: Callable[[], None] | None = None) -> int:
    """Run ``settings.workers`` serving processes; the exit status (0, or 2 when a worker
    refused the configuration)."""
    check_workers(settings)
    configure_logging(settings.log_level, settings.log_format, whole_lines())
    with bind(settings) as sock, shared_metrics() as metrics_dir:
        return Supervisor(settings, sock, metrics_dir=metrics_dir).run(started)
