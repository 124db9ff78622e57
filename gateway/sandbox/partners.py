"""Mock partner agencies: real endpoints that verify, de-duplicate, acknowledge and decide.

Each sandbox agency has an inbox at ``/sandbox/partners/{agency_id}/messages``. It verifies
the gateway's RFC 9421 signature and the Content-Digest, de-duplicates on the message id
(the ``Idempotency-Key``), answers with a signed acknowledgement bound to the request, and,
when the agency is set to decide, posts its signed decision back through the partner API
like any real agency system would. ``set_down`` takes an inbox down (503) for a while.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from gateway.domain.errors import BadRequestError, GatewayError, NotFoundError
from gateway.mapping.canonical import loads_strict
from gateway.sandbox.agencies import SandboxAgency
from gateway.services.ports import Clock
from gateway.trust.httpsig import HttpMessage
from gateway.trust.keys import SigningKey, VerificationKey
from gateway.trust.profile import sign_request, sign_response, verify_request, verify_response
from gateway.web.messages import client_response_message, request_message

log = structlog.get_logger("gateway.sandbox")


@dataclass(slots=True)
class Inbox:
    """What one sandbox agency has received (in memory: the sandbox is for testing)."""

    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: int = 0
    unavailable: int = 0  # messages turned away with 503 while the agency was down


class SandboxPartners:
    def __init__(
        self,
        agencies: dict[str, tuple[SandboxAgency, SigningKey]],
        gateway_keys: Callable[[str], VerificationKey],
        base_url: str,
        clock: Clock,
        decision_delay: float = 0.2,
    ) -> None:
        self._agencies = agencies
        self._resolve_gateway_key = gateway_keys
        self._base_url = base_url
        self._clock = clock
        self._delay = decision_delay
        self.inboxes: dict[str, Inbox] = {agency_id: Inbox() for agency_id in agencies}
        self.auto_decide = True  # agencies set to decide do so; testers may switch it off
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._down: set[str] = set()

    def set_down(self, agency_id: str, down: bool = True) -> None:
        """Take an agency's inbox down (it answers 503, unsigned, keeping nothing) or back up."""
        if agency_id not in self._agencies:
            raise NotFoundError("no such sandbox agency")
        if down:
            self._down.add(agency_id)
        else:
            self._down.discard(agency_id)

    def is_down(self, agency_id: str) -> bool:
        return agency_id in self._down

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    async def receive(self, request: web.Request) -> web.Response:
        agency_id = request.match_info["agency_id"]
        if agency_id not in self._agencies:
            raise NotFoundError("no such sandbox agency")
        agency, key = self._agencies[agency_id]
        body = await request.read()
        if agency_id in self._down:
            self.inboxes[agency_id].unavailable += 1
            log.info("sandbox.partner_down", agency=agency_id)
            return web.Response(status=503, text="the agency is down (sandbox)\n")
        incoming = request_message(request, self._base_url)
        try:
            verify_request(
                incoming, body, resolve_key=self._resolve_gateway_key, now=self._clock.now()
            )
            envelope = loads_strict(body)
            message_id = request.headers.get("Idempotency-Key", "")
            if not isinstance(envelope, dict) or envelope.get("message_id") != message_id:
                raise BadRequestError("the message id and the Idempotency-Key differ")
        except GatewayError as error:
            log.warning("sandbox.partner_refused", agency=agency_id, problem=error.slug)
            return self._signed(
                request, agency, key, error.status, {"status": "refused", "problem": error.slug}
            )
        inbox = self.inboxes[agency_id]
        duplicate = message_id in inbox.messages
        if duplicate:
            inbox.duplicates += 1
        else:
            inbox.messages[message_id] = envelope
            log.info("sandbox.partner_received", agency=agency_id, message_id=message_id)
            if agency.auto_decision and self.auto_decide:
                application_id = str(envelope["application_id"])
                examine = envelope.get("stage") == "examination"
                self._spawn(self._decide(agency, key, application_id, examine=examine))
        return self._signed(
            request,
            agency,
            key,
            200,
            {
                "message_id": message_id,
                "status": "duplicate" if duplicate else "received",
                "received_at": self._clock.now().isoformat(),
            },
        )

    def _signed(
        self,
        request: web.Request,
        agency: SandboxAgency,
        key: SigningKey,
        status: int,
        payload: dict[str, Any],
    ) -> web.Response:
        body = json.dumps(payload).encode()
        headers = sign_response(
            status=status,
            body=body,
            content_type="application/json",
            request=request_message(request, self._base_url),
            key=key,
            now=self._clock.now(),
        )
        return web.Response(status=status, body=body, headers=headers)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _decide(
        self, agency: SandboxAgency, key: SigningKey, application_id: str, *, examine: bool
    ) -> None:
        """Accept the case first when it came for examination (the lead of an
        agency-accepted matter), then post the agency's decision; signed with its own key."""
        await asyncio.sleep(self._delay)
        assert agency.auto_decision is not None
        base = f"{self._base_url}/v1/applications/{application_id}"
        try:
            if examine:
                status = await self._post(
                    key, f"{base}/acceptance", {"outcome": "accepted"}, f"accept-{application_id}"
                )
                log.info("sandbox.acceptance_posted", agency=agency.id, status=status)
            decision = {"decision": agency.auto_decision, "reasons": []}
            status = await self._post(
                key, f"{base}/decisions", decision, f"decision-{application_id}"
            )
            log.info("sandbox.decision_posted", agency=agency.id, status=status)
        except (aiohttp.ClientError, TimeoutError, GatewayError) as exc:
            log.warning("sandbox.decision_failed", agency=agency.id, error=type(exc).__name__)

    async def _post(
        self, key: SigningKey, url: str, payload: dict[str, Any], idempotency_key: str
    ) -> int:
        """POST through the partner API; a 409 (the case is not there yet: the relay may not
        have recorded an acknowledgement) is tried again a few times."""
        assert self._session is not None
        body = json.dumps(payload).encode()
        status = 0
        for attempt in range(8):
            headers = sign_request(
                method="POST",
                url=url,
                key=key,
                now=self._clock.now(),
                body=body,
                content_type="application/json",
                idempotency_key=idempotency_key,
            )
            async with self._session.post(url, data=body, headers=headers) as response:
                answer = await response.read()
                verify_response(
                    client_response_message(response),
                    answer,
                    request=HttpMessage.request("POST", url, headers),
                    resolve_key=self._resolve_gateway_key,
                    now=self._clock.now(),
                )
                status = response.status
            if status != 409:
                break
            await asyncio.sleep(0.1 * (attempt + 1))
        return status
