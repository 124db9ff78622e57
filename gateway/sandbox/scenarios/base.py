"""Scenarios made of steps: each step is timed, checked and reported the moment it ends.

A scenario is an ``async`` function of a context. It does its work inside steps::

    async with ctx.step("hk-ird submits the sample") as step:
        answer = await ...
        expect(answer.status == 202, "202 Accepted", answer.describe())
        step.detail = answer.body["application_id"]

A step passes when its body ends normally. It fails when a check fails (:class:`Check`,
raised by :func:`expect`, with what was expected and what was seen), when anything else goes
wrong (a refused signature, a broken answer, a lost connection: the exception is what was
seen), or when it runs out of time. A failed step ends its scenario: the failure leaves the
``async with`` as :class:`StepFailed`, so the scenario's ``finally`` blocks still run (and may
run cleanup steps of their own), and the runner records the scenario as failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")
OnStep = Callable[["StepResult"], None]
GRACE = 10.0  # seconds a step may run beyond the patience of its waits (its HTTP calls)


class Check(Exception):
    """What a step expected did not happen; ``seen`` is what happened instead."""

    def __init__(self, expected: str, seen: str) -> None:
        super().__init__(f"expected {expected}; seen {seen}")
        self.expected = expected
        self.seen = seen


class StepFailed(Exception):
    """A step failed (it is already recorded); the scenario stops here."""

    def __init__(self, result: StepResult) -> None:
        super().__init__(result.description)
        self.result = result


def expect(condition: object, expected: str, seen: object) -> None:
    """Fail the step unless ``condition`` holds."""
    if not condition:
        raise Check(expected, seen if isinstance(seen, str) else repr(seen))


@dataclass(frozen=True, slots=True)
class StepResult:
    description: str
    passed: bool
    elapsed_ms: int
    detail: str = ""  # what the step found, shown on its line (an id, a count)
    expected: str = ""
    seen: str = ""


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    name: str
    steps: tuple[StepResult, ...]
    elapsed_s: float

    @property
    def passed(self) -> bool:
        return bool(self.steps) and all(step.passed for step in self.steps)

    @property
    def failed_step(self) -> StepResult | None:
        return next((step for step in self.steps if not step.passed), None)


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str  # one line, for ``scenario list``
    run: Callable[[Any], Awaitable[None]]  # takes the Context


@dataclass(slots=True)
class Step:
    """A step in progress: what it has found so far, for its line in the report."""

    description: str
    detail: str = ""


@dataclass
class Steps:
    """Runs and records the steps of one scenario; the base of the scenarios' context."""

    on_step: OnStep
    patience: float = 30.0  # seconds any wait for the sandbox may take
    poll: float = 0.1
    grace: float = GRACE
    results: list[StepResult] = field(default_factory=list)

    @asynccontextmanager
    async def step(self, description: str) -> AsyncIterator[Step]:
        step = Step(description)
        started = time.monotonic()
        limit = self.patience + self.grace
        scope = asyncio.timeout(limit)
        try:
            async with scope:
                yield step
        except Check as failed:
            raise StepFailed(self._record(step, started, failed.expected, failed.seen)) from None
        except TimeoutError as exc:
            if scope.expired():
                expected, seen = f"the step done within {limit:g} s", "it was still running"
            else:
                expected, seen = "an answer in time", "a call to the sandbox timed out"
            raise StepFailed(self._record(step, started, expected, seen)) from exc
        except StepFailed:
            raise  # a step inside this one failed and is recorded already
        except Exception as exc:  # the sandbox misbehaved in a way no check anticipated
            raise StepFailed(self._record(step, started, "no error", describe(exc))) from exc
        else:
            self._record(step, started)

    def _record(
        self, step: Step, started: float, expected: str | None = None, seen: str = ""
    ) -> StepResult:
        result = StepResult(
            description=step.description,
            passed=expected is None,
            elapsed_ms=round((time.monotonic() - started) * 1000),
            detail=step.detail,
            expected=expected or "",
            seen=seen,
        )
        self.results.append(result)
        self.on_step(result)
        return result

    async def until(
        self,
        fetch: Callable[[], Awaitable[T]],
        done: Callable[[T], bool],
        *,
        expected: str,
        seen: Callable[[T], str],
        hopeless: Callable[[T], bool] | None = None,
    ) -> T:
        """Fetch until ``done`` (or ``hopeless``: no point in waiting), within the patience."""
        deadline = time.monotonic() + self.patience
        while True:
            value = await fetch()
            if done(value):
                return value
            if hopeless is not None and hopeless(value):
                raise Check(expected, seen(value))
            if time.monotonic() >= deadline:
                raise Check(expected, f"after {self.patience:g} s: {seen(value)}")
            await asyncio.sleep(self.poll)


def describe(exc: BaseException) -> str:
    """An exception as a reader of the report should see it: its kind and its message."""
    text = getattr(exc, "detail", None) or str(exc) or "(no message)"
    return f"{type(exc).__name__}: {text}"
