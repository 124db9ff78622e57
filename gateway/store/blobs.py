"""The blob store's two adapters: the data folder (embedded default) and PostgreSQL chunks.

Both are content-addressed: a blob's key is the lowercase hex SHA-256 of its bytes, computed
while they stream in, so the same file uploaded twice is stored once (``created`` False the
second time). Neither holds a whole blob in memory, and neither lets a partial write be seen:

* :class:`FolderBlobStore` writes ``<root>/.partial/<random>`` (same file system), fsyncs it,
  renames it to ``<root>/ab/cdef...`` and fsyncs the folder. A crash leaves only the partial
  file, which :meth:`~FolderBlobStore.sweep` removes.
* :class:`DatabaseBlobStore` writes 256 KiB chunks, each in a short transaction of its own,
  under a ``blob_uploads`` id; one last transaction inserts the ``blobs`` row and moves the
  chunks to the blob's key. Readers go through ``blobs``: before that commit there is nothing
  to read. A crash leaves an upload row and its chunks, which ``sweep`` removes. Chunks, not
  PostgreSQL large objects: they are ordinary rows (dumped, replicated, deleted with their
  owner like the rest, and the same on SQLite); see docs/adr/0019.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.domain.errors import NotFoundError, PayloadTooLargeError
from gateway.services.ports import StoredBlob
from gateway.store.tables import blob_chunks, blob_uploads, blobs

CHUNK = 256 * 1024
_PARTIAL = ".partial"


def rfc9530(sha256: bytes) -> str:
    return "sha-256=:" + base64.b64encode(sha256).decode() + ":"


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"the file is larger than {limit} bytes")


def _valid_key(key: str) -> bool:
    return len(key) == 64 and all(c in "0123456789abcdef" for c in key)


async def _rechunked(chunks: AsyncIterable[bytes], size: int) -> AsyncIterator[bytes]:
    """``chunks`` regrouped into pieces of ``size`` bytes (the last one shorter)."""
    buffer = bytearray()
    async for chunk in chunks:
        buffer += chunk
        while len(buffer) >= size:
            yield bytes(buffer[:size])
            del buffer[:size]
    if buffer:
        yield bytes(buffer)


def _hash_and_write(hasher: Any, handle: BinaryIO, chunk: bytes) -> None:
    hasher.update(chunk)
    handle.write(chunk)


class FolderBlobStore:
    """Blobs as files below ``root``: ``ab/cdef...`` by SHA-256."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.partial = root / _PARTIAL

    def path(self, key: str) -> Path:
        if not _valid_key(key):
            raise NotFoundError("no such blob")
        return self.root / key[:2] / key[2:]

    async def put(self, chunks: AsyncIterable[bytes], *, limit: int) -> StoredBlob:
        await asyncio.to_thread(self.partial.mkdir, parents=True, exist_ok=True)
        temp = self.partial / f"{secrets.token_hex(16)}.part"
        hasher = hashlib.sha256()
        size = 0
        handle = await asyncio.to_thread(open, temp, "xb")
        try:
            try:
                async for chunk in _rechunked(chunks, CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(limit)
                    # hashed and written off the event loop (hashlib releases the GIL), so
                    # the next bytes are read from the socket meanwhile
                    await asyncio.to_thread(_hash_and_write, hasher, handle, chunk)
                await asyncio.to_thread(_flush, handle)
            finally:
                await asyncio.to_thread(handle.close)
            sha = hasher.digest()
            key = sha.hex()
            created = await asyncio.to_thread(self._publish, temp, key)
        except BaseException:
            with contextlib.suppress(OSError):
                await run_shielded(asyncio.to_thread(temp.unlink, missing_ok=True))
            raise
        return StoredBlob(key=key, digest=rfc9530(sha), size=size, created=created)

    def _publish(self, temp: Path, key: str) -> bool:
        """Rename the complete, synced file into place; False when it was there already."""
        target = self.path(key)
        if target.exists():
            temp.unlink(missing_ok=True)
            return False
        target.parent.mkdir(exist_ok=True)
        os.replace(temp, target)
        _fsync_dir(target.parent)
        return True

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self.path(key)
        try:
            handle = await asyncio.to_thread(open, path, "rb")
        except FileNotFoundError:
            raise NotFoundError("no such blob") from None
        try:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk
        finally:
            handle.close()

    async def exists(self, key: str) -> bool:
        return _valid_key(key) and await asyncio.to_thread(self.path(key).is_file)

    async def delete(self, key: str) -> None:
        if _valid_key(key):
            await asyncio.to_thread(self.path(key).unlink, missing_ok=True)

    async def sweep(self, older_than: datetime) -> int:
        return await asyncio.to_thread(self._sweep, older_than.timestamp())

    def _sweep(self, cutoff: float) -> int:
        removed = 0
        if not self.partial.is_dir():
            return 0
        for path in self.partial.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
        return removed

    async def keys(self) -> list[str]:
        return await asyncio.to_thread(self._keys)

    def _keys(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            folder.name + path.name
            for folder in self.root.iterdir()
            if folder.is_dir() and folder.name != _PARTIAL
            for path in folder.iterdir()
            if _valid_key(folder.name + path.name)
        )

    def partial_files(self) -> list[Path]:
        return sorted(self.partial.iterdir()) if self.partial.is_dir() else []


def _flush(handle: Any) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def run_shielded(step: Any) -> Any:
    """Run ``step`` to its end even when the caller is cancelled (clean-up after a failure)."""
    task = asyncio.ensure_future(step)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await task
        raise


Transaction = Callable[[], contextlib.AbstractAsyncContextManager[AsyncConnection]]


class DatabaseBlobStore:
    """Blobs as chunk rows, for gateways of more than one machine on one PostgreSQL.

    ``begin`` opens a connection in a transaction committed on success (the unit-of-work
    factory's :meth:`~gateway.store.unit_of_work.SqlUnitOfWorkFactory.begin`)."""

    def __init__(self, begin: Transaction, clock: Callable[[], datetime] | None = None) -> None:
        self._begin = begin
        self._now = clock or (lambda: datetime.now(UTC))

    async def put(self, chunks: AsyncIterable[bytes], *, limit: int) -> StoredBlob:
        upload = "upl_" + secrets.token_hex(16)
        async with self._begin() as conn:
            await conn.execute(blob_uploads.insert().values(id=upload, started_at=self._now()))
        hasher = hashlib.sha256()
        size = seq = 0
        try:
            async for chunk in _rechunked(chunks, CHUNK):
                size += len(chunk)
                if size > limit:
                    raise _too_large(limit)
                hasher.update(chunk)
                async with self._begin() as conn:
                    await conn.execute(
                        blob_chunks.insert().values(owner=upload, seq=seq, data=chunk)
                    )
                seq += 1
            sha = hasher.digest()
            key = sha.hex()
            created = await self._publish(upload, key, size, seq)
        except BaseException:
            with contextlib.suppress(Exception):
                await run_shielded(self._drop(upload))
            raise
        return StoredBlob(key=key, digest=rfc9530(sha), size=size, created=created)

    async def _publish(self, upload: str, key: str, size: int, count: int) -> bool:
        async with self._begin() as conn:
            known = await conn.scalar(sa.select(blobs.c.key).where(blobs.c.key == key))
            if known is None:
                await conn.execute(
                    blobs.insert().values(key=key, size=size, chunks=count, created_at=self._now())
                )
                await conn.execute(
                    blob_chunks.update().where(blob_chunks.c.owner == upload).values(owner=key)
                )
            else:
                await conn.execute(blob_chunks.delete().where(blob_chunks.c.owner == upload))
            await conn.execute(blob_uploads.delete().where(blob_uploads.c.id == upload))
        return known is None

    async def _drop(self, upload: str) -> None:
        async with self._begin() as conn:
            await conn.execute(blob_chunks.delete().where(blob_chunks.c.owner == upload))
            await conn.execute(blob_uploads.delete().where(blob_uploads.c.id == upload))

    async def open(self, key: str) -> AsyncIterator[bytes]:
        async with self._begin() as conn:
            count = await conn.scalar(sa.select(blobs.c.chunks).where(blobs.c.key == key))
        if count is None:
            raise NotFoundError("no such blob")
        for seq in range(count):  # one short read per chunk: no transaction held meanwhile
            async with self._begin() as conn:
                data = await conn.scalar(
                    sa.select(blob_chunks.c.data).where(
                        blob_chunks.c.owner == key, blob_chunks.c.seq == seq
                    )
                )
            if data is None:
                raise NotFoundError("the blob was removed while it was read")
            yield bytes(data)

    async def exists(self, key: str) -> bool:
        async with self._begin() as conn:
            return await conn.scalar(sa.select(blobs.c.key).where(blobs.c.key == key)) is not None

    async def delete(self, key: str) -> None:
        async with self._begin() as conn:
            await conn.execute(blobs.delete().where(blobs.c.key == key))
            await conn.execute(blob_chunks.delete().where(blob_chunks.c.owner == key))

    async def sweep(self, older_than: datetime) -> int:
        async with self._begin() as conn:
            stale = list(
                (
                    await conn.scalars(
                        sa.select(blob_uploads.c.id).where(blob_uploads.c.started_at < older_than)
                    )
                ).all()
            )
            if stale:
                await conn.execute(blob_chunks.delete().where(blob_chunks.c.owner.in_(stale)))
                await conn.execute(blob_uploads.delete().where(blob_uploads.c.id.in_(stale)))
        return len(stale)

    async def keys(self) -> list[str]:
        async with self._begin() as conn:
            return sorted((await conn.scalars(sa.select(blobs.c.key))).all())

    async def chunk_owners(self) -> list[str]:
        """Every owner of chunk rows (tests: nothing of a refused upload is left)."""
        async with self._begin() as conn:
            return sorted(set((await conn.scalars(sa.select(blob_chunks.c.owner))).all()))
