"""The audit chain in the database: appended in the same transaction as what it records.

Records are collected during a unit of work and sealed at commit: the one-row ``audit_head``
is locked (``FOR UPDATE`` on PostgreSQL; SQLite has one writer), each record is chained to
the previous hash, and the head moves on. So the chain order is the commit order, across
every gateway process, and a transaction that rolls back leaves no audit entry behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.store.database import dialect_insert
from gateway.store.tables import audit_checkpoints, audit_head, audit_log, evidence
from gateway.trust.audit import (
    GENESIS,
    ChainReport,
    StoredEntry,
    seal,
    sign_checkpoint,
    verify_chain,
    verify_checkpoint,
)
from gateway.trust.keys import SigningKey

_HEAD_ID = 1


Pending = tuple[datetime, str, str, str, Mapping[str, Any]]  # at, kind, actor, subject, data


def evidence_row(digest: str, media_type: str, body: bytes, at: datetime) -> dict[str, Any]:
    """A signed body kept whole, addressed by its digest."""
    return {"digest": digest, "media_type": media_type[:100], "body": body, "stored_at": at}


def append_sealed(conn: sa.Connection, pending: Sequence[Pending]) -> None:
    """Put ``pending`` on the chain in order: lock the head (``FOR UPDATE`` on PostgreSQL;
    SQLite has one writer), chain each record to the previous hash, move the head. One lock,
    one multi-row insert and one update, however many records (a batch's share them).
    Synchronous: the batch writer runs it as is; a unit of work through ``run_sync``."""
    row = conn.execute(
        sa.select(audit_head.c.seq, audit_head.c.hash)
        .where(audit_head.c.id == _HEAD_ID)
        .with_for_update()
    ).one()
    seq, head = int(row.seq), str(row.hash)
    rows = []
    for at, kind, actor, subject, data in pending:
        seq += 1
        record = seal(seq, at, kind, actor[:64], subject[:200], data, head)
        head = record.hash
        rows.append(
            {
                "seq": seq,
                "at": at,
                "kind": kind,
                "actor": actor[:64],
                "subject": subject[:200],
                "entry": record.entry,
                "hash": record.hash,
            }
        )
    conn.execute(audit_log.insert(), rows)
    conn.execute(audit_head.update().where(audit_head.c.id == _HEAD_ID).values(seq=seq, hash=head))


class SqlAudit:
    """The AuditTrail port: record now, seal at commit."""

    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn
        self._pending: list[Pending] = []

    def record(
        self, kind: str, actor: str, subject: str, data: Mapping[str, Any], at: datetime
    ) -> None:
        self._pending.append((at, kind, actor, subject, dict(data)))

    async def keep_evidence(self, digest: str, media_type: str, body: bytes, at: datetime) -> None:
        """Keep a signed body whole, once per digest."""
        await self._conn.execute(
            dialect_insert(self._conn, evidence)
            .values(**evidence_row(digest, media_type, body, at))
            .on_conflict_do_nothing()
        )

    @property
    def pending(self) -> list[Pending]:
        """The records not yet sealed (a batch seals a work item's with its own)."""
        return self._pending

    async def flush(self) -> None:
        """Seal the pending records onto the chain (called by the unit of work's commit)."""
        if not self._pending:
            return
        await self._conn.run_sync(append_sealed, self._pending)
        self._pending.clear()

    async def head(self) -> tuple[int, str]:
        row = (
            await self._conn.execute(
                sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == _HEAD_ID)
            )
        ).one_or_none()
        return (0, GENESIS) if row is None else (int(row.seq), str(row.hash))

    async def entries(self, batch: int = 10_000) -> AsyncIterator[list[StoredEntry]]:
        """Every entry in seq order, in batches (constant memory for long chains)."""
        after = 0
        while True:
            rows = (
                await self._conn.execute(
                    sa.select(audit_log.c.seq, audit_log.c.entry, audit_log.c.hash)
                    .where(audit_log.c.seq > after)
                    .order_by(audit_log.c.seq)
                    .limit(batch)
                )
            ).all()
            if not rows:
                return
            yield [StoredEntry(int(r.seq), bytes(r.entry), str(r.hash)) for r in rows]
            after = int(rows[-1].seq)

    async def add_checkpoint(self, seq: int, head: str, token: str, at: datetime) -> bool:
        result = await self._conn.execute(
            dialect_insert(self._conn, audit_checkpoints)
            .values(seq=seq, head=head, token=token, at=at)
            .on_conflict_do_nothing()
        )
        return result.rowcount == 1

    async def last_checkpoint(self) -> int:
        value = (
            await self._conn.execute(sa.select(sa.func.max(audit_checkpoints.c.seq)))
        ).scalar_one()
        return int(value or 0)

    async def checkpoint_tokens(self) -> list[str]:
        rows = await self._conn.execute(
            sa.select(audit_checkpoints.c.token).order_by(audit_checkpoints.c.seq)
        )
        return [str(r.token) for r in rows]

    async def recent_checkpoints(self, limit: int) -> list[dict[str, Any]]:
        """The newest checkpoints, newest first, for partners to keep (publication)."""
        rows = await self._conn.execute(
            audit_checkpoints.select().order_by(audit_checkpoints.c.seq.desc()).limit(limit)
        )
        return [
            {"seq": int(r.seq), "head": r.head, "at": r.at.isoformat(), "token": r.token}
            for r in rows
        ]


async def write_checkpoint(store: Any, key: SigningKey, now: datetime) -> int | None:
    """Sign the chain's head if it moved since the last checkpoint; the seq signed, or None."""
    async with store() as uow:
        seq, head = await uow.audit.head()
        if seq == 0 or seq <= await uow.audit.last_checkpoint():
            return None
        token = sign_checkpoint(key, seq, head, now)
        written = await uow.audit.add_checkpoint(seq, head, token, now)
        await uow.commit()
    return seq if written else None


async def verify_stored_chain(
    store: Any, jwks: Mapping[str, Any], archived: Sequence[str] = ()
) -> ChainReport:
    """Verify the stored chain and its signed checkpoints in constant memory.

    ``archived`` are checkpoint tokens kept outside this database (partners fetch them from
    ``/v1/audit/checkpoints``): they catch a rewrite that also replaced the stored ones.

    The hashing runs in a worker thread; it pulls the entries batch by batch from the
    event loop, so a chain of millions of entries is never held in memory at once.
    """
    loop = asyncio.get_running_loop()
    async with store() as uow:
        tokens = [*await uow.audit.checkpoint_tokens(), *archived]
        unique = {(c.seq, c.head): c for c in (verify_checkpoint(t, jwks) for t in tokens)}
        checkpoints = sorted(unique.values(), key=lambda c: c.seq)
        batches = uow.audit.entries()

        def entries() -> Iterator[StoredEntry]:
            while True:
                try:
                    batch = asyncio.run_coroutine_threadsafe(anext(batches), loop).result()
                except StopAsyncIteration:
                    return
                yield from batch

        return await asyncio.to_thread(verify_chain, entries(), checkpoints)
