"""Idempotency-Keys are scoped by caller, route (use case) and the case acted on.

An Idempotency-Key names one request: the same key sent by the same agency to another route,
or about another case, is another request and is carried out; the same key on the same route
with another body is still a 422 idempotency conflict. Databases made before the scope
existed are migrated by ``create_schema`` on both backends, their stored keys kept.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from gateway.domain.errors import ConflictError
from gateway.services.ports import StoredResponse
from gateway.store.database import create_engine, create_schema
from gateway.store.tables import idempotency_keys
from gateway.store.unit_of_work import SqlUnitOfWorkFactory
from tests.conftest import Database, RunningGateway
from tests.support import row_counts, sample_xml, send

XML = "application/xml"
JSON = "application/json"
NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


async def _submit(gateway: RunningGateway, key: str) -> str:
    created = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=sample_xml(),
        content_type=XML,
        idempotency_key=key,
    )
    assert created.status == 202, created.body
    return str(created.json()["application_id"])


async def _under_review(gateway: RunningGateway, key: str) -> str:
    from gateway.sandbox.routes import PARTNERS

    gateway.app[PARTNERS].auto_decide = False  # type: ignore[index]
    application_id = await _submit(gateway, key)
    for _ in range(200):
        view = await send(gateway.settings, "GET", f"/v1/applications/{application_id}")
        if view.json()["status"] == "under_review":
            return application_id
        await asyncio.sleep(0.05)
    raise AssertionError("the case never reached under_review")


async def test_one_key_on_two_routes_is_two_requests(gateway: RunningGateway) -> None:
    application_id = await _submit(gateway, "shared-key-0001")

    withdrawn = await send(
        gateway.settings,
        "POST",
        f"/v1/applications/{application_id}/withdrawal",
        idempotency_key="shared-key-0001",
    )
    again = await send(
        gateway.settings,
        "POST",
        f"/v1/applications/{application_id}/withdrawal",
        idempotency_key="shared-key-0001",
    )

    assert withdrawn.status == 200, withdrawn.body
    assert withdrawn.json()["status"] == "withdrawn"
    assert again.status == 200  # a replay, not a 409
    assert again.json() == withdrawn.json()
    assert (await row_counts(gateway.settings))["idempotency_keys"] == 2


async def test_one_key_about_two_cases_is_two_requests(gateway: RunningGateway) -> None:
    first = await _under_review(gateway, "case-key-0001")
    second = await _under_review(gateway, "case-key-0002")
    approve = json.dumps({"decision": "approved"}).encode()

    answers = [
        await send(
            gateway.settings,
            "POST",
            f"/v1/applications/{case}/decisions",
            agency="gd-hq-csb",
            body=approve,
            content_type=JSON,
            idempotency_key="decision-key-0001",
        )
        for case in (first, second)
    ]

    assert [a.status for a in answers] == [200, 200]
    assert [a.json()["application_id"] for a in answers] == [first, second]
    for case in (first, second):
        view = await send(gateway.settings, "GET", f"/v1/applications/{case}")
        assert view.json()["status"] == "approved"


async def test_one_key_on_one_route_with_another_body_is_still_a_conflict(
    gateway: RunningGateway,
) -> None:
    application_id = await _under_review(gateway, "conflict-key-0001")
    path = f"/v1/applications/{application_id}/decisions"
    decided = await send(
        gateway.settings,
        "POST",
        path,
        agency="gd-hq-csb",
        body=b'{"decision": "approved"}',
        content_type=JSON,
        idempotency_key="decision-key-0002",
    )
    counts = await row_counts(gateway.settings)

    other = await send(
        gateway.settings,
        "POST",
        path,
        agency="gd-hq-csb",
        body=b'{"decision": "rejected", "reasons": ["X"]}',
        content_type=JSON,
        idempotency_key="decision-key-0002",
    )

    assert decided.status == 200
    assert other.status == 422
    assert other.json()["type"].endswith("/problems/idempotency-conflict")
    assert await row_counts(gateway.settings) == counts
    view = await send(gateway.settings, "GET", f"/v1/applications/{application_id}")
    assert view.json()["status"] == "approved"


OLD_SHAPE = sa.MetaData()
sa.Table(  # idempotency_keys as create_schema made it before the scope existed
    "idempotency_keys",
    OLD_SHAPE,
    sa.Column("agency_id", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(200), primary_key=True),
    sa.Column("request_digest", sa.String(200), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("body", sa.JSON, nullable=False),
    sa.Column("resource", sa.String(40)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


async def test_an_old_database_is_migrated_and_keeps_its_keys(database: Database) -> None:
    engine = create_engine(database.url, schema=database.schema or None)
    uow = SqlUnitOfWorkFactory(engine)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(OLD_SHAPE.create_all)
            await conn.execute(
                OLD_SHAPE.tables["idempotency_keys"]
                .insert()
                .values(
                    agency_id="hk-ird",
                    key="old-key-0001",
                    request_digest="sha-256=:old:",
                    status=202,
                    body={"application_id": "app_old"},
                    resource="app_old",
                    created_at=NOW,
                )
            )

        await create_schema(engine)
        await create_schema(engine)  # and again: nothing left to do

        async with engine.connect() as conn:
            key = await conn.run_sync(lambda c: sa.inspect(c).get_pk_constraint("idempotency_keys"))
            rows = (await conn.execute(idempotency_keys.select())).all()
        assert sorted(key["constrained_columns"]) == ["agency_id", "key", "scope"]
        assert [(r.agency_id, r.scope, r.key, r.resource) for r in rows] == [
            ("hk-ird", "", "old-key-0001", "app_old")
        ]
        fresh = StoredResponse("sha-256=:new:", 200, {"status": "withdrawn"}, "app_old")
        async with uow() as tx:
            # a key stored before the migration still answers its retries, on any route
            kept = await tx.idempotency.get("hk-ird", "submit_application", "old-key-0001")
            assert kept == StoredResponse(
                "sha-256=:old:", 202, {"application_id": "app_old"}, "app_old"
            )
            await tx.idempotency.put("hk-ird", "withdraw app_old", "new-key-0001", fresh, NOW)
            await tx.idempotency.put("hk-ird", "submit_application", "new-key-0001", fresh, NOW)
            await tx.commit()
        async with uow() as tx:
            assert await tx.idempotency.get("hk-ird", "withdraw app_old", "new-key-0001") == fresh
            with pytest.raises(ConflictError):
                await tx.idempotency.put("hk-ird", "withdraw app_old", "new-key-0001", fresh, NOW)
    finally:
        await uow.close()  # its committer, then the engine
