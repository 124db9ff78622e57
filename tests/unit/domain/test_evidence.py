"""Evidence by data sharing on the Application aggregate: the case waits while an issuer's
answer is outstanding, then goes on with one notice or its acceptance; what no issuer
provided is the applicant's to give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.application import Application, Status
from gateway.domain.errors import IllegalTransitionError
from gateway.domain.evidence import Evidence, EvidenceState, EvidenceType
from gateway.domain.matters import Names

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
LATER = AT + timedelta(minutes=5)
DIGEST = "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
APPLICANT = {
    "names": {"original": "陳大文", "latin": "CHAN Tai Man"},
    "birth_date": "1988-03-15",
    "documents": [
        {"type": "HKID", "number": "A1234563"},
        {"type": "RESIDENCE_PERMIT", "number": "810000198803150123"},
    ],
}


def _evidence(state: EvidenceState = EvidenceState.REQUESTED, material: str = "ID") -> Evidence:
    issuer = "gz-psb" if state is EvidenceState.REQUESTED else None
    reason = None if state is EvidenceState.REQUESTED else "no_consent"
    return Evidence(material, "gd-residence-permit", state, issuer, reason=reason)


def _receive(
    *evidence: Evidence, missing: tuple[str, ...] = (), acceptance: str = "automatic"
) -> Application:
    return Application.receive(
        application_id="app_01EVIDENCE",
        matter="12440100MB2C00121L3442030008000",
        matter_version=1,
        submitted_by="portal",
        channel="online",
        source_format="canonical",
        content_digest=DIGEST,
        document={"applicant": APPLICANT, "materials": []},
        handlers=("gz-hpf",),
        missing=missing,
        deadline="2026-03-03",
        acceptance=acceptance,
        at=AT,
        evidence=evidence,
    )


def _queued(app: Application, material: str = "ID", request_id: str = "msg_1") -> None:
    app.evidence_queued(material, request_id, "gz-psb", AT + timedelta(hours=1), AT)


def _types(app: Application) -> list[str]:
    return [e.type for e in app.pending_events]


def test_the_case_waits_for_the_issuer_then_is_accepted_with_the_evidence_bound() -> None:
    app = _receive(_evidence())
    assert (app.status, app.awaiting_evidence, app.missing) == (Status.RECEIVED, True, ())
    assert [e.material for e in app.evidence_due()] == ["ID"]
    _queued(app)
    assert app.evidence_due() == []
    assert app.due_forwards() == []  # nobody has the case while evidence is outstanding

    assert app.evidence_received(
        "msg_1",
        digest=DIGEST,
        media_type="application/json",
        issued_at="x",
        at=LATER,
        material_id="mat_1",
    )
    assert app.evidence_settled(LATER, deadline="2026-03-04", statutory_deadline="2026-03-05")
    assert app.status is Status.ACCEPTED
    assert app.deadline == "2026-03-04"
    assert app.document["materials"] == [
        {
            "code": "ID",
            "digest": DIGEST,
            "media_type": "application/json",
            "filename": "gd-residence-permit.json",
            "material_id": "mat_1",
        }
    ]
    assert _types(app) == [
        "application.received",
        "evidence.requested",
        "evidence.received",
        "application.accepted",
    ]
    # a repeated answer changes nothing
    assert not app.evidence_received(
        "msg_1", digest=DIGEST, media_type="application/json", issued_at="x", at=LATER
    )


@pytest.mark.parametrize("state", [EvidenceState.REFUSED, EvidenceState.UNANSWERED])
def test_a_refused_or_unanswered_request_joins_the_one_notice(state: EvidenceState) -> None:
    app = _receive(_evidence(), missing=("FORM",))
    assert app.status is Status.RECEIVED  # the notice of FORM waits for the issuer too
    _queued(app)
    assert app.evidence_failed("msg_1", state, "no_record", LATER)
    assert app.evidence_settled(LATER, deadline=None, statutory_deadline=None)

    assert app.status is Status.AWAITING_SUPPLEMENT
    assert app.missing == ("FORM", "ID")
    notices = [e for e in app.pending_events if e.type == "application.supplement_requested"]
    assert [n.data["missing"] for n in notices] == [["FORM", "ID"]]  # one notice, both
    assert f"evidence.{state.value}" in _types(app)


def test_a_supplement_without_the_material_no_issuer_gave_leaves_it_missing() -> None:
    app = _receive(_evidence())
    _queued(app)
    app.evidence_failed("msg_1", EvidenceState.REFUSED, "refused", LATER)
    app.evidence_settled(LATER, deadline=None, statutory_deadline=None)

    app.supplement({"applicant": APPLICANT, "materials": []}, (), LATER, "portal")
    assert (app.status, app.missing) == (Status.AWAITING_SUPPLEMENT, ("ID",))

    given = {"applicant": APPLICANT, "materials": [{"code": "ID", "digest": DIGEST}]}
    app.supplement(given, (), LATER, "portal", deadline="2026-03-04")
    assert (app.status, app.missing) == (Status.ACCEPTED, ())


def test_evidence_not_requested_is_asked_at_once_and_says_why() -> None:
    app = _receive(_evidence(EvidenceState.NOT_REQUESTED))
    assert (app.status, app.missing) == (Status.AWAITING_SUPPLEMENT, ("ID",))
    skipped = next(e for e in app.pending_events if e.type == "evidence.not_requested")
    assert skipped.data == {
        "material": "ID",
        "evidence_type": "gd-residence-permit",
        "reason": "no_consent",
    }


def test_an_examined_case_is_neither_examined_nor_deemed_while_evidence_is_outstanding() -> None:
    app = _receive(_evidence(), acceptance="agency")
    _queued(app)
    assert app.due_forwards() == []
    with pytest.raises(IllegalTransitionError):
        app.examine("gz-hpf", "accepted", LATER)
    with pytest.raises(IllegalTransitionError):
        app.deem_accepted(LATER, deadline=None, statutory_deadline=None)
    app.evidence_received(
        "msg_1", digest=DIGEST, media_type="application/json", issued_at="x", at=LATER
    )
    assert not app.evidence_settled(LATER, deadline=None, statutory_deadline=None)
    assert app.status is Status.RECEIVED
    assert [h.agency_id for h in app.due_forwards()] == ["gz-hpf"]  # now the lead examines


def test_an_answer_to_an_unknown_request_changes_nothing() -> None:
    app = _receive(_evidence())
    _queued(app)
    assert not app.evidence_failed("msg_other", EvidenceState.REFUSED, "x", LATER)
    assert app.awaiting_evidence


def test_the_subject_holds_only_the_fields_the_type_needs() -> None:
    kind = EvidenceType(
        "gd-residence-permit",
        Names("居住证", "居住證", "Residence permit"),
        "residence_status",
        "GD",
        ("names.original", "document:RESIDENCE_PERMIT"),
    )
    assert kind.subject_of(APPLICANT) == {
        "names.original": "陳大文",
        "document:RESIDENCE_PERMIT": "810000198803150123",
    }
    without = {**APPLICANT, "documents": [{"type": "HKID", "number": "A1234563"}]}
    assert kind.subject_of(without) is None


def test_evidence_round_trips_through_json() -> None:
    evidence = _evidence()
    evidence.request_id, evidence.due_at = "msg_1", AT
    assert Evidence.from_json(evidence.to_json()) == evidence
