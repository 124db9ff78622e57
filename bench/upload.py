"""Uploads: MiB/s through the running gateway vs writing the same bytes to a file, and the
gateway's memory while they stream.

A sandbox gateway runs as its own process (``gba-gateway sandbox``, SQLite, the data-folder
blob store). ``GBA_BENCH_UPLOAD_MIB`` MiB (default 100) are uploaded as signed
``POST /v1/materials`` of 20 MiB PDFs (each its own bytes: nothing is deduplicated), one
after the other. The baseline, in the same run, writes the same files to a file in the same
temporary folder and fsyncs each, as the blob store does. The gateway's resident set
(``VmRSS``) is sampled every 50 ms: the growth from before the first upload to the peak must
stay well under the bytes uploaded (streaming: never a whole file in memory).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp

from bench.memory import _ready, _rss_mb
from gateway.sandbox.agencies import ensure_agency_key, sandbox_agency
from gateway.trust.keys import SigningKey
from gateway.trust.profile import sign_request

MIB = 1024 * 1024
TOTAL_MIB = int(os.environ.get("GBA_BENCH_UPLOAD_MIB", "100"))
FILE_MIB = 20


def _files() -> list[bytes]:
    """PDFs of FILE_MIB MiB (the last one shorter) adding up to TOTAL_MIB."""
    out, left = [], TOTAL_MIB * MIB
    while left > 0:
        size = min(FILE_MIB * MIB, left)
        head, tail = b"%PDF-1.7\n", b"\n%%EOF\n"
        out.append(head + os.urandom(size - len(head) - len(tail)) + tail)
        left -= size
    return out


def _baseline(files: list[bytes], folder: Path) -> float:
    """Seconds to write ``files`` to a file each, fsynced, as the blob store does."""
    started = time.perf_counter()
    for i, data in enumerate(files):
        path = folder / f"baseline-{i}.pdf"
        with path.open("wb") as handle:
            for start in range(0, len(data), 256 * 1024):
                handle.write(data[start : start + 256 * 1024])
            handle.flush()
            os.fsync(handle.fileno())
        path.unlink()
    return time.perf_counter() - started


async def _upload(
    url: str, key: SigningKey, files: list[bytes], pid: int
) -> tuple[float, float, float]:
    """Seconds for the uploads, RSS before them and the peak RSS while they ran (MB)."""
    target = url + "/v1/materials"
    done = asyncio.Event()
    peak = 0.0

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _rss_mb(pid))
            await asyncio.sleep(0.05)

    async with aiohttp.ClientSession() as session:

        def signed(data: bytes) -> dict[str, str]:
            return sign_request(
                method="POST",
                url=target,
                key=key,
                now=datetime.now(UTC),
                body=data,
                content_type="application/pdf",
                idempotency_key=secrets.token_urlsafe(12),
            )

        async def send(data: bytes, headers: dict[str, str] | None = None) -> None:
            headers = headers or signed(data)
            async with session.post(target, data=data, headers=headers) as response:
                answer = await response.json()
                if response.status != 201:
                    raise RuntimeError(f"upload refused: {response.status} {answer}")
                if answer["digest"] != headers["Content-Digest"]:
                    raise RuntimeError("the stored digest is not the one sent")

        warm = b"%PDF-1.7\n" + os.urandom(64 * 1024) + b"\n%%EOF\n"
        await send(warm)  # the first upload: the route, the blob folder, the database
        # the client's own work (hashing each file for its Content-Digest, signing) is done
        # before the clock starts: the figure is the gateway's
        headers = [signed(data) for data in files]
        before = _rss_mb(pid)
        peak = before
        sampler = asyncio.create_task(sample())
        started = time.perf_counter()
        for data, signature in zip(files, headers, strict=True):
            await send(data, signature)
        seconds = time.perf_counter() - started
        done.set()
        await sampler
    return seconds, before, peak


def upload() -> dict[str, float]:
    files = _files()
    size_mib = sum(len(f) for f in files) / MIB
    if len({hashlib.sha256(f).digest() for f in files}) != len(files):
        raise RuntimeError("the files must differ")
    with tempfile.TemporaryDirectory() as folder, socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "GBA_LOG_LEVEL": "error",
            "GBA_LOG_FORMAT": "json",
            "GBA_RATE_LIMIT_PARTNER": "0",
        }
        process = subprocess.Popen(  # noqa: S603 - our own command
            [
                sys.executable,
                "-m",
                "gateway.cli",
                "sandbox",
                "--port",
                str(port),
                *("--data-dir", folder),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            asyncio.run(_ready(url, process))
            key = ensure_agency_key(Path(folder), sandbox_agency("hk-ird"))
            seconds, before, peak = asyncio.run(_upload(url, key, files, process.pid))
            baseline = _baseline(files, Path(folder))
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
    ours, base = size_mib / seconds, size_mib / baseline
    return {
        "upload_mib_s": ours,
        "file_fsync_mib_s": base,
        "ratio": ours / base,
        "rss_growth_mb": peak - before,
        "rss_before_mb": before,
        "rss_peak_mb": peak,
        "mib": size_mib,
    }


if __name__ == "__main__":
    print(json.dumps(upload(), indent=2))
