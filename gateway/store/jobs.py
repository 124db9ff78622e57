"""Work that one gateway process does at a time: named leases for scheduled work, and a
lock around start-up (ADR 0011).

A lease is one row of ``job_leases``: the job's name, the process holding it and when it
runs out. :meth:`SqlJobLeases.take` takes or renews it in one statement, an ``INSERT … ON
CONFLICT (name) DO UPDATE … WHERE`` the lease ran out or the caller already holds it, so of
two processes racing for it exactly one wins on either engine: PostgreSQL locks the row
(the loser re-checks the condition against the winner's committed row), SQLite has one
writer. Times are the callers' clocks, like the outbox's leases, so the machines' clocks
must agree to well within a lease (they must already agree to within the signature skew).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.database import create_engine, dialect_insert
from gateway.store.tables import job_leases

START_UP_LOCK = int.from_bytes(b"gba-strt")  # the PostgreSQL advisory lock key of start-up


def process_holder() -> str:
    """This process's name as a lease holder: host, pid and a random part (pids repeat,
    notably pid 1 in every container)."""
    return f"{socket.gethostname()[:120]}:{os.getpid()}:{secrets.token_hex(4)}"


class SqlJobLeases:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def take(self, name: str, holder: str, *, now: datetime, seconds: float) -> bool:
        """Take the lease ``name`` for ``seconds`` if it is free or has run out, or renew it
        if ``holder`` holds it. True when ``holder`` holds it now (until commit, others
        wait on the row on PostgreSQL and on the write lock on SQLite)."""
        insert = dialect_insert(self._conn, job_leases).values(
            name=name, holder=holder, expires_at=now + timedelta(seconds=seconds), taken_at=now
        )
        mine = job_leases.c.holder == holder
        statement = insert.on_conflict_do_update(
            index_elements=[job_leases.c.name],
            set_={
                "holder": insert.excluded.holder,
                "expires_at": insert.excluded.expires_at,
                "taken_at": sa.case((mine, job_leases.c.taken_at), else_=insert.excluded.taken_at),
            },
            where=sa.or_(job_leases.c.expires_at < now, mine),
        ).returning(job_leases.c.holder)
        return (await self._conn.execute(statement)).scalar_one_or_none() == holder

    async def release(self, name: str, holder: str) -> bool:
        """Give the lease up (a clean stop), so that another process takes it at its next
        round instead of waiting for it to run out. False when ``holder`` did not hold it."""
        result = await self._conn.execute(
            job_leases.delete().where(job_leases.c.name == name, job_leases.c.holder == holder)
        )
        return result.rowcount == 1

    async def holder(self, name: str, now: datetime) -> str | None:
        """Who holds the lease ``name`` at ``now``; None when nobody does."""
        return (
            await self._conn.execute(
                sa.select(job_leases.c.holder).where(
                    job_leases.c.name == name, job_leases.c.expires_at >= now
                )
            )
        ).scalar_one_or_none()


class JobLease:
    """One process's claim on one named job, taken, renewed and released through units of
    work from ``store`` (a :class:`~gateway.store.unit_of_work.SqlUnitOfWorkFactory`).

    Call :meth:`hold` at the start of every round and do the round's work only when it
    answers True. ``seconds`` must be longer than a round plus the pause between rounds,
    or the lease runs out between renewals and another process may take it over.
    """

    def __init__(
        self,
        store: Callable[[], Any],
        name: str,
        *,
        seconds: float,
        holder: str | None = None,
    ) -> None:
        self.store = store
        self.name = name
        self.seconds = seconds
        self.holder = holder or process_holder()
        self.held = False

    async def hold(self, now: datetime) -> bool:
        """Take or renew the lease; whether this process holds it for the next ``seconds``."""
        async with self.store() as uow:
            held = await uow.jobs.take(self.name, self.holder, now=now, seconds=self.seconds)
            await uow.commit()
        self.held = held
        return held

    async def release(self) -> None:
        """Give the lease up if this process holds it."""
        if not self.held:
            return
        self.held = False
        async with self.store() as uow:
            await uow.jobs.release(self.name, self.holder)
            await uow.commit()


@contextlib.asynccontextmanager
async def start_up_lock(url: str) -> AsyncIterator[None]:
    """Start processes one at a time on one PostgreSQL database: creating missing tables and
    importing the registry and clients race when several processes start together.

    A session advisory lock on a connection of its own, held while the body runs; PostgreSQL
    releases it if the process dies meanwhile. Nothing on SQLite (one process).
    """
    if not url or make_url(url).get_backend_name() not in ("postgresql", "postgres"):
        yield
        return
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": START_UP_LOCK})
            try:
                yield
            finally:
                await conn.execute(
                    sa.text("SELECT pg_advisory_unlock(:key)"), {"key": START_UP_LOCK}
                )
    finally:
        await engine.dispose()
