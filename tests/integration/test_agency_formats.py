"""Agencies answer in their own format, on both databases: an HK agency's decision and
supplement posted as HK XML and a Macau lead's examination posted as Macau XML are recorded
exactly as the same calls in JSON; a wrong root element is a 422 problem listing it, other
media types a 415 naming both, and the replay of an XML decision answers the same.

Over the running sandbox: the relay delivers each forward (a decision needs the handler to hold
the case), the Shenzhen lead of the medical matter accepts and approves on its own, and the
test plays the HK Medical Council. The social-insurance matter is copied with ``acceptance:
agency`` and without its automatic decision, so its Macau lead ``mo-fss`` examines (played by
the test: the sandbox agencies' own decisions are switched off there)."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.operations import mappings_sample
from gateway.sandbox.routes import PARTNERS
from gateway.store.tables import certificates
from gateway.trust.e_certificates import sign_document
from tests.conftest import RunningGateway
from tests.support import INSURANCE, agency_key, row_counts, send

MEDICAL = "11440300MB2C00091K3440120007000"  # acceptance: agency; lead sz-hc, reviewer hk-mchk
ROOT = Path(__file__).parents[2]
JSON = "application/json"
XML = "application/xml"
HK = 'xmlns="urn:gba:hk:application:1"'
MO = 'xmlns="urn:gba:mo:requerimento:1"'


@pytest.fixture
def gateway(lead_examined_gateway: RunningGateway) -> RunningGateway:
    return lead_examined_gateway


def _xml(text: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>' + text).encode()


async def _post(
    gw: RunningGateway,
    path: str,
    body: bytes,
    content_type: str,
    agency: str,
    key: str | None = None,
) -> Any:
    return await send(
        gw.settings,
        "POST",
        path,
        agency=agency,
        body=body,
        content_type=content_type,
        idempotency_key=key,
    )


async def _submit(gw: RunningGateway, code: str) -> str:
    document = json.loads(mappings_sample(gw.settings, code, "canonical", "chan-tai-man"))
    answer = await _post(
        gw, "/v1/applications", json.dumps(document, ensure_ascii=False).encode(), JSON, "hk-ird"
    )
    assert answer.status == 202, answer.body
    return str(answer.json()["application_id"])


async def _case(gw: RunningGateway, app_id: str) -> Any:
    return (await send(gw.settings, "GET", f"/v1/applications/{app_id}")).json()


async def _until(gw: RunningGateway, app_id: str, done: Callable[[Any], bool]) -> Any:
    for _ in range(300):
        case = await _case(gw, app_id)
        if done(case):
            return case
        await asyncio.sleep(0.05)
    raise AssertionError(f"the case never got there: {case['status']} {case['handlers']}")


def _holds(agency: str) -> Callable[[Any], bool]:
    """The agency holds the case: its forward was delivered, nothing decided yet."""
    return lambda case: any(
        h["agency_id"] == agency and h["state"] == "delivered" for h in case["handlers"]
    )


_VOLATILE = ("at", "id", "seq", "voucher", "receipt")


def _recorded(case: Any) -> list[dict[str, Any]]:
    """What the examination or decision recorded on the timeline, without ids, times and
    digests (the relay's deliveries around them come in their own time)."""
    kinds = ("decision.", "application.", "voucher.", "supplement.", "review.")
    return [
        {k: v for k, v in e.items() if k not in _VOLATILE and "_id" not in k and "digest" not in k}
        for e in case["timeline"]
        if e["type"].startswith(kinds) and e["type"] != "application.received"
    ]


def _same_shape(case: Any) -> tuple[Any, ...]:
    handlers = [(h["agency_id"], h["state"]) for h in case["handlers"]]
    return case["status"], handlers, _recorded(case)


async def _reviewed_by_hk(gw: RunningGateway) -> str:
    """A medical case the Shenzhen lead accepted and approved, now with the HK reviewer."""
    app_id = await _submit(gw, MEDICAL)
    states = {"sz-hc": "approved", "hk-mchk": "delivered"}
    await _until(
        gw, app_id, lambda case: {h["agency_id"]: h["state"] for h in case["handlers"]} == states
    )
    return app_id


def _quiet_partners(gw: RunningGateway) -> None:
    gw.app[PARTNERS].auto_decide = False  # type: ignore[index]


async def test_an_hk_reviewers_xml_decision_is_recorded_like_its_json_one(
    gateway: RunningGateway,
) -> None:
    by_xml, by_json = await _reviewed_by_hk(gateway), await _reviewed_by_hk(gateway)
    reasons = ["沒有有效的香港執業證明書", "No valid practising certificate"]
    xml = _xml(
        f"<Decision {HK}><Outcome>Rejected</Outcome><Reasons>"
        + "".join(f"<Reason>{r}</Reason>" for r in reasons)
        + "</Reasons></Decision>"
    )
    as_xml = await _post(gateway, f"/v1/applications/{by_xml}/decisions", xml, XML, "hk-mchk")
    body = json.dumps({"decision": "rejected", "reasons": reasons}, ensure_ascii=False).encode()
    as_json = await _post(gateway, f"/v1/applications/{by_json}/decisions", body, JSON, "hk-mchk")

    assert (as_xml.status, as_json.status) == (200, 200), (as_xml.body, as_json.body)
    assert {**as_xml.json(), "application_id": ""} == {**as_json.json(), "application_id": ""}
    xml_case, json_case = await _case(gateway, by_xml), await _case(gateway, by_json)
    assert _same_shape(xml_case) == _same_shape(json_case)
    (decision,) = [
        e
        for e in xml_case["timeline"]
        if e["type"] == "decision.recorded" and e["actor"] == "hk-mchk"
    ]
    assert (decision["decision"], decision["reasons"]) == ("rejected", reasons)


async def test_the_replay_of_an_xml_decision_answers_the_same_and_records_once(
    gateway: RunningGateway,
) -> None:
    app_id = await _reviewed_by_hk(gateway)
    path = f"/v1/applications/{app_id}/decisions"
    xml = _xml(f"<Decision {HK}><Outcome>Approved</Outcome></Decision>")

    first = await _post(gateway, path, xml, XML, "hk-mchk", key="hk-mchk-decision-1")
    again = await _post(gateway, path, xml, XML, "hk-mchk", key="hk-mchk-decision-1")
    other = _xml(f"<Decision {HK}><Outcome>Rejected</Outcome></Decision>")
    reused = await _post(gateway, path, other, XML, "hk-mchk", key="hk-mchk-decision-1")

    assert first.status == again.status == 200
    assert first.json() == again.json()
    assert reused.status == 422  # the same key with another body (its Content-Digest)
    case = await _case(gateway, app_id)
    recorded = [e["actor"] for e in case["timeline"] if e["type"] == "decision.recorded"]
    assert recorded.count("hk-mchk") == 1


async def test_a_macau_leads_xml_examination_is_recorded_like_its_json_one(
    gateway: RunningGateway,
) -> None:
    _quiet_partners(gateway)
    by_xml, by_json = await _submit(gateway, INSURANCE), await _submit(gateway, INSURANCE)
    for app_id in (by_xml, by_json):
        await _until(gateway, app_id, _holds("mo-fss"))
    missing = ["EMPLOYMENT_CONTRACT"]
    xml = _xml(
        f"<Exame {MO}><Resultado>Suplemento</Resultado><DocumentosEmFalta>"
        '<Documento codigo="EMPLOYMENT_CONTRACT"/></DocumentosEmFalta></Exame>'
    )
    as_xml = await _post(gateway, f"/v1/applications/{by_xml}/acceptance", xml, XML, "mo-fss")
    body = json.dumps({"outcome": "supplement", "missing": missing}).encode()
    as_json = await _post(gateway, f"/v1/applications/{by_json}/acceptance", body, JSON, "mo-fss")

    assert (as_xml.status, as_json.status) == (200, 200), (as_xml.body, as_json.body)
    assert as_xml.json()["status"] == as_json.json()["status"] == "awaiting_supplement"
    assert as_xml.json()["missing"] == as_json.json()["missing"] == missing
    assert _same_shape(await _case(gateway, by_xml)) == _same_shape(await _case(gateway, by_json))


async def test_an_hk_agencys_xml_supplement_carries_materials_and_particulars(
    gateway: RunningGateway,
) -> None:
    _quiet_partners(gateway)
    app_id = await _submit(gateway, INSURANCE)
    await _until(gateway, app_id, _holds("mo-fss"))
    notice = json.dumps({"outcome": "supplement", "missing": ["EMPLOYMENT_CONTRACT"]}).encode()
    path = f"/v1/applications/{app_id}"
    assert (await _post(gateway, f"{path}/acceptance", notice, JSON, "mo-fss")).status == 200
    xml = _xml(
        f"<Supplement {HK}><Particulars><EmployerName>陳氏貿易有限公司</EmployerName>"
        "</Particulars><Materials>"
        f'<Material code="EMPLOYMENT_CONTRACT" digest="sha-256=:{"A" * 43}=:">c.pdf</Material>'
        "</Materials></Supplement>"
    )

    supplied = await _post(gateway, f"{path}/supplements", xml, XML, "hk-ird")

    assert supplied.status == 200, supplied.body
    assert supplied.json()["missing"] == []
    assert supplied.json()["status"] == "received"  # back to the lead


async def test_a_wrong_root_or_bad_values_are_422_problems_listing_everything(
    gateway: RunningGateway,
) -> None:
    app_id = await _reviewed_by_hk(gateway)
    path = f"/v1/applications/{app_id}/decisions"
    examination = _xml(f"<Examination {HK}><Outcome>Accepted</Outcome></Examination>")
    wrong_root = await _post(gateway, path, examination, XML, "hk-mchk")
    bad = _xml(f"<Decision {HK}><Outcome>Perhaps</Outcome><Reasons><Reason/></Reasons></Decision>")
    bad_values = await _post(gateway, path, bad, XML, "hk-mchk")
    malformed = await _post(gateway, path, b"<Decision", XML, "hk-mchk")

    assert wrong_root.status == 422
    assert [(p["code"], p["xpath"]) for p in wrong_root.json()["errors"]] == [("schema", "/")]
    assert bad_values.status == 422
    codes = [p["code"] for p in bad_values.json()["errors"]]
    assert {"unknown_code", "required", "schema"} <= set(codes)
    assert malformed.status == 400
    case = await _case(gateway, app_id)
    recorded = [e["actor"] for e in case["timeline"] if e["type"] == "decision.recorded"]
    assert "hk-mchk" not in recorded


async def test_other_media_types_and_formats_without_the_message_are_415(
    gateway: RunningGateway,
) -> None:
    app_id = await _reviewed_by_hk(gateway)
    path = f"/v1/applications/{app_id}/decisions"
    text = await _post(gateway, path, b"approved", "text/plain", "hk-mchk")
    # a Guangdong agency's format is JSON: the lead sz-hc cannot send XML
    xml = _xml(f"<Decision {HK}><Outcome>Approved</Outcome></Decision>")
    from_guangdong = await _post(gateway, path, xml, XML, "sz-hc")

    assert text.status == 415
    assert "application/json" in text.json()["detail"]
    assert "application/xml" in text.json()["detail"]
    assert from_guangdong.status == 415


async def test_an_hk_reviewers_xml_approval_carries_its_e_certificate(
    gateway: RunningGateway,
) -> None:
    app_id = await _reviewed_by_hk(gateway)
    key = agency_key(gateway.settings, "hk-mchk")
    pdf = b"%PDF-1.7\n% practising certificate\n%%EOF\n"
    signature = sign_document(key, pdf, "application/pdf")

    def decision(document: bytes) -> bytes:
        return _xml(
            f"<Decision {HK}><Outcome>Approved</Outcome><Certificate>"
            f"<Document>{base64.b64encode(document).decode()}</Document>"
            f"<MediaType>application/pdf</MediaType><Signature>{signature}</Signature>"
            "</Certificate></Decision>"
        )

    path = f"/v1/applications/{app_id}/decisions"
    forged = await _post(gateway, path, decision(pdf + b" "), XML, "hk-mchk")
    assert forged.status == 422, forged.body
    assert [e["pointer"] for e in forged.json()["errors"]] == ["/certificate/signature"]
    assert (await row_counts(gateway.settings, (certificates,)))["certificates"] == 0

    approved = await _post(gateway, path, decision(pdf), XML, "hk-mchk")
    assert approved.status == 200, approved.body
    assert approved.json()["certificate"]["issuer"] == "hk-mchk"
    case = await _case(gateway, app_id)
    issued = [e for e in case["timeline"] if e["type"] == "certificate.issued"]
    assert [e["actor"] for e in issued] == ["hk-mchk"]
