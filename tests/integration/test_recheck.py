"""The lead agency's human re-check of an automatic decision (Art. 25), on both databases, over
the signed partner API: ``POST /v1/applications/{id}/recheck`` records ``confirmed`` or
``overturned`` with reasons; an overturn issues a signed corrective decision naming the routes
of redress, notifies the applicant (here the submitting agency) and is on the timeline; the
re-check work list is an index query and loses a case once its outcome is recorded; refusals
store nothing.

Uses the ``decidable`` gateway of the automatic-decision tests (social insurance, lead
``mo-fss``, reviewer ``zh-hrss``, every case drawn for re-check)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import sqlalchemy as sa

from gateway.domain.commands import Caller
from gateway.services import queries
from gateway.store.database import create_engine, create_schema
from gateway.store.tables import applications, notifications
from gateway.trust.receipts import verify_receipt
from gateway.web.keys import DEPENDENCIES
from tests.conftest import Database, RunningGateway
from tests.integration.test_automatic_decisions import USCC, _decided, decidable  # noqa: F401
from tests.support import CASE_TABLES, row_counts, send

LEAD = "mo-fss"
JSON = "application/json"


async def _recheck(gateway: RunningGateway, app_id: str, body: Any, agency: str = LEAD) -> Any:
    return await send(
        gateway.settings,
        "POST",
        f"/v1/applications/{app_id}/recheck",
        agency=agency,
        body=json.dumps(body, ensure_ascii=False).encode(),
        content_type=JSON,
    )


async def _view(gateway: RunningGateway, app_id: str) -> Any:
    return (await send(gateway.settings, "GET", f"/v1/applications/{app_id}", agency=LEAD)).json()


async def _rechecks(gateway: RunningGateway) -> list[str]:
    answer = await send(gateway.settings, "GET", "/v1/applications?recheck=true", agency=LEAD)
    assert answer.status == 200, answer.body
    return [a["application_id"] for a in answer.json()["items"]]


async def _jwks(gateway: RunningGateway) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/.well-known/jwks.json") as response,
    ):
        return await response.json()


async def test_an_overturned_automatic_rejection_becomes_a_signed_corrective_approval(
    decidable: RunningGateway,  # noqa: F811
) -> None:
    rejected = await _decided(decidable, "not-a-uscc")
    app_id = rejected["application_id"]
    assert rejected["status"] == "rejected"
    assert await _rechecks(decidable) == [app_id]

    answer = await _recheck(
        decidable,
        app_id,
        {"outcome": "overturned", "reasons": ["the employer's code was mistyped at the counter"]},
    )

    assert answer.status == 200, answer.body
    assert answer.json()["status"] == "approved"
    case = await _view(decidable, app_id)
    assert case["status"] == "approved"
    assert {h["agency_id"]: h["state"] for h in case["handlers"]} == {
        "mo-fss": "approved",
        "zh-hrss": "approved",
    }
    types = [e["type"] for e in case["timeline"]]
    assert types[-3:] == [
        "decision.rechecked",
        "application.decision_corrected",
        "voucher.issued",
    ]
    rechecked, corrected, voucher = case["timeline"][-3:]
    assert (rechecked["actor"], rechecked["outcome"]) == (LEAD, "overturned")
    assert (corrected["actor"], corrected["decision"], corrected["overturned"]) == (
        LEAD,
        "approved",
        "rejected",
    )
    assert corrected["reasons"] == ["the employer's code was mistyped at the counter"]
    routes = corrected["appeal"]["MO"]
    assert {r["route"] for r in routes} >= {"administrative_review", "litigation"}
    claims = verify_receipt(voucher["voucher"], await _jwks(decidable))
    assert (claims["kind"], claims["sub"], claims["decision"]) == (
        "corrective_decision",
        app_id,
        "approved",
    )
    assert claims["appeal"] == corrected["appeal"]  # the routes are signed into the decision

    # the applicant (the submitting agency here) is told, with the routes of redress
    engine = create_engine(
        decidable.settings.database_url, schema=decidable.settings.database_schema or None
    )
    try:
        async with engine.connect() as conn:
            told = (
                await conn.execute(
                    sa.select(notifications.c.recipient, notifications.c.body).where(
                        notifications.c.application_id == app_id,
                        notifications.c.event == "application.decision_corrected",
                    )
                )
            ).all()
            row = (
                await conn.execute(
                    sa.select(applications.c.recheck, applications.c.recheck_lead).where(
                        applications.c.id == app_id
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    assert sorted((r.recipient, r.body["decision"]) for r in told) == [
        ("applicant", "approved"),  # whoever stands behind the document the case names
        ("hk-ird", "approved"),
    ]
    assert all(r.body["appeal"] == corrected["appeal"] for r in told)
    assert (row.recheck, row.recheck_lead) == ("overturned", None)

    # off the work list; a second outcome is refused and changes nothing
    assert await _rechecks(decidable) == []
    before = await row_counts(decidable.settings, CASE_TABLES)
    again = await _recheck(decidable, app_id, {"outcome": "confirmed"})
    assert again.status == 409, again.body
    assert await row_counts(decidable.settings, CASE_TABLES) == before


async def test_an_overturned_automatic_approval_becomes_a_rejection_with_the_leads_reasons(
    decidable: RunningGateway,  # noqa: F811
) -> None:
    approved = await _decided(decidable, USCC)
    app_id = approved["application_id"]

    answer = await _recheck(
        decidable, app_id, {"outcome": "overturned", "reasons": ["the employer is deregistered"]}
    )

    assert answer.status == 200, answer.body
    case = await _view(decidable, app_id)
    assert case["status"] == "rejected"
    lead = next(h for h in case["handlers"] if h["agency_id"] == LEAD)
    assert (lead["state"], lead["reasons"]) == ("rejected", ["the employer is deregistered"])
    corrected = next(e for e in case["timeline"] if e["type"] == "application.decision_corrected")
    assert (corrected["decision"], corrected["overturned"]) == ("rejected", "approved")
    assert corrected["appeal"]["MO"]


async def test_a_confirmed_recheck_changes_no_decision_and_leaves_the_work_list(
    decidable: RunningGateway,  # noqa: F811
) -> None:
    app_id = (await _decided(decidable, USCC))["application_id"]

    answer = await _recheck(decidable, app_id, {"outcome": "confirmed"})

    assert answer.status == 200, answer.body
    case = await _view(decidable, app_id)
    assert case["status"] == "approved"
    assert [e["type"] for e in case["timeline"]][-1] == "decision.rechecked"
    assert "application.decision_corrected" not in [e["type"] for e in case["timeline"]]
    deps = decidable.app[DEPENDENCIES]  # type: ignore[index]
    lead = Caller(LEAD, "MO", "mo-fss-key")
    assert (await queries.work_list(deps, lead, limit=50, after=None, recheck=True))["items"] == []


async def test_refused_rechecks_store_nothing(
    decidable: RunningGateway,  # noqa: F811
) -> None:
    app_id = (await _decided(decidable, "not-a-uscc"))["application_id"]
    before = await row_counts(decidable.settings, CASE_TABLES)

    no_reasons = await _recheck(decidable, app_id, {"outcome": "overturned"})
    unknown = await _recheck(decidable, app_id, {"outcome": "maybe", "note": "x"})
    not_the_lead = await _recheck(
        decidable, app_id, {"outcome": "overturned", "reasons": ["x"]}, agency="zh-hrss"
    )
    not_a_party = await _recheck(decidable, app_id, {"outcome": "confirmed"}, agency="sz-hc")

    assert no_reasons.status == 422, no_reasons.body
    assert [e["pointer"] for e in no_reasons.json()["errors"]] == ["/reasons"]
    assert unknown.status == 422, unknown.body
    assert sorted(e["pointer"] for e in unknown.json()["errors"]) == ["/note", "/outcome"]
    assert not_the_lead.status == 403, not_the_lead.body
    assert not_a_party.status == 404, not_a_party.body
    assert await row_counts(decidable.settings, CASE_TABLES) == before
    case = await _view(decidable, app_id)
    assert case["status"] == "rejected"
    assert await _rechecks(decidable) == [app_id]


async def test_an_old_database_gains_the_recheck_columns_and_index(database: Database) -> None:
    """A database made before re-checks were recorded: create_schema adds the columns (old
    cases: round 0, no re-check) and the work list's index, on an existing table."""
    engine = create_engine(database.url, schema=database.schema or None)
    try:
        await create_schema(engine)
        async with engine.begin() as conn:
            await conn.execute(sa.text("DROP INDEX ix_applications_recheck"))
            for column in ("recheck_lead", "recheck", "examined_from", "supplement_round"):
                await conn.execute(sa.text(f"ALTER TABLE applications DROP COLUMN {column}"))

        await create_schema(engine)
        await create_schema(engine)  # and again: nothing left to do

        async with engine.connect() as conn:
            indexes = await conn.run_sync(lambda c: sa.inspect(c).get_indexes("applications"))
            columns = await conn.run_sync(lambda c: sa.inspect(c).get_columns("applications"))
        (index,) = [i for i in indexes if i["name"] == "ix_applications_recheck"]
        assert index["column_names"] == ["recheck_lead", "id"]
        assert {"recheck_lead", "recheck", "examined_from", "supplement_round"} <= {
            c["name"] for c in columns
        }
    finally:
        await engine.dispose()


async def test_a_macau_lead_overturns_in_its_own_xml(
    decidable: RunningGateway,  # noqa: F811
) -> None:
    app_id = (await _decided(decidable, "not-a-uscc"))["application_id"]
    body = (
        "<?xml version='1.0' encoding='UTF-8'?>"
        '<Revisao xmlns="urn:gba:mo:requerimento:1"><Resultado>Revogada</Resultado>'
        "<Fundamentos><Fundamento>o código do empregador foi mal escrito</Fundamento>"
        "</Fundamentos></Revisao>"
    ).encode()

    answer = await send(
        decidable.settings,
        "POST",
        f"/v1/applications/{app_id}/recheck",
        agency=LEAD,
        body=body,
        content_type="application/xml",
    )

    assert answer.status == 200, answer.body
    case = await _view(decidable, app_id)
    corrected = next(e for e in case["timeline"] if e["type"] == "application.decision_corrected")
    assert (corrected["decision"], corrected["reasons"]) == (
        "approved",
        ["o código do empregador foi mal escrito"],
    )
