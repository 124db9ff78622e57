"""The embedded SQLite database holds personal data: its files are the owner's only.

The database file is created 0600 before SQLite opens it (so its ``-wal`` and ``-shm`` journal
files, which SQLite creates with the database file's mode, are 0600 too), an existing file
that is readable by others is tightened, and the sandbox data folder is created 0700.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.bootstrap import Overrides, create_app
from gateway.services.ports import StoredResponse
from gateway.settings import load_settings
from gateway.store.database import create_engine, create_schema
from gateway.store.unit_of_work import SqlUnitOfWorkFactory


@pytest.fixture(autouse=True)
def _usual_umask() -> Iterator[None]:
    """The usual umask, under which files are created readable by everyone (0644)."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def _write_one_row(path: Path) -> None:
    engine = create_engine(f"sqlite:///{path}")
    try:
        await create_schema(engine)
        async with SqlUnitOfWorkFactory(engine)() as tx:
            response = StoredResponse("sha-256=:x:", 202, {"ok": True}, None)
            await tx.idempotency.put("hk-ird", "test", "key-00000001", response, datetime.now(UTC))
            await tx.commit()
        journal = [path.with_name(path.name + suffix) for suffix in ("-wal", "-shm")]
        assert all(file.exists() for file in journal)  # WAL mode: both exist while open
        assert [_mode(file) for file in journal] == [0o600, 0o600]
    finally:
        await engine.dispose()
    assert _mode(path) == 0o600


async def test_a_new_sqlite_database_and_its_journal_are_the_owners_only(tmp_path: Path) -> None:
    await _write_one_row(tmp_path / "gateway.db")


async def test_an_existing_database_readable_by_others_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "gateway.db"
    engine = create_engine(f"sqlite:///{path}")
    await create_schema(engine)
    await engine.dispose()
    for file in (path, path.with_name("gateway.db-wal")):
        file.touch()
        file.chmod(0o644)

    await _write_one_row(path)


def test_the_sandbox_data_folder_and_database_are_created_private(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "sandbox"
    settings = load_settings(environ={}, mode="sandbox", port=1, sandbox_dir=data)

    create_app(settings, Overrides())

    assert _mode(data) == 0o700
    assert _mode(data.parent) == 0o700  # created for it, so private too
    assert _mode(data / "gateway.db") == 0o600
