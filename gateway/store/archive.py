"""Everything the database holds about one case, gathered for its archive bundle (Art. 23).

Read-only. One connection, one transaction (``REPEATABLE READ`` on PostgreSQL, so every query
sees the same snapshot; SQLite reads in one transaction anyway). The timeline is read before
the audit chain, so every event it lists is already on the chain that follows.

The audit segment starts at the case's first entry: the ``message.accepted`` of the
submission (found by its content digest among the entries of the 15 minutes before the
``application.received`` event) or else that event. It ends at the first signed checkpoint at
or after the case's last entry; when none covers it yet, :func:`gather_case` returns the
case without a record and the caller writes a checkpoint and asks again.

Finding the case's entries scans ``audit_log.subject`` and, for requests naming the case,
the entry text (``LIKE``, then parsed and checked in Python): an operator command, not a
request path, so no index was added for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.store.delivery import DeliveryEvidence, SqlOutbox
from gateway.store.tables import (
    applications,
    audit_checkpoints,
    audit_log,
    evidence,
    handlers,
    idempotency_keys,
    timeline,
)
from gateway.trust.archive import CaseRecord, SignedBody, is_case_entry, stamp

_SUBMISSION_WINDOW = timedelta(minutes=15)  # auth commits just before the handler's commit


@dataclass(frozen=True, slots=True)
class GatheredCase:
    """A case's status, and its record once a checkpoint covers its last audit entry."""

    application_id: str
    status: str
    record: CaseRecord | None
    last_case_seq: int


async def gather_case(engine: AsyncEngine, application_id: str) -> GatheredCase | None:
    """The case's material, or None when there is no such application."""
    async with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            return await _gather(conn, application_id)


async def _gather(conn: AsyncConnection, application_id: str) -> GatheredCase | None:
    app = (
        await conn.execute(applications.select().where(applications.c.id == application_id))
    ).one_or_none()
    if app is None:
        return None
    view = await _application(conn, app)
    events = await _timeline(conn, application_id)
    submission_digest = _received_digest(events) or str(app.content_digest)
    first = (
        await conn.execute(
            sa.select(sa.func.min(audit_log.c.seq)).where(audit_log.c.subject == application_id)
        )
    ).scalar_one()
    if first is None:  # a case from before the audit chain: nothing to prove it with
        return GatheredCase(application_id, str(app.status), None, 0)
    start = await _submission_seq(conn, int(first), app, application_id, submission_digest)
    last = await _last_case_seq(conn, start, application_id, submission_digest)
    token_row = (
        await conn.execute(
            sa.select(audit_checkpoints.c.seq, audit_checkpoints.c.token)
            .where(audit_checkpoints.c.seq >= last)
            .order_by(audit_checkpoints.c.seq)
            .limit(1)
        )
    ).one_or_none()
    if token_row is None:
        return GatheredCase(application_id, str(app.status), None, last)
    lines = await _segment(conn, start, int(token_row.seq))
    entries = [json.loads(line) for line in lines]
    case = [e for e in entries if is_case_entry(e, application_id, submission_digest)]
    requests = [e for e in case if e["kind"] == "message.accepted"]
    digests = {d for e in requests if (d := e["data"].get("content_digest"))}
    bodies = await _evidence(conn, {submission_digest, *digests})
    record = CaseRecord(
        application=view,
        timeline=events,
        responses=await _responses(conn, application_id),
        submission=_submission(bodies, submission_digest),
        messages=[_request(e, bodies) for e in requests],
        deliveries=_deliveries(await SqlOutbox(conn).delivery_evidence(application_id), case),
        audit_entries=lines,
        checkpoint=str(token_row.token),
    )
    return GatheredCase(application_id, str(app.status), record, last)


async def _application(conn: AsyncConnection, app: Any) -> dict[str, Any]:
    """The application as the archive shows it (the internal person id is left out)."""
    rows = await conn.execute(
        handlers.select().where(handlers.c.application_id == app.id).order_by(handlers.c.position)
    )
    return {
        "id": app.id,
        "matter": app.matter,
        "matter_version": app.matter_version,
        "status": app.status,
        "submitted_by": app.submitted_by,
        "channel": app.channel,
        "source_format": app.source_format,
        "content_digest": app.content_digest,
        "document": app.document,
        "missing": app.missing,
        "deadline": app.deadline,
        "consent_id": app.consent_id,
        "legal_basis": app.legal_basis,
        "received_at": stamp(app.received_at),
        "updated_at": stamp(app.updated_at),
        "handlers": [
            {"agency_id": h.agency_id, "role": h.role, "state": h.state, "reasons": h.reasons}
            for h in rows
        ],
    }


async def _timeline(conn: AsyncConnection, application_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        timeline.select()
        .where(timeline.c.application_id == application_id)
        .order_by(timeline.c.seq)
    )
    return [
        {"seq": r.seq, "type": r.type, "at": stamp(r.at), "actor": r.actor, "data": r.data}
        for r in rows
    ]


