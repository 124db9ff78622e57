"""Joint handling end to end over real HTTP, on both databases (issue 6's e2e flows).

- A joint matter reviewed in parallel by a Guangdong agency (the Shenzhen Health Commission,
  which examines and approves by itself in the sandbox) and a Hong Kong agency (the Medical
  Council, which the test plays): one approves, one rejects; the case is rejected with the
  Hong Kong reasons and routes of redress; the lead delivers the result.
- A supplement round: an application missing a material gets one signed notice listing it,
  the submitting agency supplies it, and the case goes on to its approval.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import aiohttp

from gateway.operations import mappings_sample
from gateway.trust.receipts import verify_receipt
from tests.conftest import RunningGateway
from tests.support import send

MEDICAL = "11440300MB2C00091K3440120007000"
HENGQIN = "11440400MB2C00081P4440120002000"
JSON = "application/json"


async def view(gateway: RunningGateway, app_id: str) -> Any:
    return (await send(gateway.settings, "GET", f"/v1/applications/{app_id}")).json()


async def until(
    gateway: RunningGateway, app_id: str, done: Callable[[Any], bool], seconds: float = 15
) -> Any:
    case = await view(gateway, app_id)
    for _ in range(int(seconds / 0.05)):
        if done(case):
            return case
        await asyncio.sleep(0.05)
        case = await view(gateway, app_id)
    raise AssertionError(f"the case never got there: {case['status']} {case['handlers']}")


async def post(gateway: RunningGateway, path: str, body: Any, agency: str) -> Any:
    return await send(
        gateway.settings,
        "POST",
        path,
        agency=agency,
        body=json.dumps(body, ensure_ascii=False).encode(),
        content_type=JSON,
    )


async def submit(gateway: RunningGateway, document: dict[str, Any]) -> Any:
    answer = await post(gateway, "/v1/applications", document, "hk-ird")
    assert answer.status == 202, answer.body
    return answer.json()


async def jwks(gateway: RunningGateway) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/.well-known/jwks.json") as response,
    ):
        return await response.json()


async def inbox(gateway: RunningGateway, agency: str) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{gateway.url}/sandbox/partners/{agency}/messages") as response,
    ):
        return await response.json()


async def test_a_joint_case_approved_in_guangdong_and_rejected_in_hong_kong_is_rejected(
    gateway: RunningGateway,
) -> None:
    document = json.loads(mappings_sample(gateway.settings, MEDICAL, "canonical", "chan-tai-man"))
    received = await submit(gateway, document)
    assert received["status"] == "received"  # the lead examines it first
    app_id = received["application_id"]

    # The Health Commission accepts, the Medical Council gets the case, the Commission approves.
    case = await until(
        gateway, app_id, lambda c: [h["state"] for h in c["handlers"]] == ["approved", "delivered"]
    )
    assert case["status"] == "under_review"
    rejected = await post(
        gateway,
        f"/v1/applications/{app_id}/decisions",
        {"decision": "rejected", "reasons": ["沒有有效的香港執業證明書"]},
        "hk-mchk",
    )
    assert rejected.status == 200, rejected.body

    case = await view(gateway, app_id)
    assert case["status"] == "rejected"
    assert [(h["agency_id"], h["state"]) for h in case["handlers"]] == [
        ("sz-hc", "approved"),
        ("hk-mchk", "rejected"),
    ]
    rejection = next(e for e in case["timeline"] if e["type"] == "application.rejected")
    assert rejection["reasons"] == {"hk-mchk": ["沒有有效的香港執業證明書"]}
    assert [r["route"] for r in rejection["appeal"]["HK"]] == ["complaint", "litigation"]
    vouchers = [e for e in case["timeline"] if e["type"] == "voucher.issued"]
    assert [v["kind"] for v in vouchers] == ["acceptance", "decision"]
    decision = verify_receipt(vouchers[-1]["voucher"], await jwks(gateway))
    assert (decision["status"], decision["sub"]) == ("rejected", app_id)
    assert decision["appeal"]["HK"][1]["last_day"] is not None

    delivered = await post(
        gateway, f"/v1/applications/{app_id}/result", {"channel": "post"}, "sz-hc"
    )
    assert delivered.status == 200, delivered.body
    assert delivered.json()["status"] == "result_delivered"
    for agency in ("sz-hc", "hk-mchk"):  # each handler got the case exactly once
        received_by = await inbox(gateway, agency)
        assert received_by["duplicates"] == 0
        assert [m["application_id"] for m in received_by["items"]] == [app_id]


async def test_a_supplement_round_completes_the_case(gateway: RunningGateway) -> None:
    document = json.loads(mappings_sample(gateway.settings, HENGQIN, "canonical", "chan-tai-man"))
    form = next(m for m in document["materials"] if m["code"] == "APPLICATION_FORM")
    document["materials"].remove(form)
    answer = await submit(gateway, document)
    assert answer["status"] == "awaiting_supplement"
    notice = verify_receipt(answer["receipt"], await jwks(gateway))
    assert notice["missing"] == ["APPLICATION_FORM"]  # one notice listing every problem
    app_id = answer["application_id"]

    wrong = await post(
        gateway, f"/v1/applications/{app_id}/supplements", {"materials": [form]}, "gd-hq-csb"
    )
    assert wrong.status == 403  # only the submitting agency supplements
    supplied = await post(
        gateway, f"/v1/applications/{app_id}/supplements", {"materials": [form]}, "hk-ird"
    )
    assert supplied.status == 200, supplied.body
    assert supplied.json()["status"] == "accepted"
    assert supplied.json()["missing"] == []

    case = await until(gateway, app_id, lambda c: c["status"] == "approved")
    types = [e["type"] for e in case["timeline"]]
    assert types[:4] == [
        "application.received",
        "application.supplement_requested",
        "voucher.issued",  # the notice at receipt has its voucher, as a later one does
        "application.supplement_provided",
    ]
    assert case["deadlines"]["promised"] is not None
