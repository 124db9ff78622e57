"""Complaints (Art. 31): who files, who answers, and what reaches the timeline (no texts)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.domain.application import Application
from gateway.domain.complaints import Complaint
from gateway.domain.errors import ForbiddenError, IllegalTransitionError, ValidationFailedError

AT = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
TEXT = "陳大文: the officer lost my contract twice"


def _app(*, resident: bool = True) -> Application:
    app = Application.receive(
        application_id="app_01COMPLAINT",
        matter="11440400MB2C00081P4440120002000",
        matter_version=1,
        submitted_by="resident:per_1" if resident else "hk-ird",
        channel="online",
        source_format="canonical",
        content_digest="sha-256=:AA==:",
        document={},
        handlers=("gd-hq-csb", "gd-hq-tax"),
        missing=(),
        deadline="2026-03-10",
        at=AT,
        applicant_id="per_1" if resident else None,
    )
    app.pending_events.clear()
    return app


def _file(app: Application, caller: str = "resident:per_1", person: str | None = "per_1"):
    return Complaint.file(app, "cmp_1", caller=caller, person_id=person, text=TEXT, at=AT)


def test_the_applicant_files_and_the_timeline_has_no_text() -> None:
    app = _app()
    complaint = _file(app)

    assert (complaint.text, complaint.complainant, complaint.outcome) == (
        TEXT.strip(),
        "resident:per_1",
        None,
    )
    (event,) = app.pending_events
    assert (event.type, event.actor, event.data) == (
        "complaint.filed",
        "resident:per_1",
        {"complaint_id": "cmp_1"},
    )


def test_the_submitting_agency_files_for_the_applicant() -> None:
    app = _app(resident=False)
    assert _file(app, "hk-ird", None).complainant == "hk-ird"


@pytest.mark.parametrize(
    ("caller", "person"),
    [("gd-hq-csb", None), ("gd-hq-tax", None), ("resident:per_2", "per_2"), ("hk-ird", None)],
)
def test_nobody_else_files(caller: str, person: str | None) -> None:
    app = _app()
    with pytest.raises(ForbiddenError):
        _file(app, caller, person)
    assert app.pending_events == []


@pytest.mark.parametrize("text", ["", "   ", None, 42, "x" * 4001])
def test_a_complaint_needs_a_text_of_reasonable_length(text: object) -> None:
    app = _app()
    with pytest.raises(ValidationFailedError):
        Complaint.file(app, "cmp_1", caller="resident:per_1", person_id="per_1", text=text, at=AT)
    assert app.pending_events == []


def test_a_closed_case_takes_complaints() -> None:
    app = _app()
    app.withdraw("resident:per_1", AT)
    _file(app)
    assert app.pending_events[-1].type == "complaint.filed"


def test_the_lead_answers_once_and_the_timeline_has_the_outcome_only() -> None:
    app = _app()
    complaint = _file(app)
    complaint.answer(app, agency_id="gd-hq-csb", outcome="upheld", reply="We apologise.", at=AT)

    assert (complaint.outcome, complaint.reply, complaint.answered_by) == (
        "upheld",
        "We apologise.",
        "gd-hq-csb",
    )
    event = app.pending_events[-1]
    assert (event.type, event.actor, event.data) == (
        "complaint.answered",
        "gd-hq-csb",
        {"complaint_id": "cmp_1", "outcome": "upheld"},
    )
    with pytest.raises(IllegalTransitionError):
        complaint.answer(app, agency_id="gd-hq-csb", outcome="dismissed", reply="No.", at=AT)


@pytest.mark.parametrize("agency", ["gd-hq-tax", "hk-ird", "resident:per_1"])
def test_only_the_lead_answers(agency: str) -> None:
    app = _app()
    complaint = _file(app)
    with pytest.raises(ForbiddenError):
        complaint.answer(app, agency_id=agency, outcome="dismissed", reply="No.", at=AT)
    assert complaint.outcome is None


@pytest.mark.parametrize(("outcome", "reply"), [("maybe", "x"), ("upheld", ""), ("upheld", None)])
def test_an_answer_has_a_known_outcome_and_a_reply(outcome: str, reply: object) -> None:
    app = _app()
    complaint = _file(app)
    with pytest.raises(ValidationFailedError):
        complaint.answer(app, agency_id="gd-hq-csb", outcome=outcome, reply=reply, at=AT)
    assert complaint.outcome is None
    assert app.pending_events[-1].type == "complaint.filed"


def test_readers_are_the_parties_to_the_complaint() -> None:
    app = _app()
    complaint = _file(app)
    assert complaint.readable_by(app, "resident:per_1", "per_1")
    assert complaint.readable_by(app, "gd-hq-csb", None)
    assert not complaint.readable_by(app, "gd-hq-tax", None)
    assert not complaint.readable_by(app, "resident:per_2", "per_2")
