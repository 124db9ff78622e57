"""Sandbox sinks for the residents' channels (Art. 22): a local SMTP server and an SMS sink.

``gba-gateway sandbox`` starts :class:`SmtpSink` (aiosmtpd, in the gateway's event loop) on
127.0.0.1 at ``sandbox_smtp_port`` (0: a free port) and installs an e-mail sender that talks
real SMTP to it (:class:`~gateway.egress.mail.SmtpSender`, the production client), so what a
tester sees is what a mail server would have been handed. SMS go to :class:`SmsSink`, in
memory. Both are listed at ``GET /sandbox/v1/mailbox`` and on the console's notifications
page. ``POST /sandbox/v1/mailbox/faults`` ``{"defer": n}`` makes the sink answer the next
``n`` messages with ``451`` (try again later), to watch the notification queue retry.

The sandbox's residents are personas: their addresses are test data. The SMTP server's own
logger (``mail.log``) is kept at WARNING all the same: it would log every address.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

from aiohttp import web
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.domain.documents import problem
from gateway.domain.errors import ValidationFailedError
from gateway.egress.mail import SmtpSender
from gateway.settings import Settings
from gateway.web.notifier import EMAIL_SENDER, SMS_SENDER
from gateway.web.openapi import operation
from gateway.web.problems import json_object, json_response

routes = web.RouteTableDef()
_HOST = "127.0.0.1"


@dataclass
class Received:
    """What the sinks were handed, oldest first."""

    emails: list[dict[str, Any]] = field(default_factory=list)
    sms: list[dict[str, Any]] = field(default_factory=list)
    deferred: int = 0  # messages answered 451 so far
    defer_next: int = 0  # how many more to answer 451


class _Handler:
    def __init__(self, received: Received) -> None:
        self._received = received

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self._received.defer_next > 0:
            self._received.defer_next -= 1
            self._received.deferred += 1
            return "451 4.3.0 sandbox fault: try again later"
        content = envelope.original_content or envelope.content or b""
        raw = content if isinstance(content, bytes) else content.encode()
        mail = message_from_bytes(raw, policy=default)
        body = mail.get_body(("plain",)) if isinstance(mail, EmailMessage) else None
        self._received.emails.append(
            {
                "received_at": datetime.now(UTC).isoformat(),
                "to": list(envelope.rcpt_tos),
                "from": envelope.mail_from,
                "subject": str(mail.get("Subject", "")),
                "message_id": str(mail.get("Message-ID", "")),
                "text": body.get_content().replace("\r\n", "\n") if body is not None else "",
            }
        )
        return "250 2.0.0 accepted by the sandbox sink"


class SmtpSink:
    """An SMTP server on the loopback that keeps every message it accepts."""

    def __init__(self, received: Received, port: int = 0) -> None:
        self._received = received
        self._port = port
        self._server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> None:
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        handler = _Handler(self._received)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(handler, hostname="sandbox-smtp.invalid", enable_SMTPUTF8=True),
            host=_HOST,
            port=self._port,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None


class SinkMail:
    """The sandbox's e-mail sender: the production SMTP client, pointed at the sink once it
    listens."""

    def __init__(self, sink: SmtpSink, sender: str) -> None:
        self._sink = sink
        self._sender = sender

    async def send_email(self, to: str, subject: str, text: str, *, message_id: str) -> None:
        client = SmtpSender(
            _HOST,
            self._sink.port,
            self._sender,
            starttls=False,
            timeout=5.0,
            domain="sandbox.invalid",
        )
        await client.send_email(to, subject, text, message_id=message_id)


class SmsSink:
    """The sandbox's SMS sender: keeps each text message, once per notification."""

    def __init__(self, received: Received) -> None:
        self._received = received

    async def send_sms(self, to: str, text: str, *, message_id: str) -> None:
        if any(m["message_id"] == message_id for m in self._received.sms):
            return  # a retry after another channel failed: a real gateway would send it again
        self._received.sms.append(
            {
                "received_at": datetime.now(UTC).isoformat(),
                "to": to,
                "text": text,
                "message_id": message_id,
            }
        )


RECEIVED = web.AppKey("sandbox_mailbox", Received)


def install_sinks(app: web.Application, settings: Settings) -> Received:
    """Start the SMTP sink with the app, and make both sinks the residents' channels."""
    received = Received()
    sink = SmtpSink(received, settings.sandbox_smtp_port)
    app[RECEIVED] = received
    app[EMAIL_SENDER] = SinkMail(sink, settings.smtp_sender)
    app[SMS_SENDER] = SmsSink(received)

    async def listening(app: web.Application) -> AsyncIterator[None]:
        await sink.start()
        yield
        await sink.stop()

    app.cleanup_ctx.append(listening)
    app.add_routes(routes)
    return received


def listing(received: Received) -> dict[str, Any]:
    return {
        "emails": list(received.emails),
        "sms": list(received.sms),
        "deferred": received.deferred,
        "defer_next": received.defer_next,
    }


_MAILBOX = {"type": "object"}


@routes.get("/sandbox/v1/mailbox")
@operation(
    summary="What the sandbox's SMTP and SMS sinks received, oldest first",
    tag="sandbox",
    responses={200: ("E-mails and text messages", _MAILBOX)},
    sandbox_only=True,
)
async def mailbox(request: web.Request) -> web.Response:
    return json_response(listing(request.app[RECEIVED]))


@routes.post("/sandbox/v1/mailbox/faults")
@operation(
    summary="Make the sandbox SMTP sink answer the next n messages with 451 (try later)",
    tag="sandbox",
    request={
        "application/json": {
            "type": "object",
            "required": ["defer"],
            "properties": {"defer": {"type": "integer", "minimum": 0, "maximum": 100}},
        }
    },
    responses={200: ("The sinks' state", _MAILBOX), 422: "defer is not 0-100"},
    sandbox_only=True,
)
async def mailbox_faults(request: web.Request) -> web.Response:
    data = json_object(await request.read(), request.content_type, "the fault")
    defer = data.get("defer")
    if not isinstance(defer, int) or isinstance(defer, bool) or not 0 <= defer <= 100:
        raise ValidationFailedError(
            "1 problem(s) found", errors=[problem("/defer", "invalid_value")]
        )
    request.app[RECEIVED].defer_next = defer
    return json_response(listing(request.app[RECEIVED]))
