"""Fault switches of the sandbox agencies: each switch changes what the agency's inbox does,
the API refuses bad switches with every problem listed, and a healthy inbox refuses replays.

The inbox is called as the gateway's relay calls it: a signed POST with the gateway's HTTP key.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest

from gateway.domain.errors import GatewayError
from gateway.sandbox.routes import PARTNERS
from gateway.trust.httpsig import HttpMessage
from gateway.trust.profile import sign_request, verify_response
from gateway.web.keys import KEYRING
from gateway.web.messages import client_response_message
from tests.conftest import RunningGateway
from tests.support import agency_key

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

AGENCY = "mo-dsf"  # decides nothing on its own: deliveries stay in its inbox


async def _call(
    gateway: RunningGateway, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, gateway.url + path, json=body) as response,
    ):
        return response.status, await response.json(content_type=None)


def _delivery(
    gateway: RunningGateway, message_id: str, *, now: datetime | None = None
) -> tuple[str, bytes, dict[str, str]]:
    """A forward as the relay sends it: signed with the gateway's HTTP key."""
    url = f"{gateway.url}/sandbox/partners/{AGENCY}/messages"
    body = json.dumps({"message_id": message_id, "matter": "x", "stage": "review"}).encode()
    headers = sign_request(
        method="POST",
        url=url,
        key=gateway.app[KEYRING].current("http"),  # type: ignore[index]
        now=now or datetime.now(UTC),
        body=body,
        content_type="application/json",
        idempotency_key=message_id,
    )
    return url, body, headers


async def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        return response.status, await response.read(), response


def _verify_answer(
    gateway: RunningGateway, response: Any, answer: bytes, url: str, headers: dict[str, str]
) -> None:
    key = agency_key(gateway.settings, AGENCY)
    verify_response(
        client_response_message(response),
        answer,
        request=HttpMessage.request("POST", url, headers),
        resolve_key=lambda _kid: key.public,
        now=datetime.now(UTC),
    )


def _inbox(gateway: RunningGateway) -> Any:
    return gateway.app[PARTNERS].inboxes[AGENCY]  # type: ignore[index]


async def test_a_healthy_agency_acknowledges_signed_and_refuses_a_replay(
    gateway: RunningGateway,
) -> None:
    url, body, headers = _delivery(gateway, "msg-" + secrets.token_hex(6))
    status, answer, response = await _post(url, body, headers)
    assert status == 200
    _verify_answer(gateway, response, answer, url, headers)
    status, answer, response = await _post(url, body, headers)  # the same bytes again
    assert status == 401
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert json.loads(answer)["type"].endswith("/problems/replayed-request")
    _verify_answer(gateway, response, answer, url, headers)  # refusals are signed too
    assert len(_inbox(gateway).messages) == 1
    assert _inbox(gateway).duplicates == 0


async def test_a_delivery_whose_signature_fails_gets_an_unsigned_refusal(
    gateway: RunningGateway,
) -> None:
    """The sandbox agency mirrors the gateway: nothing to bind a signature to, none given."""
    url, body, headers = _delivery(gateway, "msg-" + secrets.token_hex(6))
    status, _, response = await _post(url, body + b" ", headers)  # digest now wrong
    assert status == 400
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert "Signature" not in response.headers
    assert _inbox(gateway).messages == {}


async def test_down_answers_503_and_keeps_nothing_until_healed(gateway: RunningGateway) -> None:
    status, faults = await _call(
        gateway, "PATCH", f"/sandbox/v1/agencies/{AGENCY}/faults", {"down": True}
    )
    assert status == 200
    assert faults["down"] is True
    assert faults["healthy"] is False
    url, body, headers = _delivery(gateway, "msg-" + secrets.token_hex(6))
    assert (await _post(url, body, headers))[0] == 503
    assert _inbox(gateway).messages == {}
    assert _inbox(gateway).unavailable == 1
    status, faults = await _call(gateway, "DELETE", f"/sandbox/v1/agencies/{AGENCY}/faults")
    assert status == 200
    assert faults["healthy"] is True
    url, body, headers = _delivery(gateway, "msg-" + secrets.token_hex(6))
    assert (await _post(url, body, headers))[0] == 200


async def test_error_status_is_a_signed_problem_and_nothing_is_kept(
    gateway: RunningGateway,
) -> None:
    await _call(gateway, "PUT", f"/sandbox/v1/agencies/{AGENCY}/faults", {"error_status": 502})
    url, body, headers = _delivery(gateway, "msg-" + secrets.token_hex(6))
    status, answer, response = await _post(url, body, headers)
    assert status == 502
    assert json.loads(answer)["status"] == 502
    _verify_answer(gateway, response, answer, url, headers)
    assert _inbox(gateway).messages == {}


