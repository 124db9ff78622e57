"""The scenario runner and its report, with scenarios made up here (no sandbox, no network)."""

from __future__ import annotations

import asyncio
import io
from datetime import date
from typing import Any

import pytest

from gateway import cli
from gateway.mapping.catalog import Catalog
from gateway.sandbox.scenarios.base import (
    Check,
    Scenario,
    ScenarioResult,
    StepResult,
    Steps,
    expect,
)
from gateway.sandbox.scenarios.matters import sample
from gateway.sandbox.scenarios.registry import SCENARIOS, find
from gateway.sandbox.scenarios.report import Reporter
from gateway.sandbox.scenarios.runner import run_each
from gateway.settings import REPO_ROOT


def run(*scenarios: Scenario, patience: float = 1.0, grace: float = 1.0) -> tuple[Any, str]:
    out = io.StringIO()
    results = asyncio.run(
        run_each(
            scenarios,
            lambda on_step: Steps(on_step=on_step, patience=patience, poll=0.01, grace=grace),
            Reporter(out),
        )
    )
    return results, out.getvalue()


async def two_good_steps(ctx: Steps) -> None:
    async with ctx.step("first") as step:
        step.detail = "found it"
    async with ctx.step("second"):
        expect(1 + 1 == 2, "2", "2")


async def fails_then_cleans_up(ctx: Steps) -> None:
    try:
        async with ctx.step("submit"):
            pass
        async with ctx.step("see the case approved"):
            expect(False, "approved", "rejected (gd-hq-csb rejected)")
        async with ctx.step("never reached"):
            pass
    finally:
        async with ctx.step("reset the faults (cleanup)"):
            pass


def test_a_passing_scenario_reports_each_step_with_its_time_and_the_summary() -> None:
    results, out = run(Scenario("good", "two steps that hold", two_good_steps))

    assert [r.passed for r in results] == [True]
    assert [s.description for s in results[0].steps] == ["first", "second"]
    lines = out.splitlines()
    assert lines[0] == "good — two steps that hold"
    assert lines[1].startswith("  ✓ ")
    assert lines[1].endswith("ms  first — found it")
    assert lines[2].endswith("ms  second")
    assert lines[3].startswith("  passed: 2 steps (")
    assert lines[-1] == "1 scenario, 1 passed"


def test_a_failed_check_ends_the_scenario_names_the_step_and_still_runs_cleanup() -> None:
    results, out = run(
        Scenario("bad", "fails at its second step", fails_then_cleans_up),
        Scenario("good", "runs after the failure", two_good_steps),
    )

    bad, good = results
    assert not bad.passed
    assert good.passed
    assert [(s.description, s.passed) for s in bad.steps] == [
        ("submit", True),
        ("see the case approved", False),
        ("reset the faults (cleanup)", True),
    ]
    assert bad.failed_step is not None
    assert (bad.failed_step.expected, bad.failed_step.seen) == (
        "approved",
        "rejected (gd-hq-csb rejected)",
    )
    assert "never reached" not in out
    assert "  ✗ " in out
    assert "               expected: approved\n" in out
    assert "               seen:     rejected (gd-hq-csb rejected)\n" in out
    assert "  failed at step 2 of 3 (" in out
    assert out.splitlines()[-1] == "2 scenarios, 1 passed, 1 failed: bad"


def test_an_unexpected_error_in_a_step_is_what_was_seen() -> None:
    async def broken_answer(ctx: Steps) -> None:
        async with ctx.step("read the case"):
            _ = {}["status"]  # the sandbox answered without a status

    results, _ = run(Scenario("odd", "a broken answer", broken_answer))

    [step] = results[0].steps
    assert not step.passed
    assert (step.expected, step.seen) == ("no error", "KeyError: 'status'")


def test_an_error_between_steps_fails_the_scenario_too() -> None:
    async def between(ctx: Steps) -> None:
        async with ctx.step("fine"):
            pass
        raise ValueError("no such matter")

    results, _ = run(Scenario("between", "code outside a step", between))

    assert not results[0].passed
    assert results[0].steps[-1].description == "(between steps)"
    assert results[0].steps[-1].seen == "ValueError: no such matter"


def test_a_step_that_runs_too_long_is_stopped_and_reported() -> None:
    async def stuck(ctx: Steps) -> None:
        async with ctx.step("wait for ever"):
            await asyncio.sleep(60)

    results, _ = run(Scenario("stuck", "never ends", stuck), patience=0.05, grace=0.05)

    [step] = results[0].steps
    assert not step.passed
    assert step.expected == "the step done within 0.1 s"
    assert step.elapsed_ms < 5000


