"""Materials owed after acceptance (容缺受理, Art. 12) in the aggregate: owed once, supplied as
a round of its own that every holding handler is due, no approval while owed, flagged overdue
once. Every refused move changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.domain.application import Application, Status
from gateway.domain.errors import IllegalTransitionError
from tests.unit.domain.test_case_lifecycle import AT, LATER, LEAD, REVIEWER, receive, unchanged

OWED = "HEALTH_CERTIFICATE"
HEALTH = {"code": OWED, "digest": "sha-256=:" + "H" * 43 + "=:"}


def _under_review() -> Application:
    app = receive()
    app.examine(LEAD, "accepted", AT, deadline="2026-03-20", statutory_deadline="2026-04-01")
    assert app.owe((OWED,), "2026-03-17", AT)
    assert not app.owe((OWED,), "2026-03-30", AT)
    for agency in (LEAD, REVIEWER):
        app.message_queued(agency, f"msg_{agency}", AT)
        app.delivered(agency, f"msg_{agency}", "sha-256=:x:", AT)
    app.pending_events.clear()
    return app


def test_an_owed_material_is_owed_once_and_not_when_given() -> None:
    app = _under_review()
    assert [(o.material, o.due) for o in app.owed] == [(OWED, "2026-03-17")]
    assert app.owed_due == "2026-03-17"
    given = receive()
    given.document = {"materials": [HEALTH]}
    assert given.owe((OWED,), "2026-03-17", AT) == []


def test_no_approval_while_owed_but_a_rejection_or_a_matter_that_allows_it() -> None:
    app = _under_review()
    unchanged(app, lambda: app.decide(LEAD, "approved", (), LATER), IllegalTransitionError)
    with pytest.raises(IllegalTransitionError) as refused:
        app.decide(LEAD, "approved", (), LATER)
    assert [(p.pointer, p.code) for p in refused.value.errors] == [
        (f"/owed/{OWED}", "material_owed")
    ]
    app.decide(LEAD, "approved", (), LATER, owed_before_decision=False)
    app.decide(REVIEWER, "rejected", ("no",), LATER)
    assert app.status is Status.REJECTED


def test_supplying_it_is_a_round_every_holding_handler_is_due() -> None:
    app = _under_review()
    assert app.due_forwards() == []
    unchanged(
        app,
        lambda: app.supply_owed({"materials": [HEALTH]}, ("APPLICATION_FORM",), LATER, "hk-ird"),
        IllegalTransitionError,
    )
    app.supply_owed({"materials": [HEALTH]}, (OWED,), LATER, "hk-ird")
    assert app.owed == []
    assert app.owed_due is None
    assert app.supplement_round == 1
    assert {h.agency_id for h in app.due_forwards()} == {LEAD, REVIEWER}
    [event] = app.pending_events
    assert event.type == "application.supplement_provided"
    assert event.data == {
        "provided": [OWED],
        "round": 1,
        "after_acceptance": True,
        "still_owed": [],
    }
    app.decide(LEAD, "approved", (), LATER)  # nothing owed now


def test_past_its_due_day_it_is_flagged_once_and_supplied_late() -> None:
    app = _under_review()
    assert not app.mark_owed_overdue("2026-03-17", LATER)  # on the due day: not yet
    assert app.mark_owed_overdue("2026-03-18", LATER)
    assert not app.mark_owed_overdue("2026-03-19", LATER + timedelta(days=1))
    assert [(e.type, e.data) for e in app.pending_events] == [
        ("material.overdue", {"material": OWED, "due": "2026-03-17"})
    ]
    assert app.owed_due is None  # the sweep does not pick it up again
    app.supply_owed({"materials": [HEALTH]}, (OWED,), LATER, "hk-ird")
    assert app.pending_events[-1].data["late"] == [OWED]


def test_nothing_is_supplied_after_acceptance_once_closed() -> None:
    app = _under_review()
    app.withdraw("hk-ird", LATER)
    unchanged(
        app,
        lambda: app.supply_owed({"materials": [HEALTH]}, (OWED,), LATER, "hk-ird"),
        IllegalTransitionError,
    )
    assert app.owed_due is None
    assert not app.mark_owed_overdue("2026-12-31", LATER)
