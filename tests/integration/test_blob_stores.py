"""The database blob store on both databases: chunked, content-addressed, and a write that
fails leaves nothing readable; chunks a crashed writer left are swept."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from gateway.domain.errors import NotFoundError, PayloadTooLargeError
from gateway.store.blobs import CHUNK, DatabaseBlobStore
from gateway.store.database import create_engine, create_schema
from gateway.store.tables import blob_chunks, blob_uploads, blobs
from gateway.store.unit_of_work import SqlUnitOfWorkFactory
from tests.conftest import Database


@pytest.fixture
async def store(database: Database) -> AsyncIterator[DatabaseBlobStore]:
    engine = create_engine(database.url, schema=database.schema or None)
    await create_schema(engine)
    factory = SqlUnitOfWorkFactory(engine)
    try:
        yield DatabaseBlobStore(factory.begin)
    finally:
        await factory.close()


async def _chunks(data: bytes, fail_at: int | None = None) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 50_000):
        if fail_at is not None and start >= fail_at:
            raise ConnectionResetError("the client went away")
        yield data[start : start + 50_000]


async def test_a_blob_is_chunked_and_read_back(store: DatabaseBlobStore) -> None:
    data = os.urandom(3 * CHUNK + 123)
    blob = await store.put(_chunks(data), limit=10**7)
    key = hashlib.sha256(data).hexdigest()
    assert (blob.key, blob.size, blob.created) == (key, len(data), True)
    assert await store.chunk_owners() == [key]
    assert b"".join([c async for c in store.open(key)]) == data
    again = await store.put(_chunks(data), limit=10**7)
    assert again.created is False
    assert await store.keys() == [key]
    assert await store.chunk_owners() == [key]  # the second copy's chunks were dropped
    await store.delete(key)
    assert await store.keys() == []
    assert await store.chunk_owners() == []
    with pytest.raises(NotFoundError):
        [c async for c in store.open(key)]


@pytest.mark.parametrize("failure", ["error", "too_large"])
async def test_a_failed_write_leaves_nothing(store: DatabaseBlobStore, failure: str) -> None:
    data = os.urandom(4 * CHUNK)
    if failure == "error":
        with pytest.raises(ConnectionResetError):
            await store.put(_chunks(data, fail_at=2 * CHUNK + 1), limit=10**7)
    else:
        with pytest.raises(PayloadTooLargeError):
            await store.put(_chunks(data), limit=3 * CHUNK)
    assert await store.keys() == []
    assert await store.chunk_owners() == []


async def test_chunks_of_a_crashed_writer_are_invisible_and_swept(
    store: DatabaseBlobStore, database: Database
) -> None:
    started = datetime.now(UTC) - timedelta(hours=2)
    engine = create_engine(database.url, schema=database.schema or None)
    try:
        async with engine.begin() as conn:  # what a writer killed after two chunks leaves
            await conn.execute(blob_uploads.insert().values(id="upl_dead", started_at=started))
            await conn.execute(
                blob_chunks.insert(),
                [{"owner": "upl_dead", "seq": i, "data": b"x" * 10} for i in range(2)],
            )
        assert await store.keys() == []  # nothing readable: no blobs row
        assert await store.sweep(datetime.now(UTC) - timedelta(hours=3)) == 0
        assert await store.sweep(datetime.now(UTC) - timedelta(hours=1)) == 1
        async with engine.connect() as conn:
            for table in (blobs, blob_chunks, blob_uploads):
                assert await conn.scalar(sa.select(sa.func.count()).select_from(table)) == 0
    finally:
        await engine.dispose()
