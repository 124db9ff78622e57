"""SMS to residents through an HTTP SMS gateway (Art. 22): the production seam.

:class:`HttpSmsSender` is the :class:`~gateway.services.ports.SmsSender` port over the one
HTTP call most SMS gateways accept: ``POST {sms_gateway_url}`` with JSON
``{"to": "+853...", "text": "...", "reference": "<notification id>"}`` and, when
``sms_gateway_token_file`` is set, ``Authorization: Bearer <token>``. The call goes through
:func:`gateway.egress.client.client_session`, so the egress policy judges the gateway's
address like any partner's. A provider with another API gets its own class behind the same
port. 5xx, 408, 425, 429 and network errors are transient; other non-2xx are permanent.
Numbers and texts are never logged.
"""

from __future__ import annotations

import aiohttp
import structlog

from gateway.domain.errors import PermanentDeliveryError, TransientDeliveryError
from gateway.egress.client import client_session
from gateway.egress.policy import EgressPolicy

log = structlog.get_logger("gateway.sms")
_RETRYABLE = frozenset({408, 425, 429})


class HttpSmsSender:
    def __init__(
        self,
        url: str,
        *,
        egress: EgressPolicy,
        token: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._url = url
        self._egress = egress
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0))
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def send_sms(self, to: str, text: str, *, message_id: str) -> None:
        refusal = self._egress.url_refusal(self._url)
        if refusal is not None:
            log.warning("sms.gateway_refused", notification_id=message_id, reason=refusal)
            raise PermanentDeliveryError("SMS failed: the SMS gateway is refused")
        if self._session is None or self._session.closed:
            self._session = client_session(self._egress, timeout=self._timeout, limit=4)
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        try:
            async with self._session.post(
                self._url,
                json={"to": to, "text": text, "reference": message_id},
                headers=headers,
                allow_redirects=False,
            ) as response:
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("sms.unreachable", notification_id=message_id, error=type(exc).__name__)
            raise TransientDeliveryError("SMS failed: unreachable") from exc
        if status >= 500 or status in _RETRYABLE:
            raise TransientDeliveryError(f"SMS failed (HTTP {status})")
        if status >= 300:
            raise PermanentDeliveryError(f"SMS failed (HTTP {status})")
