"""Notifications at the web edge (Art. 22): the webhook notifier, the dispatcher's lifetime,
and the routes where residents and agencies read theirs.

:class:`WebhookNotifier` POSTs each agency notification, as JSON signed with RFC 9421 exactly
as forwards are (``trust.profile.sign_request``, ``Idempotency-Key`` = the notification id, on
which agencies de-duplicate), to the agency's registered ``endpoint`` + ``/notifications``.
A resident's notifications are not pushed: they are read at ``GET /v1/me/notifications``; an
agency without an endpoint reads its own at ``GET /v1/notifications``. The session comes from
:func:`gateway.egress.client.client_session` (the egress policy; redirects never followed: a
3xx is a permanent failure). A failure's detail says ``notification failed`` with the HTTP
status, or ``unreachable``; connection detail goes to the log only.

:func:`install_notifications` runs one :class:`~gateway.services.notifications.Dispatcher` as
a task in a cleanup context, with the notifier installed under :data:`NOTIFIER` (sandbox mode
installs a recording one) or else a webhook notifier.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import structlog
from aiohttp import web

from gateway.domain.agencies import Agency
from gateway.domain.errors import PermanentDeliveryError, TransientDeliveryError
from gateway.egress.client import client_session
from gateway.egress.policy import EgressPolicy
from gateway.services import queries
from gateway.services.notifications import Dispatcher, DispatchPolicy
from gateway.services.ports import (
    Clock,
    EmailSender,
    Notification,
    Notifier,
    SmsSender,
    UnitOfWorkFactory,
)
from gateway.services.resident_notices import ResidentChannels
from gateway.trust.keys import SigningKey
from gateway.trust.profile import sign_request
from gateway.web.auth import authenticate
from gateway.web.bearer import authenticate_resident
from gateway.web.keys import DEPENDENCIES, STORE
from gateway.web.openapi import operation, query
from gateway.web.problems import json_response

NOTIFIER = web.AppKey("notifier", Notifier)
# The residents' channels (Art. 22), when a mode installs its own (the sandbox's sinks)
EMAIL_SENDER = web.AppKey("email_sender", EmailSender)
SMS_SENDER = web.AppKey("sms_sender", SmsSender)
DISPATCHER = web.AppKey("notification_dispatcher", Dispatcher)
_RETRYABLE_STATUS = frozenset({408, 425, 429})
routes = web.RouteTableDef()
log = structlog.get_logger("gateway.notifier")


class WebhookNotifier:
    """:class:`~gateway.services.ports.Notifier` over signed HTTP POSTs to agencies."""

    def __init__(
        self,
        key: Callable[[], SigningKey],
        clock: Clock,
        *,
        egress: EgressPolicy,
        timeout: float = 10.0,
    ) -> None:
        self._key = key
        self._clock = clock
        self._egress = egress
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0))
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def notify(self, agency: Agency | None, notification: Notification) -> None:
        if agency is None or not agency.endpoint:
            return  # a resident or an agency without an endpoint reads them at the gateway
        url = agency.endpoint.rstrip("/") + "/notifications"
        body = json.dumps(notification.body, ensure_ascii=False, sort_keys=True).encode()
        headers = sign_request(
            method="POST",
            url=url,
            key=self._key(),
            now=self._clock.now(),
            body=body,
            content_type="application/json",
            idempotency_key=notification.id,
        )
        refusal = self._egress.url_refusal(url)
        if refusal is not None:
            log.warning("notification.endpoint_refused", agency=agency.id, reason=refusal)
            raise PermanentDeliveryError("notification failed: the endpoint is refused")
        if self._session is None or self._session.closed:
            self._session = client_session(self._egress, timeout=self._timeout, limit=16)
        try:
            async with self._session.post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            log.warning("notification.unreachable", agency=agency.id, error=repr(exc))
            raise TransientDeliveryError("notification failed: unreachable") from exc
        if status >= 500 or status in _RETRYABLE_STATUS:
            raise TransientDeliveryError(f"notification failed (HTTP {status})")
        if status >= 300:  # refused; a redirect is neither followed nor retried
            raise PermanentDeliveryError(f"notification failed (HTTP {status})")


def install_notifications(
    app: web.Application,
    uow: UnitOfWorkFactory,
    clock: Clock,
    key: Callable[[], SigningKey],
    *,
    egress: EgressPolicy,
    enabled: bool = True,
    policy: DispatchPolicy | None = None,
    email: EmailSender | None = None,
    sms: SmsSender | None = None,
    progress_url: str = "/me/applications/{application_id}",
) -> None:
    """Mount the notification routes and run the dispatcher while the app runs. The notifier
    is the one installed under :data:`NOTIFIER` by then (sandbox), else a webhook notifier;
    residents are told through :data:`EMAIL_SENDER` and :data:`SMS_SENDER` when a mode
    installed them, else through ``email`` and ``sms`` (from the settings; None: not sent)."""
    app.add_routes(routes)

    async def dispatching(app: web.Application) -> AsyncIterator[None]:
        agencies = app.get(NOTIFIER)
        webhook = None
        if agencies is None:
            agencies = webhook = WebhookNotifier(key, clock, egress=egress)
        notifier = ResidentChannels(
            uow,
            agencies,
            email=app.get(EMAIL_SENDER, email),
            sms=app.get(SMS_SENDER, sms),
            progress_url=progress_url,
            catalog=app[DEPENDENCIES].catalog,
            clock=clock,
        )
        dispatcher = Dispatcher(uow, notifier, clock, policy)
        app[DISPATCHER] = dispatcher
        task = asyncio.create_task(dispatcher.run()) if enabled else None
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if webhook is not None:
            await webhook.close()
        close = getattr(sms, "close", None)
        if close is not None:
            await close()

    app.cleanup_ctx.append(dispatching)


def _item(notification: Notification) -> dict[str, Any]:
    return {**notification.body, "delivery": notification.status}


def _after(request: web.Request) -> str | None:
    return request.query.get("after") or None


async def _page(request: web.Request, recipient: str) -> dict[str, Any]:
    limit = 50
    async with request.app[STORE]() as uow:
        found = await uow.notifications.of_recipient(
            recipient, limit=limit + 1, after=_after(request)
        )
    page = found[:limit]
    more = len(found) > limit
    return {"items": [_item(n) for n in page], "next": page[-1].id if more else None}


_LIST = {"type": "object", "properties": {"items": {"type": "array"}, "next": {}}}


@routes.get("/v1/me/notifications")
@operation(
    summary="The resident's notifications: each milestone of their cases, and of the agencies' "
    "cases naming their linked documents, in four languages",
    tag="applicant",
    parameters=[query("after", "cursor from the previous page")],
    responses={
        200: ("A page of notifications, oldest first", _LIST),
        401: "Access token missing, invalid or expired",
    },
)
async def my_notifications(request: web.Request) -> web.Response:
    grant = await authenticate_resident(request)
    page, more = await queries.own_notifications(
        request.app[DEPENDENCIES], grant.person_id, grant.login_id, limit=50, after=_after(request)
    )
    return json_response({"items": [_item(n) for n in page], "next": page[-1].id if more else None})


@routes.get("/v1/notifications")
@operation(
    summary="The calling agency's notifications (also pushed to its endpoint, when it has one)",
    tag="applications",
    parameters=[query("after", "cursor from the previous page")],
    responses={200: ("A page of notifications, oldest first", _LIST), 401: "Signature refused"},
    signed=True,
)
async def agency_notifications(request: web.Request) -> web.Response:
    signed = await authenticate(request, require_idempotency=False)
    return json_response(await _page(request, signed.caller.agency_id))
