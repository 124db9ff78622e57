"""The progress report: one line per step as it ends, a footer per scenario, one summary.

::

    every-matter — every matter of the catalog, submitted once and followed to its end
      ✓     14 ms  GET /v1/matters serves the catalog of the local mappings/ — 10 matters
      ✗      9 ms  hk-mchk rejected app_01…, signed with its own key
                   expected: 200 from POST /v1/applications/app_01…/decisions
                   seen:     401 unknown-key: The signing key is unknown, revoked or not valid
      failed at step 14 of 14 (3.2 s)

    6 scenarios, 5 passed, 1 failed: every-matter

Lines are flushed as they are written, so a tester sees a slow step while it is slow. On a
stream that cannot encode ✓ and ✗ (an ASCII terminal), they are written ``ok`` and ``FAIL``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

from gateway.sandbox.scenarios.base import Scenario, ScenarioResult, StepResult


class Reporter:
    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        encoding = getattr(stream, "encoding", None) or "utf-8"
        try:
            "✓✗—".encode(encoding)
            self._marks = ("✓", "✗", "—")
        except (UnicodeEncodeError, LookupError):
            self._marks = ("ok", "FAIL", "-")

    def _line(self, text: str = "") -> None:
        self._stream.write(text + "\n")
        self._stream.flush()

    def preflight(self, result: StepResult) -> None:
        """The check that a sandbox answers at all, before any scenario."""
        self.step(result, indent="")
        self._line()

    def scenario_started(self, scenario: Scenario) -> None:
        self._line(f"{scenario.name} {self._marks[2]} {scenario.description}")

    def step(self, result: StepResult, indent: str = "  ") -> None:
        mark = self._marks[0] if result.passed else self._marks[1]
        text = f"{indent}{mark} {result.elapsed_ms:>6} ms  {result.description}"
        if result.detail:
            text += f" {self._marks[2]} {result.detail}"
        self._line(text)
        if not result.passed:
            pad = " " * (len(indent) + len(mark) + 12)
            self._line(f"{pad}expected: {result.expected}")
            self._line(f"{pad}seen:     {result.seen}")

    def scenario_finished(self, result: ScenarioResult) -> None:
        count = len(result.steps)
        if result.passed:
            self._line(f"  passed: {count} steps ({result.elapsed_s:.1f} s)")
        else:
            at = next((i for i, step in enumerate(result.steps, 1) if not step.passed), count)
            self._line(f"  failed at step {at} of {count} ({result.elapsed_s:.1f} s)")
        self._line()

    def summary(self, results: Sequence[ScenarioResult], total: int | None = None) -> None:
        """``6 scenarios, 6 passed``; failures are named. ``total`` counts scenarios that
        did not run (the sandbox did not answer) as failed."""
        total = len(results) if total is None else total
        passed = sum(1 for result in results if result.passed)
        noun = "scenario" if total == 1 else "scenarios"
        text = f"{total} {noun}, {passed} passed"
        failed = [result.name for result in results if not result.passed]
        if total - passed:
            text += f", {total - passed} failed"
        if failed:
            text += ": " + ", ".join(failed)
        self._line(text)
