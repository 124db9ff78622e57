"""SQLite's batch writer: the group committer's own connection to the database file."""

from __future__ import annotations

import contextlib

import sqlalchemy as sa

from gateway.store.database import sqlite_pragmas


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
