"""Group commit: the write sets of concurrent requests committed in one transaction.

A write use case that needs no database read to decide (a partner's submission, the
acceptance of a signed read) runs in a :class:`BatchedUnitOfWork`. Its repositories read
from memory (the registry snapshot, the Idempotency-Keys and nonces this process has
committed lately) and *record* every write in a :class:`WriteSet` instead of executing it.
Its ``commit`` hands the write set to the process's :class:`Committer` and returns when the
transaction holding it has committed: durability is unchanged, a 202 still follows the commit.

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
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeVar

import sqlalchemy as sa
import structlog

from gateway.domain.agencies import Agency
from gateway.domain.application import Application
from gateway.domain.errors import (
    ConflictError,
    GatewayError,
    NotReadyError,
    ReplayedRequestError,
    UnknownKeyError,
)
from gateway.services.ports import Notification, OutboxMessage, StoredResponse
from gateway.store.applications import new_rows
from gateway.store.audit import Pending, append_sealed, evidence_row
from gateway.store.database import dialect_insert, run_to_end, sqlite_pragmas
from gateway.store.delivery import idempotency_row, outbox_row
from gateway.store.notifications import notification_row
from gateway.store.registry import load_snapshot, registry_version_of
from gateway.store.registry_cache import RegistryCache, RegistrySnapshot
from gateway.store.repositories import attach_repositories
from gateway.store.tables import (
    evidence,
    idempotency_keys,
    metadata,
    nonces,
    notifications,
    outbox,
)
from gateway.store.wakeups import notify_outbox_sync
from gateway.trust.keys import VerificationKey

if TYPE_CHECKING:
    from gateway.store.unit_of_work import SqlUnitOfWorkFactory

log = structlog.get_logger("gateway.store.batch")
T = TypeVar("T")

_ORDER = {table: i for i, table in enumerate(metadata.sorted_tables)}  # foreign-key order
# Idempotency-Keys (with their answers, ~2 KB each) and nonces this process keeps in memory:
# a retry usually comes within seconds; an older one is answered from the database
_REMEMBERED = 4096


class CommitObserver(Protocol):
    def committed(self, size: int, seconds: float, waiting: int) -> None: ...


class _Unobserved:
    def committed(self, size: int, seconds: float, waiting: int) -> None:
        pass


@dataclass(eq=False)
class WriteSet:
    """Everything one request writes, as rows; nothing is executed until the batch."""

    snapshot_version: int
    nonces: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)  # idempotency_keys rows
    responses: list[StoredResponse] = field(default_factory=list)  # kept under the claims
    rows: list[tuple[sa.Table, list[dict[str, Any]]]] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    audit: list[Pending] = field(default_factory=list)
    signers: list[tuple[str, datetime]] = field(default_factory=list)  # key id, used at
    # A work item instead of rows: run inside the batch, in a savepoint of its own.
    work: Callable[[Any], Awaitable[Any]] | None = None
    result: Any = None
    future: asyncio.Future[Any] | None = None


class _Memory:
    """What this process committed lately: answers and used nonces, bounded (oldest go).
    A miss proves nothing (another process, an older request): the batch's unique
    constraints decide. A hit answers without a database round trip."""

    def __init__(self, size: int = _REMEMBERED) -> None:
        self._size = size
        self.responses: collections.OrderedDict[tuple[str, str, str], StoredResponse] = (
            collections.OrderedDict()
        )
        self.nonces: collections.OrderedDict[tuple[str, str], datetime] = collections.OrderedDict()

    def remember(self, write_set: WriteSet) -> None:
        for row, response in zip(write_set.claims, write_set.responses, strict=True):
            self._keep(self.responses, (row["agency_id"], row["scope"], row["key"]), response)
        for row in write_set.nonces:
            self._keep(self.nonces, (row["key_id"], row["nonce"]), row["expires_at"])

    def _keep(self, store: collections.OrderedDict[Any, Any], key: Any, value: Any) -> None:
        store[key] = value
        store.move_to_end(key)
        while len(store) > self._size:
            store.popitem(last=False)

    def forget(self) -> None:
        self.responses.clear()
        self.nonces.clear()


# ---- the batched unit of work: repositories that record ----------------------------------


class _Audit:
    def __init__(self, write_set: WriteSet) -> None:
        self._ws = write_set

    def record(
        self, kind: str, actor: str, subject: str, data: Mapping[str, Any], at: datetime
    ) -> None:
        self._ws.audit.append((at, kind, actor, subject, dict(data)))

    async def keep_evidence(self, digest: str, media_type: str, body: bytes, at: datetime) -> None:
        self._ws.evidence.append(evidence_row(digest, media_type, body, at))


class _Applications:
    def __init__(self, write_set: WriteSet, audit: _Audit) -> None:
        self._ws = write_set
        self._audit = audit

    async def add(self, app: Application) -> None:
        self._ws.rows.extend(new_rows(app, self._audit))


class _Outbox:
    def __init__(self, write_set: WriteSet) -> None:
        self._ws = write_set

    async def add(self, message: OutboxMessage) -> None:
        self._ws.rows.append((outbox, [outbox_row(message)]))


class _Notifications:
    def __init__(self, write_set: WriteSet) -> None:
        self._ws = write_set

    async def add(self, notification: Notification) -> None:
        self._ws.rows.append((notifications, [notification_row(notification)]))


class _Idempotency:
    def __init__(self, write_set: WriteSet, memory: _Memory) -> None:
        self._ws = write_set
        self._memory = memory

    async def get(self, agency_id: str, scope: str, key: str) -> StoredResponse | None:
        """From memory only: a miss is settled by the claim in the batch."""
        return self._memory.responses.get((agency_id, scope, key))

    async def put(
        self, agency_id: str, scope: str, key: str, response: StoredResponse, at: datetime
    ) -> None:
        self._ws.claims.append(idempotency_row(agency_id, scope, key, response, at))
        self._ws.responses.append(response)


class _Nonces:
    def __init__(self, write_set: WriteSet, memory: _Memory) -> None:
        self._ws = write_set
        self._memory = memory

    async def use(self, key_id: str, nonce: str, *, now: datetime, expires_at: datetime) -> bool:
        """False when this process committed the nonce and its window is still open; else
        claimed in the batch (which refuses the write set if the database holds it)."""
        known = self._memory.nonces.get((key_id, nonce))
        if known is not None and known >= now:
            return False
        self._ws.nonces.append({"key_id": key_id, "nonce": nonce, "expires_at": expires_at})
        return True


class _Agencies:
    """The registry from the process's snapshot; the batch checks its version."""

    def __init__(self, write_set: WriteSet, snapshot: RegistrySnapshot) -> None:
        self._ws = write_set
        self._snapshot = snapshot

    async def get(self, agency_id: str) -> Agency | None:
        return self._snapshot.agency(agency_id)

    async def key(self, kid: str) -> VerificationKey:
        return self._snapshot.key(kid)

    async def signer(self, kid: str) -> tuple[VerificationKey, Agency | None]:
        key = self._snapshot.key(kid)
        return key, self._snapshot.agency(key.owner)

    async def still_valid(self, kid: str, at: datetime) -> None:
        """Checked against the snapshot now, and again in the batch should the registry have
        moved since (a revocation committed meanwhile refuses the write set)."""
        key, agency = await self.signer(kid)
        if agency is None or not key.valid_at(at):
            raise UnknownKeyError("the signing key was revoked or is not valid now")
        self._ws.signers.append((kid, at))


