"""The SQL unit of work: one transaction holding every repository, audited at commit."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store import database
from gateway.store.applications import SqlApplications
from gateway.store.audit import SqlAudit
from gateway.store.delivery import SqlIdempotency, SqlNonces, SqlOutbox
from gateway.store.identity import SqlIdentities
from gateway.store.registry import SqlAgencies


class SqlUnitOfWork:
    """One transaction on one connection; rolls back unless committed."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._conn: AsyncConnection | None = None
        self._committed = False

    async def __aenter__(self) -> Self:
        self._conn = await self._engine.connect()
        await self._conn.begin()
        self.audit = SqlAudit(self._conn)
        self.applications = SqlApplications(self._conn, self.audit)
        self.agencies = SqlAgencies(self._conn)
        self.outbox = SqlOutbox(self._conn)
        self.idempotency = SqlIdempotency(self._conn)
        self.nonces = SqlNonces(self._conn)
        self.identities = SqlIdentities(self._conn)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        try:
            if not self._committed:
                await self._conn.rollback()
        finally:
            await self._conn.close()
            self._conn = None

    async def commit(self) -> None:
        assert self._conn is not None
        await self.audit.flush()
        await self._conn.commit()
        self._committed = True


class SqlUnitOfWorkFactory:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def __call__(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine)

    async def ping(self) -> None:
        await database.ping(self.engine)
