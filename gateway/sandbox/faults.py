"""Fault switches of the sandbox agencies, changed at run time by API, CLI or console.

A tester turns a sandbox agency into the partner they fear: one that is down, slow, answers
5xx, never answers, signs its answers wrongly or not at all, signs with a skewed clock, sends
its decisions twice or in the wrong order, or — ``lax`` — the deliberately broken agency that
verifies nothing, de-duplicates nothing and answers errors as plain text (the conformance kit
names every check it fails); an evidence issuer that refuses every evidence request, or
stays silent. Switches live in memory: a restarted sandbox starts healthy.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.domain.documents import FieldProblem, problem
from gateway.domain.errors import NotFoundError, ValidationFailedError

SIGNATURE_MODES = ("valid", "wrong", "missing")
CERTIFICATE_MODES = ("none", "jws", "document", "forged")  # what its approvals carry
EVIDENCE_MODES = ("answer", "refuse", "silent")  # an evidence issuer's answers
MAX_LATENCY_MS = 60_000
MAX_SKEW_S = 86_400
TIMEOUT_HOLD_S = 120.0  # longer than any client of the sandbox waits for an answer


@dataclass(frozen=True, slots=True)
class Faults:
    """What is wrong with one sandbox agency; the default is a healthy agency."""

    down: bool = False  # its inbox answers 503, unsigned, and keeps nothing
    latency_ms: int = 0  # it waits this long before answering
    error_status: int | None = None  # it answers this 5xx (signed problem) and keeps nothing
    timeout: bool = False  # it holds every request longer than a client waits
    signature: str = "valid"  # valid | wrong | missing: on its answers and its own calls
    clock_skew_s: int = 0  # its signing clock is off by this many seconds
    duplicates: bool = False  # it posts each of its acceptances and decisions twice
    out_of_order: bool = False  # it posts its decision before its acceptance
    lax: bool = False  # verifies nothing, de-duplicates nothing, answers errors as text
    e_certificate: str = "none"  # none | jws | document | forged: attached to its approvals
    # an evidence issuer's answers (sandbox/issuers.py): answer | refuse | silent (never)
    evidence: str = "answer"

    @property
    def healthy(self) -> bool:
        """Nothing wrong (an agency issuing valid e-certificates is healthy)."""
        issuing = self.e_certificate in ("jws", "document")
        return (dataclasses.replace(self, e_certificate="none") if issuing else self) == Faults()

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], base: Faults | None = None) -> Faults:
        """``base`` with the fields of ``data`` changed; every bad field is reported at once."""
        problems = list(_problems(data))
        if problems:
            raise ValidationFailedError(f"{len(problems)} problem(s) found", errors=problems)
        return dataclasses.replace(base or cls(), **dict(data))


_BOOLEANS = ("down", "timeout", "duplicates", "out_of_order", "lax")
_FIELDS = {field.name for field in dataclasses.fields(Faults)}


def _problems(data: Mapping[str, Any]) -> Iterable[FieldProblem]:
    for name, value in data.items():
        pointer = f"/{name}"
        if name not in _FIELDS:
            yield problem(pointer, "unexpected_field")
        elif name in _BOOLEANS:
            if not isinstance(value, bool):
                yield problem(pointer, "wrong_type")
        elif name == "signature":
            if value not in SIGNATURE_MODES:
                yield problem(pointer, "invalid_value")
        elif name == "e_certificate":
            if value not in CERTIFICATE_MODES:
                yield problem(pointer, "invalid_value")
        elif name == "evidence":
            if value not in EVIDENCE_MODES:
                yield problem(pointer, "invalid_value")
        elif name == "error_status":
            if value is not None and not _integer_in(value, 500, 599):
                yield problem(pointer, "invalid_value")
        elif name == "latency_ms":
            if not _integer_in(value, 0, MAX_LATENCY_MS):
                yield problem(pointer, "invalid_value")
        elif name == "clock_skew_s" and not _integer_in(value, -MAX_SKEW_S, MAX_SKEW_S):
            yield problem(pointer, "invalid_value")


def _integer_in(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


class FaultBoard:
    """The switches of every sandbox agency, read by its inbox on each request."""

    def __init__(self, agency_ids: Iterable[str]) -> None:
        self._faults: dict[str, Faults] = {agency_id: Faults() for agency_id in agency_ids}

    def _known(self, agency_id: str) -> None:
        if agency_id not in self._faults:
            raise NotFoundError("no such sandbox agency")

    def get(self, agency_id: str) -> Faults:
        self._known(agency_id)
        return self._faults[agency_id]

    def set(self, agency_id: str, faults: Faults) -> None:
        self._known(agency_id)
        self._faults[agency_id] = faults

    def update(self, agency_id: str, changes: Mapping[str, Any]) -> Faults:
        """Change some switches, keeping the others (a JSON merge patch)."""
        faults = Faults.from_json(changes, base=self.get(agency_id))
        self._faults[agency_id] = faults
        return faults

    def reset(self, agency_id: str) -> None:
        self.set(agency_id, Faults())

    def all(self) -> dict[str, Faults]:
        return dict(self._faults)
