"""The Application aggregate: its state machine, joint handling, and the events it records."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.domain.application import (
    Application,
    HandlerState,
    Status,
    can_move,
)
from gateway.domain.errors import ForbiddenError, IllegalTransitionError

GOLDEN = (
    Path(__file__).parents[2] / "fixtures" / "documents" / "hk-individual-business.canonical.json"
)
MATTER = "11440400MB2C00081P4440120002000"
AT = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
LEAD, REVIEWER, SUBMITTER = "gd-hq-csb", "gd-hq-tax", "hk-ird"
DIGEST = "sha-256=:R7qqQA6Z5bl826qGIRqaGz8YwH2fkweCuH6MyFfwdIs=:"

# The diagram of gateway/domain/application.py, plus the two exits it leaves out of the drawing:
# refusal to accept (from received / awaiting_supplement) and withdrawal (before a decision).
DIAGRAM = {
    (Status.RECEIVED, Status.AWAITING_SUPPLEMENT),
    (Status.RECEIVED, Status.ACCEPTED),
    (Status.AWAITING_SUPPLEMENT, Status.RECEIVED),  # supplied; the lead examines it again
    (Status.AWAITING_SUPPLEMENT, Status.ACCEPTED),
    (Status.ACCEPTED, Status.UNDER_REVIEW),
    (Status.UNDER_REVIEW, Status.APPROVED),
    (Status.UNDER_REVIEW, Status.REJECTED),
    (Status.APPROVED, Status.RESULT_DELIVERED),
    (Status.REJECTED, Status.RESULT_DELIVERED),
}
NOT_ACCEPTED = {(s, Status.NOT_ACCEPTED) for s in (Status.RECEIVED, Status.AWAITING_SUPPLEMENT)}
WITHDRAWN = {
    (s, Status.WITHDRAWN)
    for s in (Status.RECEIVED, Status.AWAITING_SUPPLEMENT, Status.ACCEPTED, Status.UNDER_REVIEW)
}
LEGAL = DIAGRAM | NOT_ACCEPTED | WITHDRAWN
TERMINAL = {Status.NOT_ACCEPTED, Status.RESULT_DELIVERED, Status.WITHDRAWN}
ALL_PAIRS = list(itertools.product(Status, Status))


def _golden() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text("utf-8"))


def _receive(*, handlers: tuple[str, ...] = (LEAD,), missing: tuple[str, ...] = ()) -> Application:
    return Application.receive(
        application_id="app_01TEST",
        matter=MATTER,
        matter_version=1,
        submitted_by=SUBMITTER,
        channel="online",
        source_format="HK",
        content_digest=DIGEST,
        document=_golden(),
        handlers=handlers,
        missing=missing,
        deadline=None if missing else "2026-03-03",
        at=AT,
    )


def _under_review(handlers: tuple[str, ...] = (LEAD, REVIEWER)) -> Application:
    app = _receive(handlers=handlers)
    for i, agency in enumerate(handlers):
        app.delivered(agency, f"msg_{i}", f"sha-256=:ack{i}=:", AT)
    assert app.status is Status.UNDER_REVIEW
    app.pending_events.clear()
    return app


def _types(app: Application) -> list[str]:
    return [e.type for e in app.pending_events]


def _bare(status: Status) -> Application:
    app = _receive()
    app.status = status
    app.pending_events.clear()
    return app


# --------------------------------------------------------------------------- the table


def test_every_status_is_in_the_table() -> None:
    assert {frm for frm, _ in LEGAL} | TERMINAL == set(Status)
    assert {frm for frm, _ in LEGAL}.isdisjoint(TERMINAL)


@pytest.mark.parametrize(("frm", "to"), ALL_PAIRS, ids=[f"{a}->{b}" for a, b in ALL_PAIRS])
def test_can_move_agrees_with_the_diagram(frm: Status, to: Status) -> None:
    assert can_move(frm, to) is ((frm, to) in LEGAL)


@pytest.mark.parametrize(
    ("frm", "to"),
    [p for p in ALL_PAIRS if p not in LEGAL],
    ids=[f"{a}->{b}" for a, b in ALL_PAIRS if (a, b) not in LEGAL],
)
def test_illegal_move_raises_and_changes_nothing(frm: Status, to: Status) -> None:
    app = _bare(frm)

    with pytest.raises(IllegalTransitionError, match="is not allowed"):
        app._move(to)

    assert app.status is frm
    assert app.pending_events == []


@pytest.mark.parametrize(("frm", "to"), sorted(LEGAL), ids=[f"{a}->{b}" for a, b in sorted(LEGAL)])
def test_legal_move_changes_the_status(frm: Status, to: Status) -> None:
    app = _bare(frm)

    app._move(to)

    assert app.status is to


def test_no_status_moves_to_itself() -> None:
    assert not any(can_move(s, s) for s in Status)


# --------------------------------------------------------------------------- receiving


def test_receive_with_nothing_missing_is_accepted_at_once() -> None:
    app = _receive()

    assert app.status is Status.ACCEPTED
    assert _types(app) == ["application.received", "application.accepted"]
    received, accepted = app.pending_events
    assert received.actor == SUBMITTER
    assert received.data == {
        "matter": MATTER,
        "channel": "online",
        "format": "HK",
        "content_digest": DIGEST,
        "acceptance": "automatic",
    }
    assert accepted.actor == "gateway"
    assert accepted.data == {"deadline": "2026-03-03", "statutory_deadline": None}
    assert all(e.application_id == "app_01TEST" and e.at == AT for e in app.pending_events)
    assert [(h.agency_id, h.role, h.state) for h in app.handlers] == [
        (LEAD, "lead", HandlerState.PENDING)
    ]


def test_receive_with_missing_materials_awaits_a_supplement() -> None:
    app = _receive(missing=("APPLICATION_FORM", "PREMISES_PROOF"))

    assert app.status is Status.AWAITING_SUPPLEMENT
    assert app.missing == ("APPLICATION_FORM", "PREMISES_PROOF")
    assert _types(app) == ["application.received", "application.supplement_requested"]
    assert app.pending_events[1].data == {"missing": ["APPLICATION_FORM", "PREMISES_PROOF"]}


def test_first_handler_leads_and_the_others_review() -> None:
    app = _receive(handlers=(LEAD, REVIEWER, "gd-third"))

    assert [(h.agency_id, h.role) for h in app.handlers] == [
        (LEAD, "lead"),
        (REVIEWER, "reviewer"),
        ("gd-third", "reviewer"),
    ]


# --------------------------------------------------------------------------- delivery


def test_review_starts_when_every_handler_has_the_application() -> None:
    app = _receive(handlers=(LEAD, REVIEWER))
    app.pending_events.clear()

    app.delivered(LEAD, "msg_1", "sha-256=:a=:", AT)
    assert app.status is Status.ACCEPTED
    assert _types(app) == ["message.delivered"]

    app.delivered(REVIEWER, "msg_2", "sha-256=:b=:", AT)
    assert app.status is Status.UNDER_REVIEW
    assert _types(app) == ["message.delivered", "message.delivered", "review.started"]
    assert app.pending_events[-1].data == {"handlers": [LEAD, REVIEWER]}
    assert app.pending_events[0].data == {"message_id": "msg_1", "ack_digest": "sha-256=:a=:"}
    assert app.pending_events[0].actor == LEAD
    assert {h.state for h in app.handlers} == {HandlerState.DELIVERED}


def test_repeated_delivery_changes_nothing() -> None:
    app = _under_review()

    app.delivered(LEAD, "msg_0", "sha-256=:again=:", AT + timedelta(minutes=5))

    assert app.status is Status.UNDER_REVIEW
    assert app.pending_events == []
    assert app.handler(LEAD).state is HandlerState.DELIVERED


def test_delivery_to_a_non_handler_is_forbidden() -> None:
    app = _receive()

    with pytest.raises(ForbiddenError):
        app.delivered("mo-dsf", "msg_x", "sha-256=:x=:", AT)
    assert app.status is Status.ACCEPTED


def test_delivery_failure_is_recorded_as_a_dead_letter_event() -> None:
    app = _receive()
    app.pending_events.clear()

    app.delivery_failed(LEAD, "msg_1", "partner refused", AT)

    assert _types(app) == ["message.dead_lettered"]
    assert app.pending_events[0].data == {
        "agency": LEAD,
        "message_id": "msg_1",
        "error": "partner refused",
    }
    assert app.status is Status.ACCEPTED


# --------------------------------------------------------------------------- decisions


def test_decision_before_delivery_is_illegal() -> None:
    app = _receive(handlers=(LEAD, REVIEWER))

    with pytest.raises(IllegalTransitionError, match="accepted"):
        app.decide(LEAD, "approved", (), AT)
    assert app.status is Status.ACCEPTED
    assert app.handler(LEAD).state is HandlerState.PENDING


def test_decision_while_awaiting_supplement_is_illegal() -> None:
    app = _receive(missing=("APPLICATION_FORM",))

    with pytest.raises(IllegalTransitionError):
        app.decide(LEAD, "approved", (), AT)
    assert app.status is Status.AWAITING_SUPPLEMENT


def test_single_handler_approval_approves_the_case() -> None:
    app = _under_review(handlers=(LEAD,))

    app.decide(LEAD, "approved", (), AT)

    assert app.status is Status.APPROVED
    assert _types(app) == ["decision.recorded", "application.approved"]
    assert app.pending_events[0].actor == LEAD
    assert app.pending_events[0].data == {"decision": "approved", "reasons": []}


def test_joint_case_is_approved_only_when_both_approve() -> None:
    app = _under_review()

    app.decide(LEAD, "approved", (), AT)
    assert app.status is Status.UNDER_REVIEW
    assert _types(app) == ["decision.recorded"]

    app.decide(REVIEWER, "approved", (), AT)
    assert app.status is Status.APPROVED
    assert _types(app) == ["decision.recorded", "decision.recorded", "application.approved"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ((LEAD, "approved"), (REVIEWER, "rejected")),
        ((LEAD, "rejected"), (REVIEWER, "approved")),
        ((REVIEWER, "rejected"), (LEAD, "approved")),
    ],
)
def test_one_rejection_rejects_the_joint_case_once_both_decided(
    first: tuple[str, str], second: tuple[str, str]
) -> None:
    app = _under_review()

    def reasons(decision: str) -> tuple[str, ...]:
        return ("PREMISES_NOT_ZONED",) if decision == "rejected" else ()

    app.decide(first[0], first[1], reasons(first[1]), AT)
    assert app.status is Status.UNDER_REVIEW  # the other handler has not decided yet

    app.decide(second[0], second[1], reasons(second[1]), AT)
    assert app.status is Status.REJECTED
    assert _types(app)[-1] == "application.rejected"
    rejecting = next(h for h in app.handlers if h.state is HandlerState.REJECTED)
    assert rejecting.reasons == ("PREMISES_NOT_ZONED",)


def test_rejection_without_reasons_is_refused() -> None:
    app = _under_review()

    with pytest.raises(IllegalTransitionError, match="reasons"):
        app.decide(LEAD, "rejected", (), AT)
    assert app.handler(LEAD).state is HandlerState.DELIVERED
    assert app.pending_events == []


def test_unknown_decision_is_refused() -> None:
    app = _under_review()

    with pytest.raises(IllegalTransitionError, match="approved' or 'rejected"):
        app.decide(LEAD, "maybe", (), AT)
    assert app.handler(LEAD).state is HandlerState.DELIVERED


@pytest.mark.parametrize("agency", [SUBMITTER, "mo-dsf"])
def test_decision_by_a_non_handler_is_forbidden(agency: str) -> None:
    app = _under_review()

    with pytest.raises(ForbiddenError):
        app.decide(agency, "approved", (), AT)
    assert app.status is Status.UNDER_REVIEW
    assert app.pending_events == []


def test_a_handler_decides_once() -> None:
    app = _under_review()
    app.decide(LEAD, "approved", (), AT)

    with pytest.raises(IllegalTransitionError):
        app.decide(LEAD, "rejected", ("CHANGED_MIND",), AT)
    assert app.handler(LEAD).state is HandlerState.APPROVED


def test_parties_are_the_submitter_and_the_handlers() -> None:
    app = _receive(handlers=(LEAD, REVIEWER))

    assert app.is_party(SUBMITTER)
    assert app.is_party(LEAD)
    assert app.is_party(REVIEWER)
    assert not app.is_party("mo-dsf")


# --------------------------------------------------------------------------- personal data


def _strings(value: object) -> list[str]:
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (str(k), *_strings(v))]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def test_events_carry_no_personal_data() -> None:
    document = _golden()
    applicant = document["applicant"]
    personal = [
        applicant["names"]["original"],
        applicant["names"]["zh-Hans"],
        applicant["names"]["latin"],
        applicant["names"]["family_name_latin"],
        applicant["names"]["given_names_latin"],
        applicant["birth_date"],
        applicant["phone"],
        applicant["email"],
        *(d["number"] for d in applicant["documents"]),
        "A123456(3)",  # the HKID in its printed form
    ]
    app = _receive(handlers=(LEAD, REVIEWER))
    app.message_queued(LEAD, "msg_1", AT)
    app.message_queued(REVIEWER, "msg_2", AT)
    app.delivered(LEAD, "msg_1", "sha-256=:a=:", AT)
    app.delivered(REVIEWER, "msg_2", "sha-256=:b=:", AT)
    app.decide(LEAD, "approved", (), AT)
    app.decide(REVIEWER, "rejected", ("PREMISES_NOT_ZONED",), AT)
    assert len(app.pending_events) == 10

    for event in app.pending_events:
        text = " ".join(_strings(event.data)) + " " + event.actor
        for value in personal:
            assert value not in text, (event.type, value)


def test_a_blocked_forward_is_recorded_once_per_problem_set_and_stays_due() -> None:
    app = _receive(handlers=(LEAD, REVIEWER))
    app.pending_events.clear()
    lost = [{"pointer": "/applicant/documents/0/issuer", "code": "not_in_format"}]

    app.forward_blocked(REVIEWER, lost, AT)
    app.forward_blocked(REVIEWER, list(reversed(lost)), AT)  # still blocked, nothing new
    assert [(e.type, e.data) for e in app.pending_events] == [
        ("message.forward_blocked", {"agency": REVIEWER, "problems": lost})
    ]
    assert REVIEWER in [h.agency_id for h in app.due_forwards()]  # tried again at a move

    other = [*lost, {"pointer": "/particulars/x", "code": "not_in_format"}]
    app.forward_blocked(REVIEWER, other, AT)  # other problems: said again
    assert len(app.pending_events) == 2

    app.message_queued(REVIEWER, "msg_1", AT)  # the format carries it now
    app.forward_blocked(REVIEWER, lost, AT)
    assert [e.type for e in app.pending_events][-2:] == [
        "message.queued",
        "message.forward_blocked",
    ]
    with pytest.raises(ForbiddenError):
        app.forward_blocked("not-a-handler", lost, AT)


# --------------------------------------------------------------------------- legal basis

BASIS = {"law": "《个人信息保护法》", "article": "第十三条第一款第三项"}


@pytest.mark.parametrize(
    ("changes", "relies_on"),
    [
        ({"legal_basis": BASIS}, "legal_basis"),  # an agency's case, its basis declared
        ({"consent_id": "con_1", "applicant_id": "per_1"}, "consent"),
        ({"applicant_id": "per_1"}, "resident"),  # a resident's case, every handler at home
        ({}, None),  # an agency's case filed before a basis was required: rests on nothing
    ],
)
def test_a_case_says_what_its_forwards_rely_on(
    changes: dict[str, Any], relies_on: str | None
) -> None:
    app = _receive()
    for name, value in changes.items():
        setattr(app, name, value)

    assert app.relies_on == relies_on


def test_the_declared_basis_is_on_the_receipt_event() -> None:
    app = Application.receive(
        application_id="app_01TEST",
        matter=MATTER,
        matter_version=1,
        submitted_by=SUBMITTER,
        channel="online",
        source_format="HK",
        content_digest=DIGEST,
        document=_golden(),
        handlers=(LEAD,),
        missing=(),
        deadline="2026-03-03",
        at=AT,
        legal_basis=BASIS,
    )

    assert app.pending_events[0].type == "application.received"
    assert app.pending_events[0].data["legal_basis"] == BASIS
    assert app.legal_basis == BASIS
