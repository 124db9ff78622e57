"""The outbox, delivery evidence, idempotency keys and signature nonces in SQL.

Outbox rows move ``pending`` -> ``in_flight`` (claimed with a lease) -> ``delivered``, or
back to ``pending`` with a later ``next_attempt_at``, or to ``dead``. An outcome is recorded
only on a row still in flight, so a late failure never undoes a delivery or an operator's
retry; a repeated acknowledgement changes nothing.

**Delivery evidence.** When a forward is acknowledged, ``delivery_evidence`` keeps one row per
message: the target URI, the request's signature headers (``Signature``, ``Signature-Input``,
``Content-Digest``, ``Content-Type``, ``Idempotency-Key``), the answer's status, key id and
signature headers, and the digests of both bodies. The bodies themselves go to the
``evidence`` table (through the audit trail's ``keep_evidence``, once per digest), next to the
signed bodies the gateway accepted, and the relay puts ``message.sent`` and
``message.acknowledged`` on the audit chain with those digests. A separate table, because the
``evidence`` table is addressed by body digest only and cannot say which exchange a body
belongs to. :meth:`SqlOutbox.delivery_evidence` returns, for one application, every signed
forward and answer with their bodies, enough to verify both signatures again offline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.domain.errors import ConflictError
from gateway.services.ports import Acknowledgement, OutboxMessage, StoredResponse
from gateway.store.database import dialect_insert
from gateway.store.leases import failed_attempt
from gateway.store.tables import (
    UTCDateTime,
    delivery_evidence,
    evidence,
    idempotency_keys,
    nonces,
    outbox,
)
from gateway.store.wakeups import notify_outbox


@dataclass(frozen=True, slots=True)
class SignedMessage:
    """One signed HTTP message as it went over the wire: enough to verify it again."""

    digest: str | None  # its Content-Digest; the key of its body in ``evidence``
    media_type: str
    body: bytes | None  # None when the body is not in ``evidence``
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class DeliveryEvidence:
    """A delivered forward: the signed request ``POST target`` and the partner's signed answer."""

    message_id: str
    application_id: str
    destination: str
    target: str
    request: SignedMessage
    ack_status: int
    ack_key_id: str
    ack: SignedMessage
    delivered_at: datetime


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """An outbox row as operators see it."""

    message: OutboxMessage
    lease_until: datetime | None
    created_at: datetime
    delivered_at: datetime | None


def _message(row: Any, status: str | None = None) -> OutboxMessage:
    return OutboxMessage(
        row.id,
        row.application_id,
        row.destination,
        row.media_type,
        bytes(row.body),
        row.attempts,
        row.next_attempt_at,
        status or row.status,
        row.last_error,
        row.created_at,
        row.consent_id,
        row.relies_on,
    )


def outbox_row(message: OutboxMessage) -> dict[str, Any]:
    """A new message's outbox row: pending, due at its first attempt time."""
    if message.next_attempt_at is None:
        raise ValueError("an outbox message needs its first attempt time")
    now = message.next_attempt_at
    return {
        "id": message.id,
        "application_id": message.application_id,
        "destination": message.destination,
        "media_type": message.media_type,
        "body": message.body,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "lease_until": None,
        "last_error": None,
        "created_at": now,
        "delivered_at": None,
        "consent_id": message.consent_id,
        "relies_on": message.relies_on,
    }


def idempotency_row(
    agency_id: str, scope: str, key: str, response: StoredResponse, at: datetime
) -> dict[str, Any]:
    """The row that keeps a request's answer under its Idempotency-Key."""
    return {
        "agency_id": agency_id,
        "scope": scope,
        "key": key,
        "request_digest": response.request_digest,
        "status": response.status,
        "body": response.body,
        "resource": response.resource,
        "created_at": at,
    }


