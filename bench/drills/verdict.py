"""A drill's verdict: the counts every drill reports, its checks, its own figures; printed as a
block and written to ``bench/results/drill-<name>.json``."""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.drills.load import Answer, Load
from bench.drills.partner import Received

RESULTS = Path(__file__).resolve().parents[1] / "results"
COUNTS = (
    ("submitted", "submitted (distinct applications)"),
    ("accepted", "accepted (202)"),
    ("stored", "stored (GET 200 as the submitter)"),
    ("delivered_once", "delivered once (processed once)"),
    ("duplicates_processed", "duplicates processed"),
    ("redeliveries", "redeliveries (absorbed by de-dup)"),
    ("lost", "lost"),
    ("dead_lettered", "dead-lettered (needed an operator)"),
    ("audit_chain_ok", "audit chain ok"),
)


@dataclass
class Verdict:
    drill: str
    counts: dict[str, Any] = field(default_factory=dict)
    checks: list[tuple[str, bool, str]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(ok for _, ok, _ in self.checks)

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.checks.append((name, bool(ok), detail))

    def render(self) -> str:
        lines = [
            f"== drill {self.drill}: {'PASS' if self.passed else 'FAIL'} ({self.seconds:.0f} s) =="
        ]
        for key, label in COUNTS:
            if key in self.counts:
                value = self.counts[key]
                shown = ("yes" if value else "NO") if isinstance(value, bool) else f"{value:,}"
                lines.append(f"  {label:<36} {shown}")
        for key, value in self.figures.items():
            lines.append(f"  {key:<36} {_show(value)}")
        lines.append("  checks:")
        for name, ok, detail in self.checks:
            lines.append(
                f"    [{'ok' if ok else 'FAIL'}] {name}" + (f": {detail}" if detail else "")
            )
        return "\n".join(lines)

    def write(self) -> Path:
        RESULTS.mkdir(exist_ok=True)
        path = RESULTS / f"drill-{self.drill}.json"
        document = {
            "drill": self.drill,
            "verdict": "PASS" if self.passed else "FAIL",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seconds": round(self.seconds, 1),
            "machine": platform.machine(),
            "commit": _commit(),
            "counts": self.counts,
            "checks": [{"name": n, "ok": ok, "detail": d} for n, ok, d in self.checks],
            "figures": self.figures,
        }
        path.write_text(json.dumps(document, indent=2, default=str) + "\n")
        return path


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_show(v)}" for k, v in value.items())
    return str(value)


def _commit() -> str:
    git = shutil.which("git")
    if git is None:
        return ""
    try:
        out = subprocess.run(  # noqa: S603 - our own command
            [git, "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            cwd=RESULTS.parent,
            check=False,
        )
        return out.stdout.strip()
    except OSError:
        return ""


def delivery_counts(
    verdict: Verdict, load: Load, partner: Received, views: dict[str, Any], in_database: int
) -> None:
    """The delivery counts of a drill, from what its partner received, and their checks.

    *Delivered once*: the application's forward reached the partner and was processed once:
    exactly one message id for the application reached it (the partner processes a message
    id the first time and only acknowledges it again after). *Duplicates processed*: extra
    message ids for one application, which de-duplication on the message id cannot catch.
    *Redeliveries*: raw repeated POSTs of a message id the partner had already processed
    (absorbed by its de-duplication, reported honestly). *Lost*: a 202 whose application is
    not stored, or is stored but never reached the partner. ``in_database`` is how many
    applications the gateway holds from the submitting agency: more than the 202s means a
    retry created a second application instead of replaying the first answer.
    """
    accepted = set(load.accepted.values())
    ids_per_app = Counter(partner.application.values())
    once = sum(1 for app in accepted if ids_per_app.get(app) == 1)
    extra = sum(n - 1 for n in ids_per_app.values() if n > 1)
    unreached = [app for app in accepted if app in views and app not in ids_per_app]
    missing = [app for app in accepted if app not in views]
    strangers = set(ids_per_app) - accepted  # reached the partner, but no client saw a 202
    verdict.counts.update(
        submitted=load.started,
        accepted=len(load.accepted),
        stored=len(views),
        delivered_once=once,
        duplicates_processed=extra,
        redeliveries=partner.redeliveries,
        lost=len(unreached) + len(missing),
    )
    verdict.figures["submission attempts"] = len(load.answers)
    verdict.figures["client retries"] = load.retries
    verdict.figures["answers by status"] = kinds(load.answers)
    verdict.check(
        "every submission ended in a 202",
        load.started == len(load.accepted),
        f"{load.started - len(load.accepted)} refused or unfinished: "
        f"{dict(Counter(load.refused.values()))}",
    )
    verdict.check(
        "a retry never got another application id",
        load.replay_mismatches == 0,
        f"{load.replay_mismatches} mismatches",
    )
    verdict.check("every 202 is stored", not missing, f"{len(missing)} not found")
    verdict.check(
        "retries replayed: one stored application per Idempotency-Key",
        in_database == len(accepted),
        f"{in_database} stored for {len(accepted)} keys",
    )
    verdict.check(
        "every stored application was delivered once",
        once == len(accepted),
        f"{len(unreached)} never reached the partner",
    )
    verdict.check("no application processed twice", extra == 0, f"{extra} extra message ids")
    verdict.check(
        "the partner refused no signature", partner.refused == 0, f"{partner.refused} refused"
    )
    verdict.check(
        "nothing reached the partner without a 202",
        not strangers,
        f"{len(strangers)} unknown applications",
    )


def kinds(answers: Iterable[Answer], *, media_type: bool = False) -> dict[str, int]:
    """How many answers of each kind: status (with media type), problem type, or the error
    when there was no answer."""

    def kind(a: Answer) -> str:
        if a.status is None:
            return f"no answer ({a.error})"
        return " ".join(str(x) for x in (a.status, media_type and a.content_type, a.error) if x)

    return dict(sorted(Counter(kind(a) for a in answers).items()))
