"""Read-only listings for the sandbox console: recent cases, and forwards with their evidence.

Operators' and testers' views across every agency, which no partner-facing repository offers
(an agency sees only its own cases). Each is one or two queries, newest first, bounded by
``limit``; nothing here writes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.tables import applications, delivery_evidence, evidence, handlers, outbox


@dataclass(frozen=True, slots=True)
class CaseSummary:
    """One line of the console's case list."""

    application_id: str
    matter: str
    status: str
    submitted_by: str
    channel: str
    received_at: datetime
    handlers: tuple[tuple[str, str, str], ...]  # (agency id, role, state), lead first


@dataclass(frozen=True, slots=True)
class Exchange:
    """The signed forward and the partner's signed answer, as kept when it was delivered."""

    target: str
    request_headers: Mapping[str, str]
    ack_status: int
    ack_key_id: str
    ack_headers: Mapping[str, str]
    ack_body: bytes | None  # None when the answer's body is not in ``evidence``
    delivered_at: datetime


@dataclass(frozen=True, slots=True)
class ForwardSummary:
    """One outbox row without its body, and its delivery evidence once acknowledged."""

    message_id: str
    application_id: str
    destination: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    exchange: Exchange | None


class ConsoleReads:
    """The console's queries on one connection (a unit of work's)."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def count(self, table: str) -> int:
        chosen = {"applications": applications, "outbox": outbox}[table]
        query = sa.select(sa.func.count()).select_from(chosen)
        return int((await self._conn.execute(query)).scalar_one())

    async def recent_cases(self, limit: int = 50) -> list[CaseSummary]:
        """The newest applications of every agency and resident, newest first."""
        rows = (
            await self._conn.execute(
                sa.select(
                    applications.c.id,
                    applications.c.matter,
                    applications.c.status,
                    applications.c.submitted_by,
                    applications.c.channel,
                    applications.c.received_at,
                )
                .order_by(applications.c.received_at.desc(), applications.c.id.desc())
                .limit(limit)
            )
        ).all()
        by_case: dict[str, list[tuple[str, str, str]]] = {r.id: [] for r in rows}
        if by_case:
            found = await self._conn.execute(
                sa.select(
                    handlers.c.application_id,
                    handlers.c.agency_id,
                    handlers.c.role,
                    handlers.c.state,
                )
                .where(handlers.c.application_id.in_(list(by_case)))
                .order_by(handlers.c.application_id, handlers.c.position)
            )
            for h in found:
                by_case[h.application_id].append((h.agency_id, h.role, h.state))
        return [
            CaseSummary(
                r.id,
                r.matter,
                r.status,
                r.submitted_by,
                r.channel,
                r.received_at,
                tuple(by_case[r.id]),
            )
            for r in rows
        ]

    async def recent_forwards(
        self, limit: int = 100, application_id: str | None = None
    ) -> list[ForwardSummary]:
        """The newest outbox rows (of one case), each with its kept exchange, if any."""
        answer = evidence.alias("answer")
        query = (
            sa.select(
                outbox.c.id,
                outbox.c.application_id,
                outbox.c.destination,
                outbox.c.status,
                outbox.c.attempts,
                outbox.c.next_attempt_at,
                outbox.c.last_error,
                outbox.c.created_at,
                delivery_evidence.c.target,
                delivery_evidence.c.request_headers,
                delivery_evidence.c.ack_status,
                delivery_evidence.c.ack_key_id,
                delivery_evidence.c.ack_headers,
                delivery_evidence.c.delivered_at,
                answer.c.body.label("ack_body"),
            )
            .select_from(
                outbox.outerjoin(
                    delivery_evidence, delivery_evidence.c.message_id == outbox.c.id
                ).outerjoin(answer, answer.c.digest == delivery_evidence.c.ack_digest)
            )
            .order_by(outbox.c.created_at.desc(), outbox.c.id.desc())
            .limit(limit)
        )
        if application_id is not None:
            query = query.where(outbox.c.application_id == application_id)
        return [_forward(r) for r in await self._conn.execute(query)]


def _forward(row: Any) -> ForwardSummary:
    exchange = None
    if row.target is not None:
        exchange = Exchange(
            target=row.target,
            request_headers=dict(row.request_headers),
            ack_status=row.ack_status,
            ack_key_id=row.ack_key_id,
            ack_headers=dict(row.ack_headers),
            ack_body=None if row.ack_body is None else bytes(row.ack_body),
            delivered_at=row.delivered_at,
        )
    return ForwardSummary(
        message_id=row.id,
        application_id=row.application_id,
        destination=row.destination,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        exchange=exchange,
    )
