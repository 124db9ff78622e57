"""Applications, their handlers and their timelines in SQL (the ApplicationRepository port)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.domain.application import Application, Handler, HandlerState, Owed, Status
from gateway.domain.errors import ConflictError
from gateway.domain.evidence import Evidence, EvidenceState
from gateway.domain.identity import named_documents
from gateway.domain.matters import Assurance
from gateway.services.ports import TimelineEntry
from gateway.store.audit import SqlAudit
from gateway.store.tables import applicant_documents, applications, handlers, timeline


class Recorder(Protocol):
    def record(
        self, kind: str, actor: str, subject: str, data: Mapping[str, Any], at: datetime
    ) -> None: ...


def new_rows(app: Application, audit: Recorder) -> list[tuple[sa.Table, list[dict[str, Any]]]]:
    """The rows a new case inserts, in foreign-key order: the case, its handlers, its
    timeline; its events go onto the audit chain through ``audit``. The case is then at
    version 1 with no pending event (shared by :class:`SqlApplications` and the batch)."""
    inserted = [
        (applications, [{**SqlApplications.row(app), "version": 1}]),
        (
            handlers,
            [
                {
                    "application_id": app.id,
                    "agency_id": h.agency_id,
                    "position": i,
                    "role": h.role,
                    "state": h.state.value,
                    "reasons": list(h.reasons),
                    "message_id": h.message_id,
                    "blocked": h.blocked,
                    "supplement_round": h.supplement_round,
                }
                for i, h in enumerate(app.handlers)
            ],
        ),
    ]
    events = _timeline_rows(app, start=1, audit=audit)
    if events:
        inserted.append((timeline, events))
    if app.applicant_id is None:  # an agency's case: found by its applicant's documents later
        named = [
            {"application_id": app.id, "doc_type": d.type.value, "number": d.number}
            for d in named_documents(app.document)
        ]
        if named:
            inserted.append((applicant_documents, named))
    app.version = 1
    return inserted


def _timeline_rows(app: Application, *, start: int, audit: Recorder) -> list[dict[str, Any]]:
    """The pending events as timeline rows from ``start``, each also recorded on the audit
    chain; the pending events are then cleared."""
    rows = [
        {
            "application_id": app.id,
            "seq": start + i,
            "type": e.type,
            "at": e.at,
            "actor": e.actor,
            "data": e.data,
        }
        for i, e in enumerate(app.pending_events)
    ]
    for e in app.pending_events:  # every state change also goes onto the audit chain
        audit.record(e.type, e.actor, app.id, e.data, e.at)
    app.pending_events.clear()
    return rows


class SqlApplications:
    def __init__(self, conn: AsyncConnection, audit: SqlAudit) -> None:
        self._conn = conn
        self._audit = audit

    async def add(self, app: Application) -> None:
        for table, rows in new_rows(app, self._audit):
            await self._conn.execute(table.insert(), rows)

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

    async def get_many(self, application_ids: Sequence[str]) -> dict[str, Application]:
        """Many applications in two statements (the relay's batches)."""
        wanted = list(dict.fromkeys(application_ids))
        if not wanted:
            return {}
        rows = await self._conn.execute(applications.select().where(applications.c.id.in_(wanted)))
        found = {row.id: row for row in rows}
        of: dict[str, list[Any]] = {i: [] for i in found}
        if found:
            handler_rows = await self._conn.execute(
                handlers.select()
                .where(handlers.c.application_id.in_(list(found)))
                .order_by(handlers.c.application_id, handlers.c.position)
            )
            for h in handler_rows:
                of[h.application_id].append(h)
        return {i: self._application(row, of[i]) for i, row in found.items()}

    async def save(self, app: Application) -> None:
        result = await self._conn.execute(
            applications.update()
            .where(applications.c.id == app.id, applications.c.version == app.version)
            .values(**self.row(app), version=app.version + 1)
        )
        if result.rowcount != 1:
            raise ConflictError("the application was changed concurrently; retry")
        for h in app.handlers:
            await self._conn.execute(
                handlers.update()
                .where(handlers.c.application_id == app.id, handlers.c.agency_id == h.agency_id)
                .values(
                    state=h.state.value,
                    reasons=list(h.reasons),
                    message_id=h.message_id,
                    blocked=h.blocked,
                    supplement_round=h.supplement_round,
                )
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

    async def applied_by(
        self, person_id: str, *, limit: int, after: str | None
    ) -> list[Application]:
        query = (
            sa.select(applications.c.id)
            .where(
                sa.or_(
                    applications.c.applicant_id == person_id,
                    applications.c.submitted_by == f"resident:{person_id}",  # as an agent
                )
            )
            .order_by(applications.c.id)
            .limit(limit)
        )
        if after:
            query = query.where(applications.c.id > after)
        ids = (await self._conn.execute(query)).scalars().all()
        found = [await self.get(i) for i in ids]
        return [a for a in found if a is not None]

    async def naming(
        self, documents: Sequence[tuple[str, str]], *, limit: int, after: str | None
    ) -> list[Application]:
        """Agency-submitted cases naming any of ``documents`` (type, number) as the
        applicant's, by id."""
        if not documents:
            return []
        named = sa.or_(
            *(
                sa.and_(applicant_documents.c.doc_type == t, applicant_documents.c.number == n)
                for t, n in documents
            )
        )
        query = (
            sa.select(applicant_documents.c.application_id)
            .where(named)
            .distinct()
            .order_by(applicant_documents.c.application_id)
            .limit(limit)
        )
        if after:
            query = query.where(applicant_documents.c.application_id > after)
        ids = (await self._conn.execute(query)).scalars().all()
        found = await self.get_many(ids)
        return [found[i] for i in ids if i in found]

    async def assurance_relying_on(self, consent_id: str) -> Assurance | None:
        rows = await self._conn.execute(
            sa.select(applications.c.filed_assurance).where(
                applications.c.consent_id == consent_id,
                applications.c.filed_assurance.is_not(None),
            )
        )
        levels = [Assurance(value) for value in rows.scalars()]
        return max(levels, key=lambda level: level.rank, default=None)

    async def due_for_examination(self, today: str, *, limit: int) -> list[Application]:
        """Cases awaiting the lead agency's examination whose last day has passed."""
        return await self._where(
            sa.and_(
                applications.c.status == Status.RECEIVED.value,
                applications.c.acceptance_due < today,
            ),
            limit,
        )

    async def awaiting_recheck(
        self, agency_id: str, *, limit: int, after: str | None
    ) -> list[Application]:
        """The lead agency's automatic decisions whose re-check is pending, by id (one
        index range: ``ix_applications_recheck``)."""
        condition = applications.c.recheck_lead == agency_id
        if after:
            condition = sa.and_(condition, applications.c.id > after)
        return await self._where(condition, limit)

    async def past_deadline(self, today: str, *, limit: int) -> list[Application]:
        """Open cases past their promised deadline and not yet flagged."""
        return await self._where(
            sa.and_(
                applications.c.status.in_([Status.ACCEPTED.value, Status.UNDER_REVIEW.value]),
                applications.c.deadline < today,
                applications.c.overdue_at.is_(None),
            ),
            limit,
        )

    async def evidence_overdue(self, now: datetime, *, limit: int) -> list[Application]:
        """Cases with an evidence request whose answer was due before ``now``."""
        return await self._where(applications.c.evidence_due < now, limit)

    async def owed_overdue(self, today: str, *, limit: int) -> list[Application]:
        """Cases with an owed material whose due day is before ``today``, not yet flagged."""
        return await self._where(applications.c.owed_due < today, limit)

    async def _where(self, condition: Any, limit: int) -> list[Application]:
        query = sa.select(applications.c.id).where(condition).order_by(applications.c.id)
        ids = (await self._conn.execute(query.limit(limit))).scalars().all()
        found = [await self.get(i) for i in ids]
        return [a for a in found if a is not None]

    async def _append_events(self, app: Application, *, start: int) -> None:
        rows = _timeline_rows(app, start=start, audit=self._audit)
        if rows:
            await self._conn.execute(timeline.insert(), rows)

    @staticmethod
    def row(app: Application) -> dict[str, Any]:
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
            "applicant_id": app.applicant_id,
            "consent_id": app.consent_id,
            "filed_assurance": app.filed_assurance and app.filed_assurance.value,
            "mapping_version": app.mapping_version,
            "acceptance": app.acceptance,
            "acceptance_due": app.acceptance_due,
            "statutory_deadline": app.statutory_deadline,
            "delivery_channel": app.delivery_channel,
            "overdue_at": app.overdue_at,
            "supplement_round": app.supplement_round,
            "examined_from": app.examined_from,
            "recheck": app.recheck,
            "recheck_lead": app.lead.agency_id if app.recheck == "queued" else None,
            "evidence": [e.to_json() for e in app.evidence] or None,
            "evidence_due": min(
                (
                    e.due_at
                    for e in app.evidence
                    if e.state is EvidenceState.REQUESTED and e.due_at is not None
                ),
                default=None,
            ),
            "channel_record": app.channel_record,
            "legal_basis": app.legal_basis,
            "identified_doc_type": app.identified_by[0] if app.identified_by else None,
            "identified_number": app.identified_by[1] if app.identified_by else None,
            "pickup_hash": app.pickup_hash,
            "pickup_attempts": app.pickup_attempts,
            "owed": [o.to_json() for o in app.owed] or None,
            "owed_due": app.owed_due,
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
                Handler(
                    h.agency_id,
                    h.role,
                    HandlerState(h.state),
                    tuple(h.reasons),
                    h.message_id,
                    h.blocked,
                    h.supplement_round or 0,
                )
                for h in handler_rows
            ],
            missing=tuple(row.missing),
            deadline=row.deadline,
            applicant_id=row.applicant_id,
            consent_id=row.consent_id,
            filed_assurance=Assurance(row.filed_assurance) if row.filed_assurance else None,
            mapping_version=row.mapping_version,
            acceptance=row.acceptance or "automatic",
            acceptance_due=row.acceptance_due,
            statutory_deadline=row.statutory_deadline,
            delivery_channel=row.delivery_channel,
            overdue_at=row.overdue_at,
            supplement_round=row.supplement_round or 0,
            examined_from=row.examined_from,
            recheck=row.recheck,
            evidence=[Evidence.from_json(e) for e in row.evidence or ()],
            channel_record=dict(row.channel_record) if row.channel_record else None,
            legal_basis=dict(row.legal_basis) if row.legal_basis else None,
            identified_by=(row.identified_doc_type, row.identified_number)
            if row.identified_doc_type
            else None,
            pickup_hash=row.pickup_hash,
            pickup_attempts=row.pickup_attempts or 0,
            owed=[Owed.from_json(o) for o in row.owed or ()],
            version=row.version,
        )
