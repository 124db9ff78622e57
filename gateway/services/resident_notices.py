"""Residents told (Art. 22): each milestone pushed by e-mail and SMS, in their language.

:class:`ResidentChannels` is the :class:`~gateway.services.ports.Notifier` the dispatcher hands
every notification to. An agency's goes on to the agency notifier (webhook, or the sandbox
recorder) unchanged. A resident's is sent on each channel the resident chose
(:mod:`gateway.domain.contacts`), in their language, through the e-mail and SMS ports; then it
is handed to the agency notifier as well, once every channel took it. So a resident's
notification rides the SAME durable queue as an agency's: a transient failure of the mail
server or of the SMS gateway puts the row back with backoff and every chosen channel is tried
again (at-least-once: the ``Message-ID`` stays the notification's, so a client shows a resent
mail once); a permanent one (address refused) makes it dead. A resident with no channel
chosen is not pushed to: they read their notifications at ``GET /v1/me/notifications``.

The text is the milestone's message (:data:`gateway.services.notifications.MESSAGES`) in the
resident's language; with the case id and a link to the progress page, never a name, a
document number or a reason text. Addresses and texts are never logged.
"""

from __future__ import annotations

from typing import Any

from gateway.domain.agencies import Agency
from gateway.domain.contacts import DEFAULT_LANGUAGE, ContactPreferences
from gateway.domain.errors import Localized, PermanentDeliveryError, TransientDeliveryError
from gateway.services import visibility
from gateway.services.notifications import APPLICANT, RESIDENT
from gateway.services.ports import (
    Clock,
    EmailSender,
    MatterCatalog,
    Notification,
    Notifier,
    SmsSender,
    UnitOfWorkFactory,
)

SUBJECT = Localized(
    "大灣區跨境政務服務：您的申請有新進展",
    "大湾区跨境政务服务：您的申请有新进展",
    "GBA cross-border services: news of your application",
    "Serviços transfronteiriços da Grande Baía: novidades do seu pedido",
)
CASE = Localized("申請編號", "申请编号", "Application", "Pedido")
PROGRESS = Localized("查看進度", "查看进度", "See its progress", "Ver o andamento")
UNREAD = Localized(
    "您的申請有新進展。",
    "您的申请有新进展。",
    "There is news of your application.",
    "Há novidades do seu pedido.",
)


PICKUP_CODE = Localized("取件碼", "取件码", "Pickup code", "Código de levantamento")


def _pick(texts: dict[str, str] | Localized, language: str) -> str:
    values = texts.as_dict() if isinstance(texts, Localized) else texts
    return values.get(language) or values.get(DEFAULT_LANGUAGE) or values.get("en", "")


def render(body: dict[str, Any], language: str, progress_url: str) -> tuple[str, str, str]:
    """(subject, e-mail text, SMS text) of one notification body in ``language``."""
    message = body.get("message")
    said = _pick(message, language) if isinstance(message, dict) else _pick(UNREAD, language)
    case = f"{_pick(CASE, language)}: {body.get('application_id', '')}"
    if body.get("pickup_code"):  # a result collected in person (Art. 17, 22)
        said = f"{said} {_pick(PICKUP_CODE, language)}: {body['pickup_code']}"
    link = progress_url.format(application_id=body.get("application_id", ""))
    text = f"{said}\n\n{case}\n{_pick(PROGRESS, language)}: {link}\n"
    return _pick(SUBJECT, language), text, f"{said} {case}"


class ResidentChannels:
    """The dispatcher's notifier: residents by their chosen channels, agencies as before."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        agencies: Notifier,
        *,
        email: EmailSender | None,
        sms: SmsSender | None,
        progress_url: str,
        catalog: MatterCatalog,
        clock: Clock,
    ) -> None:
        self._uow = uow
        self._catalog = catalog
        self._clock = clock
        self._agencies = agencies
        self._email = email
        self._sms = sms
        self._progress_url = progress_url

    async def notify(self, agency: Agency | None, notification: Notification) -> None:
        if agency is None and notification.recipient.startswith(RESIDENT):
            await self._tell_resident(notification.recipient.removeprefix(RESIDENT), notification)
        elif agency is None and notification.recipient == APPLICANT:
            for person_id in await self._applicants(notification):
                await self._tell_resident(person_id, notification)
        await self._agencies.notify(agency, notification)

    async def _applicants(self, notification: Notification) -> list[str]:
        """Who stands behind an agency's case now: no one until a login links its document."""
        async with self._uow() as uow:
            app = await uow.applications.get(notification.application_id)
            if app is None:
                return []
            return await visibility.applicants(uow, app, self._catalog, self._clock)

    async def _tell_resident(self, person_id: str, notification: Notification) -> None:
        async with self._uow() as uow:
            preferences = await uow.contacts.get(person_id)
        if preferences is None or not preferences.channels:
            return
        subject, text, short = render(notification.body, preferences.language, self._progress_url)
        transient: TransientDeliveryError | None = None
        permanent: PermanentDeliveryError | None = None
        for channel in preferences.channels:
            try:
                await self._send(channel, preferences, notification.id, subject, text, short)
            except TransientDeliveryError as exc:
                transient = exc
            except PermanentDeliveryError as exc:
                permanent = exc
        if transient is not None:  # try every channel again later (the queue's backoff)
            raise transient
        if permanent is not None:
            raise permanent

    async def _send(
        self,
        channel: str,
        preferences: ContactPreferences,
        notification_id: str,
        subject: str,
        text: str,
        short: str,
    ) -> None:
        address = preferences.address(channel)
        if not address:
            raise PermanentDeliveryError(f"no address for the {channel} channel")
        if channel == "email":
            if self._email is None:
                raise PermanentDeliveryError("e-mail is not configured")
            await self._email.send_email(address, subject, text, message_id=notification_id)
        elif channel == "sms":
            if self._sms is None:
                raise PermanentDeliveryError("SMS is not configured")
            await self._sms.send_sms(address, short, message_id=notification_id)
        else:
            raise PermanentDeliveryError(f"unknown channel {channel}")
