"""Notifications (Art. 22) on both databases: rows commit with the milestone (a refusal writes
none), two dispatchers racing deliver each once, a failing webhook is retried later with a
signed POST, and the sandbox shows what the tracer case's parties were told."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.bootstrap import Overrides, create_app
from gateway.domain.agencies import Agency
from gateway.egress.policy import EgressPolicy
from gateway.operations import mappings_sample
from gateway.sandbox.demo import run_demo
from gateway.services.notifications import Dispatcher, DispatchPolicy
from gateway.services.ports import Notification
from gateway.store.database import create_engine, create_schema
from gateway.store.unit_of_work import SqlUnitOfWorkFactory
from gateway.trust.keys import SigningKey, generate_private_key
from gateway.trust.profile import verify_request
from gateway.trust.registry import Registration
from gateway.web.keys import STORE
from gateway.web.messages import request_message
from gateway.web.notifier import WebhookNotifier
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.fakes import FixedClock
from tests.support import send

HENGQIN = "11440400MB2C00081P4440120002000"  # acceptance: automatic; lead gd-hq-csb
AT = datetime(2026, 9, 22, 2, 0, tzinfo=UTC)
JSON = "application/json"


@pytest.fixture
async def store(database: Database) -> AsyncIterator[SqlUnitOfWorkFactory]:
    engine = create_engine(database.url, schema=database.schema or None)
    await create_schema(engine)
    factory = SqlUnitOfWorkFactory(engine)
    yield factory
    await factory.close()  # its committer, then the engine


@pytest.fixture
async def quiet(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> AsyncIterator[RunningGateway]:
    """A sandbox gateway with no relay and no dispatcher: rows stay where the test finds them."""
    settings = sandbox_settings(tmp_path, database, relay_enabled=False)
    app = create_app(settings, Overrides(clock=FixedClock(AT)))
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    yield RunningGateway(settings, settings.base_url, app)
    await server.close()


async def _rows(uow: SqlUnitOfWorkFactory, application_id: str) -> list[Notification]:
    async with uow() as tx:
        return await tx.notifications.listing(application_id=application_id)  # type: ignore[attr-defined,no-any-return]


async def _post(gateway: RunningGateway, path: str, agency: str, body: Any = None) -> Any:
    return await send(
        gateway.settings,
        "POST",
        path,
        agency=agency,
        body=json.dumps(body or {}).encode(),
        content_type=JSON,
        now=AT,
    )


async def test_notifications_commit_with_the_milestone_and_a_refusal_writes_none(
    quiet: RunningGateway,
) -> None:
    document = mappings_sample(quiet.settings, HENGQIN, "canonical", "chan-tai-man")
    answer = await send(
        quiet.settings,
        "POST",
        "/v1/applications",
        body=document,
        content_type=JSON,
        now=AT,
    )
    assert answer.status == 202, answer.body
    app_id = answer.json()["application_id"]
    uow = quiet.app[STORE]  # type: ignore[index]
    accepted = await _rows(uow, app_id)  # the submission's own milestone, to the submitter
    assert sorted((n.recipient, n.event) for n in accepted) == [
        ("applicant", "application.accepted"),  # and to whoever its document is linked to
        ("hk-ird", "application.accepted"),
    ]

    refused = await _post(
        quiet, f"/v1/applications/{app_id}/result", "gd-hq-csb", {"channel": "post"}
    )
    assert refused.status == 409
    stranger = await _post(quiet, f"/v1/applications/{app_id}/withdrawal", "sz-hc")
    assert stranger.status == 404
    assert await _rows(uow, app_id) == accepted  # refusals write none

    withdrawn = await _post(quiet, f"/v1/applications/{app_id}/withdrawal", "hk-ird")
    assert withdrawn.status == 200, withdrawn.body

    rows = [n for n in await _rows(uow, app_id) if n not in accepted]
    assert sorted(n.recipient for n in rows) == ["applicant", "gd-hq-csb", "hk-ird"]
    assert {n.event for n in rows} == {"application.withdrawn"}
    assert {n.status for n in rows} == {"pending"}  # the dispatcher is off here
    body = rows[0].body
    assert body["status"] == "withdrawn"
    assert body["notification_id"] == rows[0].id
    assert body["application_id"] == app_id


def _notification(n: int, recipient: str = "resident:per_1") -> Notification:
    return Notification(
        f"ntf_{n:03d}", "app_1", recipient, "application.approved", {"n": n}, AT - timedelta(1)
    )


class Recorder:
    def __init__(self) -> None:
        self.ids: list[str] = []

    async def notify(self, agency: Agency | None, notification: Notification) -> None:
        await asyncio.sleep(0.001)
        self.ids.append(notification.id)


async def test_two_dispatchers_racing_deliver_each_notification_once(
    store: SqlUnitOfWorkFactory,
) -> None:
    async with store() as tx:
        for n in range(40):
            await tx.notifications.add(_notification(n))
        await tx.commit()
    recorder, clock = Recorder(), FixedClock(AT)
    policy = DispatchPolicy(batch=7, concurrency=3)
    first = Dispatcher(store, recorder, clock, policy)
    second = Dispatcher(store, recorder, clock, policy)

    for _ in range(20):
        if await asyncio.gather(first.run_once(), second.run_once()) == [0, 0]:
            break

    assert sorted(recorder.ids) == [f"ntf_{n:03d}" for n in range(40)]
    async with store() as tx:
        rows = await tx.notifications.listing()
    assert {n.status for n in rows} == {"delivered"}


async def test_a_failing_webhook_is_retried_later_with_a_signed_post(
    store: SqlUnitOfWorkFactory, aiohttp_server: Any
) -> None:
    key = SigningKey("gateway-http-test", generate_private_key("ed25519"), "ed25519")
    seen: list[dict[str, Any]] = []

    async def inbox(request: web.Request) -> web.Response:
        body = await request.read()
        verified = verify_request(
            request_message(request, base),
            body,
            resolve_key=lambda kid: key.public,
            now=datetime.now(UTC),
        )
        seen.append({"kid": verified.keyid, "key": request.headers["Idempotency-Key"]})
        return web.Response(status=503 if len(seen) == 1 else 204)

    partner = web.Application()
    partner.router.add_post("/partner/notifications", inbox)
    server = await aiohttp_server(partner)
    base = str(server.make_url("")).rstrip("/")
    async with store() as tx:
        await tx.agencies.register(_registration(base + "/partner/"), AT)  # type: ignore[attr-defined]
        await tx.notifications.add(_notification(1, "hk-test"))
        await tx.commit()
    clock = FixedClock(datetime.now(UTC))
    webhook = WebhookNotifier(lambda: key, clock, egress=EgressPolicy(sandbox=True))
    dispatcher = Dispatcher(store, webhook, clock, DispatchPolicy(backoff_max=30.0))
    try:
        assert await dispatcher.run_once() == 1
        (row,) = await _listing(store)
        assert (row.status, row.attempts) == ("pending", 1)
        assert "503" in (row.last_error or "")
        assert await dispatcher.run_once() == 0  # not due before its backoff

        clock.advance(seconds=31)
        assert await dispatcher.run_once() == 1
    finally:
        await webhook.close()
    (row,) = await _listing(store)
    assert row.status == "delivered"
    assert [s["key"] for s in seen] == ["ntf_001", "ntf_001"]  # partners de-duplicate on it
    assert {s["kid"] for s in seen} == {"gateway-http-test"}


async def _listing(store: SqlUnitOfWorkFactory) -> list[Notification]:
    async with store() as tx:
        return await tx.notifications.listing()  # type: ignore[no-any-return]


def _registration(endpoint: str) -> Registration:
    return Registration(Agency("hk-test", "HK", {"en": "Test"}, endpoint, ("*",)), (), sandbox=True)


async def test_the_sandbox_shows_what_the_tracer_cases_parties_were_told(
    gateway: RunningGateway,
) -> None:
    view = await run_demo(
        gateway.url, gateway.settings.sandbox_dir, patience=20, say=lambda _: None
    )
    assert view["status"] == "approved"

    items: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            url = f"{gateway.url}/sandbox/v1/notifications?application_id={view['application_id']}"
            async with session.get(url) as response:
                assert response.status == 200
                items = (await response.json())["items"]
            if len(items) >= 4:
                break
            await asyncio.sleep(0.1)

    # dispatched concurrently: they may be recorded in either order
    assert sorted((n["event"], n["recipient"], n["status"]) for n in items) == [
        ("application.accepted", "applicant", "accepted"),  # the resident behind its document
        ("application.accepted", "hk-ird", "accepted"),
        ("application.approved", "applicant", "approved"),
        ("application.approved", "hk-ird", "approved"),
    ]
    assert all(
        set(n) >= {"notification_id", "application_id", "event", "status", "at"} for n in items
    )
    # agencies get codes; the applicant's side gets the words
    assert all(("message" in n) == (n["recipient"] == "applicant") for n in items)
