"""The HTTP side of delivery: sign, send, verify the signed acknowledgement.

One ``ClientSession`` per partner agency, each with a connector limit and timeouts, made by
:func:`gateway.egress.client.client_session` under the egress policy. Foreign failures are
translated here, in one place, into the two delivery errors the relay keys its retries on:
:class:`TransientDeliveryError` (timeouts, connection errors, a destination the policy
refuses once resolved, 5xx, 408, 425, 429, an unverifiable acknowledgement) and
:class:`PermanentDeliveryError` (other 4xx, any 3xx, an endpoint the policy refuses as
written). tenacity retries only a dropped pooled connection, at once; every other retry is
scheduled in the database by the relay.

**Redirects are never followed.** A partner answering 3xx has not taken the message, and the
signed application is never posted to its ``Location``: the delivery fails permanently
(a dead letter for an operator, who fixes the registered endpoint and retries it).

**What the case timeline says.** An error's ``detail`` becomes the outbox row's last error
and the case timeline's entry, which agencies read: it says ``delivery failed`` with the
partner's HTTP status, or ``unreachable``, and never connection-level detail (addresses,
ports, errno text) that would map a network. That detail goes to the log
(``partner.unreachable``), for operators.

An acknowledgement carries the exchange as it went over the wire — the target, the request's
signature headers and the answer's body and signature headers — so the relay can keep it as
evidence.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import aiohttp
import structlog
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from gateway.domain.errors import (
    GatewayError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
from gateway.egress.client import client_session
from gateway.egress.policy import EgressPolicy
from gateway.services.ports import Acknowledgement, Agency, Clock, OutboxMessage
from gateway.trust.digest import content_digest
from gateway.trust.httpsig import HttpMessage, signature_keyid
from gateway.trust.keys import SigningKey, VerificationKey
from gateway.trust.profile import sign_request, verify_response
from gateway.web.messages import client_response_message

_RETRYABLE_STATUS = frozenset({408, 425, 429})
_MAX_ACK_BYTES = 256 * 1024
_SIGNED = ("Signature", "Signature-Input", "Content-Digest", "Content-Type")
_REQUEST_EVIDENCE = (*_SIGNED, "Idempotency-Key")
_ANSWER_EVIDENCE = _SIGNED
UNREACHABLE = "delivery failed: unreachable"
log = structlog.get_logger("gateway.partner_client")


def failed(status: int, why: str = "") -> str:
    """The safe description of a failed delivery: the partner's status, and why if it helps."""
    return f"delivery failed (HTTP {status})" + (f": {why}" if why else "")


class HttpPartnerTransport:
    """:class:`~gateway.services.ports.PartnerTransport` over aiohttp."""

    def __init__(
        self,
        key: Callable[[], SigningKey],
        key_lookup: Callable[[str], Awaitable[VerificationKey]],
        clock: Clock,
        *,
        egress: EgressPolicy,
        timeout: float = 10.0,
        connections_per_partner: int = 8,
    ) -> None:
        self._key = key
        self._egress = egress
        self._key_lookup = key_lookup
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0))
        self._limit = connections_per_partner
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def _session(self, agency_id: str) -> aiohttp.ClientSession:
        session = self._sessions.get(agency_id)
        if session is None or session.closed:
            session = client_session(self._egress, timeout=self._timeout, limit=self._limit)
            self._sessions[agency_id] = session
        return session

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    async def deliver(self, agency: Agency, message: OutboxMessage) -> Acknowledgement:
        if not agency.endpoint:
            raise PermanentDeliveryError(f"agency {agency.id} has no delivery endpoint")
        refusal = self._egress.url_refusal(agency.endpoint)
        if refusal is not None:  # as registered: the same answer every time, so permanent
            log.warning("partner.endpoint_refused", agency=agency.id, reason=refusal)
            raise PermanentDeliveryError(
                "delivery failed: the endpoint is refused by the egress policy"
            )
        key = self._key()
        headers = sign_request(
            method="POST",
            url=agency.endpoint,
            key=key,
            now=self._clock.now(),
            body=message.body,
            content_type=message.media_type,
            idempotency_key=message.id,
        )
        request = HttpMessage.request("POST", agency.endpoint, headers)
        try:
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type(aiohttp.ServerDisconnectedError),
                stop=stop_after_attempt(2),
                wait=wait_fixed(0.05),
                reraise=True,
            ):
                with attempt:
                    return await self._post(agency, message, headers, request)
        except (TimeoutError, aiohttp.ClientError) as exc:
            # The detail (an address, a port, errno text) is for operators only.
            log.warning("partner.unreachable", agency=agency.id, error=repr(exc))
            raise TransientDeliveryError(UNREACHABLE) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post(
        self,
        agency: Agency,
        message: OutboxMessage,
        headers: dict[str, str],
        request: HttpMessage,
    ) -> Acknowledgement:
        assert agency.endpoint is not None
        async with self._session(agency.id).post(
            agency.endpoint, data=message.body, headers=headers, allow_redirects=False
        ) as response:
            status = response.status
            if 300 <= status < 400:  # not taken; never re-posted to its Location
                log.warning(
                    "partner.redirect_refused",
                    agency=agency.id,
                    status=status,
                    location=response.headers.get("Location", "")[:500],
                )
                raise PermanentDeliveryError(failed(status, "partners must not redirect"))
            body = await response.content.read(_MAX_ACK_BYTES + 1)
            if len(body) > _MAX_ACK_BYTES:
                raise TransientDeliveryError(failed(status, "the answer is too large"))
            if status >= 500 or status in _RETRYABLE_STATUS:
                raise TransientDeliveryError(failed(status))
            if status >= 400:
                raise PermanentDeliveryError(failed(status, "the partner refused the message"))
            answer = client_response_message(response)
            try:
                key = await self._key_lookup(signature_keyid(answer))
                verified = verify_response(
                    answer,
                    body,
                    request=request,
                    resolve_key=lambda _kid: key,
                    now=self._clock.now(),
                )
            except GatewayError as exc:
                raise TransientDeliveryError(
                    failed(status, f"the acknowledgement does not verify ({exc.slug})")
                ) from exc
            if verified.key.owner != agency.id:
                raise TransientDeliveryError(
                    failed(status, "the acknowledgement is signed by another agency")
                )
            return Acknowledgement(
                status,
                verified.keyid,
                content_digest(body),
                target=agency.endpoint,
                request_headers=_kept(headers, _REQUEST_EVIDENCE),
                headers=_kept(response.headers, _ANSWER_EVIDENCE),
                body=body,
            )


def _kept(headers: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    """The headers a signature covers or carries, as sent: what evidence must keep."""
    return {name: headers[name] for name in names if name in headers}
