"""The write bench's targets (issue 14) and its result tables.

Each target compares one figure of one scenario with a number or with a figure of another
scenario; a figure that was not measured gives ``n/a``, never a PASS.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass

Results = Mapping[str, Mapping[str, object]]
_OPS = {">=": operator.ge, "<=": operator.le, "<": operator.lt, ">": operator.gt}


@dataclass(frozen=True)
class Target:
    scenario: str
    figure: str
    op: str
    bound: float | str  # a number, or "scenario.figure"

    def _bound(self, results: Results) -> float | None:
        if isinstance(self.bound, str):
            scenario, figure = self.bound.split(".", 1)
            return _number(results.get(scenario, {}).get(figure))
        return float(self.bound)

    def verdict(self, results: Results) -> str:
        value = _number(results.get(self.scenario, {}).get(self.figure))
        bound = self._bound(results)
        if value is None or bound is None:
            return "n/a"
        return "PASS" if _OPS[self.op](value, bound) else "FAIL"

    def describe(self) -> str:
        bound = self.bound if isinstance(self.bound, str) else f"{self.bound:,g}"
        return f"{self.figure} {self.op} {bound}"


def _accept(scenario: str) -> tuple[Target, ...]:
    return (
        Target(scenario, "accepted_per_s", ">=", 1500),
        Target(scenario, "ratio", ">=", 0.20),
        Target(scenario, "p99_ms", "<=", 150),
    )


TARGETS: tuple[Target, ...] = (
    *_accept("sqlite"),
    *_accept("postgres"),
    Target("postgres-2", "accepted_per_s_per_worker", ">=", 1500),
    Target("postgres-2", "accepted_per_s", ">", "postgres.accepted_per_s"),
    Target("postgres-2", "p99_ms", "<=", 150),
    Target("relay", "accepted_per_s", ">=", 1000),
    Target("relay", "delivered_ratio", ">=", 0.95),
    Target("relay", "delivered_p50_ms", "<", 20),
    Target("pipeline", "accepted_per_s", ">=", 500),
    Target("pipeline", "p99_ms", "<=", 300),
    Target("soak", "rss_growth_pct", "<", 10),
)


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _cell(value: object, digits: int = 1) -> str:
    number = _number(value)
    return "-" if number is None else f"{number:,.{digits}f}"


def tables(results: Results) -> str:
    """The figures of every scenario measured, then every target with its verdict."""
    lines = [
        "| scenario | accepted/s | p50 ms | p99 ms | ratio to bare | delivered/s | "
        "accept->delivered p50 ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, figures in results.items():
        lines.append(
            f"| {name} | {_cell(figures.get('accepted_per_s'))} | {_cell(figures.get('p50_ms'))} "
            f"| {_cell(figures.get('p99_ms'))} | {_cell(figures.get('ratio'), 3)} "
            f"| {_cell(figures.get('delivered_per_s'))} "
            f"| {_cell(figures.get('delivered_p50_ms'))} |"
        )
    lines += ["", "| scenario | target (issue 14) | measured | verdict |", "|---|---|---:|---|"]
    for target in TARGETS:
        if target.scenario not in results:
            continue
        measured = _cell(results[target.scenario].get(target.figure), 3)
        lines.append(
            f"| {target.scenario} | {target.describe()} | {measured} | {target.verdict(results)} |"
        )
    return "\n".join(lines) + "\n"
