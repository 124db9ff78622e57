"""A hostile partner endpoint answering a delivery with a signature-header bomb (item 1).

The relay verifies acknowledgements with the same code that verifies requests, so before
the bound it parsed every line of the partner's ``Signature`` header on the event loop.
Now the delivery fails at once as a transient error (retried later by the relay's
schedule), and the event loop keeps running meanwhile.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from gateway.domain.agencies import Agency
from gateway.domain.errors import TransientDeliveryError
from gateway.egress.policy import EgressPolicy
from gateway.services.ports import OutboxMessage
from gateway.trust.keys import SigningKey, VerificationKey, generate_private_key
from gateway.web.partner_client import HttpPartnerTransport

LINES = 100  # within aiohttp's client limit of 128 header fields
LINE = ("a=1," * 2000).rstrip(",")  # within its 8190 bytes per field


class FixedClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


async def _hostile_partner(aiohttp_server: Any, name: str) -> str:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        response = web.json_response({"status": "received"})
        for _ in range(LINES):
            response.headers.add(name, LINE)
        response.headers.add("Signature-Input" if name == "Signature" else "Signature", "x=1")
        return response

    app = web.Application()
    app.router.add_post("/in", answer)
    server = await aiohttp_server(app)
    return str(server.make_url("/in"))


async def _ticks(stop: asyncio.Event) -> float:
    """The longest the event loop went without running this task (seconds)."""
    longest, last = 0.0, time.monotonic()
    while not stop.is_set():
        await asyncio.sleep(0.005)
        now = time.monotonic()
        longest, last = max(longest, now - last), now
    return longest


@pytest.mark.parametrize("name", ["Signature-Input", "Signature"])
async def test_a_signature_bomb_in_an_acknowledgement_fails_the_delivery_fast(
    aiohttp_server: Any, name: str
) -> None:
    endpoint = await _hostile_partner(aiohttp_server, name)
    ours = SigningKey("gw-http-1", generate_private_key("ed25519"), "ed25519")
    looked_up: list[str] = []

    async def key_lookup(kid: str) -> VerificationKey:
        looked_up.append(kid)
        raise AssertionError("no key is looked up for an acknowledgement beyond the bounds")

    transport = HttpPartnerTransport(
        lambda: ours, key_lookup, FixedClock(), egress=EgressPolicy(sandbox=True), timeout=10.0
    )
    agency = Agency("gd-hostile", "GD", {"en": "Hostile"}, endpoint)
    message = OutboxMessage("msg-1", "app-1", agency.id, "application/json", b"{}")
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticks(stop))
    started = time.monotonic()
    try:
        with pytest.raises(TransientDeliveryError, match=r"does not verify \(signature-invalid\)"):
            await transport.deliver(agency, message)
    finally:
        elapsed = time.monotonic() - started
        stop.set()
        await transport.close()
    assert elapsed < 2.0
    assert await ticker < 0.5  # the loop was never frozen
    assert looked_up == []
