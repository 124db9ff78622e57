"""The data-folder blob store: content-addressed, and a write that fails (an error in the
middle, a size beyond the limit, the process killed) leaves nothing visible; what a killed
process left is swept."""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.domain.errors import NotFoundError, PayloadTooLargeError
from gateway.store.blobs import FolderBlobStore


async def _chunks(
    data: bytes, size: int = 10_000, fail_at: int | None = None
) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        if fail_at is not None and start >= fail_at:
            raise ConnectionResetError("the client went away")
        yield data[start : start + size]


def _visible(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and ".partial" not in p.parts)


async def test_a_blob_is_stored_under_its_sha256_and_read_back(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path / "blobs")
    data = os.urandom(700_000)
    blob = await store.put(_chunks(data), limit=1_000_000)
    key = hashlib.sha256(data).hexdigest()
    assert (blob.key, blob.size, blob.created) == (key, len(data), True)
    assert blob.digest.startswith("sha-256=:")
    assert blob.digest.endswith(":")
    assert store.path(key) == tmp_path / "blobs" / key[:2] / key[2:]
    assert b"".join([c async for c in store.open(key)]) == data
    again = await store.put(_chunks(data, 4096), limit=1_000_000)
    assert (again.key, again.created) == (key, False)  # the same bytes are stored once
    assert await store.keys() == [key]
    assert store.partial_files() == []
    await store.delete(key)
    assert not await store.exists(key)
    with pytest.raises(NotFoundError):
        [c async for c in store.open(key)]
    with pytest.raises(NotFoundError):
        store.path("../../etc/passwd")


async def test_an_error_mid_upload_leaves_nothing(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path / "blobs")
    with pytest.raises(ConnectionResetError):
        await store.put(_chunks(os.urandom(600_000), fail_at=300_000), limit=1_000_000)
    assert _visible(tmp_path) == []
    assert store.partial_files() == []


async def test_beyond_the_limit_nothing_is_kept(tmp_path: Path) -> None:
    store = FolderBlobStore(tmp_path / "blobs")
    with pytest.raises(PayloadTooLargeError):
        await store.put(_chunks(os.urandom(600_000)), limit=500_000)
    assert _visible(tmp_path) == []
    assert store.partial_files() == []


def test_a_process_killed_mid_upload_leaves_only_a_partial_file_that_is_swept(
    tmp_path: Path,
) -> None:
    root = tmp_path / "blobs"
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal
        from gateway.store.blobs import FolderBlobStore

        async def chunks():
            for i in range(40):
                if i == 20:
                    os.kill(os.getpid(), signal.SIGKILL)  # a crash mid-upload
                yield bytes([i]) * 65536

        asyncio.run(FolderBlobStore(__import__("pathlib").Path({str(root)!r})).put(
            chunks(), limit=10**8))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], check=False, timeout=60)  # noqa: S603 - our own interpreter
    assert done.returncode == -signal.SIGKILL
    store = FolderBlobStore(root)
    assert _visible(tmp_path) == []  # nothing half-visible
    partial = store.partial_files()
    assert len(partial) == 1
    assert partial[0].stat().st_size > 0
    assert asyncio.run(store.sweep(datetime.now(UTC) - timedelta(hours=1))) == 0  # too recent
    assert asyncio.run(store.sweep(datetime.now(UTC) + timedelta(seconds=1))) == 1
    assert store.partial_files() == []
