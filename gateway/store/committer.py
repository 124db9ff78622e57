"""Group commit: the write sets and work items of concurrent requests, one transaction.

The committer takes every write set waiting (up to ``max_batch``; the next batch gathers while
one commits, so no deliberate wait is needed) and writes them in one transaction, one
statement per table for the whole batch:

1. the registry version, read once; when it moved since the snapshot a write set was checked
   against, the write set's signing keys are checked again (a revocation committed anywhere is
   honoured before anything further is accepted);
2. the claims: signature nonces, then Idempotency-Keys, each one ``INSERT ... ON CONFLICT DO
   NOTHING RETURNING`` for the batch; a write set whose claim was taken (by an earlier request,
   another process, or an earlier write set of the same batch) is refused alone
   (:class:`ReplayedRequestError`, :class:`ConflictError`) and its other claims withdrawn;
3. every other row of the write sets left, ``executemany`` per table in foreign-key order;
4. the *work items*: use cases that must read (a decision reads its case), each run on the
   batch's connection in a savepoint of its own, its refusal its own (:meth:`Committer.run`);
5. the audit chain extended once for the batch, under one lock on its head;
6. one commit (one fsync), then each waiter is answered.

A database error fails the batch: every waiter gets 503 and nothing of the batch is stored. A
request cancelled while it waits leaves the committer running: a write set not yet taken is
dropped, one taken is committed (its Idempotency-Key answers a retry).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import (
    Awaitable,
    Callable,
    Iterable,
    Sequence,
)
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import sqlalchemy as sa
import structlog

from gateway.domain.errors import (
    GatewayError,
    NotReadyError,
)
from gateway.store.audit import append_sealed
from gateway.store.claims import check_signers, claim_keys, claim_nonces
from gateway.store.database import dialect_insert, run_to_end
from gateway.store.registry_cache import RegistryCache, RegistrySnapshot
from gateway.store.tables import (
    evidence,
    metadata,
    outbox,
)
from gateway.store.wakeups import notify_outbox_sync
from gateway.store.work_items import run_item
from gateway.store.write_sets import RecentClaims, WriteSet

if TYPE_CHECKING:
    from gateway.store.unit_of_work import SqlUnitOfWorkFactory

log = structlog.get_logger("gateway.store.committer")
T = TypeVar("T")

_ORDER = {table: i for i, table in enumerate(metadata.sorted_tables)}  # foreign-key order


class CommitObserver(Protocol):
    def committed(self, size: int, seconds: float, waiting: int) -> None: ...


class _Unobserved:
    def committed(self, size: int, seconds: float, waiting: int) -> None:
        pass


class Committer:
    """One per unit-of-work factory (per process and engine): gathers and commits batches."""

    def __init__(
        self,
        factory: SqlUnitOfWorkFactory,
        *,
        max_batch: int = 256,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._factory = factory
        self.max_batch = max_batch
        self.clock = clock
        self.memory = RecentClaims()
        self.observer: CommitObserver = _Unobserved()
        self._waiting: collections.deque[WriteSet] = collections.deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0  # committed transactions (tests, metrics)

    async def snapshot(self) -> RegistrySnapshot:
        """The process's registry snapshot; loaded (one transaction) when there is none."""
        current = self._factory.registry.current()
        if current is not None:
            return current
        async with self._factory() as uow:
            return await uow.agencies.snapshot()

    async def commit(self, write_set: WriteSet) -> None:
        """Queue ``write_set`` and wait until its batch committed; its refusal, or 503."""
        self._running()
        assert self._wake is not None
        write_set.future = asyncio.get_running_loop().create_future()
        self._waiting.append(write_set)
        self._wake.set()
        await write_set.future

    async def run(self, work: Callable[[Any], Awaitable[T]]) -> T:
        """Run ``work`` inside the next batch on a unit of work over the batch's connection,
        in a savepoint: its writes commit with the batch, or roll back alone when it raises.
        ``work`` may await its repositories only (they answer at once there)."""
        write_set = WriteSet(snapshot_version=-1, work=work)
        await self.commit(write_set)
        return write_set.result  # type: ignore[no-any-return]

    def _running(self) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done() or self._loop is not loop:
            self._loop = loop
            self._wake = asyncio.Event()
            self._waiting = collections.deque()  # a closed loop's waiters are gone with it
            self._task = loop.create_task(self._run(), name="gateway-committer")

    async def close(self) -> None:
        """Stop the committer (application shutdown); waiters still queued get 503."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._fail(list(self._waiting), _unavailable())
        self._waiting.clear()

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                batch: list[WriteSet] = []
                while self._waiting and len(batch) < self.max_batch:
                    write_set = self._waiting.popleft()
                    if write_set.future is not None and not write_set.future.done():
                        batch.append(write_set)  # a cancelled waiter's is dropped here
                if batch:
                    await self._commit(batch)

    async def _commit(self, batch: list[WriteSet]) -> None:
        started = time.perf_counter()
        try:
            outcomes = await self._transaction(batch)
        except asyncio.CancelledError:
            self._fail(batch, _unavailable())
            raise
        except Exception as error:
            log.error("commit.batch_failed", size=len(batch), error=type(error).__name__)
            self._fail(batch, error if isinstance(error, NotReadyError) else _unavailable())
            return
        self.batches += 1
        for write_set, outcome in zip(batch, outcomes, strict=True):
            assert write_set.future is not None
            if outcome is None:
                self.memory.remember(write_set)
                if not write_set.future.done():
                    write_set.future.set_result(None)
            elif not write_set.future.done():
                write_set.future.set_exception(outcome)
        self.observer.committed(len(batch), time.perf_counter() - started, len(self._waiting))

    async def _transaction(self, batch: list[WriteSet]) -> list[GatewayError | None]:
        """The batch in one transaction. SQLite: the writer's own connection, the statements
        run synchronously on this thread (no hop per statement), only taking the write lock
        and the commit's fsync in a thread. PostgreSQL: one connection of the pool, the
        statements in one ``run_sync`` (one round trip each, one per table)."""
        registry, now = self._factory.registry, self.clock()
        writer = self._factory.sqlite_writer
        if writer is None:
            async with self._factory() as uow:
                outcomes = await uow.connection.run_sync(_write, batch, registry, now)
                await uow.commit()
            return outcomes
        async with self._factory.exclusive():
            await run_to_end(asyncio.to_thread(writer.begin))
            try:
                outcomes = _write(writer.connection, batch, registry, now)
                await run_to_end(asyncio.to_thread(writer.commit))
            except BaseException:
                await run_to_end(asyncio.to_thread(writer.rollback))
                raise
        return outcomes

    @staticmethod
    def _fail(batch: Iterable[WriteSet], error: BaseException) -> None:
        for write_set in batch:
            if write_set.future is not None and not write_set.future.done():
                write_set.future.set_exception(error)


def _unavailable() -> NotReadyError:
    return NotReadyError(
        "the database could not store this request; nothing was kept, send it again",
        headers={"Retry-After": "1"},
    )


def _write(
    conn: sa.Connection,
    batch: Sequence[WriteSet],
    registry: RegistryCache,
    now: datetime,
) -> list[GatewayError | None]:
    """Write ``batch`` in ``conn``'s transaction; per write set, None or why it was refused."""
    refused: list[GatewayError | None] = [None] * len(batch)
    check_signers(conn, batch, refused, registry, now)
    claim_nonces(conn, batch, refused, now)
    claim_keys(conn, batch, refused)
    kept = [ws for ws, why in zip(batch, refused, strict=True) if why is None]
    tables: dict[sa.Table, list[dict[str, Any]]] = {}
    for write_set in kept:
        for table, rows in write_set.rows:
            tables.setdefault(table, []).extend(rows)
    for table in sorted(tables, key=_ORDER.__getitem__):
        conn.execute(table.insert(), tables[table])
    if outbox in tables:
        notify_outbox_sync(conn)  # other processes' relays, at the commit
    bodies = {row["digest"]: row for ws in kept for row in ws.evidence}
    if bodies:
        conn.execute(dialect_insert(conn, evidence).on_conflict_do_nothing(), list(bodies.values()))
    pending = [entry for ws in kept for entry in ws.audit]
    for i, write_set in enumerate(batch):
        if write_set.work is not None and refused[i] is None:
            refused[i] = run_item(conn, write_set, registry, pending)
    if pending:
        append_sealed(conn, pending)
    return refused
