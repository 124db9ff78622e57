"""The SQL unit of work and its repositories (the storage side of the service ports)."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.domain.application import Application, Handler, HandlerState, Status
from gateway.domain.errors import ConflictError
from gateway.services.ports import OutboxMessage, StoredResponse, TimelineEntry
from gateway.store import database
from gateway.store.audit import SqlAudit
from gateway.store.database import dialect_insert
from gateway.store.registry import SqlAgencies
from gateway.store.tables import (
    applications,
    handlers,
    idempotency_keys,
    nonces,
    outbox,
    timeline,
)


class SqlApplications:
    def __init__(self, conn: AsyncConnection, audit: SqlAudit) -> None:
        self._conn = conn
        self._audit = audit

    async def add(self, app: Application) -> None:
        await self._conn.execute(applications.insert().values(**self._row(app), version=1))
        await self._conn.execute(
            handlers.insert(),
            [
                {
                    "application_id": app.id,
                    "agency_id": h.agency_id,
                    "position": i,
                    "role": h.role,
                    "state": h.state.value,
                    "reasons": list(h.reasons),
                }
                for i, h in enumerate(app.handlers)
            ],
        )
        await self._append_events(app, start=1)
        app.version = 1

    async def get(self, application_id: str) -> Application | None:
        row = (
            await self._conn.execute(
                applications.select().where(applications.c.id == application_id)
            )
        ).one_or_none()
        if row is None:
            return None
        rows = await self._conn.execute(
            handlers.select()
            .where(handlers.c.application_id == application_id)
            .order_by(handlers.c.position)
        )
        return self._application(row, rows.all())

    async def save(self, app: Application) -> None:
        result = await self._conn.execute(
            applications.update()
            .where(applications.c.id == app.id, applications.c.version == app.version)
            .values(**self._row(app), version=app.version + 1)
        )
        if result.rowcount != 1:
            raise ConflictError("the application was changed concurrently; retry")
        for h in app.handlers:
            await self._conn.execute(
                handlers.update()
                .where(handlers.c.application_id == app.id, handlers.c.agency_id == h.agency_id)
                .values(state=h.state.value, reasons=list(h.reasons))
            )
        last = (
            await self._conn.execute(
                sa.select(sa.func.coalesce(sa.func.max(timeline.c.seq), 0)).where(
                    timeline.c.application_id == app.id
                )
            )
        ).scalar_one()
        await self._append_events(app, start=last + 1)
        app.version += 1

    async def timeline(self, application_id: str) -> list[TimelineEntry]:
        rows = await self._conn.execute(
            timeline.select()
            .where(timeline.c.application_id == application_id)
            .order_by(timeline.c.seq)
        )
        return [TimelineEntry(r.seq, r.type, r.at, r.actor, dict(r.data)) for r in rows]

    async def handled_by(
        self, agency_id: str, *, limit: int, after: str | None
    ) -> list[Application]:
        query = (
            sa.select(applications.c.id)
            .join(handlers, handlers.c.application_id == applications.c.id)
            .where(handlers.c.agency_id == agency_id)
            .order_by(applications.c.id)
            .limit(limit)
        )
        if after:
            query = query.where(applications.c.id > after)
        ids = (await self._conn.execute(query)).scalars().all()
        found = [await self.get(i) for i in ids]
        return [a for a in found if a is not None]

    async def _append_events(self, app: Application, *, start: int) -> None:
        if not app.pending_events:
            return
        await self._conn.execute(
            timeline.insert(),
            [
                {
                    "application_id": app.id,
                    "seq": start + i,
                    "type": e.type,
                    "at": e.at,
                    "actor": e.actor,
                    "data": e.data,
                }
                for i, e in enumerate(app.pending_events)
            ],
        )
        for e in app.pending_events:  # every state change also goes onto the audit chain
            self._audit.record(e.type, e.actor, app.id, e.data, e.at)
        app.pending_events.clear()

    @staticmethod
    def _row(app: Application) -> dict[str, Any]:
        return {
            "id": app.id,
            "matter": app.matter,
            "matter_version": app.matter_version,
            "status": app.status.value,
            "submitted_by": app.submitted_by,
            "channel": app.channel,
            "source_format": app.source_format,
            "content_digest": app.content_digest,
            "document": app.document,
            "missing": list(app.missing),
            "deadline": app.deadline,
            "received_at": app.received_at,
            "updated_at": (app.pending_events[-1].at if app.pending_events else app.received_at),
        }

    @staticmethod
    def _application(row: Any, handler_rows: list[Any]) -> Application:
        return Application(
            id=row.id,
            matter=row.matter,
            matter_version=row.matter_version,
            status=Status(row.status),
            submitted_by=row.submitted_by,
            channel=row.channel,
            source_format=row.source_format,
            content_digest=row.content_digest,
            document=dict(row.document),
            received_at=row.received_at,
            handlers=[
                Handler(h.agency_id, h.role, HandlerState(h.state), tuple(h.reasons))
                for h in handler_rows
            ],
            missing=tuple(row.missing),
            deadline=row.deadline,
            version=row.version,
        )


class SqlOutbox:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, message: OutboxMessage) -> None:
        if message.next_attempt_at is None:
            raise ValueError("an outbox message needs its first attempt time")
        now = message.next_attempt_at
        await self._conn.execute(
            outbox.insert().values(
                id=message.id,
                application_id=message.application_id,
                destination=message.destination,
                media_type=message.media_type,
                body=message.body,
                status="pending",
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )

    async def claim(self, now: datetime, *, limit: int, lease_seconds: int) -> list[OutboxMessage]:
        due = sa.or_(
            sa.and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now),
            sa.and_(outbox.c.status == "in_flight", outbox.c.lease_until < now),
        )
        rows = (
            await self._conn.execute(
                outbox.select()
                .where(due)
                .order_by(outbox.c.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not rows:
            return []
        await self._conn.execute(
            outbox.update()
            .where(outbox.c.id.in_([r.id for r in rows]))
            .values(status="in_flight", lease_until=now + timedelta(seconds=lease_seconds))
        )
        return [
            OutboxMessage(
                r.id,
                r.application_id,
                r.destination,
                r.media_type,
                bytes(r.body),
                r.attempts,
                r.next_attempt_at,
                "in_flight",
                r.last_error,
            )
            for r in rows
        ]

    async def delivered(self, message_id: str, at: datetime) -> None:
        await self._conn.execute(
            outbox.update()
            .where(outbox.c.id == message_id)
            .values(status="delivered", delivered_at=at, lease_until=None, last_error=None)
        )

    async def retry_later(self, message_id: str, at: datetime, error: str) -> None:
        await self._conn.execute(
            outbox.update()
            .where(outbox.c.id == message_id)
            .values(
                status="pending",
                next_attempt_at=at,
                lease_until=None,
                attempts=outbox.c.attempts + 1,
                last_error=error[:2000],
            )
        )

    async def dead(self, message_id: str, error: str) -> None:
        await self._conn.execute(
            outbox.update()
            .where(outbox.c.id == message_id)
            .values(
                status="dead",
                lease_until=None,
                attempts=outbox.c.attempts + 1,
                last_error=error[:2000],
            )
        )


class SqlIdempotency:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, agency_id: str, key: str) -> StoredResponse | None:
        row = (
            await self._conn.execute(
                idempotency_keys.select().where(
                    idempotency_keys.c.agency_id == agency_id, idempotency_keys.c.key == key
                )
            )
        ).one_or_none()
        if row is None:
            return None
        return StoredResponse(row.request_digest, row.status, dict(row.body), row.resource)

    async def put(self, agency_id: str, key: str, response: StoredResponse, at: datetime) -> None:
        try:
            await self._conn.execute(
                idempotency_keys.insert().values(
                    agency_id=agency_id,
                    key=key,
                    request_digest=response.request_digest,
                    status=response.status,
                    body=response.body,
                    resource=response.resource,
                    created_at=at,
                )
            )
        except IntegrityError as exc:
            raise ConflictError("the Idempotency-Key is being used by another request") from exc


class SqlNonces:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def use(self, key_id: str, nonce: str, *, now: datetime, expires_at: datetime) -> bool:
        statement = (
            dialect_insert(self._conn, nonces)
            .values(key_id=key_id, nonce=nonce, expires_at=expires_at)
            .on_conflict_do_nothing()
        )
        if (await self._conn.execute(statement)).rowcount == 1:
            return True
        # Taken: a replay, unless the earlier use has expired (then the window protects).
        revived = await self._conn.execute(
            nonces.update()
            .where(nonces.c.key_id == key_id, nonces.c.nonce == nonce, nonces.c.expires_at < now)
            .values(expires_at=expires_at)
        )
        return revived.rowcount == 1

    async def purge(self, now: datetime) -> int:
        """Forget nonces whose window has passed (housekeeping, not on the request path)."""
        result = await self._conn.execute(nonces.delete().where(nonces.c.expires_at < now))
        return result.rowcount


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
