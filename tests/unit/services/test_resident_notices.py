"""Residents told (Art. 22): the text in the resident's language, each chosen channel tried,
and failures mapped to what the notification queue does with them."""

from __future__ import annotations

from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import pytest

from gateway.domain.agencies import Agency
from gateway.domain.contacts import LANGUAGES, ContactPreferences
from gateway.domain.errors import PermanentDeliveryError, TransientDeliveryError
from gateway.services.notifications import MESSAGES
from gateway.services.ports import Notification
from gateway.services.resident_notices import ResidentChannels, render
from tests.fakes import FixedClock

AT = datetime(2026, 9, 22, 2, 0, tzinfo=UTC)
URL = "https://gateway.example/me/applications/{application_id}"
ACCEPTED = MESSAGES["application.accepted"].as_dict()


def _notification(recipient: str = "resident:per_1") -> Notification:
    body = {
        "notification_id": "ntf_1",
        "application_id": "app_1",
        "event": "application.accepted",
        "status": "accepted",
        "recipient": recipient,
    }
    if recipient.startswith("resident:"):
        body["message"] = ACCEPTED
    return Notification("ntf_1", "app_1", recipient, "application.accepted", body, AT)


@pytest.mark.parametrize(
    ("language", "said", "label"),
    [
        ("zh-Hant", "您的申請已獲受理。", "申請編號: app_1"),
        ("zh-Hans", "您的申请已获受理。", "申请编号: app_1"),
        ("en", "Your application has been accepted.", "Application: app_1"),
        ("pt", "O seu pedido foi aceite.", "Pedido: app_1"),
    ],
)
def test_the_text_is_in_the_residents_language(language: str, said: str, label: str) -> None:
    subject, text, sms = render(_notification().body, language, URL)
    assert text.startswith(said)
    assert label in text
    assert "https://gateway.example/me/applications/app_1" in text
    assert sms == f"{said} {label}"
    assert subject
    assert subject != said


class _Contacts:
    def __init__(self, held: ContactPreferences | None) -> None:
        self.held = held

    async def get(self, person_id: str) -> ContactPreferences | None:
        return self.held if self.held and self.held.person_id == person_id else None


class _Uow:
    def __init__(self, contacts: _Contacts) -> None:
        self.contacts = contacts

    async def __aenter__(self) -> _Uow:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


class _Sink:
    def __init__(self, fail: Exception | None = None) -> None:
        self.sent: list[tuple[Any, ...]] = []
        self.fail = fail

    async def send_email(self, to: str, subject: str, text: str, *, message_id: str) -> None:
        if self.fail:
            raise self.fail
        self.sent.append((to, subject, text, message_id))

    async def send_sms(self, to: str, text: str, *, message_id: str) -> None:
        if self.fail:
            raise self.fail
        self.sent.append((to, text, message_id))


class _Agencies:
    def __init__(self) -> None:
        self.handed: list[str] = []

    async def notify(self, agency: Agency | None, notification: Notification) -> None:
        self.handed.append(notification.recipient)


def _channels(
    held: ContactPreferences | None, email: _Sink | None, sms: _Sink | None
) -> tuple[ResidentChannels, _Agencies]:
    agencies = _Agencies()
    contacts = _Contacts(held)
    return (
        ResidentChannels(
            lambda: _Uow(contacts),  # type: ignore[arg-type,return-value]
            agencies,
            email=email,  # type: ignore[arg-type]
            sms=sms,  # type: ignore[arg-type]
            progress_url=URL,
            catalog=None,  # type: ignore[arg-type]  # residents' own cases need no catalog
            clock=FixedClock(AT),
        ),
        agencies,
    )


BOTH = ContactPreferences(
    "per_1", email="a@example.hk", phone="+85291234567", channels=("email", "sms"), language="en"
)


async def test_each_chosen_channel_gets_it_then_the_recorder() -> None:
    email, sms = _Sink(), _Sink()
    channels, agencies = _channels(BOTH, email, sms)
    await channels.notify(None, _notification())
    assert [(to, mid) for to, *_, mid in email.sent] == [("a@example.hk", "ntf_1")]
    assert sms.sent == [
        ("+85291234567", "Your application has been accepted. Application: app_1", "ntf_1")
    ]
    assert agencies.handed == ["resident:per_1"]


async def test_no_channel_chosen_sends_nothing_and_is_delivered() -> None:
    email = _Sink()
    channels, agencies = _channels(None, email, None)
    await channels.notify(None, _notification())
    assert email.sent == []
    assert agencies.handed == ["resident:per_1"]


async def test_an_agency_notification_goes_to_the_agency_notifier_only() -> None:
    email = _Sink()
    channels, agencies = _channels(BOTH, email, _Sink())
    await channels.notify(None, _notification("hk-ird"))
    assert (email.sent, agencies.handed) == ([], ["hk-ird"])


async def test_a_transient_failure_wins_so_the_queue_tries_every_channel_again() -> None:
    sms = _Sink()
    channels, agencies = _channels(
        BOTH, _Sink(TransientDeliveryError("e-mail deferred (SMTP 451)")), sms
    )
    with pytest.raises(TransientDeliveryError):
        await channels.notify(None, _notification())
    assert len(sms.sent) == 1  # the other channel was still tried
    assert agencies.handed == []  # recorded only once every channel took it


async def test_a_refused_address_or_a_missing_channel_is_permanent() -> None:
    refused, _ = _channels(
        BOTH, _Sink(PermanentDeliveryError("e-mail refused (SMTP 550)")), _Sink()
    )
    with pytest.raises(PermanentDeliveryError):
        await refused.notify(None, _notification())
    unconfigured, _ = _channels(BOTH, _Sink(), None)
    with pytest.raises(PermanentDeliveryError, match="SMS is not configured"):
        await unconfigured.notify(None, _notification())


def test_every_milestone_message_is_written_in_the_four_languages() -> None:
    missing = [key for key, text in MESSAGES.items() if set(text.as_dict()) != set(LANGUAGES)]
    assert missing == []


def test_a_pickup_code_is_told_in_the_residents_text() -> None:
    body = {
        **_notification().body,
        "event": "application.result_ready_for_pickup",
        "message": MESSAGES["application.result_ready_for_pickup"].as_dict(),
        "pickup_code": "7K2M9QXD",
    }

    _, text, sms = render(body, "pt", URL)

    assert "Código de levantamento: 7K2M9QXD" in text
    assert "7K2M9QXD" in sms
