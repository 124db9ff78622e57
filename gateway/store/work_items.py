"""Work items: a use case that reads, run inside a group-commit batch.

A decision reads its case before it writes; it cannot be recorded as rows in advance. It runs
instead inside the committer's transaction, in a savepoint of its own, on the ordinary SQL
repositories over the batch's synchronous connection: their awaits answer at once, so the
coroutine is driven to its end without ever suspending (:func:`run_item`).
"""

from __future__ import annotations

import contextlib
from collections.abc import (
    AsyncIterator,
    Callable,
    Coroutine,
)
from typing import Any, TypeVar

import sqlalchemy as sa
import structlog

from gateway.domain.errors import (
    GatewayError,
)
from gateway.store.audit import Pending
from gateway.store.registry_cache import RegistryCache
from gateway.store.repositories import attach_repositories
from gateway.store.write_sets import WriteSet

log = structlog.get_logger("gateway.store.work_items")
T = TypeVar("T")


def run_item(
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