class _Unavailable:
    """A repository a batched unit of work does not offer: its use case needs reads."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        raise RuntimeError(
            f"{self._name}.{attribute} is not available in a batched unit of work: "
            "run this use case in a unit of work of its own"
        )


class BatchedUnitOfWork:
    """The UnitOfWork port for write-only use cases: writes recorded, committed in a batch."""

    def __init__(self, committer: Committer) -> None:
        self._committer = committer

    async def __aenter__(self) -> Self:
        snapshot = await self._committer.snapshot()
        self.write_set = ws = WriteSet(snapshot.version)
        memory = self._committer.memory
        self.audit = _Audit(ws)
        self.applications = _Applications(ws, self.audit)
        self.outbox = _Outbox(ws)
        self.notifications = _Notifications(ws)
        self.idempotency = _Idempotency(ws, memory)
        self.nonces = _Nonces(ws, memory)
        self.agencies = _Agencies(ws, snapshot)
        self.identities = _Unavailable("identities")
        self.complaints = _Unavailable("complaints")
        self.jobs = _Unavailable("jobs")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None  # a write set not committed is simply dropped

    async def commit(self) -> None:
        await self._committer.commit(self.write_set)


# ---- the committer ------------------------------------------------------------------------


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
        self.memory = _Memory()
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


class SqliteWriter:
    """SQLite's batch writer: a connection of its own on the same file (same pragmas: WAL,
    ``synchronous=FULL``), in autocommit mode so that the committer says when a transaction
    begins (``BEGIN IMMEDIATE``: the write lock first, so no statement waits on it) and
    ends. Used by one batch at a time, under the unit-of-work gate."""

    def __init__(self, url: sa.URL) -> None:
        self.engine = sa.create_engine(
            url.set(drivername="sqlite+pysqlite"),
            poolclass=sa.pool.StaticPool,
            connect_args={"check_same_thread": False},
            hide_parameters=True,
        )
        sa.event.listen(self.engine, "connect", sqlite_pragmas)
        self._conn: sa.Connection | None = None

    @property
    def connection(self) -> sa.Connection:
        if self._conn is None:
            self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def begin(self) -> None:
        self.connection.exec_driver_sql("BEGIN IMMEDIATE")

    def commit(self) -> None:
        self.connection.exec_driver_sql("COMMIT")

    def rollback(self) -> None:
        if self._conn is not None and self._conn.connection.dbapi_connection is not None:
            with contextlib.suppress(Exception):
                self._conn.exec_driver_sql("ROLLBACK")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self.engine.dispose()


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
    _check_signers(conn, batch, refused, registry, now)
    _claim_nonces(conn, batch, refused, now)
    _claim_keys(conn, batch, refused)
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
            refused[i] = _run_item(conn, write_set, registry, pending)
    if pending:
        append_sealed(conn, pending)
    return refused


def _run_item(
    conn: sa.Connection, write_set: WriteSet, registry: RegistryCache, pending: list[Pending]
) -> Exception | None:
    """One work item in a savepoint: its result kept and its audit records added to
    ``pending``; or its error, and nothing of it kept."""
    assert write_set.work is not None
    uow = _InBatch(conn, registry)
    conn.exec_driver_sql("SAVEPOINT gba_item")
    try:
        write_set.result = _drive(write_set.work(uow))
    except Exception as error:
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT gba_item")
        conn.exec_driver_sql("RELEASE SAVEPOINT gba_item")
        if not isinstance(error, GatewayError):
            log.error("commit.work_failed", error=type(error).__name__, exc_info=error)
        return error
    conn.exec_driver_sql("RELEASE SAVEPOINT gba_item")
    pending.extend(uow.audit.pending)
    return None


def _drive(step: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (its awaits all answer at once) to its end."""
    try:
        step.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    step.close()
    raise RuntimeError("a batched work item awaited something other than its repositories")


