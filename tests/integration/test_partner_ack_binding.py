"""The relay takes an acknowledgement only when it is bound to the request it sent.

A partner (or anything between) answering with an acknowledgement signed for another
request to the same endpoint, or signed without covering our request's signature, is not
an acknowledgement: delivery stays transient and is tried again (issue 13, item 8).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web

from gateway.domain.agencies import Agency
from gateway.domain.errors import TransientDeliveryError, UnknownKeyError
from gateway.egress.policy import EgressPolicy
from gateway.services.ports import OutboxMessage
from gateway.trust.digest import content_digest
from gateway.trust.httpsig import HttpMessage, SignatureParams, components, sign
from gateway.trust.keys import SigningKey, VerificationKey, generate_private_key
from gateway.trust.profile import sign_response
from gateway.web.messages import request_message
from gateway.web.partner_client import HttpPartnerTransport

PARTNER = "mo-partner"


class Partner:
    """An inbox answering ``mode``: bound (right), unbound (old profile) or replayed."""

    def __init__(self) -> None:
        self.key = SigningKey(f"{PARTNER}-1", generate_private_key("ed25519"), "ed25519")
        self.mode = "bound"
        self.first: tuple[bytes, dict[str, str]] | None = None

    async def receive(self, request: web.Request) -> web.Response:
        body = json.dumps({"message_id": request.headers["Idempotency-Key"]}).encode()
        message = request_message(request, f"http://{request.host}")
        if self.mode == "replayed" and self.first is not None:
            old_body, old_headers = self.first
            return web.Response(status=200, body=old_body, headers=old_headers)
        if self.mode == "unbound":
            headers = {"Content-Type": "application/json", "Content-Digest": content_digest(body)}
            params = SignatureParams(
                components=components(
                    "@status",
                    "content-digest",
                    "content-type",
                    '"@method";req',
                    '"@target-uri";req',
                ),
                created=int(datetime.now(UTC).timestamp()),
                keyid=self.key.kid,
                nonce="n-" + request.headers["Idempotency-Key"],
                tag="gba-gateway",
            )
            answer = HttpMessage.response(200, headers)
            headers.update(sign(answer, self.key, params, request=message))
        else:
            headers = sign_response(
                status=200,
                body=body,
                content_type="application/json",
                request=message,
                key=self.key,
                now=datetime.now(UTC),
            )
        self.first = self.first or (body, headers)
        return web.Response(status=200, body=body, headers=headers)


@pytest.fixture
async def delivery(aiohttp_server: Any) -> Any:
    partner = Partner()
    app = web.Application()
    app.router.add_post("/in", partner.receive)
    server = await aiohttp_server(app, host="127.0.0.1")
    gateway_key = SigningKey("gw-http-1", generate_private_key("ed25519"), "ed25519")

    async def lookup(kid: str) -> VerificationKey:
        if kid != partner.key.kid:
            raise UnknownKeyError("unknown key")
        return VerificationKey(kid, PARTNER, partner.key.public.public_key, "ed25519")

    class Clock:
        def now(self) -> datetime:
            return datetime.now(UTC)

    transport = HttpPartnerTransport(
        lambda: gateway_key, lookup, Clock(), egress=EgressPolicy(sandbox=True)
    )
    agency = Agency(PARTNER, "MO", {"en": "Partner"}, str(server.make_url("/in")), ("*",))
    yield partner, transport, agency
    await transport.close()


def _message(n: int) -> OutboxMessage:
    body = json.dumps({"message_id": f"msg-{n}"}).encode()
    return OutboxMessage(f"msg-{n}", "app_1", PARTNER, "application/json", body)


async def test_an_acknowledgement_bound_to_our_request_is_taken(delivery: Any) -> None:
    partner, transport, agency = delivery
    ack = await transport.deliver(agency, _message(1))
    assert ack.key_id == partner.key.kid


@pytest.mark.parametrize("mode", ["unbound", "replayed"])
async def test_an_acknowledgement_not_bound_to_our_request_signature_is_refused(
    delivery: Any, mode: str
) -> None:
    partner, transport, agency = delivery
    await transport.deliver(agency, _message(1))  # a genuine ack, kept by the partner
    partner.mode = mode
    with pytest.raises(TransientDeliveryError, match="acknowledgement does not verify"):
        await transport.deliver(agency, _message(2))
