"""The matter API a portal builds its form from: particulars with kinds and labels, the
matter's JSON Schema, and the lookup of a Guangdong matter by its HK or Macao counterpart."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import aiohttp
from jsonschema import Draft202012Validator
from multidict import CIMultiDict

from gateway.operations import mappings_sample
from tests.conftest import RunningGateway
from tests.support import send

BUSINESS = "11440400MB2C00081P4440120002000"
RESIDENCE = "11440100MB2C0002124440700001000"
INSURANCE = "11440400MB2C00031J3442030001000"
PROBLEM = "application/problem+json"


async def _get(
    gateway: RunningGateway, path: str, headers: dict[str, str] | None = None
) -> tuple[int, CIMultiDict[str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + path, headers=headers or {}) as response,
    ):
        return response.status, CIMultiDict(response.headers), await response.read()


async def _json(gateway: RunningGateway, path: str) -> Any:
    status, _, body = await _get(gateway, path)
    assert status == 200, body
    return json.loads(body)


async def test_a_matter_lists_its_particulars_with_kinds_labels_and_code_lists(
    gateway: RunningGateway,
) -> None:
    business = await _json(gateway, f"/v1/matters/{BUSINESS}")
    by_name = {p["name"]: p for p in business["particulars"]}

    assert list(by_name) == [
        "business_name",
        "business_address",
        "business_scope",
        "capital",
        "employees",
    ]
    assert by_name["capital"] == {
        "name": "capital",
        "kind": "money",
        "required": False,
        "labels": {"zh-Hans": "资金数额", "zh-Hant": "資金數額", "en": "Capital", "pt": "Capital"},
    }
    assert (by_name["employees"]["kind"], by_name["business_address"]["kind"]) == (
        "integer",
        "address",
    )
    residence = await _json(gateway, f"/v1/matters/{RESIDENCE}")
    condition = next(p for p in residence["particulars"] if p["name"] == "residence_condition")
    assert condition["values"] == ["employment", "residence", "study"]
    assert condition["required"] is True
    listed = await _json(gateway, "/v1/matters")
    assert all(
        set(p["labels"]) == {"zh-Hans", "zh-Hant", "en", "pt"}
        for m in listed["items"]
        for p in m["particulars"]
    )


async def test_a_matter_says_where_each_handler_is_and_what_data_sharing_obtains(
    gateway: RunningGateway,
) -> None:
    """What a consent page needs (the reference portal's): each handling agency's
    jurisdiction and names, and for a material obtained by data sharing, its evidence type,
    the consent category it falls in and the issuer's jurisdiction."""
    enterprise = await _json(gateway, "/v1/matters/11440300MB2C00011B3440120001000")
    agencies = enterprise["route"]["agencies"]
    assert {a: v["jurisdiction"] for a, v in agencies.items()} == {
        "sz-amr": "GD",
        "gd-tax": "GD",
        "mo-ipim": "MO",
    }
    assert all(v["names"]["en"] for v in agencies.values())
    by_code = {m["code"]: m for m in enterprise["materials"]}
    assert by_code["INVESTOR_BR_EXTRACT"]["evidence"] == {
        "type": "hk-br-extract",
        "names": by_code["INVESTOR_BR_EXTRACT"]["evidence"]["names"],
        "category": "business_registration",
        "jurisdiction": "HK",
    }
    assert "evidence" not in by_code["OFFICER_IDENTITY"]  # the agency's own records
    assert "evidence" not in by_code["APPLICATION_FORM"]


async def test_counterparts_carry_their_codes(gateway: RunningGateway) -> None:
    business = await _json(gateway, f"/v1/matters/{BUSINESS}")
    codes = {c["jurisdiction"]: c["code"] for c in business["counterparts"]}
    assert codes == {"HK": "IRD-BR", "MO": "DSF-M1"}
    residence = await _json(gateway, f"/v1/matters/{RESIDENCE}")
    assert {c["code"] for c in residence["counterparts"]} == {None}  # relation none


async def test_a_guangdong_matter_is_found_by_its_hong_kong_or_macao_service(
    gateway: RunningGateway,
) -> None:
    for query in ("HK:IRD-BR", "MO:DSF-M1", "mo:dsf-m1"):
        found = await _json(gateway, f"/v1/matters?counterpart={query}")
        assert [m["code"] for m in found["items"]] == [BUSINESS], query
    found = await _json(gateway, "/v1/matters?counterpart=MO:FSS-REG")
    assert [m["code"] for m in found["items"]] == [INSURANCE]
    # the code of one jurisdiction does not find the other's
    assert (await _json(gateway, "/v1/matters?counterpart=HK:DSF-M1"))["items"] == []
    assert (await _json(gateway, "/v1/matters?counterpart=MO:NO-SUCH"))["items"] == []


async def test_an_unknown_counterpart_jurisdiction_is_a_400_problem(
    gateway: RunningGateway,
) -> None:
    for query in ("GD:IRD-BR", "TW:IRD-BR", "IRD-BR", "HK:"):
        status, headers, body = await _get(gateway, f"/v1/matters?counterpart={query}")
        assert status == 400, query
        assert headers["Content-Type"] == PROBLEM
        assert [e["pointer"] for e in json.loads(body)["errors"]] == ["/counterpart"]


def _digest(content: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(content).digest()).decode() + ":"


async def test_the_matter_schema_is_served_versioned_and_cached(gateway: RunningGateway) -> None:
    status, headers, content = await _get(gateway, f"/v1/matters/{BUSINESS}/schema")

    assert status == 200
    assert headers["Content-Type"].startswith("application/schema+json")
    assert headers["ETag"] == f'"{_digest(content)}"'
    schema = json.loads(content)
    Draft202012Validator.check_schema(schema)
    assert schema["$id"] == f"urn:gba:matter:{BUSINESS}:1"
    particulars = schema["properties"]["particulars"]
    assert particulars["required"] == ["business_name", "business_address", "business_scope"]
    status, again, body = await _get(
        gateway, f"/v1/matters/{BUSINESS}/schema", {"If-None-Match": headers["ETag"]}
    )
    assert (status, body, again["ETag"]) == (304, b"", headers["ETag"])
    status, headers, _ = await _get(gateway, f"/v1/matters/{BUSINESS}/schema?at=2023-01-01")
    assert (status, headers["Content-Type"]) == (404, PROBLEM)


async def test_a_sample_validates_with_the_fetched_schema_and_the_gateway_agrees(
    gateway: RunningGateway,
) -> None:
    _, _, content = await _get(gateway, f"/v1/matters/{RESIDENCE}/schema")
    validator = Draft202012Validator(
        json.loads(content), format_checker=Draft202012Validator.FORMAT_CHECKER
    )
    document = json.loads(mappings_sample(gateway.settings, RESIDENCE, "canonical", None))
    assert list(validator.iter_errors(document)) == []

    document["particulars"]["residence_since"] = "2026-02-30"
    document["particulars"]["residence_condition"] = "holiday"
    assert len(list(validator.iter_errors(document))) == 2
    answer = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=json.dumps(document, ensure_ascii=False).encode(),
        content_type="application/json",
        headers={"GBA-Channel": 'counter;point="GZ-01";officer="OFF-1";document=HKID'},
    )
    assert answer.status == 422
    found = {(e["pointer"], e["code"]) for e in answer.json()["errors"]}
    assert found == {
        ("/particulars/residence_since", "invalid_date"),
        ("/particulars/residence_condition", "unknown_code"),
    }
