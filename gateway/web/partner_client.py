"""The HTTP side of delivery: sign, send, verify the signed acknowledgement.

One ``ClientSession`` per partner agency, each with a connector limit and timeouts. Foreign
failures are translated here, in one place, into the two delivery errors the relay keys its
retries on: :class:`TransientDeliveryError` (timeouts, connection errors, 5xx, 408, 425,
429, an unverifiable acknowledgement) and :class:`PermanentDeliveryError` (other 4xx).
tenacity retries only a dropped pooled connection, at once; every other retry is scheduled
in the database by the relay.

An acknowledgement carries the exchange as it went over the wire — the target, the request's
signature headers and the answer's body and signature headers — so the relay can keep it as
evidence.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

import aiohttp
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_fixed

from gateway.domain.errors import (
    GatewayError,
    PermanentDeliveryError,
    TransientDeliveryError,
)
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


class HttpPartnerTransport:
    """:class:`~gateway.services.ports.PartnerTransport` over aiohttp."""

    def __init__(
        self,
        key: Callable[[], SigningKey],
        key_lookup: Callable[[str], Awaitable[VerificationKey]],
        clock: Clock,
        *,
        timeout: float = 10.0,
        connections_per_partner: int = 8,
    ) -> None:
        self._key = key
        self._key_lookup = key_lookup
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0))
        self._limit = connections_per_partner
        self._sessions: dict[str, aiohttp.ClientSession] = {}

    def _session(self, agency_id: str) -> aiohttp.ClientSession:
        session = self._sessions.get(agency_id)
        if session is None or session.closed:
            session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._limit),
                raise_for_status=False,
            )
            self._sessions[agency_id] = session
        return session

    async def close(self) -> None:
        sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            await session.close()

    async def deliver(self, agency: Agency, message: OutboxMessage) -> Acknowledgement:
        if not agency.endpoint:
            raise PermanentDeliveryError(f"agency {agency.id} has no delivery endpoint")
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
            raise TransientDeliveryError(f"{type(exc).__name__} talking to {agency.id}") from exc
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
            agency.endpoint, data=message.body, headers=headers
        ) as response:
            body = await response.content.read(_MAX_ACK_BYTES + 1)
            if len(body) > _MAX_ACK_BYTES:
                raise TransientDeliveryError(f"{agency.id} answered with an oversized body")
            if response.status >= 500 or response.status in _RETRYABLE_STATUS:
                raise TransientDeliveryError(f"{agency.id} answered {response.status}")
            if response.status >= 400:
                raise PermanentDeliveryError(f"{agency.id} refused the message ({response.status})")
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
                    f"{agency.id}'s acknowledgement does not verify: {exc.slug}"
                ) from exc
            if verified.key.owner != agency.id:
                raise TransientDeliveryError(f"{agency.id}'s acknowledgement is signed by another")
            return Acknowledgement(
                response.status,
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
