"""Supplement rounds under agency acceptance (Art. 19(3), 20) and the lead's re-check of an
automatic decision (Art. 25), in the aggregate: each round restarts the examination and makes
the supplemented document due to whoever holds the case; an overturn is a corrective decision;
every refused move changes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.domain.application import Application, HandlerState, Status
from gateway.domain.errors import ForbiddenError, IllegalTransitionError
from tests.unit.domain.test_case_lifecycle import AT, LATER, LEAD, REVIEWER, receive, unchanged

THEN = LATER + timedelta(days=3)


def _held_by_lead() -> Application:
    app = receive()
    (lead,) = app.due_forwards()
    app.message_queued(lead.agency_id, "msg_1", AT)
    app.delivered(lead.agency_id, "msg_1", "sha-256=:ack:", AT)
    app.pending_events.clear()
    return app


def _round(app: Application, at: object, due: str) -> None:
    app.examine(LEAD, "supplement", at, missing=("CV",))  # type: ignore[arg-type]
    assert app.due_forwards() == []  # nothing goes out while the supplement is awaited
    app.supplement({"matter": "x", "cv": str(at)}, (), at, "hk-ird", acceptance_due=due)  # type: ignore[arg-type]


def test_each_round_makes_the_supplemented_document_due_to_the_lead_again() -> None:
    app = _held_by_lead()

    _round(app, LATER, "2026-03-11")
    (due,) = app.due_forwards()
    assert due.agency_id == LEAD
    app.message_queued(LEAD, "msg_2", LATER)
    assert app.due_forwards() == []
    queued = app.pending_events[-1]
    assert (queued.type, queued.data) == (
        "message.queued",
        {"agency": LEAD, "message_id": "msg_2", "supplement_round": 1},
    )
    app.delivered(LEAD, "msg_2", "sha-256=:ack2:", LATER)
    assert app.pending_events[-1].data["supplement_round"] == 1  # it acknowledged round 1
    app.delivered(LEAD, "msg_1", "sha-256=:ack:", LATER)  # the earlier document's: nothing
    assert [e.type for e in app.pending_events].count("message.delivered") == 1

    _round(app, THEN, "2026-03-13")
    assert [h.agency_id for h in app.due_forwards()] == [LEAD]
    assert (app.supplement_round, app.acceptance_due, app.examined_from) == (2, "2026-03-13", THEN)


def test_deemed_acceptance_after_a_round_is_as_of_the_supplements_arrival() -> None:
    app = _held_by_lead()
    _round(app, LATER, "2026-03-11")
    app.message_queued(LEAD, "msg_2", LATER)
    _round(app, THEN, "2026-03-13")
    app.message_queued(LEAD, "msg_3", THEN)

    app.deem_accepted(THEN + timedelta(days=9), deadline="2026-03-30", statutory_deadline=None)

    accepted = next(e for e in app.pending_events if e.type == "application.accepted")
    assert accepted.data["effective"] == THEN.isoformat()
    assert app.acceptance_due is None
    # accepted: the reviewer gets its first forward; the lead holds the current document
    assert [h.agency_id for h in app.due_forwards()] == [REVIEWER]


def _automatically_decided(failed: tuple[str, ...], *, recheck: bool = True) -> Application:
    app = receive()
    app.examine(LEAD, "accepted", AT, deadline="2026-03-20")
    for agency in (LEAD, REVIEWER):
        app.message_queued(agency, f"msg_{agency}", AT)
        app.delivered(agency, f"msg_{agency}", "sha-256=:ack:", AT)
    app.decide_automatically(failed, AT, recheck=recheck)
    app.pending_events.clear()
    return app


def test_an_overturned_rejection_is_a_corrective_approval_for_every_handler() -> None:
    app = _automatically_decided(("rule 1",))
    assert (app.status, app.recheck) == (Status.REJECTED, "queued")

    app.record_recheck(LEAD, "overturned", ("the data was wrong",), LATER)

    assert (app.status, app.recheck) == (Status.APPROVED, "overturned")
    assert [(h.state, h.reasons) for h in app.handlers] == [(HandlerState.APPROVED, ())] * 2
    assert [(e.type, e.actor, e.data) for e in app.pending_events] == [
        (
            "decision.rechecked",
            LEAD,
            {"agency": LEAD, "outcome": "overturned", "reasons": ["the data was wrong"]},
        ),
        (
            "application.decision_corrected",
            LEAD,
            {"decision": "approved", "overturned": "rejected", "reasons": ["the data was wrong"]},
        ),
    ]


def test_an_overturned_approval_after_delivery_is_a_rejection_to_deliver_again() -> None:
    app = _automatically_decided(())
    app.deliver_result(LEAD, "post", AT)

    app.record_recheck(LEAD, "overturned", ("deregistered employer",), LATER)

    assert app.status is Status.REJECTED
    assert (app.lead.state, app.lead.reasons) == (HandlerState.REJECTED, ("deregistered employer",))
    app.deliver_result(LEAD, "post", THEN)  # the corrective decision is delivered too
    assert app.status is Status.RESULT_DELIVERED


def test_a_confirmation_changes_no_decision() -> None:
    app = _automatically_decided(())
    app.record_recheck(LEAD, "confirmed", (), LATER)
    assert (app.status, app.recheck) == (Status.APPROVED, "confirmed")
    assert [e.type for e in app.pending_events] == ["decision.rechecked"]


@pytest.mark.parametrize(
    ("agency", "outcome", "reasons", "error"),
    [
        (REVIEWER, "confirmed", (), ForbiddenError),
        (LEAD, "maybe", (), IllegalTransitionError),
        (LEAD, "overturned", (), IllegalTransitionError),
    ],
)
def test_refused_rechecks_change_nothing(
    agency: str, outcome: str, reasons: tuple[str, ...], error: type[Exception]
) -> None:
    app = _automatically_decided(("rule 1",))
    unchanged(app, lambda: app.record_recheck(agency, outcome, reasons, LATER), error)


def test_a_recheck_needs_one_pending() -> None:
    not_drawn = _automatically_decided((), recheck=False)
    unchanged(
        not_drawn,
        lambda: not_drawn.record_recheck(LEAD, "confirmed", (), LATER),
        IllegalTransitionError,
    )
    done = _automatically_decided(())
    done.record_recheck(LEAD, "confirmed", (), LATER)
    unchanged(
        done,
        lambda: done.record_recheck(LEAD, "overturned", ("x",), LATER),
        IllegalTransitionError,
    )
