"""The case lifecycle beyond the first answer: examination by the lead agency, deemed
acceptance, supplements, joint rejections with every agency's reasons, result delivery and
withdrawal. Every illegal move raises and changes nothing."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.domain.application import Application, HandlerState, Status
from gateway.domain.errors import ForbiddenError, IllegalTransitionError

AT = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
LATER = AT + timedelta(days=1)
LEAD, REVIEWER = "sz-hc", "hk-mchk"


def receive(
    *,
    acceptance: str = "agency",
    missing: tuple[str, ...] = (),
    handlers: tuple[str, ...] = (LEAD, REVIEWER),
    delivery: str | None = None,
) -> Application:
    app = Application.receive(
        application_id="app_01LIFE",
        matter="11440300MB2C00091K3440120007000",
        matter_version=1,
        submitted_by="hk-ird",
        channel="counter",
        source_format="canonical",
        content_digest="sha-256=:AAAA:",
        document={"matter": "x"},
        handlers=handlers,
        missing=missing,
        deadline="2026-03-20",
        statutory_deadline="2026-04-01",
        acceptance=acceptance,
        acceptance_due="2026-03-10",
        delivery_channel=delivery,
        at=AT,
    )
    app.pending_events.clear()
    return app


def types(app: Application) -> list[str]:
    return [e.type for e in app.pending_events]


def unchanged(app: Application, action: Any, error: type[Exception]) -> None:
    before = copy.deepcopy(app)
    with pytest.raises(error):
        action()
    assert app == before


def forwarded(app: Application, *agencies: str) -> None:
    for agency in agencies:
        app.message_queued(agency, f"msg_{agency}", AT)
        app.delivered(agency, f"msg_{agency}", "sha-256=:ack:", AT)


def test_a_complete_case_of_an_agency_accepted_matter_waits_for_the_lead() -> None:
    app = receive()

    assert app.status is Status.RECEIVED
    assert app.acceptance_due == "2026-03-10"
    assert app.deadline is None  # time limits run from acceptance
    assert [h.agency_id for h in app.due_forwards()] == [LEAD]  # only the lead examines it


def test_the_lead_accepts_and_review_starts_once_every_handler_has_the_case() -> None:
    app = receive()
    forwarded(app, LEAD)
    assert app.status is Status.RECEIVED  # delivered to the lead, not yet accepted

    app.examine(LEAD, "accepted", LATER, deadline="2026-03-21", statutory_deadline="2026-04-02")

    assert app.status is Status.ACCEPTED
    assert (app.deadline, app.statutory_deadline) == ("2026-03-21", "2026-04-02")
    assert [h.agency_id for h in app.due_forwards()] == [REVIEWER]
    forwarded(app, REVIEWER)
    assert app.status is Status.UNDER_REVIEW


def test_only_the_lead_examines_and_only_a_received_case() -> None:
    app = receive()
    unchanged(app, lambda: app.examine(REVIEWER, "accepted", LATER), ForbiddenError)
    unchanged(app, lambda: app.examine(LEAD, "maybe", LATER), IllegalTransitionError)
    unchanged(app, lambda: app.examine(LEAD, "not_accepted", LATER), IllegalTransitionError)
    unchanged(app, lambda: app.examine(LEAD, "supplement", LATER), IllegalTransitionError)
    app.examine(LEAD, "accepted", LATER)
    unchanged(app, lambda: app.examine(LEAD, "accepted", LATER), IllegalTransitionError)


def test_non_acceptance_carries_its_reasons_and_closes_the_case() -> None:
    app = receive()

    app.examine(LEAD, "not_accepted", LATER, reasons=("not a registered doctor",))

    assert app.status is Status.NOT_ACCEPTED
    assert app.pending_events[-1].data == {"reasons": ["not a registered doctor"]}
    unchanged(app, lambda: app.withdraw("hk-ird", LATER), IllegalTransitionError)


def test_one_notice_lists_everything_missing_then_the_supplement_returns_to_the_lead() -> None:
    app = receive()
    app.examine(LEAD, "supplement", LATER, missing=("CV", "LICENCE"))
    assert app.status is Status.AWAITING_SUPPLEMENT
    assert app.pending_events[-1].data == {"missing": ["CV", "LICENCE"]}

    app.supplement({"matter": "x", "materials": ["CV"]}, ("LICENCE",), LATER, "hk-ird")
    assert app.status is Status.AWAITING_SUPPLEMENT
    assert types(app)[-2:] == [
        "application.supplement_provided",
        "application.supplement_requested",
    ]
    assert app.pending_events[-2].data == {"provided": ["CV"], "round": 1}

    complete = {"matter": "x", "materials": ["CV", "LICENCE"]}
    unchanged(  # the examination restarts: it needs its new last day
        app, lambda: app.supplement(complete, (), LATER, "hk-ird"), IllegalTransitionError
    )
    app.supplement(complete, (), LATER, "hk-ird", acceptance_due="2026-03-20")
    assert app.status is Status.RECEIVED
    assert app.missing == ()
    assert app.document["materials"] == ["CV", "LICENCE"]
    assert (app.acceptance_due, app.examined_from, app.supplement_round) == (
        "2026-03-20",
        LATER,
        2,
    )
    assert app.pending_events[-1].type == "application.examination_restarted"
    assert app.pending_events[-1].data == {"round": 2, "acceptance_due": "2026-03-20"}


def test_an_automatic_matter_is_accepted_when_the_supplement_completes_it() -> None:
    app = receive(acceptance="automatic", missing=("CV",))
    assert app.status is Status.AWAITING_SUPPLEMENT

    app.supplement({"matter": "x"}, (), LATER, "hk-ird", deadline="2026-03-25")

    assert app.status is Status.ACCEPTED
    assert app.deadline == "2026-03-25"
    unchanged(app, lambda: app.supplement({}, (), LATER, "hk-ird"), IllegalTransitionError)


def test_deemed_acceptance_is_effective_as_of_receipt() -> None:
    app = receive()

    app.deem_accepted(LATER, deadline="2026-03-20", statutory_deadline="2026-04-01")

    assert app.status is Status.ACCEPTED
    accepted = app.pending_events[-1]
    assert accepted.actor == "gateway"
    assert accepted.data["deemed"] is True
    assert accepted.data["effective"] == AT.isoformat()
    unchanged(
        app,
        lambda: app.deem_accepted(LATER, deadline=None, statutory_deadline=None),
        IllegalTransitionError,
    )


def test_an_automatic_matter_is_never_deemed() -> None:
    app = receive(acceptance="automatic", missing=("CV",))
    unchanged(
        app,
        lambda: app.deem_accepted(LATER, deadline=None, statutory_deadline=None),
        IllegalTransitionError,
    )


def reviewing() -> Application:
    app = receive()
    forwarded(app, LEAD)
    app.examine(LEAD, "accepted", LATER)
    forwarded(app, REVIEWER)
    app.pending_events.clear()
    return app


def test_one_rejection_rejects_the_joint_case_with_every_agencys_reasons() -> None:
    app = reviewing()
    app.decide(LEAD, "approved", (), LATER)
    assert app.status is Status.UNDER_REVIEW

    app.decide(REVIEWER, "rejected", ("not registered in Hong Kong",), LATER)

    assert app.status is Status.REJECTED
    assert [h.state for h in app.handlers] == [HandlerState.APPROVED, HandlerState.REJECTED]
    assert app.pending_events[-1].type == "application.rejected"
    assert app.pending_events[-1].data == {"reasons": {REVIEWER: ["not registered in Hong Kong"]}}


def test_the_result_is_delivered_by_the_lead_on_the_chosen_channel() -> None:
    app = reviewing()
    app.delivery_channel = "post"
    app.decide(LEAD, "approved", (), LATER)
    app.decide(REVIEWER, "approved", (), LATER)

    unchanged(app, lambda: app.deliver_result(REVIEWER, "post", LATER), ForbiddenError)
    unchanged(app, lambda: app.deliver_result(LEAD, "pickup", LATER), IllegalTransitionError)
    unchanged(app, lambda: app.deliver_result(LEAD, "fax", LATER), IllegalTransitionError)
    app.deliver_result(LEAD, "post", LATER)

    assert app.status is Status.RESULT_DELIVERED
    assert app.pending_events[-1].data == {"channel": "post"}
    unchanged(app, lambda: app.deliver_result(LEAD, "post", LATER), IllegalTransitionError)


def test_a_result_cannot_be_delivered_before_the_decision() -> None:
    app = reviewing()
    unchanged(app, lambda: app.deliver_result(LEAD, "electronic", LATER), IllegalTransitionError)


@pytest.mark.parametrize("stage", ["received", "supplement", "accepted", "review"])
def test_the_applicant_withdraws_an_open_case(stage: str) -> None:
    app = receive()
    if stage == "supplement":
        app.examine(LEAD, "supplement", LATER, missing=("CV",))
    elif stage == "accepted":
        app.examine(LEAD, "accepted", LATER)
    elif stage == "review":
        app = reviewing()

    app.withdraw("resident", LATER)

    assert app.status is Status.WITHDRAWN
    assert app.pending_events[-1].type == "application.withdrawn"


def test_a_decided_case_cannot_be_withdrawn() -> None:
    app = reviewing()
    app.decide(LEAD, "approved", (), LATER)
    app.decide(REVIEWER, "approved", (), LATER)
    unchanged(app, lambda: app.withdraw("resident", LATER), IllegalTransitionError)


def test_an_unknown_delivery_channel_is_refused_at_receipt() -> None:
    with pytest.raises(IllegalTransitionError):
        receive(delivery="pigeon")


def test_a_result_collected_in_person_waits_for_its_pickup_code() -> None:
    from gateway.domain.application import PICKUP_ATTEMPTS, pickup_hash

    app = reviewing()
    app.delivery_channel = "pickup"
    app.decide(LEAD, "approved", (), LATER)
    app.decide(REVIEWER, "approved", (), LATER)
    unchanged(app, lambda: app.deliver_result(LEAD, "pickup", LATER), IllegalTransitionError)
    code_hash = pickup_hash(app.id, "7K2M9QXD")

    app.deliver_result(LEAD, "pickup", LATER, code_hash)

    assert app.status is Status.APPROVED  # ready, not delivered
    assert app.pending_events[-1].type == "application.result_ready_for_pickup"
    assert "7K2M9QXD" not in repr(app.pending_events)
    counter = {"at_channel": "counter", "service_point": "SP-1", "officer": "OFF-1"}
    assert app.collect_result("hk-ird", pickup_hash(app.id, "WRONG234"), LATER, counter) is False
    assert (app.pickup_attempts, app.pending_events[-1].data["attempts_left"]) == (1, 4)
    assert app.collect_result("hk-ird", pickup_hash(app.id, "7k2m 9qxd"), LATER, counter)
    assert app.status is Status.RESULT_DELIVERED
    assert app.pending_events[-1].data == {"channel": "pickup", "picked_up": True, **counter}
    assert app.pickup_hash is None
    unchanged(
        app, lambda: app.collect_result("hk-ird", code_hash, LATER, counter), IllegalTransitionError
    )
    assert PICKUP_ATTEMPTS == 5


def test_five_wrong_pickup_codes_lock_even_the_right_one() -> None:
    from gateway.domain.application import pickup_hash

    app = reviewing()
    app.decide(LEAD, "approved", (), LATER)
    app.decide(REVIEWER, "approved", (), LATER)
    app.deliver_result(LEAD, "kiosk", LATER, pickup_hash(app.id, "RIGHT234"))
    for _ in range(5):
        assert not app.collect_result("hk-ird", pickup_hash(app.id, "WRONG234"), LATER, {})

    right = pickup_hash(app.id, "RIGHT234")
    unchanged(app, lambda: app.collect_result("hk-ird", right, LATER, {}), IllegalTransitionError)
    assert app.status is Status.APPROVED
