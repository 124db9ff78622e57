"""Evidence by data sharing, end to end on both databases: a resident's application for a
matter whose material an agency issues gets it from the sandbox issuer without the applicant
sending it, kept with its provenance; an issuer that refuses, or never answers in time, leads
to the applicant being asked (the one notice); without a consent covering it nothing is
requested; an answer signed by another agency is refused and nothing is kept."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from gateway.bootstrap import Overrides, create_app
from gateway.domain.values import local_date
from gateway.sandbox.personas import persona
from gateway.sandbox.portal import SandboxPortal
from gateway.sandbox.routes import PARTNERS
from gateway.sandbox.samples import canonical_sample
from gateway.services import lifecycle
from gateway.store.tables import materials, outbox
from gateway.web.keys import DEPENDENCIES, STORE
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.fakes import FixedClock
from tests.support import send

FUND = "12440100MB2C00121L3442030008000"  # IDENTITY_PROOF: gd-residence-permit from gz-psb
ISSUER = "gz-psb"
PERSONA = "chan-tai-man"  # HK resident holding a residence permit 810000...
BASE = ["identity", "contact", "address", "application", "materials"]
COVERING = {"categories": [*BASE, "residence_status"], "destinations": ["GD"]}
NOT_COVERING = {"categories": BASE, "destinations": ["GD"]}  # no residence_status


@pytest.fixture
async def gateway(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> AsyncIterator[RunningGateway]:
    """A sandbox gateway whose issuers have two seconds to answer an evidence request."""
    settings = sandbox_settings(tmp_path, database, evidence_answer_seconds=2.0)
    app = create_app(settings, Overrides())
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    yield RunningGateway(settings, settings.base_url, app)
    await server.close()


async def _apply(gateway: RunningGateway, consent: dict[str, Any], key: str) -> str:
    portal = await SandboxPortal.register(gateway.url)
    token = (await portal.login("guangdong", PERSONA)).access_token
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    matter = deps.catalog.get(FUND, local_date(deps.clock.now()))
    sample = canonical_sample(matter, persona(PERSONA))
    assert "IDENTITY_PROOF" not in {m["code"] for m in sample.get("materials", [])}
    application = {k: v for k, v in sample.items() if k != "applicant"}
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
    body = {"application": application, "consent": consent}
    async with (
        aiohttp.ClientSession() as session,
        session.post(gateway.url + "/v1/me/applications", json=body, headers=headers) as answer,
    ):
        submitted = await answer.json()
        assert answer.status == 202, submitted
    return str(submitted["application_id"])


async def _view(gateway: RunningGateway, app_id: str) -> dict[str, Any]:
    answer = await send(gateway.settings, "GET", f"/v1/applications/{app_id}", agency="gz-hpf")
    assert answer.status == 200, answer.body
    return dict(answer.json())


async def _until(
    gateway: RunningGateway, app_id: str, done: Callable[[dict[str, Any]], bool], what: str
) -> dict[str, Any]:
    for _ in range(200):
        view = await _view(gateway, app_id)
        if done(view):
            return view
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}: {[e['type'] for e in view['timeline']]}")


def _has(event: str) -> Callable[[dict[str, Any]], bool]:
    return lambda view: any(e["type"] == event for e in view["timeline"])


async def _rows(gateway: RunningGateway, table: sa.Table, app_id: str) -> list[Any]:
    async with gateway.app[STORE]() as uow:  # type: ignore[index]
        conn = uow._conn  # type: ignore[attr-defined]
        return list((await conn.execute(table.select())).all())


async def _requests_to_issuer(gateway: RunningGateway, app_id: str) -> list[dict[str, Any]]:
    rows = await _rows(gateway, outbox, app_id)
    return [
        json.loads(r.body) for r in rows if r.application_id == app_id and r.destination == ISSUER
    ]


async def test_the_material_comes_from_the_issuer_without_the_applicant_sending_it(
    gateway: RunningGateway,
) -> None:
    app_id = await _apply(gateway, COVERING, "evidence-happy-1")

    view = await _until(gateway, app_id, _has("application.accepted"), "accepted")
    types = [e["type"] for e in view["timeline"]]
    assert types.index("evidence.requested") < types.index("evidence.received")
    assert types.index("evidence.received") < types.index("application.accepted")
    assert "application.supplement_requested" not in types  # never asked of the applicant
    (state,) = view["evidence"]
    assert (state["material"], state["evidence_type"]) == ("IDENTITY_PROOF", "gd-residence-permit")
    assert (state["state"], state["issuer"]) == ("received", ISSUER)
    assert view["missing"] == []

    (request,) = await _requests_to_issuer(gateway, app_id)
    assert request["type"] == "evidence_request"
    assert request["request_id"] == state["request_id"]
    assert request["subject"] == {  # only the identifying fields the type needs
        "names.original": "陈大文",  # as Guangdong's identity provider asserted it
        "document:RESIDENCE_PERMIT": "810000198803150123",
    }
    assert (request["matter"], request["application_id"]) == (FUND, app_id)
    assert request["consent_id"]

    kept = [m for m in await _rows(gateway, materials, app_id) if m.application_id == app_id]
    (material,) = kept
    assert (material.code, material.owner, material.media_type) == (
        "IDENTITY_PROOF",
        ISSUER,
        "application/json",
    )
    assert material.id == state["material_id"]
    assert material.digest == state["digest"]
    provenance = dict(material.provenance)
    assert provenance["issuer"] == ISSUER
    assert provenance["request_id"] == state["request_id"]
    assert provenance["evidence_type"] == "gd-residence-permit"
    assert provenance["issued_at"]
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    data = b"".join([chunk async for chunk in deps.blobs.open(material.blob_key)])
    document = json.loads(data)
    assert document["type"] == "evidence_document"
    assert document["document"]["permit_number"] == "810000198803150123"

    received = next(e for e in view["timeline"] if e["type"] == "evidence.received")
    assert received["actor"] == ISSUER
    assert received["request_id"] == state["request_id"]
    async with gateway.app[STORE]() as uow:  # type: ignore[index]
        case = await uow.applications.get(app_id)
    assert case is not None
    bound = [m for m in case.document["materials"] if m["code"] == "IDENTITY_PROOF"]
    assert bound == [
        {
            "code": "IDENTITY_PROOF",
            "digest": state["digest"],
            "media_type": "application/json",
            "filename": "gd-residence-permit.json",
            "material_id": material.id,
            "size": material.size,
        }
    ]
    # the handlers' forwards list it like any upload, with the href they fetch it at
    forwarded = [
        r.body
        for r in await _rows(gateway, outbox, app_id)
        if r.application_id == app_id and r.destination != ISSUER
    ]
    assert forwarded
    href = f"/v1/applications/{app_id}/materials/{material.id}"
    assert all(href.encode() in body for body in forwarded)


async def _asked(gateway: RunningGateway, app_id: str) -> dict[str, Any]:
    view = await _until(
        gateway, app_id, _has("application.supplement_requested"), "applicant asked"
    )
    assert view["status"] == "awaiting_supplement"
    assert "IDENTITY_PROOF" in view["missing"]
    notices = [e for e in view["timeline"] if e["type"] == "application.supplement_requested"]
    assert len(notices) == 1  # the one notice, listing everything missing
    assert "IDENTITY_PROOF" in notices[0]["missing"]
    return view


async def test_an_issuer_that_refuses_leaves_the_material_to_the_applicant(
    gateway: RunningGateway,
) -> None:
    gateway.app[PARTNERS].faults.update(ISSUER, {"evidence": "refuse"})  # type: ignore[index]
    app_id = await _apply(gateway, COVERING, "evidence-refused-1")

    view = await _asked(gateway, app_id)
    types = [e["type"] for e in view["timeline"]]
    assert types.index("evidence.refused") < types.index("application.supplement_requested")
    refused = next(e for e in view["timeline"] if e["type"] == "evidence.refused")
    assert (refused["actor"], refused["reason"]) == (ISSUER, "refused")
    assert [e["state"] for e in view["evidence"]] == ["refused"]
    assert [m for m in await _rows(gateway, materials, app_id) if m.application_id] == []


async def test_an_issuer_that_never_answers_leaves_the_material_to_the_applicant_in_time(
    gateway: RunningGateway,
) -> None:
    gateway.app[PARTNERS].faults.update(ISSUER, {"evidence": "silent"})  # type: ignore[index]
    app_id = await _apply(gateway, COVERING, "evidence-silent-1")
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]

    view = await _until(gateway, app_id, _has("evidence.requested"), "requested")
    assert view["status"] == "received"  # waiting for the issuer: no notice, no acceptance
    asked = next(e for e in view["timeline"] if e["type"] == "evidence.requested")
    at = datetime.fromisoformat(asked["at"])  # swept on clocks of its own: however slow the run

    def sweep_at(seconds: float) -> Any:
        return lifecycle.sweep(replace(deps, clock=FixedClock(at + timedelta(seconds=seconds))))

    assert (await sweep_at(1.0)).get("evidence_unanswered") is None  # not yet due
    assert (await sweep_at(2.5))["evidence_unanswered"] == 1  # evidence_answer_seconds: 2

    view = await _asked(gateway, app_id)
    assert [e["state"] for e in view["evidence"]] == ["unanswered"]
    unanswered = next(e for e in view["timeline"] if e["type"] == "evidence.unanswered")
    assert (unanswered["actor"], unanswered["reason"]) == ("gateway", "no_answer")


async def test_without_a_covering_consent_nothing_is_requested(gateway: RunningGateway) -> None:
    app_id = await _apply(gateway, NOT_COVERING, "evidence-no-consent-1")

    view = await _asked(gateway, app_id)
    skipped = next(e for e in view["timeline"] if e["type"] == "evidence.not_requested")
    assert (skipped["material"], skipped["reason"]) == ("IDENTITY_PROOF", "no_consent")
    assert [e["state"] for e in view["evidence"]] == ["not_requested"]
    assert "evidence.requested" not in [e["type"] for e in view["timeline"]]
    assert await _requests_to_issuer(gateway, app_id) == []  # no outbox row to the issuer
    assert gateway.app[PARTNERS].inboxes[ISSUER].messages == {}  # type: ignore[index]


async def _forged(gateway: RunningGateway) -> None:
    """The issuer's inbox answers signed with another agency's valid, registered key."""
    partners = gateway.app[PARTNERS]  # type: ignore[index]
    agency, _ = partners._agencies[ISSUER]
    _, other = partners._agencies["hk-ird"]
    partners._agencies[ISSUER] = (agency, other)


async def test_an_answer_signed_by_another_agency_is_refused_and_nothing_kept(
    gateway: RunningGateway,
) -> None:
    await _forged(gateway)
    app_id = await _apply(gateway, COVERING, "evidence-forged-1")

    view = await _until(gateway, app_id, _has("message.retry_scheduled"), "answer refused")
    retried = next(e for e in view["timeline"] if e["type"] == "message.retry_scheduled")
    assert retried["agency"] == ISSUER
    assert "signed by another agency" in retried["error"]
    assert [e["state"] for e in view["evidence"]] == ["requested"]
    assert "evidence.received" not in [e["type"] for e in view["timeline"]]
    assert view["status"] == "received"
    assert [m for m in await _rows(gateway, materials, app_id) if m.application_id] == []
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    assert await deps.blobs.keys() == []  # the forged document's bytes were never kept


async def test_an_agency_registers_the_evidence_it_issues_and_old_databases_gain_the_column(
    gateway: RunningGateway,
) -> None:
    from gateway.store.database import create_schema
    from gateway.trust.keys import SigningKey, generate_private_key

    key = SigningKey("tester-issuer-key-1", generate_private_key("ed25519"), "ed25519")
    body = {
        "agency_id": "tester-issuer",
        "jurisdiction": "MO",
        "names": {"en": "Tester issuer"},
        "keys": [key.jwk()],
        "issues_evidence": ["mo-tester-record"],
    }
    bad = {**body, "agency_id": "tester-bad", "issues_evidence": ["Not A Code"]}
    async with aiohttp.ClientSession() as session:
        async with session.post(gateway.url + "/sandbox/v1/agencies", json=body) as answer:
            assert answer.status == 201
            assert (await answer.json())["issues_evidence"] == ["mo-tester-record"]
        async with session.post(gateway.url + "/sandbox/v1/agencies", json=bad) as answer:
            assert answer.status == 422
            errors = (await answer.json())["errors"]
            assert ("/issues_evidence", "wrong_type") in {(e["pointer"], e["code"]) for e in errors}
    store = gateway.app[STORE]  # type: ignore[index]
    async with store() as uow:
        issuer = await uow.agencies.issuer_of("mo-tester-record")
        assert issuer is not None
        assert issuer.id == "tester-issuer"
        assert (await uow.agencies.issuer_of("gd-residence-permit")).id == ISSUER  # type: ignore[union-attr]
        assert await uow.agencies.get("tester-bad") is None  # nothing stored

    engine = store.engine
    async with engine.begin() as conn:  # a database from before the column
        schema = (
            f'"{gateway.settings.database_schema}".' if gateway.settings.database_schema else ""
        )
        for table, column in (("agencies", "issues_evidence"), ("applications", "evidence")):
            await conn.execute(sa.text(f"ALTER TABLE {schema}{table} DROP COLUMN {column}"))
    await create_schema(engine)
    async with engine.connect() as conn:
        names = await conn.run_sync(
            lambda sync: {
                (t, c["name"])
                for t in ("agencies", "applications")
                for c in sa.inspect(sync).get_columns(
                    t, schema=gateway.settings.database_schema or None
                )
            }
        )
    assert {("agencies", "issues_evidence"), ("applications", "evidence")} <= names