class _Immediate:
    """An ``AsyncConnection`` look-alike over the batch's synchronous connection: the
    repositories' awaits answer at once, so a work item runs without suspending."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn
        self.dialect = conn.dialect
        self._savepoints = 0

    async def execute(self, statement: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self._conn.execute(statement, parameters, **kwargs)

    async def run_sync(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return fn(self._conn, *args, **kwargs)

    @contextlib.asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[None]:
        self._savepoints += 1
        name = f"gba_nested_{self._savepoints}"
        self._conn.exec_driver_sql(f"SAVEPOINT {name}")
        try:
            yield
        except BaseException:
            self._conn.exec_driver_sql(f"ROLLBACK TO SAVEPOINT {name}")
            self._conn.exec_driver_sql(f"RELEASE SAVEPOINT {name}")
            raise
        self._conn.exec_driver_sql(f"RELEASE SAVEPOINT {name}")


class _InBatch:
    """The UnitOfWork port for a work item: every repository on the batch's connection;
    ``commit`` is the batch's."""

    audit: Any

    def __init__(self, conn: sa.Connection, registry: RegistryCache) -> None:
        attach_repositories(self, _Immediate(conn), registry)

    async def commit(self) -> None:
        return None


def _check_signers(
    conn: sa.Connection,
    batch: Sequence[WriteSet],
    refused: list[GatewayError | None],
    registry: RegistryCache,
    now: datetime,
) -> None:
    """One read of the registry version; when it moved past a write set's snapshot, the keys
    the write set relied on are checked again against the registry as it is now."""
    version = registry_version_of(conn)
    stale = [i for i, ws in enumerate(batch) if ws.signers and ws.snapshot_version != version]
    if not stale or version is None:
        return
    snapshot = registry.at(version)
    if snapshot is None:
        snapshot = load_snapshot(conn, version)
        registry.keep(snapshot)
    for i in stale:
        for kid, at in batch[i].signers:
            try:
                key = snapshot.key(kid)
            except UnknownKeyError as error:
                refused[i] = error
                break
            if snapshot.agency(key.owner) is None or not (
                key.valid_at(at) and key.valid_at(max(at, now))
            ):
                refused[i] = UnknownKeyError("the signing key was revoked or is not valid now")
                break


