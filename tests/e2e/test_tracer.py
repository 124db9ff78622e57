"""The tracer flow end to end: HK agency -> gateway -> Guangdong agency -> decision.

Everything is real: a sandbox gateway on a loopback port, RFC 9421 signatures both ways,
XML parsed and mapped, rows in SQLite or PostgreSQL, the relay delivering over HTTP, the
Guangdong sandbox agency verifying, acknowledging and posting its decision.
"""

from __future__ import annotations

import json

import aiohttp
import pytest
import sqlalchemy as sa
from jwcrypto import jwk, jws

import adapters.guangdong
from gateway.sandbox.demo import run_demo
from tests.conftest import RunningGateway
from tests.log_leaks import LogCapture
from tests.support import sample_xml, send


async def test_the_demo_follows_one_application_to_its_approval(
    gateway: RunningGateway, log_capture: LogCapture
) -> None:
    lines: list[str] = []

    view = await run_demo(gateway.url, gateway.settings.sandbox_dir, patience=20, say=lines.append)

    assert view["status"] == "approved"
    assert view["handlers"] == [
        {"agency_id": "gd-hq-csb", "role": "lead", "state": "approved", "reasons": []}
    ]
    assert [e["type"] for e in view["timeline"]] == [
        "application.received",
        "application.accepted",
        "voucher.issued",  # the acceptance's, at receipt as later
        "message.queued",
        "message.delivered",
        "review.started",
        "decision.recorded",
        "application.approved",
        "voucher.issued",
    ]
    assert [e["actor"] for e in view["timeline"]][:1] == ["hk-ird"]
    assert view["timeline"][4]["actor"] == "gd-hq-csb"
    assert view["deadlines"]["promised"] is not None
    assert any("receipt verified" in line for line in lines)

    # The Guangdong agency received the canonical JSON with its translation record, once.
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/sandbox/partners/gd-hq-csb/messages") as response,
    ):
        inbox = await response.json()
    assert inbox["duplicates"] == 0
    (received,) = inbox["items"]
    assert received["application_id"] == view["application_id"]
    translation = received["translation"]
    assert translation["source_format"] == "HK"
    assert translation["mapping_version"] == "hk-2026.2"
    assert translation["source_digest"].startswith("sha-256=:")
    assert translation["canonical_digest"].startswith("sha-256=:")

    # No personal data and no token ever reached a log line (before redaction, even).
    assert '"event": "http.request"' in log_capture.text()
    assert log_capture.leaks() == []


async def test_the_receipt_verifies_with_an_independent_jose_library(
    gateway: RunningGateway,
) -> None:
    answer = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=sample_xml(),
        content_type="application/xml",
    )
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/.well-known/jwks.json") as response,
    ):
        key_set = jwk.JWKSet.from_json(await response.text())

    token = jws.JWS()
    token.deserialize(answer.json()["receipt"])
    token.verify(key_set.get_key(token.jose_header["kid"]))
    claims = json.loads(token.payload)
    assert claims["sub"] == answer.json()["application_id"]
    assert claims["status"] == "accepted"

    token.deserialize(answer.json()["receipt"][:-4] + "AAAA")
    with pytest.raises(jws.InvalidJWSSignature):
        token.verify(key_set.get_key(token.jose_header["kid"]))


async def test_the_forwarded_message_is_valid_against_the_guangdong_schema(
    gateway: RunningGateway,
) -> None:
    from gateway.mapping.canonical import schema_validator
    from gateway.store.tables import outbox
    from gateway.web.keys import STORE

    await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=sample_xml(),
        content_type="application/xml",
    )
    async with gateway.app[STORE]() as uow:  # type: ignore[index]
        bodies = (await uow.applications._conn.execute(sa.select(outbox.c.body))).scalars().all()
    validator = schema_validator(
        adapters.guangdong.ADAPTER.schemas_dir,
        "guangdong-message.schema.json",
        also=(gateway.settings.mappings_dir / "schemas",),
    )
    (body,) = bodies
    message = json.loads(body)
    assert [e.message for e in validator.iter_errors(message)] == []
    message["application"]["applicant"]["favourite_colour"] = "blue"
    assert list(validator.iter_errors(message))  # the schema is strict, so this can fail
