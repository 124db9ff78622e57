"""The production SMS adapter against a fake SMS gateway on a real socket: what it sends, how
each answer maps to what the notification queue does (retry or park), and that it follows no
redirect and calls no refused address."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.domain.errors import PermanentDeliveryError, TransientDeliveryError
from gateway.egress.policy import EgressPolicy
from gateway.egress.sms import HttpSmsSender

SANDBOX = EgressPolicy(sandbox=True)  # loopback allowed, as in sandbox mode
PRODUCTION = EgressPolicy()  # loopback and private addresses refused


class FakeSmsGateway:
    """Answers each POST with the next status of ``answers`` (then 200), keeping what came."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, Any], str | None]] = []
        self.answers: list[int] = []
        self.redirected = 0

    async def post(self, request: web.Request) -> web.Response:
        self.received.append((await request.json(), request.headers.get("Authorization")))
        status = self.answers.pop(0) if self.answers else 200
        if status == 302:
            return web.Response(status=302, headers={"Location": "/elsewhere"})
        return web.json_response({"status": status}, status=status)

    async def elsewhere(self, request: web.Request) -> web.Response:
        self.redirected += 1
        return web.json_response({})


@pytest.fixture
async def sms_gateway() -> AsyncIterator[tuple[FakeSmsGateway, str]]:
    fake = FakeSmsGateway()
    app = web.Application()
    app.router.add_post("/send", fake.post)
    app.router.add_route("*", "/elsewhere", fake.elsewhere)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield fake, str(server.make_url("/send"))
    finally:
        await server.close()


async def _send(url: str, policy: EgressPolicy = SANDBOX, token: str | None = None) -> None:
    sender = HttpSmsSender(url, egress=policy, token=token, timeout=5.0)
    try:
        await sender.send_sms("+85291234567", "您的申請已獲受理。", message_id="ntf_1")
    finally:
        await sender.close()


async def test_a_text_is_posted_with_its_reference_and_bearer_token(
    sms_gateway: tuple[FakeSmsGateway, str],
) -> None:
    fake, url = sms_gateway
    await _send(url, token="s3cret")
    assert fake.received == [
        (
            {"to": "+85291234567", "text": "您的申請已獲受理。", "reference": "ntf_1"},
            "Bearer s3cret",
        )
    ]


@pytest.mark.parametrize("status", [500, 503, 408, 425, 429])
async def test_a_busy_or_failing_gateway_is_retried_later(
    sms_gateway: tuple[FakeSmsGateway, str], status: int
) -> None:
    fake, url = sms_gateway
    fake.answers = [status]
    with pytest.raises(TransientDeliveryError, match=str(status)):
        await _send(url)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_a_refused_text_is_parked_not_retried(
    sms_gateway: tuple[FakeSmsGateway, str], status: int
) -> None:
    fake, url = sms_gateway
    fake.answers = [status]
    with pytest.raises(PermanentDeliveryError, match=str(status)):
        await _send(url)


async def test_a_redirect_is_not_followed(sms_gateway: tuple[FakeSmsGateway, str]) -> None:
    fake, url = sms_gateway
    fake.answers = [302]
    with pytest.raises(PermanentDeliveryError, match="302"):
        await _send(url)
    assert fake.redirected == 0


async def test_an_unreachable_gateway_is_retried_later() -> None:
    with socket.socket() as free:  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(TransientDeliveryError, match="unreachable"):
        await _send(f"http://127.0.0.1:{port}/send")


async def test_a_refused_address_is_never_called(sms_gateway: tuple[FakeSmsGateway, str]) -> None:
    fake, url = sms_gateway
    with pytest.raises(PermanentDeliveryError, match="refused"):
        await _send(url, PRODUCTION)
    assert fake.received == []
