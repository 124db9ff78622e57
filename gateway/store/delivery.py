"""The outbox, idempotency keys and signature nonces in SQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.domain.errors import ConflictError
from gateway.services.ports import OutboxMessage, StoredResponse
from gateway.store.database import dialect_insert
from gateway.store.tables import idempotency_keys, nonces, outbox


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