class SqlOutbox:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._notified = False

    async def _due_now(self) -> None:
        """Wake the relays of other processes when this transaction commits (once)."""
        if not self._notified:
            self._notified = True
            await notify_outbox(self._conn)

    async def add(self, message: OutboxMessage) -> None:
        await self._due_now()
        await self._conn.execute(outbox.insert().values(**outbox_row(message)))

    async def claim(
        self,
        now: datetime,
        *,
        limit: int,
        lease_seconds: int,
        per_destination: int | None = None,
        in_flight: Mapping[str, int] | None = None,
    ) -> list[OutboxMessage]:
        """Due rows, oldest first, locked ``FOR UPDATE SKIP LOCKED`` (PostgreSQL) and leased.

        With ``per_destination``, each destination gets at most ``per_destination -
        in_flight[destination]`` rows, ranked in SQL so that one destination's backlog never
        hides another's due rows.
        """
        if limit <= 0:
            return []
        due = sa.or_(
            sa.and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now),
            sa.and_(outbox.c.status == "in_flight", outbox.c.lease_until < now),
        )
        query = outbox.select()
        if per_destination is None:
            query = query.where(due)
        else:
            ranked = (
                sa.select(
                    outbox.c.id,
                    outbox.c.destination,
                    sa.func.row_number()
                    .over(
                        partition_by=outbox.c.destination,
                        order_by=(outbox.c.next_attempt_at, outbox.c.id),
                    )
                    .label("rank"),
                )
                .where(due)
                .subquery()
            )
            busy = {d: n for d, n in (in_flight or {}).items() if n > 0}
            room: Any = sa.literal(per_destination)
            if busy:
                room = sa.case(
                    {d: max(per_destination - n, 0) for d, n in busy.items()},
                    value=ranked.c.destination,
                    else_=per_destination,
                )
            query = query.where(
                due, outbox.c.id.in_(sa.select(ranked.c.id).where(ranked.c.rank <= room))
            )
        rows = (
            await self._conn.execute(
                query.order_by(outbox.c.next_attempt_at, outbox.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not rows:
            return []
        # Due is checked again as the rows are written: SQLite reads outside the write lock,
        # so another process may have claimed some of them since; only what this UPDATE
        # took is this relay's.
        taken = await self._conn.execute(
            outbox.update()
            .where(outbox.c.id.in_([r.id for r in rows]), due)
            .values(status="in_flight", lease_until=now + timedelta(seconds=lease_seconds))
            .returning(outbox.c.id)
        )
        ids = set(taken.scalars())
        return [_message(r, "in_flight") for r in rows if r.id in ids]

    async def relying_on(self, consent_id: str) -> list[OutboxMessage]:
        """The forwards not yet delivered (pending or in flight) that rely on the consent."""
        rows = await self._conn.execute(
            outbox.select()
            .where(
                outbox.c.consent_id == consent_id,
                outbox.c.status.in_(("pending", "in_flight")),
            )
            .order_by(outbox.c.id)
            .with_for_update()
        )
        return [_message(r) for r in rows]

    async def withhold(self, message_ids: Sequence[str], reason: str) -> set[str]:
        """Cancel forwards not yet delivered: ``withheld``, never claimed again."""
        if not message_ids:
            return set()
        taken = await self._conn.execute(
            outbox.update()
            .where(
                outbox.c.id.in_(list(message_ids)),
                outbox.c.status.in_(("pending", "in_flight")),
            )
            .values(status="withheld", lease_until=None, last_error=reason)
            .returning(outbox.c.id)
        )
        return set(taken.scalars())

    async def delivered(
        self, message_id: str, at: datetime, ack: Acknowledgement | None = None
    ) -> bool:
        marked = await self._conn.execute(
            outbox.update()
            .where(outbox.c.id == message_id, outbox.c.status != "delivered")
            .values(status="delivered", delivered_at=at, lease_until=None, last_error=None)
            .returning(outbox.c.application_id, outbox.c.destination)
        )
        row = marked.one_or_none()
        if row is None:
            return False
        if ack is not None:
            await self._conn.execute(
                dialect_insert(self._conn, delivery_evidence)
                .values(
                    message_id=message_id,
                    application_id=row.application_id,
                    destination=row.destination,
                    target=ack.target[:500],
                    request_digest=ack.request_headers.get("Content-Digest"),
                    request_headers=dict(ack.request_headers),
                    ack_status=ack.status,
                    ack_key_id=ack.key_id[:200],
                    ack_digest=ack.body_digest,
                    ack_headers=dict(ack.headers),
                    delivered_at=at,
                )
                .on_conflict_do_nothing()
            )
        return True

    async def delivered_many(
        self, deliveries: Sequence[tuple[OutboxMessage, datetime, Acknowledgement]]
    ) -> set[str]:
        """Mark many messages delivered, each at its own time, and keep every signed exchange
        and both bodies (once per digest): three statements for the whole batch. Returns the
        ids marked now; the others were delivered already (a repeated acknowledgement)."""
        if not deliveries:
            return set()
        ids = [m.id for m, _, _ in deliveries]
        when = sa.case(
            *(
                (outbox.c.id == m.id, sa.bindparam(None, at, UTCDateTime()))
                for m, at, _ in deliveries
            ),
            else_=outbox.c.delivered_at,
        )
        marked = await self._conn.execute(
            outbox.update()
            .where(outbox.c.id.in_(ids), outbox.c.status != "delivered")
            .values(status="delivered", delivered_at=when, lease_until=None, last_error=None)
            .returning(outbox.c.id)
        )
        now_delivered = set(marked.scalars())
        kept = [(m, at, ack) for m, at, ack in deliveries if m.id in now_delivered]
        if kept:
            await self._conn.execute(
                dialect_insert(self._conn, delivery_evidence).on_conflict_do_nothing(),
                [_evidence_row(m, at, ack) for m, at, ack in kept],
            )
            bodies = _bodies(kept)
            if bodies:
                await self._conn.execute(
                    dialect_insert(self._conn, evidence).on_conflict_do_nothing(), bodies
                )
        return now_delivered

    async def retry_later(self, message_id: str, at: datetime, error: str) -> None:
        await self._conn.execute(failed_attempt(outbox, message_id, error, retry_at=at))

    async def dead(self, message_id: str, error: str) -> None:
        await self._conn.execute(failed_attempt(outbox, message_id, error, retry_at=None))

    # ---- operators (gateway.outbox_ops) and metrics ------------------------------------

    async def waiting(self) -> int:
        """Messages not yet delivered nor dead: pending (due or backing off) or in flight."""
        query = sa.select(sa.func.count()).where(outbox.c.status.in_(("pending", "in_flight")))
        return int((await self._conn.execute(query)).scalar_one())

    async def listing(
        self, *, status: str | None = None, destination: str | None = None, limit: int = 50
    ) -> list[OutboxRow]:
        """Rows in the order they are due (dead letters and deliveries included)."""
        query = outbox.select()
        if status is not None:
            query = query.where(outbox.c.status == status)
        if destination is not None:
            query = query.where(outbox.c.destination == destination)
        rows = await self._conn.execute(
            query.order_by(outbox.c.next_attempt_at, outbox.c.id).limit(limit)
        )
        return [OutboxRow(_message(r), r.lease_until, r.created_at, r.delivered_at) for r in rows]

    async def retry_now(self, message_id: str, now: datetime) -> tuple[str, OutboxMessage | None]:
        """Make one message due at ``now``: a pending one waiting for its backoff, a dead
        letter (its attempts are kept), or one in flight whose lease has run out.

        Returns what was done — ``"due"``, or why not: ``"missing"``, ``"delivered"``,
        ``"leased"`` (in flight under a live lease), ``"withheld"`` (its consent lapsed) — and
        the message as it was.
        """
        row = (
            await self._conn.execute(
                outbox.select().where(outbox.c.id == message_id).with_for_update()
            )
        ).one_or_none()
        if row is None:
            return "missing", None
        before = _message(row)
        if row.status == "delivered":
            return "delivered", before
        if row.status == "withheld":  # the consent it relied on is no longer in force
            return "withheld", before
        if row.status == "in_flight" and row.lease_until is not None and row.lease_until >= now:
            return "leased", before
        await self._conn.execute(
            outbox.update()
            .where(outbox.c.id == message_id, outbox.c.status == row.status)
            .values(status="pending", next_attempt_at=now, lease_until=None)
        )
        await self._due_now()
        return "due", before

    async def requeue_dead(
        self, now: datetime, *, destination: str | None = None
    ) -> list[OutboxMessage]:
        """Every dead letter (of one destination) back to pending, attempts reset, due now."""
        query = outbox.select().where(outbox.c.status == "dead")
        if destination is not None:
            query = query.where(outbox.c.destination == destination)
        rows = (await self._conn.execute(query.order_by(outbox.c.id).with_for_update())).all()
        if rows:
            await self._conn.execute(
                outbox.update()
                .where(outbox.c.id.in_([r.id for r in rows]), outbox.c.status == "dead")
                .values(status="pending", attempts=0, next_attempt_at=now, lease_until=None)
            )
            await self._due_now()
        return [_message(r) for r in rows]

    # ---- evidence (the archive) --------------------------------------------------------

    async def delivery_evidence(self, application_id: str) -> list[DeliveryEvidence]:
        """Every acknowledged forward of one application, oldest first, with both bodies."""
        rows = (
            await self._conn.execute(
                delivery_evidence.select()
                .where(delivery_evidence.c.application_id == application_id)
                .order_by(delivery_evidence.c.delivered_at, delivery_evidence.c.message_id)
            )
        ).all()
        digests = {d for r in rows for d in (r.request_digest, r.ack_digest) if d}
        bodies: dict[str, tuple[str, bytes]] = {}
        if digests:
            kept = await self._conn.execute(
                sa.select(evidence.c.digest, evidence.c.media_type, evidence.c.body).where(
                    evidence.c.digest.in_(sorted(digests))
                )
            )
            bodies = {k.digest: (k.media_type, bytes(k.body)) for k in kept}
        return [_evidence(r, bodies) for r in rows]


def _evidence_row(message: OutboxMessage, at: datetime, ack: Acknowledgement) -> dict[str, Any]:
    return {
        "message_id": message.id,
        "application_id": message.application_id,
        "destination": message.destination,
        "target": ack.target[:500],
        "request_digest": ack.request_headers.get("Content-Digest"),
        "request_headers": dict(ack.request_headers),
        "ack_status": ack.status,
        "ack_key_id": ack.key_id[:200],
        "ack_digest": ack.body_digest,
        "ack_headers": dict(ack.headers),
        "delivered_at": at,
    }


def _bodies(
    kept: Sequence[tuple[OutboxMessage, datetime, Acknowledgement]],
) -> list[dict[str, Any]]:
    """The ``evidence`` rows of both signed bodies of each exchange, one per digest, as the
    audit trail's ``keep_evidence`` writes them: the request's when it has a digest, the
    answer's when it has a body."""
    rows: dict[str, dict[str, Any]] = {}
    for message, at, ack in kept:
        request_digest = ack.request_headers.get("Content-Digest")
        if request_digest:
            rows.setdefault(
                request_digest, _body(request_digest, message.media_type, message.body, at)
            )
        if ack.body:
            media_type = ack.headers.get("Content-Type", "application/octet-stream")
            rows.setdefault(ack.body_digest, _body(ack.body_digest, media_type, ack.body, at))
    return list(rows.values())


def _body(digest: str, media_type: str, body: bytes, at: datetime) -> dict[str, Any]:
    return {"digest": digest, "media_type": media_type[:100], "body": body, "stored_at": at}


def _signed(digest: str | None, headers: dict[str, str], bodies: dict[str, Any]) -> SignedMessage:
    media_type, body = bodies.get(digest or "", (headers.get("Content-Type", ""), None))
    return SignedMessage(digest, media_type, body, headers)


def _evidence(row: Any, bodies: dict[str, tuple[str, bytes]]) -> DeliveryEvidence:
    return DeliveryEvidence(
        message_id=row.message_id,
        application_id=row.application_id,
        destination=row.destination,
        target=row.target,
        request=_signed(row.request_digest, dict(row.request_headers), bodies),
        ack_status=row.ack_status,
        ack_key_id=row.ack_key_id,
        ack=_signed(row.ack_digest, dict(row.ack_headers), bodies),
        delivered_at=row.delivered_at,
    )


class SqlIdempotency:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def get(self, agency_id: str, scope: str, key: str) -> StoredResponse | None:
        row = (
            await self._conn.execute(
                idempotency_keys.select()
                .where(
                    idempotency_keys.c.agency_id == agency_id,
                    idempotency_keys.c.scope.in_((scope, "")),  # "": kept from before scopes
                    idempotency_keys.c.key == key,
                )
                .order_by(idempotency_keys.c.scope.desc())
                .limit(1)
            )
        ).one_or_none()
        if row is None:
            return None
        return StoredResponse(row.request_digest, row.status, dict(row.body), row.resource)

    async def put(
        self, agency_id: str, scope: str, key: str, response: StoredResponse, at: datetime
    ) -> None:
        try:
            await self._conn.execute(
                idempotency_keys.insert().values(
                    **idempotency_row(agency_id, scope, key, response, at)
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
