"""Materials supplied later (容缺受理) and commitments (告知承诺), Art. 12, on both databases.

A case accepted without a material that may be missing owes it by a due day; the applicant's
side supplies it after acceptance through the supplement endpoint (any other material is
refused and nothing is kept); every handler holding the case is forwarded the supplemented
document; no approval while it is owed (409 naming it); past its due day the sweep flags it
once, on the timeline and the work list, and tells the submitter and the handlers. A
commitment carries the catalog's text in the applicant's language, bound into the receipt.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.bootstrap import Overrides, create_app, sweep_deadlines
from gateway.operations import mappings_sample
from gateway.sandbox.routes import PARTNERS
from gateway.services import commitments
from gateway.store.tables import notifications, outbox
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.fakes import FixedClock
from tests.integration.test_lifecycle import HENGQIN, MEDICAL, act, submit, view
from tests.integration.test_supplement_rounds import _rows
from tests.support import CASE_TABLES, row_counts, send

ACCEPTED = datetime(2026, 9, 28, 2, 0, tzinfo=UTC)  # Monday, 10:00 in Guangdong
OWED = "HEALTH_CERTIFICATE"
HEALTH = {"code": OWED, "digest": "sha-256=:" + "H" * 43 + "=:"}
JSON = "application/json"


@pytest.fixture
async def quiet(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> AsyncIterator[tuple[RunningGateway, FixedClock]]:
    """A sandbox gateway with a fixed clock and no relay."""
    settings = sandbox_settings(tmp_path, database, relay_enabled=False)
    clock = FixedClock(ACCEPTED)
    app = create_app(settings, Overrides(clock=clock))
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    yield RunningGateway(settings, settings.base_url, app), clock
    await server.close()


def _without_health_certificate(gateway: RunningGateway) -> dict[str, Any]:
    document = json.loads(mappings_sample(gateway.settings, MEDICAL, "canonical", "chan-tai-man"))
    assert OWED in [m["code"] for m in document["materials"]]  # the sample is complete
    document["materials"] = [m for m in document["materials"] if m["code"] != OWED]
    return document  # type: ignore[no-any-return]


def _claims(jws: str) -> dict[str, Any]:
    payload = jws.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))  # type: ignore[no-any-return]


async def _accepted_owing(gateway: RunningGateway) -> str:
    app_id = (await submit(gateway, MEDICAL, _without_health_certificate(gateway)))[
        "application_id"
    ]
    accepted = await act(gateway, app_id, "acceptance", {"outcome": "accepted"})
    assert accepted.status == 200, accepted.body
    return app_id  # type: ignore[no-any-return]


async def _under_review(gateway: RunningGateway, app_id: str) -> dict[str, Any]:
    for _ in range(200):
        case = await view(gateway, app_id)
        if case["status"] == "under_review":
            return case  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError("the case never reached under_review")


async def test_an_owed_material_is_supplied_after_acceptance_and_then_the_case_is_decided(
    gateway: RunningGateway,
) -> None:
    gateway.app[PARTNERS].auto_decide = False  # type: ignore[index]
    app_id = (await submit(gateway, MEDICAL, _without_health_certificate(gateway)))[
        "application_id"
    ]
    accepted = await send(
        gateway.settings,
        "POST",
        f"/v1/applications/{app_id}/acceptance",
        agency="sz-hc",
        body=b'{"outcome": "accepted"}',
        content_type=JSON,
    )
    assert accepted.status == 200, accepted.body
    [owed] = accepted.json()["owed"]
    assert owed["material"] == OWED
    case = await _under_review(gateway, app_id)
    assert case["owed"] == [{"material": OWED, "due": owed["due"], "overdue": False}]
    event = next(e for e in case["timeline"] if e["type"] == "application.accepted")
    assert event["owed"] == [{"material": OWED, "due": owed["due"]}]
    assert [e["material"] for e in case["timeline"] if e["type"] == "material.owed"] == [OWED]
    # the acceptance voucher says what is owed, signed
    voucher = next(
        e["voucher"]
        for e in case["timeline"]
        if e["type"] == "voucher.issued" and e["kind"] == "acceptance"
    )
    assert _claims(voucher)["owed"] == [{"material": OWED, "due": owed["due"]}]

    # no approval while it is owed: 409 naming it; nothing changes
    before = await row_counts(gateway.settings, CASE_TABLES)
    decision = f"/v1/applications/{app_id}/decisions"
    refused = await send(
        gateway.settings,
        "POST",
        decision,
        agency="sz-hc",
        body=b'{"decision": "approved"}',
        content_type=JSON,
    )
    assert refused.status == 409, refused.body
    assert [(p["pointer"], p["code"]) for p in refused.json()["errors"]] == [
        (f"/owed/{OWED}", "material_owed")
    ]
    assert OWED in refused.json()["detail"]
    assert owed["due"] in refused.json()["detail"]
    after = await row_counts(gateway.settings, CASE_TABLES)
    assert {k: v for k, v in after.items() if k != "idempotency_keys"} == {
        k: v for k, v in before.items() if k != "idempotency_keys"
    }
    assert (await view(gateway, app_id))["handlers"][0]["state"] == "delivered"

    # after acceptance only an owed material may be supplied: every other is refused
    before = await row_counts(gateway.settings, CASE_TABLES)
    wrong = await act(
        gateway,
        app_id,
        "supplements",
        {"materials": [{"code": "APPLICATION_FORM", "digest": HEALTH["digest"]}]},
        agency="hk-ird",
    )
    assert wrong.status == 422, wrong.body
    assert {(p["pointer"], p["code"]) for p in wrong.json()["errors"]} == {
        ("/materials/0/code", "material_not_owed")
    }
    assert (await row_counts(gateway.settings, CASE_TABLES))["timeline_events"] == before[
        "timeline_events"
    ]
    # a handler is not the applicant's side
    not_theirs = await act(gateway, app_id, "supplements", {"materials": [HEALTH]}, agency="sz-hc")
    assert not_theirs.status in (403, 404), not_theirs.body

    supplied = await act(gateway, app_id, "supplements", {"materials": [HEALTH]}, agency="hk-ird")
    assert supplied.status == 200, supplied.body
    assert supplied.json()["owed"] == []
    assert supplied.json()["status"] == "under_review"

    # every handler holding the case is forwarded the supplemented document (round 1)
    for _ in range(200):
        case = await view(gateway, app_id)
        redelivered = {
            e["actor"]
            for e in case["timeline"]
            if e["type"] == "message.delivered" and e.get("supplement_round") == 1
        }
        if redelivered == {"sz-hc", "hk-mchk"}:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"the supplemented document was not delivered: {case['timeline']}")
    provided = next(e for e in case["timeline"] if e["type"] == "application.supplement_provided")
    assert (provided["provided"], provided["round"], provided["after_acceptance"]) == (
        [OWED],
        1,
        True,
    )
    queued = [
        (e["agency"], e.get("supplement_round"))
        for e in case["timeline"]
        if e["type"] == "message.queued"
    ]
    assert sorted(q for q in queued if q[1] == 1) == [("hk-mchk", 1), ("sz-hc", 1)]
    sent = await _rows(
        gateway.settings,
        sa.select(outbox.c.destination, outbox.c.body)
        .where(outbox.c.application_id == app_id)
        .order_by(outbox.c.created_at),  # PostgreSQL returns updated rows in no set order
    )
    to_lead = [json.loads(r.body) for r in sent if r.destination == "sz-hc"]
    assert to_lead[-1]["stage"] == "supplement"
    assert HEALTH["digest"] in [m["digest"] for m in to_lead[-1]["application"]["materials"]]
    told = await _rows(
        gateway.settings,
        sa.select(notifications.c.recipient).where(
            notifications.c.application_id == app_id,
            notifications.c.event == "application.supplement_provided",
        ),
    )
    assert sorted(r.recipient for r in told) == ["hk-mchk", "sz-hc"]

    approved = await send(
        gateway.settings,
        "POST",
        decision,
        agency="sz-hc",
        body=b'{"decision": "approved"}',
        content_type=JSON,
    )
    assert approved.status == 200, approved.body


async def test_an_owed_material_past_its_due_day_is_flagged_once_and_told(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, clock = quiet
    app_id = await _accepted_owing(gateway)
    case = await view(gateway, app_id)
    [owed] = case["owed"]
    # 10 working days in Guangdong from Monday 28 September (counted as the catalog's limits
    # are), across the National Day week: 28-30 September, 9, the make-up Saturday the 10th,
    # 12-16 October
    assert owed == {"material": OWED, "due": "2026-10-16", "overdue": False}

    clock.current = datetime(2026, 10, 16, 15, 0, tzinfo=UTC)  # 23:00 on the due day
    assert "owed_overdue" not in await sweep_deadlines(gateway.app)  # type: ignore[arg-type]
    clock.current = datetime(2026, 10, 17, 2, 0, tzinfo=UTC)
    assert (await sweep_deadlines(gateway.app))["owed_overdue"] == 1  # type: ignore[arg-type]
    assert "owed_overdue" not in await sweep_deadlines(gateway.app)  # type: ignore[arg-type]

    case = await view(gateway, app_id)
    assert case["owed"] == [{"material": OWED, "due": "2026-10-16", "overdue": True}]
    flagged = [e for e in case["timeline"] if e["type"] == "material.overdue"]
    assert [(e["material"], e["due"], e["actor"]) for e in flagged] == [
        (OWED, "2026-10-16", "gateway")
    ]
    listed = await send(
        gateway.settings, "GET", "/v1/applications", agency="sz-hc", now=clock.current
    )
    [item] = [i for i in listed.json()["items"] if i["application_id"] == app_id]
    assert item["owed"] == case["owed"]
    told = await _rows(
        gateway.settings,
        sa.select(notifications.c.recipient, notifications.c.body).where(
            notifications.c.application_id == app_id,
            notifications.c.event == "material.overdue",
        ),
    )
    assert sorted(r.recipient for r in told) == ["applicant", "hk-ird", "hk-mchk", "sz-hc"]
    assert {(r.body["material"], r.body["due"]) for r in told} == {(OWED, "2026-10-16")}

    # supplied late: accepted, said so, and no longer owed
    supplied = await act(gateway, app_id, "supplements", {"materials": [HEALTH]}, agency="hk-ird")
    assert supplied.status == 200, supplied.body
    case = await view(gateway, app_id)
    assert case["owed"] == []
    provided = next(e for e in case["timeline"] if e["type"] == "application.supplement_provided")
    assert provided["late"] == [OWED]


async def test_a_complete_case_owes_nothing_and_a_supplement_after_acceptance_is_refused(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, _ = quiet
    app_id = (await submit(gateway, MEDICAL))["application_id"]
    assert (await act(gateway, app_id, "acceptance", {"outcome": "accepted"})).status == 200
    assert (await view(gateway, app_id))["owed"] == []
    late = await act(gateway, app_id, "supplements", {"materials": [HEALTH]}, agency="hk-ird")
    assert late.status == 409, late.body


async def test_a_commitment_carries_its_text_in_the_applicants_language_into_the_receipt(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, _ = quiet
    document = json.loads(mappings_sample(gateway.settings, HENGQIN, "canonical", "chan-tai-man"))
    assert document["commitments"] == [{"material": "PREMISES_PROOF"}]

    before = await row_counts(gateway.settings, CASE_TABLES)
    wrong = {
        **document,
        "commitments": [
            {"material": "PREMISES_PROOF", "language": "fr"},
            {"material": "APPLICATION_FORM"},
        ],
    }
    refused = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=json.dumps(wrong, ensure_ascii=False).encode(),
        content_type=JSON,
        now=ACCEPTED,
    )
    assert refused.status == 422, refused.body
    assert {(p["pointer"], p["code"]) for p in refused.json()["errors"]} >= {
        ("/commitments/1/material", "commitment_not_allowed"),
    }
    assert await row_counts(gateway.settings, CASE_TABLES) == before

    document["commitments"] = [{"material": "PREMISES_PROOF", "language": "pt"}]
    answer = await submit(gateway, HENGQIN, document)
    claims = _claims(answer["receipt"])
    text = (
        "Comprometo-me a que as instalações do negócio são verdadeiras, lícitas e utilizáveis, "
        "e aceito a responsabilidade legal se tal não corresponder à verdade."
    )
    assert claims["commitments"] == [
        {"material": "PREMISES_PROOF", "language": "pt", "digest": commitments.digest(text)}
    ]
    assert claims["owed"] == []
    accepted = next(
        e
        for e in (await view(gateway, answer["application_id"]))["timeline"]
        if e["type"] == "application.accepted"
    )
    assert accepted["commitments"] == claims["commitments"]  # what an acceptance voucher signs

    # without a language: the applicant's, by the format the application came in
    document["commitments"] = [{"material": "PREMISES_PROOF"}]
    claims = _claims((await submit(gateway, HENGQIN, document))["receipt"])
    assert claims["commitments"][0]["language"] == "zh-Hans"
