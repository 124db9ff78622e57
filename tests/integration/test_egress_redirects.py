"""No outbound client of the gateway follows a redirect, and production calls only where the
egress policy allows, at send time as well as at registration.

Partner, webhook and identity-provider endpoints are real aiohttp servers on loopback: the
first answers a redirect to the second, which must receive nothing. The relay runs with the
real HTTP transport over the in-memory unit of work, so the case timeline is what it records.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.conformance.credentials import partner_keys
from gateway.domain.agencies import Agency
from gateway.domain.application import Application
from gateway.domain.errors import (
    ConfigurationError,
    LoginFailedError,
    NotReadyError,
    PermanentDeliveryError,
)
from gateway.egress.client import RedirectRefusedError, client_session
from gateway.egress.policy import EgressPolicy
from gateway.identity.discovery import ProviderConfig, Upstreams
from gateway.identity.relying_party import RelyingParty
from gateway.sandbox.samples import SANDBOX_LEGAL_BASIS
from gateway.services.ports import Notification, OutboxMessage
from gateway.services.relay import Relay, RelayPolicy
from gateway.trust.keys import SigningKey, VerificationKey, generate_private_key
from gateway.web.notifier import WebhookNotifier
from gateway.web.partner_client import HttpPartnerTransport
from tests.fakes import FakeDirectory, FakeUnitOfWorkFactory, FixedClock

SANDBOX = EgressPolicy(sandbox=True)
PRODUCTION = EgressPolicy(sandbox=False)
MATTER = "11440400MB2C00081P4440120002000"
PARTNER = "gd-hq-csb"
NOW = datetime.now(UTC).replace(microsecond=0)
KEY = SigningKey("gateway-http-test", generate_private_key("ed25519"), "ed25519")
ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


class Endpoint:
    """A loopback server that counts each request and answers ``status`` (with ``location``)."""

    def __init__(self, status: int = 200, location: str = "", body: Any = None) -> None:
        self.status, self.location, self.body = status, location, body
        self.requests: list[tuple[str, str]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.requests.append((request.method, request.path))
        headers = {"Location": self.location} if self.location else {}
        if self.body is not None:
            return web.json_response(self.body, status=self.status, headers=headers)
        return web.Response(status=self.status, headers=headers)

    async def start(self, aiohttp_server: ServerFactory) -> Endpoint:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        server = await aiohttp_server(app)
        self.url = str(server.make_url("")).rstrip("/")
        return self


async def redirecting(aiohttp_server: ServerFactory, status: int) -> tuple[Endpoint, Endpoint]:
    """A first endpoint answering ``status`` with a Location on a second one."""
    second = await Endpoint().start(aiohttp_server)
    first = await Endpoint(status, second.url + "/elsewhere").start(aiohttp_server)
    return first, second


async def _no_key(kid: str) -> VerificationKey:
    raise AssertionError("no acknowledgement is verified when the delivery failed")


def transport(egress: EgressPolicy) -> HttpPartnerTransport:
    return HttpPartnerTransport(lambda: KEY, _no_key, FixedClock(NOW), egress=egress, timeout=5)


async def queued_case(endpoint: str) -> tuple[FakeUnitOfWorkFactory, str]:
    """An accepted case with one forward queued to PARTNER, whose endpoint is ``endpoint``."""
    uow = FakeUnitOfWorkFactory()
    uow.agencies = FakeDirectory([Agency(PARTNER, "GD", {"en": "Bureau"}, endpoint)])
    app = Application.receive(
        application_id="app_01",
        matter=MATTER,
        matter_version=1,
        submitted_by="hk-ird",
        channel="online",
        source_format="canonical",
        content_digest="sha-256=:AAAA:",
        document={"matter": MATTER},
        handlers=(PARTNER,),
        missing=(),
        deadline="2026-03-03",
        at=NOW,
        legal_basis=SANDBOX_LEGAL_BASIS.record(),  # an agency case declares it
    )
    message_id = "msg_app_01"
    async with uow() as tx:
        app.message_queued(PARTNER, message_id, NOW)
        await tx.outbox.add(
            OutboxMessage(
                message_id,
                "app_01",
                PARTNER,
                "application/json",
                b"{}",
                next_attempt_at=NOW,
                relies_on="legal_basis",
            )
        )
        await tx.applications.add(app)
        await tx.commit()
    return uow, message_id


async def relay_once(uow: FakeUnitOfWorkFactory, egress: EgressPolicy) -> FixedClock:
    clock = FixedClock(NOW)
    sender = transport(egress)
    try:
        relay = Relay(uow, sender, clock, RelayPolicy(backoff_initial=0.01, backoff_max=0.01))
        assert await relay.run_once() == 1
        clock.advance(hours=1)  # any retry would be due by now
        await relay.run_once()
    finally:
        await sender.close()
    return clock


def failures(uow: FakeUnitOfWorkFactory) -> list[str]:
    kinds = ("message.dead_lettered", "message.retry_scheduled")
    return [e.data["error"] for e in uow.timeline("app_01") if e.type in kinds]


@pytest.mark.parametrize("status", [307, 308, 302, 301, 303])
async def test_a_partner_redirect_is_a_failed_delivery_never_reposted(
    aiohttp_server: ServerFactory, status: int
) -> None:
    first, second = await redirecting(aiohttp_server, status)
    uow, message_id = await queued_case(first.url + "/inbox")

    await relay_once(uow, SANDBOX)

    assert first.requests == [("POST", "/inbox")]  # exactly once, and not retried
    assert second.requests == []  # its Location never received the application
    stored = uow.message(message_id)
    assert (stored.status, stored.attempts) == ("dead", 1)
    assert failures(uow) == [f"delivery failed (HTTP {status}): partners must not redirect"]
    assert stored.last_error == failures(uow)[0]


async def test_an_unreachable_partner_is_unreachable_on_the_timeline_with_no_network_detail() -> (
    None
):
    port = str(_closed_port())
    uow, message_id = await queued_case(f"http://127.0.0.1:{port}/inbox")

    await relay_once(uow, SANDBOX)

    recorded = [*failures(uow), uow.message(message_id).last_error or ""]
    assert set(recorded) == {"delivery failed: unreachable"}
    for text in recorded:
        for leak in ("127.0.0.1", port, "Errno", "refused", "Connect", "ssl"):
            assert leak not in text


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_production_refuses_plain_http_at_send_time_and_sends_nothing(
    aiohttp_server: ServerFactory,
) -> None:
    endpoint = await Endpoint().start(aiohttp_server)
    uow, message_id = await queued_case(endpoint.url + "/inbox")  # http://127.0.0.1:port

    await relay_once(uow, PRODUCTION)

    assert endpoint.requests == []
    assert uow.message(message_id).status == "dead"
    assert failures(uow) == ["delivery failed: the endpoint is refused by the egress policy"]


async def test_production_refuses_a_name_resolving_to_loopback_at_connect_time(
    aiohttp_server: ServerFactory,
) -> None:
    endpoint = await Endpoint().start(aiohttp_server)
    port = endpoint.url.rsplit(":", 1)[1]
    allow_http = EgressPolicy.parse(sandbox=False, allow_http=["localhost"])
    uow, message_id = await queued_case(f"http://localhost:{port}/inbox")

    await relay_once(uow, allow_http)  # the URL passes; what localhost resolves to does not

    assert endpoint.requests == []
    assert uow.message(message_id).status in ("pending", "in_flight")  # retried, transient
    assert set(failures(uow)) == {"delivery failed: unreachable"}


async def test_the_webhook_notifier_does_not_follow_a_redirect(
    aiohttp_server: ServerFactory,
) -> None:
    first, second = await redirecting(aiohttp_server, 307)
    notifier = WebhookNotifier(lambda: KEY, FixedClock(NOW), egress=SANDBOX, timeout=5)
    agency = Agency(PARTNER, "GD", {"en": "Bureau"}, first.url + "/partner")
    note = Notification("ntf_1", "app_01", PARTNER, "application.accepted", {"n": 1}, NOW)
    try:
        with pytest.raises(PermanentDeliveryError, match=r"notification failed \(HTTP 307\)"):
            await notifier.notify(agency, note)
    finally:
        await notifier.close()
    assert first.requests == [("POST", "/partner/notifications")]
    assert second.requests == []


def _discovery(first: Endpoint, jwks_uri: str) -> dict[str, Any]:
    return {
        "issuer": first.url,
        "authorization_endpoint": first.url + "/authorize",
        "token_endpoint": first.url + "/token",
        "jwks_uri": jwks_uri,
    }


def _config(url: str) -> ProviderConfig:
    return ProviderConfig("hk", url + "/.well-known/openid-configuration", "gw", ("ES256",))


async def test_identity_provider_discovery_does_not_follow_a_redirect(
    aiohttp_server: ServerFactory,
) -> None:
    first, second = await redirecting(aiohttp_server, 302)
    second.body = _discovery(first, second.url + "/jwks")
    upstreams = Upstreams((_config(first.url),), egress=SANDBOX, timeout=5)

    with pytest.raises(NotReadyError, match=r"redirect \(HTTP 302\), which is not followed"):
        await upstreams.metadata("hk")

    assert first.requests == [("GET", "/.well-known/openid-configuration")]
    assert second.requests == []


async def test_identity_provider_key_set_does_not_follow_a_redirect(
    aiohttp_server: ServerFactory,
) -> None:
    elsewhere = await Endpoint(body={"keys": []}).start(aiohttp_server)
    jwks = await Endpoint(307, elsewhere.url + "/jwks").start(aiohttp_server)
    issuer = await Endpoint().start(aiohttp_server)
    issuer.body = _discovery(issuer, jwks.url + "/jwks")

    with pytest.raises(NotReadyError, match=r"redirect \(HTTP 307\)"):
        await Upstreams((_config(issuer.url),), egress=SANDBOX, timeout=5).metadata("hk")

    assert jwks.requests == [("GET", "/jwks")]
    assert elsewhere.requests == []


async def test_identity_provider_token_endpoint_does_not_follow_a_redirect(
    aiohttp_server: ServerFactory,
) -> None:
    first, second = await redirecting(aiohttp_server, 308)
    party = RelyingParty(
        Upstreams((), egress=SANDBOX, timeout=5),
        {},
        None,  # type: ignore[arg-type]  # the store is not reached
        lambda: KEY,
        base_url="http://127.0.0.1",
        sandbox=True,
        timeout=5,
        now=lambda: datetime.now(UTC),
    )
    with pytest.raises(LoginFailedError, match=r"redirect \(308\), which is not followed"):
        await party._post(first.url + "/token", {"code": "x"}, "token")
    assert first.requests == [("POST", "/token")]
    assert second.requests == []


async def test_production_discovery_refuses_loopback_and_plain_http(
    aiohttp_server: ServerFactory,
) -> None:
    issuer = await Endpoint().start(aiohttp_server)
    issuer.body = _discovery(issuer, issuer.url + "/jwks")
    https = issuer.url.replace("http://", "https://")
    for url in (issuer.url, https):
        with pytest.raises(NotReadyError, match="not reachable"):
            await Upstreams((_config(url),), egress=PRODUCTION, timeout=5).metadata("hk")
    assert issuer.requests == []


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_every_session_of_the_factory_refuses_a_redirect_a_caller_would_follow(
    aiohttp_server: ServerFactory, status: int
) -> None:
    first, second = await redirecting(aiohttp_server, status)
    timeout = aiohttp.ClientTimeout(total=5)
    async with client_session(SANDBOX, timeout=timeout) as session:
        with pytest.raises(RedirectRefusedError, match=f"HTTP {status}"):
            async with session.post(first.url + "/in", data=json.dumps({}).encode()):
                pass  # pragma: no cover
        with pytest.raises(RedirectRefusedError):
            async with session.get(first.url + "/in"):
                pass  # pragma: no cover
    assert first.requests == [("POST", "/in"), ("GET", "/in")]
    assert second.requests == []


async def test_the_conformance_kit_does_not_follow_a_redirect_for_partner_keys(
    aiohttp_server: ServerFactory,
) -> None:
    first, second = await redirecting(aiohttp_server, 302)
    second.body = {"keys": []}
    async with aiohttp.ClientSession() as session:
        with pytest.raises(ConfigurationError, match="answered 302"):
            await partner_keys(first.url + "/jwks", first.url + "/inbox", session)
    assert first.requests == [("GET", "/jwks")]
    assert second.requests == []
