"""Complaints in SQL (Art. 31): their texts stay here, off the timeline and the audit chain."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.domain.complaints import Complaint
from gateway.domain.errors import ConflictError
from gateway.store.tables import complaints


def _complaint(row: Any) -> Complaint:
    return Complaint(
        id=row.id,
        application_id=row.application_id,
        complainant=row.complainant,
        text=row.text,
        filed_at=row.filed_at,
        outcome=row.outcome,
        reply=row.reply,
        answered_by=row.answered_by,
        answered_at=row.answered_at,
    )


class SqlComplaints:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def add(self, complaint: Complaint) -> None:
        await self._conn.execute(
            complaints.insert().values(
                id=complaint.id,
                application_id=complaint.application_id,
                complainant=complaint.complainant,
                text=complaint.text,
                filed_at=complaint.filed_at,
            )
        )

    async def get(self, complaint_id: str) -> Complaint | None:
        row = (
            await self._conn.execute(complaints.select().where(complaints.c.id == complaint_id))
        ).one_or_none()
        return None if row is None else _complaint(row)

    async def answered(self, complaint: Complaint) -> None:
        done = await self._conn.execute(
            complaints.update()
            .where(complaints.c.id == complaint.id, complaints.c.outcome.is_(None))
            .values(
                outcome=complaint.outcome,
                reply=complaint.reply,
                answered_by=complaint.answered_by,
                answered_at=complaint.answered_at,
            )
        )
        if done.rowcount != 1:
            raise ConflictError("the complaint was answered meanwhile")

    async def of_application(self, application_id: str) -> list[Complaint]:
        rows = await self._conn.execute(
            complaints.select()
            .where(complaints.c.application_id == application_id)
            .order_by(complaints.c.filed_at, complaints.c.id)
        )
        return [_complaint(r) for r in rows]
