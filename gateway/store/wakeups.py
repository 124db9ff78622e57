"""Wake-ups across processes: a relay told at once that outbox rows were committed.

In one process the use cases wake the relay themselves after their commit
(``Dependencies.outbox_written``). Another process on the same PostgreSQL database (``serve
--workers N``, a second machine, an operator's ``outbox retry``) learns of them through
``LISTEN``/``NOTIFY``:

- :func:`notify_outbox` runs ``pg_notify`` inside the transaction that writes outbox rows (or
  makes them due), so the notification goes out when, and only if, that transaction commits;
  PostgreSQL folds the copies one transaction sends into one. The payload is the schema, so
  gateways sharing a database in separate schemas (tests, benches) wake only their own.
  On SQLite it does nothing: one process serves one file.
- :class:`OutboxListener` holds a connection of its own (asyncpg, outside the pool), listens,
  and calls its callback for every notification of its schema. It reconnects when the
  connection drops, calls the callback once after each (re)connection for what it may have
  missed, and checks the connection every ``check_every`` seconds. While it cannot listen the
  relay still finds its work by polling (``RelayPolicy.idle_poll``): a wake-up is a shortcut,
  never the only way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

log = structlog.get_logger("gateway.store.wakeups")
CHANNEL = "gba_outbox"
_NOTIFY = sa.text("SELECT pg_notify(:channel, current_schema())")


async def notify_outbox(conn: AsyncConnection) -> None:
    """Tell every listening process, when this transaction commits, that outbox rows are due."""
    if conn.dialect.name == "postgresql":
        await conn.execute(_NOTIFY, {"channel": CHANNEL})


def notify_outbox_sync(conn: sa.Connection) -> None:
    """:func:`notify_outbox` on a synchronous connection (the group committer's writer)."""
    if conn.dialect.name == "postgresql":
        conn.execute(_NOTIFY, {"channel": CHANNEL})


def asyncpg_dsn(url: str) -> str:
    """``postgresql://...`` (any SQLAlchemy driver name) as asyncpg wants it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class OutboxListener:
    """``LISTEN gba_outbox`` on a connection of its own; see the module docstring."""

    def __init__(
        self,
        url: str,
        callback: Callable[[], None],
        *,
        schema: str | None = None,
        retry_after: float = 1.0,
        check_every: float = 10.0,
    ) -> None:
        self._dsn = asyncpg_dsn(url)
        self._callback = callback
        self._schema = schema
        self._retry_after = retry_after
        self._check_every = check_every
        self.listening = asyncio.Event()  # set while notifications can arrive
        self.backend_pid: int | None = None  # the listening connection's server process

    async def run(self) -> None:
        """Listen until cancelled, reconnecting after ``retry_after`` (doubling, to 30 s)."""
        pause = self._retry_after
        while True:
            try:
                await self._listen()
                pause = self._retry_after  # it listened, then lost the connection
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the database is away: poll meanwhile, try again
                log.warning("outbox.listen_failed", error=type(error).__name__)
            finally:
                self.listening.clear()
            await asyncio.sleep(pause)
            pause = min(pause * 2, 30.0)

    async def _listen(self) -> None:
        import asyncpg  # the store's driver; only PostgreSQL gateways listen

        settings = {"search_path": self._schema} if self._schema else {}
        conn = await asyncpg.connect(self._dsn, timeout=10, server_settings=settings)
        try:
            schema = await conn.fetchval("SELECT current_schema()")
            self.backend_pid = conn.get_server_pid()
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _conn: lost.set())

            def heard(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
                if payload == schema:
                    self._callback()

            await conn.add_listener(CHANNEL, heard)
            self.listening.set()
            log.info("outbox.listening", channel=CHANNEL)
            self._callback()  # what was committed while nobody listened
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._check_every):
                        await lost.wait()
                if not lost.is_set():  # a connection can die silently: ask it
                    await conn.fetchval("SELECT 1", timeout=self._check_every)
            log.warning("outbox.listen_lost")
        finally:
            self.listening.clear()
            with contextlib.suppress(Exception):
                await asyncio.shield(conn.close(timeout=2))
