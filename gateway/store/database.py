"""Engines for the two supported databases.

SQLite (embedded default): one file, WAL journal, ``synchronous=FULL`` so a commit is on disk
before the gateway answers, and one connection per process so writes never contend inside
it. PostgreSQL (more than one process or machine): asyncpg with a small pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from gateway.domain.errors import ConfigurationError
from gateway.store.tables import audit_head, metadata, registry_version

T = TypeVar("T")


async def run_to_end(step: Awaitable[T]) -> T:
    """Run ``step`` to its end even when the caller is cancelled meanwhile (then re-raise the
    cancellation): taking and giving back a connection, or a commit, must not stop half-way."""
    task = asyncio.ensure_future(step)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await task
        raise


def async_url(url: str) -> sa.URL:
    """Map ``sqlite:///file`` and ``postgresql://...`` to their asyncio drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+asyncpg")
    raise ConfigurationError(f"unsupported database {backend!r}: use sqlite or postgresql")


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in (
        "PRAGMA journal_mode=WAL",
        "PRAGMA synchronous=FULL",
        "PRAGMA foreign_keys=ON",
        "PRAGMA busy_timeout=5000",
    ):
        cursor.execute(pragma)
    cursor.close()


def private_sqlite_file(database: str | None) -> None:
    """Create the SQLite file readable by its owner only (0600) before SQLite opens it, and
    take group and other access away from an existing one and its journal files. SQLite
    creates ``-wal`` and ``-shm`` with the mode of the database file, so they follow."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        if file.exists() and file.stat().st_mode & 0o077:
            file.chmod(0o600)


def create_engine(url: str, *, schema: str | None = None) -> AsyncEngine:
    """An engine for ``url``; ``schema`` puts PostgreSQL tables in their own schema (tests).
    SQL parameters never appear in logs or exception messages (``hide_parameters``)."""
    target = async_url(url)
    if target.get_backend_name() == "sqlite":
        private_sqlite_file(target.database)
        engine = create_async_engine(
            target, pool_size=1, max_overflow=0, pool_timeout=30, hide_parameters=True
        )
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {"timeout": 10, "command_timeout": 30}
    if schema:
        connect_args["server_settings"] = {"search_path": schema}
    return create_async_engine(
        target,
        pool_size=10,
        max_overflow=10,
        pool_recycle=1800,
        connect_args=connect_args,
        hide_parameters=True,
    )


def dialect_insert(conn: AsyncConnection | sa.Connection, table: sa.Table) -> Any:
    """An INSERT that supports ``on_conflict_do_nothing`` on both engines."""
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def _existing(inspector: sa.Inspector) -> list[str]:
    """The gateway's tables already in the database (in the connection's default schema).
    The rules below reflect them all at once (``get_multi_*``, one catalogue query each on
    PostgreSQL): a query per table and rule made each start on PostgreSQL, and each
    PostgreSQL test, over half a second slower."""
    present = set(inspector.get_table_names())
    return [table.name for table in metadata.sorted_tables if table.name in present]


def _add_missing_columns(sync_conn: sa.Connection) -> None:
    """Migration rule 1: a new column is nullable, or NOT NULL with a ``server_default`` that
    old rows take, and is added where missing."""
    inspector = sa.inspect(sync_conn)
    reflected = inspector.get_multi_columns(filter_names=_existing(inspector))
    for table in metadata.sorted_tables:
        if (None, table.name) not in reflected:
            continue
        present = {c["name"] for c in reflected[None, table.name]}
        for column in table.columns:
            if column.name in present:
                continue
            kind = column.type.compile(dialect=sync_conn.dialect)
            if not column.nullable:
                if not isinstance(column.server_default, sa.DefaultClause):
                    raise RuntimeError(f"cannot add NOT NULL column {table.name}.{column.name}")
                default = column.server_default.arg
                literal = sa.literal(default if isinstance(default, str) else str(default))
                kind += " NOT NULL DEFAULT " + str(
                    literal.compile(
                        dialect=sync_conn.dialect, compile_kwargs={"literal_binds": True}
                    )
                )
            name = sync_conn.dialect.identifier_preparer.format_table(table)
            sync_conn.execute(sa.text(f"ALTER TABLE {name} ADD COLUMN {column.name} {kind}"))


def _widen_primary_keys(sync_conn: sa.Connection) -> None:
    """Migration rule 2: a primary key may gain columns (added by rule 1 first, so old rows
    hold their default). PostgreSQL swaps the constraint; SQLite, which cannot alter a key,
    rebuilds the table and copies its rows."""
    inspector = sa.inspect(sync_conn)
    reflected = inspector.get_multi_pk_constraint(filter_names=_existing(inspector))
    for table in metadata.sorted_tables:
        if (None, table.name) not in reflected:
            continue
        present = reflected[None, table.name]
        wanted = [c.name for c in table.primary_key.columns]
        if set(present["constrained_columns"]) == set(wanted):
            continue
        if not set(present["constrained_columns"]) <= set(wanted):
            raise RuntimeError(f"cannot narrow the primary key of {table.name}")
        name = sync_conn.dialect.identifier_preparer.format_table(table)
        if sync_conn.dialect.name == "postgresql":
            sync_conn.execute(
                sa.text(
                    f'ALTER TABLE {name} DROP CONSTRAINT "{present["name"]}", '
                    f"ADD PRIMARY KEY ({', '.join(wanted)})"
                )
            )
            continue
        old = f"{table.name}__before_migration"
        indexes = inspector.get_indexes(table.name, schema=table.schema)
        sync_conn.execute(sa.text(f"ALTER TABLE {name} RENAME TO {old}"))
        for index in indexes:  # their names are the new table's
            sync_conn.execute(sa.text(f"DROP INDEX {index['name']}"))
        table.create(sync_conn)
        columns = [c.name for c in table.columns]
        rows = sa.select(*(sa.column(c) for c in columns)).select_from(sa.table(old))
        sync_conn.execute(table.insert().from_select(columns, rows))
        sync_conn.execute(sa.text(f"DROP TABLE {old}"))


def _add_missing_indexes(sync_conn: sa.Connection) -> None:
    """Migration rule 3: an index declared on a table that already exists is created where
    missing (``create_all`` creates a new table's indexes only)."""
    inspector = sa.inspect(sync_conn)
    reflected = inspector.get_multi_indexes(filter_names=_existing(inspector))
    for table in metadata.sorted_tables:
        if (None, table.name) not in reflected:
            continue
        present = {i["name"] for i in reflected[None, table.name]}
        for index in table.indexes:
            if index.name not in present:
                index.create(sync_conn)


async def create_schema(engine: AsyncEngine) -> None:
    """Create missing tables and migrate old ones by the rules above (idempotent)."""
    async with engine.begin() as conn:
        await conn.run_sync(_add_missing_columns)
        await conn.run_sync(_widen_primary_keys)
        await conn.run_sync(_add_missing_indexes)
        await conn.run_sync(metadata.create_all)
        await conn.execute(  # the audit chain's head row exists before the first append
            dialect_insert(conn, audit_head)
            .values(id=1, seq=0, hash="0" * 64)
            .on_conflict_do_nothing()
        )
        await conn.execute(  # the registry's version row, moved by every registry write
            dialect_insert(conn, registry_version).values(id=1, version=0).on_conflict_do_nothing()
        )


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(sa.text("SELECT 1"))