def _claim_nonces(
    conn: sa.Connection,
    batch: Sequence[WriteSet],
    refused: list[GatewayError | None],
    now: datetime,
) -> None:
    """Insert every nonce of the batch at once; a write set whose nonce was taken (and whose
    earlier use has not expired) is refused as a replay."""
    owner: dict[tuple[str, str], int] = {}
    for i, ws in enumerate(batch):
        if refused[i] is not None:
            continue
        for row in ws.nonces:
            key = (row["key_id"], row["nonce"])
            if key in owner:
                refused[i] = ReplayedRequestError("this signature nonce was already used")
                break
            owner[key] = i
    rows = [
        row
        for i, ws in enumerate(batch)
        if refused[i] is None
        for row in ws.nonces
        if owner.get((row["key_id"], row["nonce"])) == i
    ]
    taken: set[tuple[str, str]] = set()
    if rows:  # executemany with RETURNING: batched into multi-row statements, compiled once
        result = conn.execute(
            dialect_insert(conn, nonces)
            .on_conflict_do_nothing()
            .returning(nonces.c.key_id, nonces.c.nonce),
            rows,
        )
        taken.update((r.key_id, r.nonce) for r in result)
    for row in rows:
        key = (row["key_id"], row["nonce"])
        if key in taken:
            continue
        revived = conn.execute(  # used before, but its window has passed: use again
            nonces.update()
            .where(nonces.c.key_id == key[0], nonces.c.nonce == key[1], nonces.c.expires_at < now)
            .values(expires_at=row["expires_at"])
        )
        if revived.rowcount != 1:
            refused[owner[key]] = ReplayedRequestError("this signature nonce was already used")


def _claim_keys(
    conn: sa.Connection, batch: Sequence[WriteSet], refused: list[GatewayError | None]
) -> None:
    """Insert every Idempotency-Key row of the batch at once; a write set whose key is taken
    is refused with ConflictError (the use case then answers as the first request did) and
    the nonces it claimed are given back, for that answer to record."""
    owner: dict[tuple[str, str, str], int] = {}
    losers: set[int] = set()
    for i, ws in enumerate(batch):
        if refused[i] is not None:
            continue
        for row in ws.claims:
            key = (row["agency_id"], row["scope"], row["key"])
            if key in owner:  # an earlier write set of this batch holds it
                losers.add(i)
                break
            owner[key] = i
    rows = [
        row
        for i, ws in enumerate(batch)
        if refused[i] is None and i not in losers
        for row in ws.claims
        if owner.get((row["agency_id"], row["scope"], row["key"])) == i
    ]
    taken: set[tuple[str, str, str]] = set()
    c = idempotency_keys.c
    if rows:
        legacy = conn.execute(  # keys kept before scopes existed (scope "") are taken
            sa.select(c.agency_id, c.key).where(
                c.agency_id.in_({r["agency_id"] for r in rows}),
                c.scope == "",
                c.key.in_({r["key"] for r in rows}),
            )
        )
        old = {(r.agency_id, r.key) for r in legacy}
        fresh = [r for r in rows if (r["agency_id"], r["key"]) not in old]
        if fresh:
            result = conn.execute(
                dialect_insert(conn, idempotency_keys)
                .on_conflict_do_nothing()
                .returning(c.agency_id, c.scope, c.key),
                fresh,
            )
            taken.update((r.agency_id, r.scope, r.key) for r in result)
    losers.update(
        owner[(r["agency_id"], r["scope"], r["key"])]
        for r in rows
        if (r["agency_id"], r["scope"], r["key"]) not in taken
    )
    for i in sorted(losers):
        refused[i] = _key_taken()
        for agency_id, scope, key in [k for k, holder in owner.items() if holder == i]:
            if (agency_id, scope, key) in taken:  # the keys it did win are not its to keep
                conn.execute(
                    idempotency_keys.delete().where(
                        c.agency_id == agency_id, c.scope == scope, c.key == key
                    )
                )
        for row in batch[i].nonces:  # given back: the answer to the conflict records it
            conn.execute(
                nonces.delete().where(
                    nonces.c.key_id == row["key_id"], nonces.c.nonce == row["nonce"]
                )
            )


def _key_taken() -> ConflictError:
    return ConflictError("the Idempotency-Key is being used by another request")
