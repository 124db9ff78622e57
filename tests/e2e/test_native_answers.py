"""A Macau agency answers in Macau XML, end to end over real HTTP, on both databases.

The social-insurance matter is led from Macao by ``mo-fss``, which in the sandbox examines
and decides on its own (copied here with ``acceptance: agency`` and without the gateway's
automatic decision, so the agency's own calls make the case). It receives the case as the
Macau ``Mensagem``, accepts it with an ``Exame`` and approves it with a ``Decisao``, each
signed and posted as ``application/xml``; the Zhuhai bureau reviews in JSON. The case is
approved, and the signed bodies kept as evidence are the Macau XML messages.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.mapping.xml import parse_xml
from gateway.operations import mappings_sample
from gateway.store.tables import evidence
from gateway.web.keys import DEPENDENCIES
from tests.conftest import RunningGateway
from tests.support import INSURANCE, send

ROOT = Path(__file__).parents[2]
MO = "{urn:gba:mo:requerimento:1}"


@pytest.fixture
def gateway(lead_examined_gateway: RunningGateway) -> RunningGateway:
    return lead_examined_gateway


async def _xml_evidence(gateway: RunningGateway) -> list[Any]:
    """The root elements of every signed XML body the gateway accepted."""
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    async with deps.uow() as uow:
        rows = await uow._conn.execute(
            sa.select(evidence.c.body).where(evidence.c.media_type == "application/xml")
        )
        return [parse_xml(row.body) for row in rows]


async def test_a_macau_lead_accepts_and_decides_in_macau_xml(gateway: RunningGateway) -> None:
    document = json.loads(mappings_sample(gateway.settings, INSURANCE, "canonical", "chan-tai-man"))
    answer = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=json.dumps(document, ensure_ascii=False).encode(),
        content_type="application/json",
    )
    assert answer.status == 202, answer.body
    app_id = answer.json()["application_id"]

    path = f"/v1/applications/{app_id}"
    for _ in range(300):
        case = (await send(gateway.settings, "GET", path)).json()
        if case["status"] == "approved":
            break
        await asyncio.sleep(0.05)
    assert case["status"] == "approved", case["handlers"]

    assert [(h["agency_id"], h["state"]) for h in case["handlers"]] == [
        ("mo-fss", "approved"),
        ("zh-hrss", "approved"),
    ]
    accepted = next(e for e in case["timeline"] if e["type"] == "application.accepted")
    assert accepted["actor"] == "mo-fss"
    decided = [e["actor"] for e in case["timeline"] if e["type"] == "decision.recorded"]
    assert sorted(decided) == ["mo-fss", "zh-hrss"]
    # mo-fss's calls were signed Macau XML: its examination and its decision, as sent
    roots = await _xml_evidence(gateway)
    by_tag = {root.tag: root for root in roots}
    assert by_tag[f"{MO}Exame"].findtext(f"{MO}Resultado") == "Aceite"
    assert by_tag[f"{MO}Decisao"].findtext(f"{MO}Resultado") == "Deferido"
