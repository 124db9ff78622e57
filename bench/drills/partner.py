"""The partners a drill counts deliveries at: its own endpoint, or a sandbox agency's inbox."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import aiohttp
from aiohttp import web

from bench.drills.harness import MATTER, call, free_port
from gateway.trust.keys import (
    SigningKey,
    VerificationKey,
    alg_for_public_key,
    generate_private_key,
    public_key_from_jwk,
)
from gateway.trust.profile import sign_response, verify_request
from gateway.web.messages import request_message


@dataclass(frozen=True)
class Received:
    """What a partner took in: each message id it processed, with its application id; how
    many repeated POSTs of an already-processed id it absorbed; how many it refused."""

    application: Mapping[str, str]
    redeliveries: int
    refused: int


async def sandbox_inbox(session: aiohttp.ClientSession, url: str, agency_id: str) -> Received:
    """A sandbox agency's inbox (in the gateway process; it de-duplicates on the message id
    and counts the repeats as ``duplicates``; refusals are not exposed)."""
    status, box = await call(session, "GET", f"{url}/sandbox/partners/{agency_id}/messages")
    if status != 200:
        raise RuntimeError(f"the sandbox inbox answered {status}")
    application = {i["message_id"]: str(i["application_id"]) for i in box["items"]}
    return Received(application, int(box["duplicates"]), 0)


class CountingPartner:
    """A partner agency's endpoint: verifies the gateway's RFC 9421 signature against its
    JWKS, de-duplicates on the message id (the Idempotency-Key), answers a signed
    acknowledgement, and counts every delivery of every message id."""

    def __init__(self, agency_id: str = "gd-drill-partner") -> None:
        self.agency_id = agency_id
        self.key = SigningKey(f"{agency_id}-1", generate_private_key("ed25519"), "ed25519")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.deliveries: Counter[str] = Counter()  # message id -> verified POSTs
        self.application: dict[str, str] = {}  # message id -> application id
        self.refused = 0  # signature or digest refused
        self._jwks: dict[str, VerificationKey] = {}
        self._runner: web.AppRunner | None = None

    @property
    def endpoint(self) -> str:
        return f"{self.base}/inbox"

    @property
    def redeliveries(self) -> int:
        return sum(n - 1 for n in self.deliveries.values())

    def received(self) -> Received:
        return Received(dict(self.application), self.redeliveries, self.refused)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/inbox", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def trust(self, session: aiohttp.ClientSession, gateway_url: str) -> None:
        """Load the gateway's published keys that sign HTTP messages (``gba_use: http``)."""
        _, jwks = await call(session, "GET", f"{gateway_url}/.well-known/jwks.json")
        for jwk in jwks["keys"]:
            if jwk.get("gba_use") != "http":
                continue
            public = public_key_from_jwk(jwk)
            self._jwks[jwk["kid"]] = VerificationKey(
                jwk["kid"], "gateway", public, alg_for_public_key(public)
            )

    def _resolve(self, kid: str) -> VerificationKey:
        return self._jwks[kid]

    async def register(self, session: aiohttp.ClientSession, gateway_url: str) -> None:
        """Register with the sandbox (again after a restart: 409 is fine) and take the
        matter's new cases (routes live in memory: PUT again after every restart)."""
        status, answer = await call(
            session,
            "POST",
            f"{gateway_url}/sandbox/v1/agencies",
            json_body={
                "agency_id": self.agency_id,
                "jurisdiction": "GD",
                "names": {"en": "Drill partner"},
                "keys": [self.key.jwk()],
                "matters": ["*"],
                "endpoint": self.endpoint,
            },
        )
        if status not in (201, 409):
            raise RuntimeError(f"registration answered {status}: {answer}")
        status, answer = await call(
            session,
            "PUT",
            f"{gateway_url}/sandbox/v1/routes/{MATTER}",
            json_body={"lead": self.agency_id},
        )
        if status != 200:
            raise RuntimeError(f"routing answered {status}: {answer}")

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        message = request_message(request, self.base)
        try:
            verify_request(message, body, resolve_key=self._resolve, now=datetime.now(UTC))
            envelope = json.loads(body)
            message_id = request.headers["Idempotency-Key"]
            if envelope.get("message_id") != message_id:
                raise ValueError("message id and Idempotency-Key differ")
        except Exception:  # any refusal: the gateway retries; the count shows it
            self.refused += 1
            return web.Response(status=401, text="refused\n")
        duplicate = message_id in self.deliveries
        self.deliveries[message_id] += 1
        self.application.setdefault(message_id, str(envelope.get("application_id")))
        ack = json.dumps(
            {
                "message_id": message_id,
                "status": "duplicate" if duplicate else "received",
                "received_at": datetime.now(UTC).isoformat(),
            }
        ).encode()
        headers = sign_response(
            status=200,
            body=ack,
            content_type="application/json",
            request=message,
            key=self.key,
            now=datetime.now(UTC),
        )
        return web.Response(status=200, body=ack, headers=headers)
