"""E-mail to residents over SMTP (Art. 22), with aiosmtplib (ADR 0023).

:class:`SmtpSender` is the :class:`~gateway.services.ports.EmailSender` port: one connection
per message (milestones are rare per resident; a pool would hold idle connections to the
relay), STARTTLS when the settings ask for it (``smtp_starttls``; always in production unless
the relay is on loopback), login when ``smtp_username`` is set (the password is read from
``smtp_password_file``, never inline). Failures are translated here, in one place:
a 4xx reply or an unreachable, timed-out or dropped server is transient (the notification
queue retries it with backoff); a 5xx reply (an address refused, a message rejected) is
permanent. The ``Message-ID`` is the notification's, the same on every retry. Addresses and
texts are never logged: only the notification id and the SMTP reply code.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib
import structlog

from gateway.domain.errors import PermanentDeliveryError, TransientDeliveryError

log = structlog.get_logger("gateway.mail")


class SmtpSender:
    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        *,
        starttls: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        domain: str = "gateway.invalid",
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._starttls = starttls
        self._username = username
        self._password = password
        self._timeout = timeout
        self._domain = domain

    def message(self, to: str, subject: str, text: str, message_id: str) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self._sender
        mail["To"] = to
        mail["Subject"] = subject
        mail["Date"] = formatdate(usegmt=True)
        mail["Message-ID"] = f"<{message_id}@{self._domain}>"
        mail["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies, please
        mail.set_content(text, charset="utf-8")
        return mail

    async def send_email(self, to: str, subject: str, text: str, *, message_id: str) -> None:
        mail = self.message(to, subject, text, message_id)
        try:
            await aiosmtplib.send(
                mail,
                hostname=self._host,
                port=self._port,
                start_tls=self._starttls,
                use_tls=False,
                username=self._username,
                password=self._password,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:  # the one recipient, refused
            code = min((r.code for r in exc.recipients), default=550)
            raise _refused(code, message_id) from exc
        except aiosmtplib.SMTPResponseException as exc:
            raise _refused(exc.code, message_id) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            log.warning("mail.unreachable", notification_id=message_id, error=type(exc).__name__)
            raise TransientDeliveryError("e-mail failed: the mail server is unreachable") from exc


def _refused(code: int, message_id: str) -> TransientDeliveryError | PermanentDeliveryError:
    """A reply code as the queue understands it: 4xx later, anything else never."""
    log.warning("mail.refused", notification_id=message_id, code=code)
    if 400 <= code < 500:
        return TransientDeliveryError(f"e-mail deferred (SMTP {code})")
    return PermanentDeliveryError(f"e-mail refused (SMTP {code})")
