"""A partner down for a while: the gateway keeps accepting, retries, and once the partner is
back delivers every message exactly once — with the signed exchange kept as evidence.

Real HTTP both ways: a sandbox gateway on a loopback port, its relay posting signed messages
to the sandbox inbox of ``gd-hq-csb``, which answers 503 while it is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from gateway.bootstrap import Overrides, create_app
from gateway.sandbox.routes import PARTNERS
from gateway.services.relay import RelayPolicy
from gateway.trust.httpsig import HttpMessage
from gateway.trust.profile import verify_request, verify_response
from gateway.web.keys import KEYRING, STORE
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.support import agency_key, sample_xml, send

PARTNER = "gd-hq-csb"
FAST = RelayPolicy(
    backoff_initial=0.05, backoff_max=0.2, idle_poll=0.05, lease_seconds=10, max_attempts=200
)


@pytest.fixture
async def gateway(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> AsyncIterator[RunningGateway]:
    """The sandbox gateway of ``tests/conftest.py`` with a relay that retries within 200 ms."""
    settings = sandbox_settings(tmp_path, database)
    app = create_app(settings, Overrides(relay_policy=FAST))
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    yield RunningGateway(settings, settings.base_url, app)
    await server.close()


async def eventually(check: Callable[[], Any], seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.02)):
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not true after {seconds} s")


async def test_a_partner_down_for_a_while_gets_every_message_once_when_back(
    gateway: RunningGateway,
) -> None:
    app: Any = gateway.app
    partners = app[PARTNERS]
    partners.auto_decide = False
    inbox = partners.inboxes[PARTNER]
    partners.set_down(PARTNER, True)

    answers = [
        await send(
            gateway.settings,
            "POST",
            "/v1/applications",
            body=sample_xml(),
            content_type="application/xml",
        )
        for _ in range(4)
    ]
    assert [a.status for a in answers] == [202] * 4  # accepted while the partner is down
    ids = [a.json()["application_id"] for a in answers]
    await eventually(lambda: inbox.unavailable >= 3 * len(ids))  # retried, again and again
    assert inbox.messages == {}
    for application_id in ids:
        view = (await send(gateway.settings, "GET", f"/v1/applications/{application_id}")).json()
        assert view["status"] == "accepted"
        assert "message.delivered" not in [e["type"] for e in view["timeline"]]
    async with app[STORE]() as uow:
        waiting = await uow.outbox.listing()
    assert {row.message.status for row in waiting} <= {"pending", "in_flight"}
    assert all(row.message.attempts >= 1 for row in waiting)
    assert {row.message.last_error for row in waiting} - {None} == {"delivery failed (HTTP 503)"}

    partners.set_down(PARTNER, False)

    async def all_delivered() -> bool:
        async with app[STORE]() as uow:
            return {r.message.status for r in await uow.outbox.listing()} == {"delivered"}

    await eventually(all_delivered)
    await asyncio.sleep(0.3)  # a straggling resend would land in this time
    assert len(inbox.messages) == len(ids)
    assert inbox.duplicates == 0
    assert sorted(m["application_id"] for m in inbox.messages.values()) == sorted(ids)

    for application_id in ids:
        view = (await send(gateway.settings, "GET", f"/v1/applications/{application_id}")).json()
        types = [e["type"] for e in view["timeline"]]
        retries = [e for e in view["timeline"] if e["type"] == "message.retry_scheduled"]
        assert [t for t in types if t != "message.retry_scheduled"] == [
            "application.received",
            "application.accepted",
            "voucher.issued",  # the acceptance at receipt has its voucher
            "message.queued",
            "message.delivered",
            "review.started",
        ]
        # progress is visible on the case: each failed attempt and when the next one is due
        assert len(retries) >= 2
        assert [r["attempt"] for r in retries] == list(range(1, len(retries) + 1))
        assert all(r["agency"] == "gd-hq-csb" and r["next_attempt_at"] for r in retries)
        assert view["status"] == "under_review"
    async with app[STORE]() as uow:
        delivered = await uow.outbox.listing()
    assert all(row.message.attempts >= 3 for row in delivered)  # the retries, counted
    assert all(row.message.last_error is None for row in delivered)


async def test_the_evidence_of_each_forward_verifies_again_offline(
    gateway: RunningGateway,
) -> None:
    """What an archive exports: the signed request and the signed acknowledgement."""
    app: Any = gateway.app
    app[PARTNERS].auto_decide = False
    answer = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=sample_xml(),
        content_type="application/xml",
    )
    application_id = answer.json()["application_id"]

    async def kept() -> list[Any]:
        async with app[STORE]() as uow:
            return await uow.outbox.delivery_evidence(application_id)

    await eventually(kept)
    [evidence] = await kept()
    assert evidence.destination == PARTNER
    assert evidence.target.endswith(f"/sandbox/partners/{PARTNER}/messages")
    assert evidence.request.body is not None
    assert evidence.ack.body is not None
    assert evidence.request.headers["Idempotency-Key"] == evidence.message_id

    request = HttpMessage.request("POST", evidence.target, evidence.request.headers)
    sent = verify_request(
        request,
        evidence.request.body,
        resolve_key=app[KEYRING].resolve,
        now=evidence.delivered_at,
    )
    partner_key = agency_key(gateway.settings, PARTNER).public
    acknowledged = verify_response(
        HttpMessage.response(evidence.ack_status, evidence.ack.headers),
        evidence.ack.body,
        request=request,
        resolve_key=lambda _kid: partner_key,
        now=evidence.delivered_at,
    )
    assert acknowledged.keyid == evidence.ack_key_id == partner_key.kid
    assert sent.keyid == app[KEYRING].current("http").kid
    assert b'"status": "received"' in evidence.ack.body
