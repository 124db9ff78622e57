"""Audit chain verification rate against the bare SHA-256 of the same entries.

``python -m bench.audit [n]``. The baseline hashes each entry and renders the hex digest,
the least any verifier of this chain must do; the ratio says what the seq, link and
checkpoint checks cost on top. Best of three rounds, because this machine is shared.
"""

from __future__ import annotations

import hashlib
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from gateway.trust.audit import GENESIS, AuditRecord, Checkpoint, seal, verify_chain

KINDS = ("application.received", "message.accepted", "message.forwarded", "receipt.issued")


def _chain(n: int) -> list[AuditRecord]:
    """``n`` records shaped like the gateway's: ids, digests and codes, no personal data."""
    start = datetime(2025, 3, 1, tzinfo=UTC)
    records: list[AuditRecord] = []
    prev = GENESIS
    for seq in range(1, n + 1):
        record = seal(
            seq,
            start + timedelta(milliseconds=seq),
            KINDS[seq % len(KINDS)],
            "gw-http-20250301-3f9a1c2b7d4e",
            f"app-{seq:08d}",
            {
                "digest": "sha-256=:" + hashlib.sha256(seq.to_bytes(8, "big")).hexdigest() + ":",
                "matter": "HK-BR-0001",
                "code": "accepted",
                "message_id": f"msg-{seq:012d}",
            },
            prev,
        )
        records.append(record)
        prev = record.hash
    return records


def _best_rate(n: int, run: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return n / best


def audit_verify_rate(n: int = 200_000) -> dict[str, float]:
    """Entries per second of :func:`verify_chain` over ``n`` in-memory records, and baseline."""
    records = _chain(n)
    entries = [r.entry for r in records]
    pinned = sorted({*range(10_000, n + 1, 10_000), n})  # a checkpoint every 10,000 entries
    pins = [Checkpoint(s, records[s - 1].hash, records[s - 1].at, "bench") for s in pinned]
    report = verify_chain(records, pins)
    assert report.ok, report
    assert report.count == n, report

    def baseline() -> None:
        sha256 = hashlib.sha256
        for entry in entries:
            sha256(entry).hexdigest()

    base = _best_rate(n, baseline)
    ours = _best_rate(n, lambda: verify_chain(records, pins))
    return {
        "audit_verify_per_s": ours,
        "baseline_sha256_per_s": base,
        "ratio": ours / base,
    }


if __name__ == "__main__":
    figures = audit_verify_rate(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
    print(", ".join(f"{k} {v:,.2f}" for k, v in figures.items()))
