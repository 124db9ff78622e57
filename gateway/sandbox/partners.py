"""Mock partner agencies: real endpoints that verify, de-duplicate, acknowledge and decide.

Each sandbox agency has an inbox at ``/sandbox/partners/{agency_id}/messages``. It reads the
message in its jurisdiction's format (an HK or Macau agency the native XML message, parsed by
the hardened parser and validated against its XSD; Guangdong the JSON message), verifies
the gateway's RFC 9421 signature and the Content-Digest, refuses a replayed signature nonce,
de-duplicates on the message id (the ``Idempotency-Key``), answers with a signed
acknowledgement bound to the request and its signature (refusals of a request whose
signature verified as signed RFC 9457 problems, other refusals unsigned), and, when the
agency is set to decide, posts its signed decision back through the partner API like any real
agency system would. Its fault switches (:mod:`gateway.sandbox.faults`) make it misbehave.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import structlog
from aiohttp import web
from lxml import etree

from gateway.domain.errors import (
    BadRequestError,
    GatewayError,
    NotFoundError,
    ReplayedRequestError,
    UnsupportedMediaTypeError,
)
from gateway.domain.evidence import EVIDENCE_REQUEST
from gateway.mapping.canonical import loads_strict
from gateway.sandbox import issuers
from gateway.sandbox.agencies import SandboxAgency
from gateway.sandbox.certificates import e_certificate
from gateway.sandbox.faults import TIMEOUT_HOLD_S, FaultBoard, Faults
from gateway.sandbox.material_fetch import Fetched, fetch_all, listed
from gateway.services.ports import Clock, DocumentCodec
from gateway.trust.httpsig import HttpMessage, VerifiedSignature
from gateway.trust.httpsig_components import ComponentError
from gateway.trust.keys import SigningKey, VerificationKey, generate_private_key
from gateway.trust.profile import sign_request, sign_response, verify_request, verify_response
from gateway.web.messages import client_response_message, request_message
from gateway.web.problems import PROBLEM_JSON, problem_document

log = structlog.get_logger("gateway.sandbox")

XML = "application/xml"
NONCE_WINDOW = timedelta(seconds=600)  # twice the allowed clock skew, as the gateway keeps them


def injected_fault(status: int) -> GatewayError:
    """The 5xx a sandbox agency switched to ``error_status`` answers (a problem like any)."""
    error = GatewayError(f"this sandbox agency is set to answer {status}")
    error.status = status  # the instance's own status; the class keeps 500
    return error


@dataclass(slots=True)
class Inbox:
    """What one sandbox agency has received (in memory: the sandbox is for testing)."""

    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    duplicates: int = 0
    unavailable: int = 0  # messages turned away with 503 while the agency was down
    deliveries: int = 0  # messages taken in, counting each redelivery a lax agency re-processes
    nonces: dict[tuple[str, str], datetime] = field(default_factory=dict)
    # materials fetched from the gateway (signed GET of each listed href), by material id
    fetched: dict[str, Fetched] = field(default_factory=dict)

    def fresh_nonce(self, kid: str, nonce: str, now: datetime) -> bool:
        """Remember a signature nonce for its window; False when it was seen already."""
        if len(self.nonces) > 10_000:
            self.nonces = {k: until for k, until in self.nonces.items() if until > now}
        until = self.nonces.get((kid, nonce))
        if until is not None and until > now:
            return False
        self.nonces[(kid, nonce)] = now + NONCE_WINDOW
        return True


class SandboxPartners:
    def __init__(
        self,
        agencies: dict[str, tuple[SandboxAgency, SigningKey]],
        gateway_keys: Callable[[str], VerificationKey],
        base_url: str,
        clock: Clock,
        decision_delay: float = 0.2,
        formats: Mapping[str, DocumentCodec] | None = None,
    ) -> None:
        self._agencies = agencies
        self._formats = dict(formats or {})  # codecs by format name, for native XML messages
        self._resolve_gateway_key = gateway_keys
        self._base_url = base_url
        self._clock = clock
        self._delay = decision_delay
        self.inboxes: dict[str, Inbox] = {agency_id: Inbox() for agency_id in agencies}
        self.faults = FaultBoard(agencies)
        self.auto_decide = True  # agencies set to decide do so; testers may switch it off
        self._tasks: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._closing = asyncio.Event()
        self._wrong_keys: dict[str, SigningKey] = {}

    def set_down(self, agency_id: str, down: bool = True) -> None:
        """Take an agency's inbox down (it answers 503, unsigned, keeping nothing) or back up."""
        self.faults.update(agency_id, {"down": down})

    def is_down(self, agency_id: str) -> bool:
        return self.faults.get(agency_id).down

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))

    async def stop(self) -> None:
        self._closing.set()
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
        faults = self.faults.get(agency_id)
        inbox = self.inboxes[agency_id]
        body = await request.read()
        if faults.timeout:
            await self._hold()
        if faults.latency_ms:
            await asyncio.sleep(faults.latency_ms / 1000)
        if faults.down or faults.timeout:
            inbox.unavailable += 1
            log.info("sandbox.partner_down", agency=agency_id)
            return web.Response(status=503, text="the agency is down (sandbox)\n")
        verified: VerifiedSignature | None = None
        try:
            if not faults.lax:
                verified = self._authenticate(request, body)
            if faults.error_status is not None:
                raise injected_fault(faults.error_status)
            message_id, envelope = self._admit(request, body, inbox, faults, verified)
        except GatewayError as error:
            log.warning("sandbox.partner_refused", agency=agency_id, problem=error.slug)
            if faults.lax:
                return web.Response(status=error.status, text=f"{error.detail}\n")
            document = problem_document(request, error, self._base_url)
            if verified is None:  # nothing to bind a signature to: answered unsigned
                return web.json_response(document, status=error.status, content_type=PROBLEM_JSON)
            return self._signed(request, agency, key, faults, error.status, document, PROBLEM_JSON)
        duplicate = message_id in inbox.messages and not faults.lax
        if duplicate:
            inbox.duplicates += 1
        else:
            inbox.messages[message_id] = envelope
            inbox.deliveries += 1
            log.info("sandbox.partner_received", agency=agency_id, message_id=message_id)
            carried = envelope.pop("materials", None)  # a native message's, read below
            if isinstance(envelope.get("application"), dict):  # a JSON message's
                carried = envelope["application"].get("materials")
            materials = listed(carried, self._base_url)
            if materials and not faults.lax:
                self._spawn(self._fetch(agency_id, key, materials))
            evidence = envelope.get("type") == EVIDENCE_REQUEST  # not a case to decide
            if (
                agency.auto_decision
                and self.auto_decide
                and "application_id" in envelope
                and not evidence
            ):
                application_id = str(envelope["application_id"])
                stage = envelope.get("stage")
                # the supplemented document of a case it is still examining: examine it again
                examine = stage == "examination" or (
                    stage == "supplement"
                    and envelope.get("role") == "lead"
                    and not envelope.get("deadline")  # not accepted yet
                )
                round_ = envelope.get("supplement_round")
                native = self._formats.get(str(envelope.get("format", "")))  # as it received
                self._spawn(
                    self._decide(
                        agency,
                        key,
                        application_id,
                        examine=examine,
                        native=native,
                        supplement_round=int(round_) if round_ else None,
                    )
                )
        if envelope.get("type") == EVIDENCE_REQUEST and agency.issues_evidence:
            # an evidence issuer answers in its signed acknowledgement (the same on a resend)
            answer = issuers.answer(agency, envelope, faults.evidence, self._now(faults))
            return self._signed(request, agency, key, faults, 200, answer)
        ack = {
            "message_id": message_id,
            "status": "duplicate" if duplicate else "received",
            "received_at": self._now(faults).isoformat(),
        }
        # a native XML message is acknowledged in the same format (Ack, Confirmacao)
        native = _message(self._formats.get(str(envelope.get("format", ""))), "ack")
        if native is not None:
            body = native.encode(ack)
            return self._signed(request, agency, key, faults, 200, ack, XML, body)
        return self._signed(request, agency, key, faults, 200, ack)

    def _authenticate(self, request: web.Request, body: bytes) -> VerifiedSignature:
        """The gateway's signature and digest on a delivery, or a GatewayError."""
        return verify_request(
            request_message(request, self._base_url),
            body,
            resolve_key=self._resolve_gateway_key,
            now=self._clock.now(),
        )

    def _admit(
        self,
        request: web.Request,
        body: bytes,
        inbox: Inbox,
        faults: Faults,
        verified: VerifiedSignature | None,
    ) -> tuple[str, dict[str, Any]]:
        """The message id and envelope of a delivery, verified unless the agency is lax."""
        message_id = request.headers.get("Idempotency-Key", "")
        agency = self._agencies[request.match_info["agency_id"]][0]
        xml = request.content_type in ("application/xml", "text/xml")
        if faults.lax or verified is None:
            if xml:
                envelope = self._read_native(agency, body)
                return message_id or str(envelope.get("message_id", "")), envelope
            try:
                envelope = json.loads(body)
            except (ValueError, RecursionError):  # RecursionError: nested too deeply
                raise BadRequestError("not JSON") from None
            if not isinstance(envelope, dict):
                raise BadRequestError("not a JSON object")
            return message_id or str(envelope.get("message_id", "")), envelope
        now = self._clock.now()
        if not inbox.fresh_nonce(verified.keyid, verified.nonce or "", now):
            raise ReplayedRequestError("this signature nonce was already used")
        envelope = self._read_native(agency, body) if xml else loads_strict(body)
        if not isinstance(envelope, dict) or envelope.get("message_id") != message_id:
            raise BadRequestError("the message id and the Idempotency-Key differ")
        return message_id, envelope

    def _read_native(self, agency: SandboxAgency, body: bytes) -> dict[str, Any]:
        """The envelope of a native XML message in the agency's own format: parsed by the
        hardened parser and valid against the format's XSD (else a 422 problem listing every
        schema problem), with ``format`` naming it."""
        reader = getattr(self._formats.get(agency.jurisdiction), "read_message", None)
        if reader is None:
            raise UnsupportedMediaTypeError("this agency receives JSON messages")
        envelope, application = reader(body)
        try:  # the materials it lists, to fetch (the application as the canonical model)
            decoded = self._formats[agency.jurisdiction].decode(etree.tostring(application))
            materials = decoded.document.get("materials")
        except GatewayError:
            materials = None
        return {**envelope, "format": agency.jurisdiction, "materials": materials}

    async def _hold(self) -> None:
        """Hold a request past any client's patience (or until the sandbox stops)."""
        try:
            async with asyncio.timeout(TIMEOUT_HOLD_S):
                await self._closing.wait()
        except TimeoutError:
            pass

    def _now(self, faults: Faults) -> datetime:
        return self._clock.now() + timedelta(seconds=faults.clock_skew_s)

    def _signing_key(self, agency: SandboxAgency, key: SigningKey, faults: Faults) -> SigningKey:
        """The agency's key, or for ``signature: wrong`` another key under the same kid."""
        if faults.signature != "wrong":
            return key
        if agency.id not in self._wrong_keys:
            wrong = generate_private_key(agency.alg)
            self._wrong_keys[agency.id] = SigningKey(key.kid, wrong, agency.alg, sandbox=True)
        return self._wrong_keys[agency.id]

    def _signed(
        self,
        request: web.Request,
        agency: SandboxAgency,
        key: SigningKey,
        faults: Faults,
        status: int,
        payload: dict[str, Any],
        content_type: str = "application/json",
        body: bytes | None = None,
    ) -> web.Response:
        """``payload`` signed as JSON, or ``body`` as given (of ``content_type``)."""
        if body is None:
            body = json.dumps(payload, ensure_ascii=False).encode()
        try:
            headers = sign_response(
                status=status,
                body=body,
                content_type=content_type,
                request=request_message(request, self._base_url),
                key=self._signing_key(agency, key, faults),
                now=self._now(faults),
            )
        except ComponentError:  # a lax agency's answer to a request with no signature to bind
            return web.Response(status=status, body=body, content_type=content_type)
        if faults.signature == "missing":
            headers = {k: v for k, v in headers.items() if not k.lower().startswith("signature")}
        return web.Response(status=status, body=body, headers=headers)

    async def _fetch(
        self, agency_id: str, key: SigningKey, materials: list[Mapping[str, Any]]
    ) -> None:
        """Fetch the materials a received case lists (signed GETs), checking each digest."""
        assert self._session is not None
        found = await fetch_all(
            self._session,
            key,
            materials,
            gateway_key=self._resolve_gateway_key,
            now=self._clock.now,
        )
        for fetched in found:
            self.inboxes[agency_id].fetched[fetched.material_id] = fetched

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _decide(
        self,
        agency: SandboxAgency,
        key: SigningKey,
        application_id: str,
        *,
        examine: bool,
        native: DocumentCodec | None = None,
        supplement_round: int | None = None,
    ) -> None:
        """Accept the case first when it came for examination (the lead of an
        agency-accepted matter), then post the agency's decision; signed with its own key.
        An agency that received the case in its native XML (``native``) answers in it too.

        ``out_of_order`` posts the decision first (the gateway must refuse it), then the
        acceptance and the decision again; ``duplicates`` posts everything twice. Each supplement
        round's examination is a new call (its own Idempotency-Key)."""
        faults = self.faults.get(agency.id)
        if not faults.out_of_order:
            await asyncio.sleep(self._delay)
        assert agency.auto_decision is not None
        base = f"{self._base_url}/v1/applications/{application_id}"
        acceptance = (
            f"{base}/acceptance",
            _body(native, "examination", {"outcome": "accepted"}),
            f"accept-{application_id}" + (f"-{supplement_round}" if supplement_round else ""),
        )
        decided: dict[str, Any] = {"decision": agency.auto_decision, "reasons": []}
        if agency.auto_decision == "approved":  # in JSON or its XML Decision / Decisao
            certificate = e_certificate(
                faults.e_certificate, agency, key, application_id, self._clock.now()
            )
            if certificate is not None:
                decided["certificate"] = certificate
        decision = (
            f"{base}/decisions",
            _body(native, "decision", decided),
            f"decision-{application_id}",
        )
        steps = [acceptance, decision] if examine else [decision]
        if faults.out_of_order:
            steps = [(*decision[:2], f"early-{decision[2]}"), *steps]
        try:
            for url, payload, idempotency_key in steps:
                retry = not (faults.out_of_order and idempotency_key.startswith("early-"))
                for _ in range(2 if faults.duplicates else 1):
                    status = await self._post(
                        agency, key, url, payload, idempotency_key, retry_conflicts=retry
                    )
                    path = url[len(base) + 1 :]
                    log.info("sandbox.call_posted", agency=agency.id, path=path, status=status)
        except (aiohttp.ClientError, TimeoutError, GatewayError) as exc:
            log.warning("sandbox.decision_failed", agency=agency.id, error=type(exc).__name__)

    async def _post(
        self,
        agency: SandboxAgency,
        key: SigningKey,
        url: str,
        payload: tuple[bytes, str],
        idempotency_key: str,
        *,
        retry_conflicts: bool = True,
    ) -> int:
        """POST ``payload`` (body, media type) through the partner API; a 409 (the case is not
        there yet: the relay may not have recorded an acknowledgement) is tried again a few
        times."""
        assert self._session is not None
        body, content_type = payload
        status = 0
        for attempt in range(8 if retry_conflicts else 1):
            faults = self.faults.get(agency.id)
            headers = sign_request(
                method="POST",
                url=url,
                key=self._signing_key(agency, key, faults),
                now=self._now(faults),
                body=body,
                content_type=content_type,
                idempotency_key=idempotency_key,
            )
            if faults.signature == "missing":
                headers = {k: v for k, v in headers.items() if not k.startswith("Signature")}
            async with self._session.post(url, data=body, headers=headers) as response:
                answer = await response.read()
                if response.status in (400, 401) and "Signature" not in response.headers:
                    return response.status  # refused unauthenticated: answered unsigned
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


def _message(native: DocumentCodec | None, kind: str) -> Any:
    """The agency message ``kind`` of a native format (its field map's ``messages:``)."""
    return (getattr(native, "messages", None) or {}).get(kind)


def _body(native: DocumentCodec | None, kind: str, data: dict[str, Any]) -> tuple[bytes, str]:
    """A call's body: the message ``kind`` in the agency's native XML when its format carries
    it, else JSON."""
    message = _message(native, kind)
    if message is None:
        return json.dumps(data).encode(), "application/json"
    return message.encode(data), XML
