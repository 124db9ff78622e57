"""Notifications in SQL: written in the transaction of the milestone they tell, then leased.

Rows move ``pending`` -> ``in_flight`` (claimed with a lease, ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL) -> ``delivered``, or back to ``pending`` with a later ``next_attempt_at``, or to
``dead``. An outcome is recorded only on a row still in flight, so a dispatcher whose lease ran
out cannot undo another's delivery. A resident's rows are read where they are, whatever their
status.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.services.ports import APPLICANT, Notification
from gateway.store.leases import failed_attempt
from gateway.store.tables import notifications


def _notification(row: Any, status: str | None = None) -> Notification:
    return Notification(
        id=row.id,
        application_id=row.application_id,
        recipient=row.recipient,
        event=row.event,
        body=dict(row.body),
        created_at=row.created_at,
        status=status or row.status,
        attempts=row.attempts,
        last_error=row.last_error,
    )


def notification_row(notification: Notification) -> dict[str, Any]:
    """A new notification's row: pending, due when it was written."""
    return {
        "id": notification.id,
        "application_id": notification.application_id,
        "recipient": notification.recipient,
        "event": notification.event,
        "body": notification.body,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": notification.created_at,
        "created_at": notification.created_at,
    }


class SqlNotifications:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, notification: Notification) -> None:
        await self._conn.execute(notifications.insert().values(**notification_row(notification)))

    async def claim(self, now: datetime, *, limit: int, lease_seconds: int) -> list[Notification]:
        if limit <= 0:
            return []
        due = sa.or_(
            sa.and_(notifications.c.status == "pending", notifications.c.next_attempt_at <= now),
            sa.and_(notifications.c.status == "in_flight", notifications.c.lease_until < now),
        )
        rows = (
            await self._conn.execute(
                notifications.select()
                .where(due)
                .order_by(notifications.c.next_attempt_at, notifications.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not rows:
            return []
        # Due is checked again as the rows are written (SQLite reads outside the write lock).
        taken = await self._conn.execute(
            notifications.update()
            .where(notifications.c.id.in_([r.id for r in rows]), due)
            .values(status="in_flight", lease_until=now + timedelta(seconds=lease_seconds))
            .returning(notifications.c.id)
        )
        ids = set(taken.scalars())
        return [_notification(r, "in_flight") for r in rows if r.id in ids]

    async def delivered(self, notification_id: str, at: datetime) -> bool:
        marked = await self._conn.execute(
            notifications.update()
            .where(notifications.c.id == notification_id, notifications.c.status == "in_flight")
            .values(status="delivered", delivered_at=at, lease_until=None, last_error=None)
        )
        return marked.rowcount == 1

    async def retry_later(self, notification_id: str, at: datetime, error: str) -> None:
        await self._conn.execute(failed_attempt(notifications, notification_id, error, retry_at=at))

    async def dead(self, notification_id: str, error: str) -> None:
        await self._conn.execute(
            failed_attempt(notifications, notification_id, error, retry_at=None)
        )

    async def of_recipient(
        self,
        recipient: str,
        *,
        limit: int,
        after: str | None,
        applicant_of: Sequence[str] = (),
    ) -> list[Notification]:
        mine = notifications.c.recipient == recipient
        if applicant_of:
            mine = sa.or_(
                mine,
                sa.and_(
                    notifications.c.recipient == APPLICANT,
                    notifications.c.application_id.in_(list(applicant_of)),
                ),
            )
        query = notifications.select().where(mine)
        if after:
            query = query.where(notifications.c.id > after)
        rows = await self._conn.execute(query.order_by(notifications.c.id).limit(limit))
        return [_notification(r) for r in rows]

    async def listing(self, *, application_id: str | None = None) -> list[Notification]:
        """Every row (of one case), oldest first: for operators and tests."""
        query = notifications.select()
        if application_id is not None:
            query = query.where(notifications.c.application_id == application_id)
        rows = await self._conn.execute(query.order_by(notifications.c.id))
        return [_notification(r) for r in rows]
