"""Automatic decisions (Art. 25): rules read from the matter YAML, evaluated on the canonical
document, recorded by the gateway for every handler, with a deterministic re-check sample."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.domain.application import AUTOMATIC, Application, HandlerState, Status
from gateway.domain.matters import AutomaticDecision, DecisionRule
from gateway.mapping.catalog import Catalog
from gateway.mapping.fields import MappingError

MATTERS = Path(__file__).parents[3] / "mappings" / "matters"
INSURANCE = "11440400MB2C00031J3442030001000"
AT = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
USCC = "91440400MA4UABCD1X"
RULES = AutomaticDecision(
    (
        DecisionRule("particular", "employment_type", "in", ("full_time", "part_time")),
        DecisionRule("material", "EMPLOYMENT_CONTRACT", "present", True),
    ),
    recheck_sample=0.2,
)


def _document(employment_type: str = "full_time", contract: bool = True) -> dict:
    materials = [{"code": "EMPLOYMENT_CONTRACT", "digest": "sha-256=:AA==:"}] if contract else []
    return {"particulars": {"employment_type": employment_type}, "materials": materials}


def _under_review(handlers: tuple[str, ...] = ("zh-hrss", "gd-tax")) -> Application:
    app = Application.receive(
        application_id="app_01AUTO",
        matter=INSURANCE,
        matter_version=1,
        submitted_by="hk-ird",
        channel="online",
        source_format="canonical",
        content_digest="sha-256=:AA==:",
        document=_document(),
        handlers=handlers,
        missing=(),
        deadline="2026-03-03",
        at=AT,
    )
    for h in handlers:
        app.delivered(h, f"msg_{h}", "sha-256=:AA==:", AT)
    assert app.status is Status.UNDER_REVIEW
    app.pending_events.clear()
    return app


def test_a_document_meeting_every_rule_fails_none() -> None:
    assert RULES.failed(_document()) == ()


def test_every_failed_rule_is_listed_without_the_applicants_data() -> None:
    failed = RULES.failed(_document("freelance", contract=False))
    assert failed == (
        "particular employment_type in full_time|part_time",
        "material EMPLOYMENT_CONTRACT present true",
    )
    assert not any("freelance" in reason for reason in failed)


@pytest.mark.parametrize(
    ("rule", "particulars", "holds"),
    [
        (DecisionRule("particular", "x", "equals", "a"), {"x": "a"}, True),
        (DecisionRule("particular", "x", "equals", "a"), {"x": "b"}, False),
        (DecisionRule("particular", "x", "matches", "[0-9]{3}"), {"x": "123"}, True),
        (DecisionRule("particular", "x", "matches", "[0-9]{3}"), {"x": "1234"}, False),
        (DecisionRule("particular", "x", "matches", "[0-9]{3}"), {}, False),
        (DecisionRule("particular", "x", "present", True), {"x": ""}, False),
        (DecisionRule("particular", "x", "present", False), {}, True),
    ],
)
def test_each_comparison(rule: DecisionRule, particulars: dict, holds: bool) -> None:
    assert rule.holds({"particulars": particulars}) is holds


def test_the_recheck_sample_is_the_first_byte_of_the_ids_sha256() -> None:
    ids = [f"app_{n:04d}" for n in range(400)]
    drawn = [i for i in ids if RULES.sampled(i)]
    assert drawn == [i for i in ids if hashlib.sha256(i.encode()).digest()[0] < 0.2 * 256]
    assert 0.1 < len(drawn) / len(ids) < 0.3
    assert [i for i in ids if RULES.sampled(i)] == drawn  # stable
    assert not AutomaticDecision(RULES.rules, 0.0).sampled(drawn[0])
    assert AutomaticDecision(RULES.rules, 1.0).sampled(ids[0])


def test_meeting_the_rules_approves_for_every_handler_as_the_gateway() -> None:
    app = _under_review()
    app.decide_automatically((), AT, recheck=False)

    assert app.status is Status.APPROVED
    assert {h.state for h in app.handlers} == {HandlerState.APPROVED}
    decisions = [e for e in app.pending_events if e.type == "decision.recorded"]
    assert [(e.actor, e.data["agency"], e.data["decision"]) for e in decisions] == [
        (AUTOMATIC, "zh-hrss", "approved"),
        (AUTOMATIC, "gd-tax", "approved"),
    ]
    assert "decision.recheck_queued" not in [e.type for e in app.pending_events]


def test_failing_a_rule_rejects_with_the_failed_rules_as_reasons() -> None:
    app = _under_review()
    failed = RULES.failed(_document("freelance"))
    app.decide_automatically(failed, AT, recheck=True)

    assert app.status is Status.REJECTED
    assert [h.reasons for h in app.handlers] == [failed, failed]
    rejected = next(e for e in app.pending_events if e.type == "application.rejected")
    assert rejected.data["reasons"] == {"zh-hrss": list(failed), "gd-tax": list(failed)}
    queued = app.pending_events[-1]
    assert (queued.type, queued.actor, queued.data) == (
        "decision.recheck_queued",
        AUTOMATIC,
        {"agency": "zh-hrss"},
    )


def test_the_reviewed_insurance_matter_is_decidable_by_data() -> None:
    matter = Catalog.load(MATTERS).get(INSURANCE, AT.date())
    rules = matter.automatic_decision
    assert rules is not None
    assert rules.recheck_sample == 0.2
    sample = {
        "particulars": {"employer_uscc": USCC},
        "materials": [{"code": "EMPLOYMENT_CONTRACT"}],
    }
    assert rules.failed(sample) == ()
    assert rules.failed({"particulars": {"employer_uscc": "not a USCC"}}) == tuple(
        r.describe() for r in rules.rules
    )
    others = [m for m in Catalog.load(MATTERS).all(AT.date()) if str(m.code) != INSURANCE]
    assert all(m.automatic_decision is None for m in others)


@pytest.mark.parametrize(
    ("block", "problem"),
    [
        ("{rules: [{particular: nope, in: [a]}]}", "particular 'nope' is not one of the matter's"),
        ("{rules: [{material: EMPLOYMENT_CONTRACT, equals: x}]}", "a material rule tests present"),
        ("{rules: [{particular: employer_uscc, in: [a], equals: b}]}", "one particular or"),
        ("{rules: [{particular: employer_uscc, matches: '('}]}", "not a regular expression"),
        ("{rules: [{particular: employer_uscc, present: yes please}]}", "present is true or"),
        ("{rules: [], recheck_sample: 0.5}", "needs at least one rule"),
        (
            "{rules: [{particular: employer_uscc, present: true}], recheck_sample: 1.5}",
            "recheck_sample must be a number from 0 to 1",
        ),
    ],
)
def test_a_broken_rule_block_is_refused_with_its_reason(
    tmp_path: Path, block: str, problem: str
) -> None:
    text = (MATTERS / f"{INSURANCE}.yaml").read_text("utf-8")
    start = text.index("automatic_decision:")
    end = text.index("route:")
    text = text[:start] + f"automatic_decision: {block}\n" + text[end:]
    (tmp_path / f"{INSURANCE}.yaml").write_text(text, "utf-8")

    with pytest.raises(MappingError) as info:
        Catalog.load(tmp_path)

    assert problem in str(info.value)
