"""Automatic decisions (Art. 25) over the real flow, on both databases: a case of a matter
decidable by data comparison is decided by the gateway as it moves to review — approved when it
meets the rules, rejected with the failed rules as reasons — and the sample is queued for the
lead agency's human re-check.

The reviewed social-insurance matter is copied with ``acceptance: agency`` (its lead, Macao's
``mo-fss`` in the sandbox, examines and accepts, so the move to review happens in the
examination's transaction) and a re-check rate of 1, so every case here is drawn. The gateway
decides for each handler, the lead and the reviewing Zhuhai bureau ``zh-hrss``."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.bootstrap import Overrides, create_app
from gateway.domain.commands import Caller
from gateway.operations import mappings_sample
from gateway.services import queries
from gateway.web.keys import DEPENDENCIES
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.support import send

INSURANCE = "11440400MB2C00031J3442030001000"
ROOT = Path(__file__).parents[2]
JSON = "application/json"
USCC = "91440400MA4UABCD1X"


@pytest.fixture
async def decidable(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> AsyncIterator[RunningGateway]:
    mappings = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", mappings)
    matter = mappings / "matters" / f"{INSURANCE}.yaml"
    text = matter.read_text("utf-8")
    assert "recheck_sample: 0.2" in text
    text = text.replace("recheck_sample: 0.2", "recheck_sample: 1.0")
    matter.write_text(text + "acceptance: agency\n", "utf-8")
    settings = sandbox_settings(tmp_path, database, mappings_dir=mappings)
    app = create_app(settings, Overrides())
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    yield RunningGateway(settings, settings.base_url, app)
    await server.close()


async def _decided(gateway: RunningGateway, uscc: str) -> dict[str, Any]:
    document = json.loads(mappings_sample(gateway.settings, INSURANCE, "canonical", "chan-tai-man"))
    document["particulars"]["employer_uscc"] = uscc
    answer = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=json.dumps(document, ensure_ascii=False).encode(),
        content_type=JSON,
    )
    assert answer.status == 202, answer.body
    path = f"/v1/applications/{answer.json()['application_id']}"
    for _ in range(150):
        view = (await send(gateway.settings, "GET", path)).json()
        if view["status"] in ("approved", "rejected"):
            return view  # type: ignore[no-any-return]
        await asyncio.sleep(0.1)
    raise AssertionError(f"never decided: {view['status']}")


def _decisions(view: dict[str, Any]) -> list[tuple[str, str, str, list[str]]]:
    return [
        (e["actor"], e["agency"], e["decision"], e["reasons"])
        for e in view["timeline"]
        if e["type"] == "decision.recorded"
    ]


async def test_a_case_meeting_the_rules_is_approved_by_the_gateway(
    decidable: RunningGateway,
) -> None:
    view = await _decided(decidable, USCC)

    assert view["status"] == "approved"
    assert _decisions(view) == [
        ("gateway:automatic", "mo-fss", "approved", []),
        ("gateway:automatic", "zh-hrss", "approved", []),
    ]
    types = [e["type"] for e in view["timeline"]]
    assert types.index("review.started") < types.index("decision.recorded")
    assert "decision.recheck_queued" in types


async def test_a_case_failing_a_rule_is_rejected_with_the_rule_and_queued_for_recheck(
    decidable: RunningGateway,
) -> None:
    view = await _decided(decidable, "not-a-uscc")

    assert view["status"] == "rejected"
    decisions = _decisions(view)
    assert [(actor, agency, decision) for actor, agency, decision, _ in decisions] == [
        ("gateway:automatic", "mo-fss", "rejected"),
        ("gateway:automatic", "zh-hrss", "rejected"),
    ]
    for *_, reasons in decisions:
        assert len(reasons) == 1
        assert reasons[0].startswith("particular employer_uscc matches ")
    assert "not-a-uscc" not in json.dumps(view["timeline"])  # the rule, not the data
    (queued,) = [e for e in view["timeline"] if e["type"] == "decision.recheck_queued"]
    assert (queued["actor"], queued["agency"]) == ("gateway:automatic", "mo-fss")

    deps = decidable.app[DEPENDENCIES]  # type: ignore[index]
    lead = Caller("mo-fss", "MO", "mo-fss-key")
    rechecks = await queries.work_list(deps, lead, limit=50, after=None, recheck=True)
    assert [a["application_id"] for a in rechecks["items"]] == [view["application_id"]]
    submitter = Caller("hk-ird", "HK", "hk-ird-key")
    assert (await queries.work_list(deps, submitter, limit=50, after=None, recheck=True))[
        "items"
    ] == []
