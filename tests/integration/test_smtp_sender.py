"""The SMTP client of the residents' e-mail (gateway/egress/mail.py) against a real SMTP
server on the loopback (the sandbox sink): accepted, deferred (4xx: transient), refused
(5xx: permanent), unreachable (transient); the Message-ID is the notification's."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from gateway.domain.errors import PermanentDeliveryError, TransientDeliveryError
from gateway.egress.mail import SmtpSender
from gateway.sandbox.mailbox import Received, SmtpSink

TO = "resident@example.hk"


@pytest.fixture
async def sink() -> AsyncIterator[tuple[SmtpSink, Received]]:
    received = Received()
    server = SmtpSink(received)
    await server.start()
    yield server, received
    await server.stop()


def _sender(port: int) -> SmtpSender:
    return SmtpSender(
        "127.0.0.1",
        port,
        "GBA <no-reply@gateway.example>",
        starttls=False,
        timeout=3.0,
        domain="gateway.example",
    )


async def test_a_message_is_accepted_with_the_notifications_message_id(sink: Any) -> None:
    server, received = sink
    await _sender(server.port).send_email(
        TO, "大灣區：新進展", "您的申請已獲受理。\n", message_id="ntf_1"
    )
    (mail,) = received.emails
    assert mail["to"] == [TO]
    assert mail["subject"] == "大灣區：新進展"
    assert mail["text"] == "您的申請已獲受理。\n"
    assert mail["message_id"] == "<ntf_1@gateway.example>"


async def test_a_4xx_is_transient_and_nothing_is_kept(sink: Any) -> None:
    server, received = sink
    received.defer_next = 1
    with pytest.raises(TransientDeliveryError, match="SMTP 451"):
        await _sender(server.port).send_email(TO, "s", "t", message_id="ntf_2")
    assert received.emails == []
    await _sender(server.port).send_email(TO, "s", "t", message_id="ntf_2")
    assert len(received.emails) == 1


class _Refusing:
    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        return "550 5.1.1 no such mailbox"


async def test_a_refused_recipient_is_permanent() -> None:
    import asyncio

    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(_Refusing()), host="127.0.0.1", port=0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(PermanentDeliveryError, match="SMTP 550"):
            await _sender(port).send_email(TO, "s", "t", message_id="ntf_3")
    finally:
        server.close()
        await server.wait_closed()


async def test_an_unreachable_server_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nobody listens there
    with pytest.raises(TransientDeliveryError, match="unreachable"):
        await _sender(port).send_email(TO, "s", "t", message_id="ntf_4")
