"""Complaints (Art. 31) on both databases: filed by the applicant or the submitting agency,
answered by the lead agency only, the outcome notified to the applicant, and the texts kept
off the timeline and the audit chain."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from gateway.bootstrap import Overrides, create_app
from gateway.domain.values import local_date
from gateway.operations import mappings_sample
from gateway.sandbox.personas import persona
from gateway.sandbox.portal import SandboxPortal
from gateway.sandbox.samples import canonical_sample
from gateway.store.tables import audit_log, complaints, timeline
from gateway.web.keys import DEPENDENCIES, STORE
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.fakes import FixedClock
from tests.support import send

MEDICAL = "11440300MB2C00091K3440120007000"  # acceptance: agency; lead sz-hc, reviewer hk-mchk
HENGQIN = "11440400MB2C00081P4440120002000"  # acceptance: automatic; lead gd-hq-csb
AT = datetime(2026, 9, 22, 2, 0, tzinfo=UTC)
JSON = "application/json"
TEXT = "The counter officer at 前山 lost my contract twice and laughed about it"
REPLY = "We have spoken to the officer; the contract is now on file."
CONSENT = {
    "categories": ["identity", "contact", "address", "application", "materials"],
    "destinations": ["GD"],
}


@pytest.fixture
async def quiet(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> AsyncIterator[RunningGateway]:
    settings = sandbox_settings(tmp_path, database, relay_enabled=False)
    app = create_app(settings, Overrides(clock=FixedClock(AT)))
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    yield RunningGateway(settings, settings.base_url, app)
    await server.close()


async def _post(gateway: RunningGateway, path: str, agency: str, body: Any, now: Any = AT) -> Any:
    return await send(
        gateway.settings,
        "POST",
        path,
        agency=agency,
        body=json.dumps(body, ensure_ascii=False).encode(),
        content_type=JSON,
        now=now,
    )


async def _scan(gateway: RunningGateway, table: sa.Table) -> str:
    async with gateway.app[STORE]() as uow:  # type: ignore[index]
        rows = (await uow._conn.execute(table.select())).all()  # type: ignore[union-attr]
    return "\n".join(
        bytes(v).decode("utf-8", "replace")
        if isinstance(v, bytes)
        else json.dumps(v, default=str, ensure_ascii=False)
        for row in rows
        for v in row
    )


async def test_the_submitting_agency_complains_and_only_the_lead_answers(
    quiet: RunningGateway,
) -> None:
    document = mappings_sample(quiet.settings, MEDICAL, "canonical", "chan-tai-man")
    answer = await send(
        quiet.settings, "POST", "/v1/applications", body=document, content_type=JSON, now=AT
    )
    app_id = answer.json()["application_id"]
    base = f"/v1/applications/{app_id}/complaints"

    assert (await _post(quiet, base, "sz-hc", {"text": TEXT})).status == 403  # the lead
    assert (await _post(quiet, base, "gd-hq-csb", {"text": TEXT})).status == 404  # a stranger
    assert (await _post(quiet, base, "hk-ird", {"text": "  "})).status == 422
    filed = await _post(quiet, base, "hk-ird", {"text": TEXT})
    assert filed.status == 201, filed.body
    complaint = filed.json()
    assert (complaint["status"], complaint["outcome"]) == ("filed", None)
    assert TEXT not in filed.body.decode()
    outcome = f"{base}/{complaint['complaint_id']}/outcome"
    body = {"outcome": "upheld", "reply": REPLY}

    for agency, status in (("hk-mchk", 403), ("hk-ird", 403), ("gd-hq-csb", 404)):
        assert (await _post(quiet, outcome, agency, body)).status == status, agency
    assert (await _post(quiet, outcome, "sz-hc", {"outcome": "maybe", "reply": "x"})).status == 422
    answered = await _post(quiet, outcome, "sz-hc", body)
    assert answered.status == 200, answered.body
    assert answered.json()["outcome"] == "upheld"
    again = await _post(quiet, outcome, "sz-hc", {"outcome": "dismissed", "reply": "No."})
    assert again.status == 409

    listed = await send(quiet.settings, "GET", base, agency="hk-ird", now=AT)
    (item,) = listed.json()["items"]
    assert (item["text"], item["reply"], item["outcome"]) == (TEXT, REPLY, "upheld")
    reviewer = await send(quiet.settings, "GET", base, agency="hk-mchk", now=AT)
    assert reviewer.json()["items"] == []  # a party to the case, not to the complaint

    view = (await send(quiet.settings, "GET", f"/v1/applications/{app_id}", now=AT)).json()
    events = [(e["type"], e["actor"]) for e in view["timeline"] if e["type"].startswith("compl")]
    assert events == [("complaint.filed", "hk-ird"), ("complaint.answered", "sz-hc")]
    for table in (timeline, audit_log):
        text = await _scan(quiet, table)
        assert "complaint.answered" in text or table is audit_log
        assert "lost my contract" not in text  # ASCII: however the entry escapes it
        assert "spoken to the officer" not in text
    kept = await _scan(quiet, complaints)
    assert "lost my contract" in kept
    assert "spoken to the officer" in kept

    async with quiet.app[STORE]() as uow:  # type: ignore[index]
        rows = await uow.notifications.listing(application_id=app_id)
    told = sorted((n.event, n.recipient, n.body.get("outcome")) for n in rows)
    assert told == [
        ("complaint.answered", "applicant", "upheld"),
        ("complaint.answered", "hk-ird", "upheld"),
        ("complaint.filed", "applicant", None),
        ("complaint.filed", "hk-ird", None),
        ("complaint.filed", "sz-hc", None),
    ]


async def _call(
    gateway: RunningGateway, method: str, path: str, token: str, body: Any = None, key: str = ""
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    if key:
        headers["Idempotency-Key"] = key
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, gateway.url + path, json=body, headers=headers) as response,
    ):
        return response.status, await response.json(content_type=None)


async def _until(check: Any, what: str) -> Any:
    for _ in range(150):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


async def test_a_resident_complains_and_is_told_the_outcome(gateway: RunningGateway) -> None:
    portal = await SandboxPortal.register(gateway.url)
    token = (await portal.login("hk", "chan-tai-man")).access_token
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    matter = deps.catalog.get(HENGQIN, local_date(deps.clock.now()))
    sample = canonical_sample(matter, persona("chan-tai-man"))
    application = {k: v for k, v in sample.items() if k != "applicant"}
    status, submitted = await _call(
        gateway,
        "POST",
        "/v1/me/applications",
        token,
        {"application": application, "consent": CONSENT},
        key="complaint-apply-1",
    )
    assert status == 202, submitted
    app_id = submitted["application_id"]

    async def told(event: str) -> list[dict[str, Any]]:
        _, page = await _call(gateway, "GET", "/v1/me/notifications", token)
        return [n for n in page["items"] if n["event"] == event]

    (approved,) = await _until(lambda: told("application.approved"), "approval notified")
    assert approved["application_id"] == app_id
    assert approved["message"]["en"] == "Your application has been approved."
    assert set(approved["message"]) == {"zh-Hant", "zh-Hans", "en", "pt"}

    path = f"/v1/me/applications/{app_id}/complaints"
    status, complaint = await _call(gateway, "POST", path, token, {"text": TEXT}, "cmp-key-1")
    assert status == 201, complaint
    status, replay = await _call(gateway, "POST", path, token, {"text": TEXT}, "cmp-key-1")
    assert (status, replay["complaint_id"]) == (201, complaint["complaint_id"])
    outcome = f"/v1/applications/{app_id}/complaints/{complaint['complaint_id']}/outcome"
    now = datetime.now(UTC)
    body = {"outcome": "dismissed", "reply": REPLY}
    answer = await _post(gateway, outcome, "gd-hq-csb", body, now)
    assert answer.status == 200, answer.body

    (answered,) = await _until(lambda: told("complaint.answered"), "outcome notified")
    assert (answered["outcome"], answered["status"]) == ("dismissed", "approved")
    assert "dismissed" in answered["message"]["en"]
    assert answered["message"]["zh-Hant"] == "您的投訴已獲答覆：投訴不成立。"
    assert len(await told("complaint.filed")) == 1
    status, mine = await _call(gateway, "GET", path, token)
    assert [(c["text"], c["reply"]) for c in mine["items"]] == [(TEXT, REPLY)]

    other = await SandboxPortal.register(gateway.url)
    stranger = (await other.login("macau", "lei-sio-meng")).access_token
    status, _ = await _call(gateway, "POST", path, stranger, {"text": "me too"}, "cmp-key-2")
    assert status == 404
    _, theirs = await _call(gateway, "GET", "/v1/me/notifications", stranger)
    assert theirs["items"] == []
