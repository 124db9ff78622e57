"""The SQL unit of work: one transaction holding every repository, audited at commit."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Self, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.domain.agencies import Agency
from gateway.domain.errors import NotReadyError, UnknownKeyError
from gateway.services.ports import UnitOfWork
from gateway.store.committer import Committer
from gateway.store.database import run_to_end
from gateway.store.registry_cache import RegistryCache
from gateway.store.repositories import attach_repositories
from gateway.store.sqlite_writer import SqliteWriter
from gateway.store.write_sets import BatchedUnitOfWork
from gateway.trust.keys import VerificationKey

T = TypeVar("T")
# Connection failures (SQLSTATE class 08) and a server shutting down, crashed or starting up.
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03")


def connection_lost(error: BaseException) -> bool:
    """The database dropped or refused the connection (not a bad query, not a conflict)."""
    if isinstance(error, sa_exc.DBAPIError):
        state = str(getattr(error.orig, "sqlstate", None) or "")
        return error.connection_invalidated or state.startswith(_UNAVAILABLE_STATES)
    return False


def _unreachable(error: BaseException) -> bool:
    """Opening or giving back a connection failed: the same, or a socket error or timeout
    (asyncpg raises ``ConnectionRefusedError`` and ``TimeoutError`` unwrapped)."""
    return isinstance(error, OSError | TimeoutError) or connection_lost(error)


def _unavailable() -> NotReadyError:
    """What a caller sees while the database is away: 503, try again shortly."""
    return NotReadyError("the database is not reachable", headers={"Retry-After": "5"})


class SqlUnitOfWork:
    """One transaction on one connection; rolls back unless committed."""

    def __init__(
        self,
        engine: AsyncEngine,
        gate: asyncio.Lock | None = None,
        registry: RegistryCache | None = None,
    ) -> None:
        self._engine = engine
        self._gate = gate
        self._registry = registry
        self._conn: AsyncConnection | None = None
        self._committed = False

    async def __aenter__(self) -> Self:
        if self._gate is not None:
            await self._gate.acquire()
        opening = asyncio.ensure_future(self._open())
        try:
            self._conn = await asyncio.shield(opening)
        except BaseException as error:
            with contextlib.suppress(BaseException):  # cancelled while opening: give it back
                conn = await opening
                await run_to_end(self._close(conn, rollback=True))
            if self._gate is not None:
                self._gate.release()
            if _unreachable(error):
                raise _unavailable() from error
            raise
        attach_repositories(self, self._conn, self._registry)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        conn, self._conn = self._conn, None
        try:
            # Shielded: a cancelled request must still give the connection back, or the
            # one SQLite connection (and the gate) would stay taken for good.
            await run_to_end(self._close(conn, rollback=not self._committed))
        except Exception as error:
            if not _unreachable(error):
                raise
            # a connection that died is given back all the same; the work's outcome stands
        finally:
            if self._gate is not None:
                self._gate.release()
        if exc is not None and connection_lost(exc):
            raise _unavailable() from exc

    async def _open(self) -> AsyncConnection:
        conn = await self._engine.connect()
        try:
            await conn.begin()
        except BaseException:
            await conn.close()
            raise
        return conn

    @staticmethod
    async def _close(conn: AsyncConnection, *, rollback: bool) -> None:
        try:
            if rollback:
                await conn.rollback()
        finally:
            await conn.close()

    @property
    def connection(self) -> AsyncConnection:
        assert self._conn is not None, "outside the unit of work"
        return self._conn

    async def commit(self) -> None:
        assert self._conn is not None
        await self.audit.flush()
        await self._conn.commit()
        self._committed = True
        if self.agencies.wrote and self._registry is not None:
            self._registry.clear()  # this process sees its own registry write at once


class SqlUnitOfWorkFactory:
    """Units of work on one engine. SQLite has one connection (one writer): transactions take
    turns through a FIFO gate, because the pool's queue lets a task that just returned the
    connection take it again before a waiter runs, which starves the relay under load."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._gate = asyncio.Lock() if engine.dialect.name == "sqlite" else None
        self.registry = RegistryCache()  # this process's registry snapshot
        self.committer = Committer(self)  # group commit of batched units of work
        database = engine.url.database
        self.sqlite_writer = (
            SqliteWriter(engine.url)
            if engine.dialect.name == "sqlite" and database and database != ":memory:"
            else None
        )

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        """Hold SQLite's gate (FIFO with every unit of work); nothing on PostgreSQL."""
        if self._gate is None:
            yield
            return
        async with self._gate:
            yield

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self._gate, self.registry)

    def batched(self) -> BatchedUnitOfWork:
        return BatchedUnitOfWork(self.committer)

    async def in_batch(self, work: Callable[[UnitOfWork], Awaitable[T]]) -> T:
        """Run ``work`` (reads and writes through the repositories, nothing else awaited)
        inside the committer's next batch, in a savepoint of its own; its result once the
        batch committed."""
        return await self.committer.run(work)

    async def signer(self, kid: str) -> tuple[VerificationKey, Agency | None]:
        """The key and its agency from the process's snapshot, without a database read; a
        key the snapshot does not know is looked up again (registered since). The version
        is checked where the request's writes commit (``still_valid``)."""
        snapshot = self.registry.current()
        if snapshot is not None:
            with contextlib.suppress(UnknownKeyError):
                key = snapshot.key(kid)
                return key, snapshot.agency(key.owner)
        async with self() as uow:
            return await uow.agencies.signer(kid)

    async def close(self) -> None:
        """Stop the committer, then give the engine back."""
        await self.committer.close()
        if self.sqlite_writer is not None:
            self.sqlite_writer.close()
        await self.engine.dispose()

    async def ping(self) -> None:
        async with self.connect() as conn:  # through the gate, like every other use
            await conn.execute(sa.text("SELECT 1"))

    @contextlib.asynccontextmanager
    async def begin(self) -> AsyncIterator[AsyncConnection]:
        """A bare connection in a transaction committed on success (stores outside the
        unit of work, e.g. OIDC protocol state), taken and given back like a unit of work."""
        async with self() as uow:
            yield uow.connection
            await uow.commit()

    @contextlib.asynccontextmanager
    async def connect(self) -> AsyncIterator[AsyncConnection]:
        """A bare connection for reading; its transaction is rolled back."""
        async with self() as uow:
            yield uow.connection