@pytest.mark.parametrize(
    ("switches", "reason"),
    [
        ({"signature": "wrong"}, "signature"),
        ({"signature": "missing"}, "signature"),
        ({"clock_skew_s": 3600}, "created"),
    ],
)
async def test_bad_signatures_and_skewed_clocks_fail_verification(
    gateway: RunningGateway, switches: dict[str, Any], reason: str
) -> None:
    await _call(gateway, "PUT", f"/sandbox/v1/agencies/{AGENCY}/faults", switches)
    url, body, headers = _delivery(gateway, "msg-" + secrets.token_hex(6))
    status, answer, response = await _post(url, body, headers)
    assert status == 200  # it took the message in: only its answer is wrong
    with pytest.raises(GatewayError) as refused:
        _verify_answer(gateway, response, answer, url, headers)
    assert refused.value.status == 401


async def test_latency_delays_the_answer(gateway: RunningGateway) -> None:
    await _call(gateway, "PATCH", f"/sandbox/v1/agencies/{AGENCY}/faults", {"latency_ms": 300})
    url, body, headers = _delivery(gateway, "msg-" + secrets.token_hex(6))
    started = time.monotonic()
    assert (await _post(url, body, headers))[0] == 200
    assert time.monotonic() - started >= 0.3


async def test_timeout_holds_the_request_past_the_clients_patience(
    gateway: RunningGateway,
) -> None:
    await _call(gateway, "PATCH", f"/sandbox/v1/agencies/{AGENCY}/faults", {"timeout": True})
    url, body, headers = _delivery(gateway, "msg-" + secrets.token_hex(6))
    with pytest.raises(asyncio.TimeoutError):
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session,
            session.post(url, data=body, headers=headers) as response,
        ):
            await response.read()
    assert _inbox(gateway).messages == {}


async def test_the_lax_agency_takes_tampered_stale_and_repeated_messages(
    gateway: RunningGateway,
) -> None:
    await _call(gateway, "PATCH", f"/sandbox/v1/agencies/{AGENCY}/faults", {"lax": True})
    message_id = "msg-" + secrets.token_hex(6)
    url, body, headers = _delivery(gateway, message_id, now=datetime.now(UTC) - timedelta(hours=1))
    tampered = body.replace(b'"x"', b'"y"')
    assert (await _post(url, tampered, headers))[0] == 200  # stale and tampered: taken in
    status, answer, _ = await _post(url, body, headers)  # a replay: processed again
    assert status == 200
    assert json.loads(answer)["status"] == "received"
    assert _inbox(gateway).deliveries == 2
    assert _inbox(gateway).duplicates == 0
    status, answer, response = await _post(url, b"not json", headers)
    assert status == 400
    assert response.headers["Content-Type"].startswith("text/plain")


async def test_bad_switches_are_refused_with_every_problem_and_nothing_changes(
    gateway: RunningGateway,
) -> None:
    path = f"/sandbox/v1/agencies/{AGENCY}/faults"
    bad = {
        "down": "yes",
        "error_status": 404,
        "signature": "forged",
        "colour": "red",
        "latency_ms": -1,
        "clock_skew_s": True,
    }
    status, problem = await _call(gateway, "PATCH", path, bad)
    assert status == 422
    assert {e["pointer"] for e in problem["errors"]} == {f"/{name}" for name in bad}
    assert (await _call(gateway, "GET", path))[1]["healthy"] is True
    assert (await _call(gateway, "GET", "/sandbox/v1/agencies/no-such/faults"))[0] == 404
    status, listing = await _call(gateway, "GET", "/sandbox/v1/faults")
    assert status == 200
    assert all(item["healthy"] for item in listing["items"])
    assert AGENCY in {item["agency_id"] for item in listing["items"]}


async def test_out_of_order_and_duplicate_calls_still_give_one_decision(
    gateway: RunningGateway,
) -> None:
    """The premature decision is refused, the repeated calls answered once: the case ends
    approved with one decision on its timeline."""
    from tests.support import sample_xml, send

    await _call(
        gateway,
        "PUT",
        "/sandbox/v1/agencies/gd-hq-csb/faults",
        {"out_of_order": True, "duplicates": True},
    )
    answer = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=sample_xml(),
        content_type="application/xml",
    )
    application_id = answer.json()["application_id"]
    view: dict[str, Any] = {}
    for _ in range(400):
        view = (await send(gateway.settings, "GET", f"/v1/applications/{application_id}")).json()
        if view["status"] == "approved":
            break
        await asyncio.sleep(0.05)
    assert view["status"] == "approved"
    decisions = [e for e in view["timeline"] if e["type"] == "decision.recorded"]
    assert len(decisions) == 1
