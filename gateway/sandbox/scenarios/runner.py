"""Run scenarios in order against a running sandbox and report each step as it ends.

First one preflight check — the sandbox answers ``/readyz`` and has its sandbox routes — so
that a wrong ``--url`` reads as one line, not as six scenarios failing at their first step.
Then every scenario runs to its end or to its first failed step, in its own context (its own
steps, one HTTP session shared by all); a failure in one never stops the next.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import aiohttp

from gateway.sandbox.scenarios.base import (
    OnStep,
    Scenario,
    ScenarioResult,
    StepFailed,
    StepResult,
    Steps,
    describe,
)
from gateway.sandbox.scenarios.context import Context, Options
from gateway.sandbox.scenarios.report import Reporter

MakeContext = Callable[[OnStep], Steps]


async def run_scenarios(
    scenarios: Sequence[Scenario], options: Options, reporter: Reporter
) -> list[ScenarioResult]:
    """Run ``scenarios`` against the sandbox at ``options.url``; every one is reported."""
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        ready = await preflight(session, options.url.rstrip("/"), options.token)
        reporter.preflight(ready)
        if not ready.passed:
            results = [ScenarioResult(s.name, (), 0.0) for s in scenarios]
            reporter.summary(results)
            return results
        return await run_each(
            scenarios, lambda on_step: Context(session, options, on_step), reporter
        )


async def run_each(
    scenarios: Sequence[Scenario], make_context: MakeContext, reporter: Reporter
) -> list[ScenarioResult]:
    """Run each scenario in a fresh context; report its steps, its end and the summary."""
    results = []
    for scenario in scenarios:
        reporter.scenario_started(scenario)
        context = make_context(reporter.step)
        started = time.monotonic()
        try:
            await scenario.run(context)
        except StepFailed:
            pass  # recorded and reported by the step itself
        except Exception as exc:  # code between steps failed: record it as a step of its own
            failed = StepResult("(between steps)", False, 0, "", "no error", describe(exc))
            context.results.append(failed)
            reporter.step(failed)
        result = ScenarioResult(scenario.name, tuple(context.results), time.monotonic() - started)
        reporter.scenario_finished(result)
        results.append(result)
    reporter.summary(results)
    return results


async def preflight(
    session: aiohttp.ClientSession, url: str, token: str | None = None
) -> StepResult:
    """Is there a sandbox at ``url``: ``/readyz`` 200 and the sandbox routes served?"""
    started = time.monotonic()
    description = f"a sandbox gateway answers at {url}"
    expected = "200 from GET /readyz and GET /sandbox/v1/personas"
    try:
        async with session.get(url + "/readyz") as response:
            ready = response.status
            await response.read()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with session.get(url + "/sandbox/v1/personas", headers=headers) as response:
            sandbox = response.status
            await response.read()
    except (aiohttp.ClientError, TimeoutError) as exc:
        seen = describe(exc) if str(exc) else f"{type(exc).__name__}: no answer"
        return StepResult(description, False, _ms(started), "", expected, seen)
    if (ready, sandbox) != (200, 200):
        seen = f"/readyz {ready}, /sandbox/v1/personas {sandbox}"
        if sandbox == 404:
            seen += " (not in sandbox mode?)"
        return StepResult(description, False, _ms(started), "", expected, seen)
    return StepResult(description, True, _ms(started), "ready, sandbox mode")


def _ms(started: float) -> int:
    return round((time.monotonic() - started) * 1000)