def test_until_waits_for_done_and_gives_up_early_when_hopeless() -> None:
    states = iter(["received", "accepted", "approved"])
    seen: list[str] = []

    async def follows(ctx: Steps) -> None:
        async with ctx.step("approved"):
            seen.append(
                await ctx.until(
                    lambda: asyncio.sleep(0, next(states)),
                    lambda s: s == "approved",
                    expected="approved",
                    seen=str,
                )
            )
        async with ctx.step("rejected is hopeless"):
            await ctx.until(
                lambda: asyncio.sleep(0, "rejected"),
                lambda s: s == "approved",
                expected="approved",
                seen=lambda s: f"the case {s}",
                hopeless=lambda s: s == "rejected",
            )

    results, _ = run(Scenario("wait", "polls", follows))

    assert seen == ["approved"]
    failed = results[0].steps[-1]
    assert (failed.expected, failed.seen) == ("approved", "the case rejected")
    assert failed.elapsed_ms < 500  # no waiting for the patience to run out


def test_until_says_how_long_it_waited() -> None:
    async def never(ctx: Steps) -> None:
        async with ctx.step("wait"):
            await ctx.until(
                lambda: asyncio.sleep(0, "accepted"),
                lambda s: s == "approved",
                expected="approved",
                seen=str,
            )

    results, _ = run(Scenario("slow", "never approved", never), patience=0.05)

    assert results[0].steps[0].seen == "after 0.05 s: accepted"


def test_the_report_falls_back_to_ascii_marks() -> None:
    stream = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    reporter = Reporter(stream)
    reporter.step(StepResult("submit", True, 12))
    reporter.step(StepResult("decide", False, 3, "", "200", "401 signature-invalid"))
    stream.flush()
    text = stream.buffer.getvalue().decode()  # type: ignore[attr-defined]

    assert text.splitlines() == [
        "  ok     12 ms  submit",
        "  FAIL      3 ms  decide",
        "                  expected: 200",
        "                  seen:     401 signature-invalid",
    ]


@pytest.mark.parametrize(
    ("passed", "total", "summary"),
    [
        ([True] * 6, None, "6 scenarios, 6 passed"),
        ([True, False], None, "2 scenarios, 1 passed, 1 failed: s1"),
        ([False], None, "1 scenario, 0 passed, 1 failed: s0"),
    ],
)
def test_the_summary_counts_and_names_failures(
    passed: list[bool], total: int | None, summary: str
) -> None:
    out = io.StringIO()
    step = StepResult("x", True, 1)
    results = [
        ScenarioResult(f"s{i}", (step if ok else StepResult("x", False, 1),), 0.1)
        for i, ok in enumerate(passed)
    ]
    Reporter(out).summary(results, total)
    assert out.getvalue() == summary + "\n"


def test_a_scenario_without_steps_did_not_pass() -> None:
    assert not ScenarioResult("empty", (), 0.0).passed


def test_check_carries_what_was_expected_and_seen() -> None:
    with pytest.raises(Check) as failed:
        expect([], "a voucher", ["acceptance"])
    assert (failed.value.expected, failed.value.seen) == ("a voucher", "['acceptance']")


def test_the_scenarios_are_named_once_and_found_by_name() -> None:
    names = [s.name for s in SCENARIOS]
    assert names == [
        "every-matter",
        "supplement",
        "joint-rejection",
        "materials",
        "partner-outage",
        "agent-submission",
        "low-assurance",
        "certificate",
        "supplement-rounds",
        "automatic-overturned",
        "resident-told",
        "agency-case-seen",
        "evidence",
        "counter-submission",
        "consent-withdrawn",
        "owed-material",
    ]
    assert find("all") == SCENARIOS
    assert find("supplement")[0].name == "supplement"
    assert all("\n" not in s.description and len(s.description) < 100 for s in SCENARIOS)
    with pytest.raises(KeyError):
        find("nope")


def test_scenario_list_and_an_unknown_name(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sandbox", "scenario", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in listed] == [s.name for s in SCENARIOS]

    assert cli.main(["sandbox", "scenario", "run", "nope"]) == 2
    assert "no scenario 'nope'" in capsys.readouterr().err


def test_every_sample_meets_its_matters_automatic_decision_rules() -> None:
    matters = Catalog.load(REPO_ROOT / "mappings" / "matters").all(date.today())
    for matter in matters:
        if matter.automatic_decision is not None:
            assert matter.automatic_decision.failed(sample(matter)) == ()
