"""Tester self-service: register your own agency with the CLI, route a matter to it, and get
the case forwarded to your own endpoint, signed; answer it and decide like any partner.

The tester's endpoint is a small aiohttp app in this test, verifying the gateway's signature
against the published JWKS and acknowledging with the tester's own key.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from gateway.cli import main
from gateway.sandbox.samples import INDIVIDUAL_BUSINESS
from gateway.trust.keys import SigningKey, generate_private_key
from gateway.trust.profile import sign_response, verify_request
from gateway.web.keys import KEYRING
from gateway.web.messages import request_message
from tests.conftest import RunningGateway, free_port
from tests.support import sample_xml, send

TESTER = "gd-tester"


class OwnInbox:
    """The tester's own partner endpoint."""

    def __init__(self, gateway: RunningGateway, key: SigningKey, base_url: str) -> None:
        self.gateway, self.key, self.base_url = gateway, key, base_url
        self.received: list[dict[str, Any]] = []
        self.refused = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        ring = self.gateway.app[KEYRING]  # type: ignore[index]
        try:
            verify_request(
                request_message(request, self.base_url),
                body,
                resolve_key=ring.resolve,
                now=datetime.now(UTC),
            )
        except Exception:
            self.refused += 1
            return web.Response(status=401)
        envelope = json.loads(body)
        self.received.append(envelope)
        ack = json.dumps(
            {
                "message_id": envelope["message_id"],
                "status": "received",
                "received_at": datetime.now(UTC).isoformat(),
            }
        ).encode()
        headers = sign_response(
            status=200,
            body=ack,
            content_type="application/json",
            request=request_message(request, self.base_url),
            key=self.key,
            now=datetime.now(UTC),
        )
        return web.Response(status=200, body=ack, headers=headers)


def _cli(*argv: str) -> Any:
    return asyncio.to_thread(main, list(argv))


async def _json(url: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return await response.json()


async def test_a_tester_registers_routes_a_matter_and_gets_signed_cases(
    gateway: RunningGateway, tmp_path: Path, aiohttp_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    private = generate_private_key("ecdsa-p256-sha256")
    key = SigningKey(f"{TESTER}-1", private, "ecdsa-p256-sha256")
    public_file = tmp_path / f"{TESTER}-1.pem"
    public_file.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    port = free_port()
    inbox = OwnInbox(gateway, key, f"http://127.0.0.1:{port}")
    tester_app = web.Application()
    tester_app.router.add_post("/inbox", inbox.handle)
    await aiohttp_server(tester_app, host="127.0.0.1", port=port)

    code = await _cli(
        "sandbox",
        "register",
        "--url",
        gateway.url,
        "--agency-id",
        TESTER,
        "--jurisdiction",
        "GD",
        "--key",
        str(public_file),
        "--name",
        "en=Tester bureau",
        "--endpoint",
        f"http://127.0.0.1:{port}/inbox",
    )
    assert code == 0
    assert f"registered {TESTER} (GD)" in capsys.readouterr().out
    assert (
        await _cli("sandbox", "route", INDIVIDUAL_BUSINESS, "--lead", TESTER, "--url", gateway.url)
        == 0
    )
    assert "sandbox override" in capsys.readouterr().out
    routes = await _json(f"{gateway.url}/sandbox/v1/routes")
    mine = next(r for r in routes["items"] if r["matter"] == INDIVIDUAL_BUSINESS)
    assert mine == {
        "matter": INDIVIDUAL_BUSINESS,
        "lead": TESTER,
        "reviewers": [],
        "overridden": True,
    }

    answer = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=sample_xml(),
        content_type="application/xml",
    )
    assert answer.status == 202
    application_id = answer.json()["application_id"]
    for _ in range(500):
        if inbox.received:
            break
        await asyncio.sleep(0.02)
    assert [m["application_id"] for m in inbox.received] == [application_id]
    assert inbox.refused == 0
    assert inbox.received[0]["translation"]["mapping_version"]

    # The tester decides, signed with its own key: requests signed with it are its agency's.
    decision = json.dumps({"decision": "approved", "reasons": []}).encode()
    for _ in range(100):  # until the relay has recorded the acknowledgement
        decided = await send_as_tester(gateway, key, application_id, decision)
        if decided != 409:
            break
        await asyncio.sleep(0.05)
    assert decided == 200
    view = (await send(gateway.settings, "GET", f"/v1/applications/{application_id}")).json()
    assert view["status"] == "approved"
    assert [h["agency_id"] for h in view["handlers"]] == [TESTER]

    assert await _cli("sandbox", "route", INDIVIDUAL_BUSINESS, "--reset", "--url", gateway.url) == 0
    assert "(catalog)" in capsys.readouterr().out


async def send_as_tester(
    gateway: RunningGateway, key: SigningKey, application_id: str, body: bytes
) -> int:
    from gateway.trust.profile import sign_request

    url = f"{gateway.url}/v1/applications/{application_id}/decisions"
    headers = sign_request(
        method="POST",
        url=url,
        key=key,
        now=datetime.now(UTC),
        body=body,
        content_type="application/json",
        idempotency_key=f"decision-{application_id}",
    )
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status


async def test_routes_to_unknown_agencies_are_refused_with_every_problem(
    gateway: RunningGateway,
) -> None:
    url = f"{gateway.url}/sandbox/v1/routes/{INDIVIDUAL_BUSINESS}"
    bad = {"lead": "no-such", "reviewers": ["hk-ird", "hk-ird", 7], "colour": "red"}
    async with aiohttp.ClientSession() as session, session.put(url, json=bad) as response:
        assert response.status == 422
        problem = await response.json(content_type=None)
    assert {e["pointer"] for e in problem["errors"]} == {"/lead", "/reviewers", "/colour"}
    routes = await _json(f"{gateway.url}/sandbox/v1/routes")
    mine = next(r for r in routes["items"] if r["matter"] == INDIVIDUAL_BUSINESS)
    assert mine["lead"] == "gd-hq-csb"
    assert mine["overridden"] is False
    async with (
        aiohttp.ClientSession() as session,
        session.put(
            f"{gateway.url}/sandbox/v1/routes/NO-SUCH-MATTER", json={"lead": "hk-ird"}
        ) as response,
    ):
        assert response.status == 404


async def test_fault_switches_from_the_command_line(
    gateway: RunningGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        await _cli(
            "sandbox",
            "fault",
            "gz-vmo",
            "--down",
            "--latency",
            "50",
            "--signature",
            "wrong",
            "--url",
            gateway.url,
        )
        == 0
    )
    assert capsys.readouterr().out.split() == [
        "gz-vmo",
        "down,",
        "latency_ms=50,",
        "signature=wrong",
    ]
    faults = await _json(f"{gateway.url}/sandbox/v1/agencies/gz-vmo/faults")
    assert faults["down"] is True
    assert faults["latency_ms"] == 50
    assert await _cli("sandbox", "fault", "gz-vmo", "--up", "--url", gateway.url) == 0
    assert (await _json(f"{gateway.url}/sandbox/v1/agencies/gz-vmo/faults"))["down"] is False
    assert await _cli("sandbox", "fault", "gz-vmo", "--status", "404", "--url", gateway.url) == 1
    assert "/error_status: invalid_value" in capsys.readouterr().err
    assert await _cli("sandbox", "fault", "gz-vmo", "--reset", "--url", gateway.url) == 0
    assert await _cli("sandbox", "faults", "--url", gateway.url) == 0
    assert "gz-vmo       healthy" in capsys.readouterr().out