def _received_digest(events: Sequence[Mapping[str, Any]]) -> str | None:
    for event in events:
        if event["type"] == "application.received":
            digest = event["data"].get("content_digest")
            return digest if isinstance(digest, str) else None
    return None


async def _submission_seq(
    conn: AsyncConnection, first: int, app: Any, application_id: str, digest: str
) -> int:
    """The seq of the submission's ``message.accepted``, if it is shortly before ``first``."""
    rows = await conn.execute(
        sa.select(audit_log.c.seq, audit_log.c.entry)
        .where(
            audit_log.c.seq < first,
            audit_log.c.kind == "message.accepted",
            audit_log.c.at >= app.received_at - _SUBMISSION_WINDOW,
        )
        .order_by(audit_log.c.seq)
    )
    for row in rows:
        if is_case_entry(json.loads(bytes(row.entry)), application_id, digest):
            return int(row.seq)
    return first


def _entry_text(conn: AsyncConnection) -> Any:
    if conn.dialect.name == "postgresql":
        return sa.func.convert_from(audit_log.c.entry, "UTF8")
    return sa.cast(audit_log.c.entry, sa.Text)


async def _last_case_seq(
    conn: AsyncConnection, start: int, application_id: str, digest: str
) -> int:
    """The last entry about the case: its own events, or a signed request naming it."""
    own = (
        await conn.execute(
            sa.select(sa.func.max(audit_log.c.seq)).where(audit_log.c.subject == application_id)
        )
    ).scalar_one()
    last = int(own or start)
    naming = await conn.execute(
        sa.select(audit_log.c.seq, audit_log.c.entry)
        .where(
            audit_log.c.seq > last,
            audit_log.c.kind == "message.accepted",
            _entry_text(conn).contains(application_id, autoescape=True),
        )
        .order_by(audit_log.c.seq)
    )
    for row in naming:
        if is_case_entry(json.loads(bytes(row.entry)), application_id, digest):
            last = int(row.seq)
    return last


async def _segment(conn: AsyncConnection, start: int, end: int) -> list[bytes]:
    rows = await conn.execute(
        sa.select(audit_log.c.entry)
        .where(audit_log.c.seq >= start, audit_log.c.seq <= end)
        .order_by(audit_log.c.seq)
    )
    return [bytes(r.entry) for r in rows]


async def _evidence(conn: AsyncConnection, digests: set[str]) -> dict[str, tuple[str, bytes]]:
    rows = await conn.execute(
        sa.select(evidence.c.digest, evidence.c.media_type, evidence.c.body).where(
            evidence.c.digest.in_(sorted(digests))
        )
    )
    return {r.digest: (r.media_type, bytes(r.body)) for r in rows}


async def _responses(conn: AsyncConnection, application_id: str) -> list[dict[str, Any]]:
    rows = await conn.execute(
        idempotency_keys.select()
        .where(idempotency_keys.c.resource == application_id)
        .order_by(idempotency_keys.c.created_at, idempotency_keys.c.agency_id)
    )
    return [
        {
            "agency_id": r.agency_id,
            "idempotency_key": r.key,
            "request_digest": r.request_digest,
            "status": r.status,
            "body": r.body,
            "created_at": stamp(r.created_at),
        }
        for r in rows
    ]


def _submission(bodies: Mapping[str, tuple[str, bytes]], digest: str) -> SignedBody | None:
    if digest not in bodies:  # e.g. a resident's own submission: no signed request to keep
        return None
    media_type, body = bodies[digest]
    return SignedBody(media_type, digest, body)


def _request(entry: Mapping[str, Any], bodies: Mapping[str, tuple[str, bytes]]) -> SignedBody:
    digest = entry["data"].get("content_digest")
    media_type, body = bodies.get(digest or "", ("", None))
    return SignedBody(media_type, digest, body, audit_seq=entry["seq"])


def _deliveries(
    kept: Sequence[DeliveryEvidence], case: Sequence[Mapping[str, Any]]
) -> list[SignedBody]:
    """Each acknowledged forward and its answer, bound to their audit entries."""
    seqs = {
        (e["kind"], e["data"].get("message_id")): e["seq"]
        for e in case
        if e["kind"] in ("message.sent", "message.acknowledged")
    }
    bodies = []
    for d in kept:
        common = {"destination": d.destination, "target": d.target}
        bodies.append(
            SignedBody(
                d.request.media_type,
                d.request.digest,
                d.request.body,
                audit_seq=seqs.get(("message.sent", d.message_id)),
                kind="forward",
                message_id=d.message_id,
                details={**common, "headers": d.request.headers},
            )
        )
        bodies.append(
            SignedBody(
                d.ack.media_type,
                d.ack.digest,
                d.ack.body,
                audit_seq=seqs.get(("message.acknowledged", d.message_id)),
                kind="acknowledgement",
                message_id=d.message_id,
                details={
                    **common,
                    "status": d.ack_status,
                    "key_id": d.ack_key_id,
                    "headers": d.ack.headers,
                },
            )
        )
    return bodies
