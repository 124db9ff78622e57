"""The sandbox evidence issuers answer from persona data, or refuse."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.sandbox.agencies import sandbox_agency
from gateway.sandbox.issuers import answer

NOW = datetime(2026, 9, 1, tzinfo=UTC)


def _request(kind: str, subject: dict[str, str]) -> dict[str, object]:
    return {
        "type": "evidence_request",
        "request_id": "msg_1",
        "evidence_type": kind,
        "subject": subject,
    }


def test_each_issuer_answers_from_the_persona_the_identifiers_name() -> None:
    br = answer(
        sandbox_agency("hk-ird"),
        _request("hk-br-extract", {"names.original": "何嘉欣", "document:HKID": "XA0000016"}),
        "answer",
        NOW,
    )
    assert br["type"] == "evidence_document"
    assert br["document"]["business_registration_number"] == "12345678"
    status = answer(
        sandbox_agency("mo-dsi"),
        _request(
            "mo-resident-status",
            {"names.original": "李小明", "birth_date": "1992-07-07", "document:MO_BIR": "12345678"},
        ),
        "answer",
        NOW,
    )
    assert (status["type"], status["document"]["bir_number"]) == ("evidence_document", "1234567(8)")
    permit = answer(
        sandbox_agency("gz-psb"),
        _request(
            "gd-residence-permit",
            {"names.original": "陈大文", "document:RESIDENCE_PERMIT": "810000198803150123"},
        ),
        "answer",
        NOW,
    )
    assert permit["document"]["holder_of"] == "HK"


def test_refusals_say_why() -> None:
    no_company = answer(
        sandbox_agency("hk-ird"),
        _request("hk-br-extract", {"names.original": "陳大文", "document:HKID": "A1234563"}),
        "answer",
        NOW,
    )
    assert (no_company["type"], no_company["reason"]) == ("evidence_refusal", "no_record")
    other = answer(sandbox_agency("hk-ird"), _request("gd-residence-permit", {}), "answer", NOW)
    assert other["reason"] == "not_issued"
    switched = answer(
        sandbox_agency("gz-psb"),
        _request("gd-residence-permit", {"document:RESIDENCE_PERMIT": "810000198803150123"}),
        "refuse",
        NOW,
    )
    assert switched["reason"] == "refused"
    silent = answer(sandbox_agency("gz-psb"), _request("gd-residence-permit", {}), "silent", NOW)
    assert "type" not in silent
    assert silent["status"] == "received"
