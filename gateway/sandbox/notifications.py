"""Sandbox mode: every notification is recorded in memory instead of pushed, and served at
``GET /sandbox/v1/notifications`` so testers (and tests) can see what each party was told."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.domain.agencies import Agency
from gateway.services.ports import Notification
from gateway.web.notifier import NOTIFIER
from gateway.web.openapi import operation, query
from gateway.web.problems import json_response

routes = web.RouteTableDef()


class RecordingNotifier:
    """:class:`~gateway.services.ports.Notifier` that keeps what it was handed, in order."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self.duplicates = 0

    async def notify(self, agency: Agency | None, notification: Notification) -> None:
        if notification.id in self._seen:  # handed over again after a lease ran out
            self.duplicates += 1
            return
        self._seen.add(notification.id)
        self.received.append(dict(notification.body))


def install_recording_notifier(app: web.Application) -> RecordingNotifier:
    recorder = RecordingNotifier()
    app[NOTIFIER] = recorder
    app.add_routes(routes)
    return recorder


@routes.get("/sandbox/v1/notifications")
@operation(
    summary="Every notification the gateway dispatched, oldest first (sandbox recorder)",
    tag="sandbox",
    parameters=[
        query("application_id", "only this case's"),
        query("recipient", "only this recipient's (an agency id)"),
    ],
    responses={200: ("Notifications", {"type": "object"})},
    sandbox_only=True,
)
async def notifications(request: web.Request) -> web.Response:
    recorder = request.app[NOTIFIER]
    assert isinstance(recorder, RecordingNotifier)
    items = [
        n
        for n in recorder.received
        if all(
            n.get(k) == request.query[k]
            for k in ("application_id", "recipient")
            if k in request.query
        )
    ]
    return json_response({"items": items, "next": None, "duplicates": recorder.duplicates})
