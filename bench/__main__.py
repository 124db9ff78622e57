"""``make bench``: bounded benchmarks, each figure with its ratio to a baseline run beside it.

This machine is shared and noisy: absolute numbers move from run to run, the ratios much
less. Results go to ``bench/results/latest.json`` and ``latest.md``; the write bench's
(:mod:`bench.write`, run last) to ``write.json`` and ``write.md`` as well.

``python -m bench upload`` runs the upload bench alone (:mod:`bench.upload`).
``python -m bench write [--scenario NAME ...]`` runs the write bench alone (or some of its
scenarios: ``bare`` always runs first, every ratio is to it).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench.audit import audit_verify_rate
from bench.growth import growth
from bench.http import accept_path
from bench.memory import memory
from bench.relay import accept_to_delivered
from bench.steps import translation, translation_out, trust
from bench.upload import upload
from bench.write import SCENARIOS, write_bench

RESULTS = Path(__file__).parent / "results"
SUITE: tuple[tuple[str, str, Callable[[], dict[str, float]]], ...] = (
    ("translation", "HK XML -> canonical vs plain lxml parse + XSD + XPath map", translation),
    (
        "translation_out",
        "canonical -> HK XML vs plain lxml builder + XSD + serialise",
        translation_out,
    ),
    ("trust", "trust layer per submission vs 2 P-256 verifies", trust),
    ("audit", "audit chain verify vs bare SHA-256 of the entries", audit_verify_rate),
    ("accept", "signed submissions over HTTP vs a bare aiohttp XML handler", accept_path),
    (
        "relay",
        "forwards delivered to a sandbox partner vs submissions accepted, same run "
        "(2 clients; p50/p99 accept -> delivered)",
        accept_to_delivered,
    ),
    (
        "growth",
        "status query p99 (ms) with the largest backlog vs the smallest (10^6 vs 10^4 stored "
        "applications); ratio near 1: no growth; claim p99 beside it",
        growth,
    ),
    (
        "memory",
        "RSS (MB) of a gateway process at the end of sustained load vs after its warm-up",
        memory,
    ),
    (
        "upload",
        "MiB/s of signed uploads through the gateway vs writing the same bytes to a file "
        "(fsync), same run; rss_growth_mb: the gateway's peak RSS growth meanwhile",
        upload,
    ),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "only", nargs="?", choices=["write", "upload"], help="the write or upload bench alone"
    )
    parser.add_argument("--scenario", action="append", choices=list(SCENARIOS))
    args = parser.parse_args(argv)
    if args.only == "upload":
        print(json.dumps(upload(), indent=2))
        return 0
    if args.only == "write" or args.scenario:
        write_bench(args.scenario)
        return 0
    results: dict[str, object] = {
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    table = ["| benchmark | figure | baseline | ratio | what |", "|---|---:|---:|---:|---|"]
    for name, what, bench in SUITE:
        print(f"bench: {name} ({what}) ...", flush=True)
        figures = bench()
        results[name] = figures
        print("  " + ", ".join(f"{k} {v:,.2f}" for k, v in figures.items()), flush=True)
        (ours_name, ours), (base_name, base), (_, ratio) = list(figures.items())[:3]
        table.append(
            f"| {name} | {ours_name} {ours:,.1f} | {base_name} {base:,.1f} | {ratio:.2f} | {what} |"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "latest.md").write_text("\n".join(table) + "\n")
    print("\n".join(table))
    print(
        "bench: write (the write path from outside: generator, gateway, bare baseline, each in "
        "its own process) ...",
        flush=True,
    )
    results["write"] = write_bench()
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
