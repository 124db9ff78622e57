"""PostgreSQL ``LISTEN`` on a connection of its own: what one process commits, every process
on the database is told at once.

A writer calls :func:`notify` inside its transaction; PostgreSQL delivers the notification at
commit (never for a rollback) to every connection listening on the channel in that database.
Channels are database-wide while the gateway's tables may live in a schema of their own (tests
put many gateways in one database), so the payload is ``schema:detail`` and a listener acts
only on its own schema's.

A notification is a hint that makes a change seen sooner, never the guarantee: one sent while
the listener was disconnected is lost, so after every (re)connection each handler is called
once with ``None`` ("something may have been missed"), and the readers keep their own check
(for the registry, the version read). SQLite has a single process per database and nothing
to tell: :func:`notify` does nothing there and no listener is started.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import asyncpg
import sqlalchemy as sa
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

REGISTRY_CHANNEL = "gba_registry"  # payload detail: the registry version just committed

Handler = Callable[[str | None], None]  # the detail, or None after a (re)connection
log = structlog.get_logger("gateway.store.pg_listener")


async def notify(conn: AsyncConnection, channel: str, detail: str) -> None:
    """Tell every listener on ``channel`` at this transaction's commit (PostgreSQL only)."""
    if conn.dialect.name != "postgresql":
        return
    await conn.execute(
        sa.text("SELECT pg_notify(:channel, current_schema() || ':' || :detail)"),
        {"channel": channel, "detail": detail},
    )


def plain_dsn(url: str) -> str:
    """``postgresql[+driver]://...`` as the DSN asyncpg itself takes."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgListener:
    """One connection that LISTENs on every channel of ``handlers``; run it as a task and
    cancel it to stop. It reconnects after a lost connection (checked every ``keepalive``
    seconds besides asyncpg's own notice), waiting ``retry`` seconds between attempts."""

    def __init__(
        self,
        url: str,
        schema: str | None,
        handlers: Mapping[str, Handler],
        *,
        retry: float = 1.0,
        keepalive: float = 15.0,
    ) -> None:
        self._dsn = plain_dsn(url)
        self._settings = {"search_path": schema} if schema else {}
        self._handlers = dict(handlers)
        self.retry, self.keepalive = retry, keepalive
        self.listening = asyncio.Event()  # set while connected and listening
        self.told: Counter[str] = Counter()  # channel -> notifications acted on
        self.connections = 0
        self.backend_pid: int | None = None  # the listening connection's server process

    async def run(self) -> None:
        while True:
            try:
                conn = await asyncpg.connect(self._dsn, server_settings=self._settings, timeout=10)
            except (OSError, TimeoutError, asyncpg.PostgresError) as error:
                log.warning("listener.connect_failed", error=type(error).__name__)
                await asyncio.sleep(self.retry)
                continue
            try:
                await self._listen(conn)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("listener.lost", error=type(error).__name__)
            except Exception:  # never stop listening for good: the next connection may do
                log.exception("listener.failed")
            finally:
                self.listening.clear()
                await _close(conn)
            await asyncio.sleep(self.retry)

    async def _listen(self, conn: asyncpg.Connection) -> None:
        lost = asyncio.Event()
        conn.add_termination_listener(lambda _conn: lost.set())
        schema = await conn.fetchval("SELECT current_schema()")
        self.backend_pid = conn.get_server_pid()
        for channel, handler in self._handlers.items():
            await conn.add_listener(channel, self._deliver(str(schema), handler))
        self.connections += 1
        for handler in self._handlers.values():
            handler(None)  # anything committed while no one listened
        self.listening.set()
        log.info("listener.listening", channels=sorted(self._handlers))
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), self.keepalive)
            if not lost.is_set():
                await conn.fetchval("SELECT 1", timeout=10)  # a dead server shows here

    def _deliver(self, schema: str, handler: Handler) -> Callable[..., None]:
        def received(_conn: Any, _pid: int, channel: str, payload: str) -> None:
            origin, _, detail = payload.rpartition(":")  # a schema name may hold ":"
            if origin != schema:
                return  # another gateway's tables in the same database
            self.told[channel] += 1
            handler(detail)

        return received


async def _close(conn: asyncpg.Connection) -> None:
    try:
        await asyncio.wait_for(conn.close(), 2)
    except asyncio.CancelledError:
        conn.terminate()
        raise
    except Exception:  # already gone, or too slow to say goodbye
        conn.terminate()
