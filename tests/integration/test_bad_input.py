"""Bad input: always problem+json with the right status, never a 500, nothing stored."""

from __future__ import annotations

import pytest

from tests.conftest import RunningGateway
from tests.support import row_counts, sample_xml, send

PROBLEM = "application/problem+json"


def _assert_problem(answer, status: int, slug: str) -> dict:
    assert answer.status == status, answer.body
    assert answer.headers["Content-Type"].startswith(PROBLEM)
    problem = answer.json()
    assert problem["status"] == status
    assert problem["type"].endswith(f"/problems/{slug}")
    assert problem["title"]
    assert problem["trace_id"]
    assert "Traceback" not in answer.body.decode()
    return problem


async def _nothing_stored(gateway: RunningGateway) -> None:
    counts = await row_counts(gateway.settings)
    assert counts == {"applications": 0, "timeline_events": 0, "outbox": 0, "idempotency_keys": 0}


@pytest.mark.parametrize(
    ("body", "content_type", "status", "slug"),
    [
        (b'{"matter": ', "application/json", 400, "malformed-body"),
        (b'{"a": 1, "a": 2}', "application/json", 400, "malformed-body"),
        (b"[1, 2]", "application/json", 400, "malformed-body"),
        (
            b"<Application xmlns='urn:gba:hk:application:1'>",
            "application/xml",
            400,
            "malformed-body",
        ),
        (b"\xff\xfe not utf-8", "application/xml", 400, "malformed-body"),
        (b"matter=1", "application/x-www-form-urlencoded", 415, "unsupported-media-type"),
        (b"<x/>", "application/xml", 422, "validation-failed"),
        (b"{}", "application/json", 422, "validation-failed"),
    ],
)
async def test_unusable_bodies_are_refused_and_nothing_is_stored(
    gateway: RunningGateway, body: bytes, content_type: str, status: int, slug: str
) -> None:
    answer = await send(
        gateway.settings, "POST", "/v1/applications", body=body, content_type=content_type
    )
    _assert_problem(answer, status, slug)
    await _nothing_stored(gateway)


async def test_an_invalid_document_lists_every_problem_at_once(gateway: RunningGateway) -> None:
    xml = sample_xml().replace(b"15/03/1988", b"31/02/1988").replace(b"9123 4567", b"not a phone")
    answer = await send(
        gateway.settings, "POST", "/v1/applications", body=xml, content_type="application/xml"
    )
    problem = _assert_problem(answer, 422, "validation-failed")
    codes = {(e["code"], e.get("xpath")) for e in problem["errors"]}
    assert ("invalid_date", "h:Applicant/h:DateOfBirth") in codes
    assert ("invalid_phone", "h:Applicant/h:Phone") in codes
    for error in problem["errors"]:
        assert set(error["message"]) == {"zh-Hant", "zh-Hans", "en", "pt"}
    await _nothing_stored(gateway)


async def test_an_oversized_body_is_413(gateway: RunningGateway) -> None:
    body = b"<x>" + b"a" * (gateway.settings.max_body_bytes + 10) + b"</x>"
    answer = await send(
        gateway.settings, "POST", "/v1/applications", body=body, content_type="application/xml"
    )
    _assert_problem(answer, 413, "payload-too-large")
    await _nothing_stored(gateway)


async def test_unknown_routes_and_methods_answer_problems(gateway: RunningGateway) -> None:
    missing = await send(gateway.settings, "GET", "/v2/nothing-here", sign=False)
    _assert_problem(missing, 404, "not-found")
    wrong = await send(gateway.settings, "DELETE", "/v1/applications", sign=False)
    problem = _assert_problem(wrong, 405, "method-not-allowed")
    assert problem["instance"] == "/v1/applications"
    assert "POST" in wrong.headers["Allow"]


async def test_an_unsigned_submission_is_401_and_stores_nothing(gateway: RunningGateway) -> None:
    answer = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=sample_xml(),
        content_type="application/xml",
        sign=False,
    )
    _assert_problem(answer, 401, "signature-missing")
    await _nothing_stored(gateway)


async def test_a_post_without_idempotency_key_is_refused(gateway: RunningGateway) -> None:
    from datetime import UTC, datetime

    import aiohttp

    from gateway.trust.profile import sign_request
    from tests.support import agency_key

    url = gateway.url + "/v1/applications"
    body = sample_xml()
    headers = sign_request(
        method="POST",
        url=url,
        key=agency_key(gateway.settings, "hk-ird"),
        now=datetime.now(UTC),
        body=body,
        content_type="application/xml",
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        assert response.status == 400
        assert (await response.json(content_type=None))["type"].endswith("/missing-header")
    await _nothing_stored(gateway)


async def test_schema_and_business_problems_come_in_one_answer(gateway: RunningGateway) -> None:
    import json

    from tests.support import FIXTURES

    document = json.loads(
        (FIXTURES / "documents" / "hk-individual-business.canonical.json").read_text("utf-8")
    )
    document["favourite_colour"] = "blue"  # not collected by any matter (Art. 11)
    del document["applicant"]["birth_date"]
    document["applicant"]["documents"][0]["number"] = "A1234560"  # wrong HKID check digit
    document["applicant"]["phone"] = "not a phone"
    answer = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=json.dumps(document).encode(),
        content_type="application/json",
    )
    problem = _assert_problem(answer, 422, "validation-failed")
    found = {(e["pointer"], e["code"]) for e in problem["errors"]}
    assert {
        ("/favourite_colour", "unexpected_field"),
        ("/applicant/birth_date", "required"),
        ("/applicant/phone", "invalid_value"),
        ("/applicant/documents/0/number", "invalid_document"),
    } <= found
    assert len(problem["errors"]) == len(found)  # each problem once
    await _nothing_stored(gateway)


async def test_xml_mapping_and_business_problems_come_in_one_answer(
    gateway: RunningGateway,
) -> None:
    xml = sample_xml().replace(b"15/03/1988", b"31/02/1988").replace(b"A123456(3)", b"A123456(7)")
    answer = await send(
        gateway.settings, "POST", "/v1/applications", body=xml, content_type="application/xml"
    )
    problem = _assert_problem(answer, 422, "validation-failed")
    found = {(e.get("xpath") or e.get("pointer"), e["code"]) for e in problem["errors"]}
    assert ("h:Applicant/h:DateOfBirth", "invalid_date") in found  # from the mapping
    assert ("/applicant/documents/0/number", "invalid_document") in found  # a business rule
    await _nothing_stored(gateway)
