"""How a resident wants to be told (Art. 22): contact details, channels and language. No I/O.

The applicant chooses the channel: ``email``, ``sms``, both, or none (then they read their
notifications at the gateway only). The resident sets the details (``PUT /v1/me/contact``);
none of the three identity providers' profiles maps an ``email`` or ``phone_number`` claim
today, so nothing is taken from a login (``source`` says who set them: ``resident``). The
language is one the gateway writes its messages in: the one asked for, else the request's
``Accept-Language``, else zh-Hant. Contact details are personal data: never logged, never on
the timeline or the audit chain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.domain.documents import problem
from gateway.domain.errors import FieldProblem, ValidationFailedError

CHANNELS = ("email", "sms")
LANGUAGES = ("zh-Hant", "zh-Hans", "en", "pt")
DEFAULT_LANGUAGE = "zh-Hant"
# A pragmatic address check (RFC 5321 lengths, one @, a dotted domain, no spaces or controls)
_EMAIL = re.compile(r"[^@\s<>()\[\],;:\"\\]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_PHONE = re.compile(r"\+[1-9][0-9]{6,14}")  # E.164
_FIELDS = ("email", "phone", "channels", "language")


@dataclass(frozen=True, slots=True)
class ContactPreferences:
    """Where and in which language one person is told of their cases."""

    person_id: str
    email: str | None = None
    phone: str | None = None
    channels: tuple[str, ...] = ()
    language: str = DEFAULT_LANGUAGE
    source: str = "resident"  # resident | idp:<provider> (who set the details last)
    updated_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "email": self.email,
            "phone": self.phone,
            "channels": list(self.channels),
            "language": self.language,
            "source": self.source,
        }

    def address(self, channel: str) -> str | None:
        return self.email if channel == "email" else self.phone if channel == "sms" else None


def language_of(tag: str | None) -> str | None:
    """The language a BCP 47 tag asks for, if we write messages in it (``zh-HK`` -> zh-Hant)."""
    if not tag:
        return None
    low = tag.strip().lower()
    if low in ("zh-hant", "zh-hk", "zh-mo", "zh-tw") or low.startswith("zh-hant"):
        return "zh-Hant"
    if low in ("zh", "zh-hans", "zh-cn", "zh-sg") or low.startswith("zh-hans"):
        return "zh-Hans"
    if low == "en" or low.startswith("en-"):
        return "en"
    if low == "pt" or low.startswith("pt-"):
        return "pt"
    return None


def preferred_language(accept_language: str | None) -> str:
    """The first language of an ``Accept-Language`` header we write messages in (in the
    order the header gives them; q-values of 0 are refused), else zh-Hant."""
    for item in (accept_language or "").split(",")[:32]:
        tag, _, params = item.partition(";")
        if params.strip().replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000"):
            continue
        language = language_of(tag)
        if language is not None:
            return language
    return DEFAULT_LANGUAGE


def preferences_from_request(
    person_id: str, data: Mapping[str, Any], at: datetime, *, accept_language: str | None = None
) -> ContactPreferences:
    """The resident's ``PUT /v1/me/contact`` body, checked whole: every problem at once. No
    ``language``: the first of ``Accept-Language`` we write in, else zh-Hant."""
    problems: list[FieldProblem] = [
        problem(f"/{name}", "unexpected_field") for name in data if name not in _FIELDS
    ]
    email, phone = data.get("email"), data.get("phone")
    if email is not None and (not isinstance(email, str) or not _valid_email(email)):
        problems.append(problem("/email", "invalid_value"))
    if phone is not None and (not isinstance(phone, str) or not _PHONE.fullmatch(phone)):
        problems.append(problem("/phone", "invalid_phone"))
    channels = data.get("channels", [])
    if not isinstance(channels, list) or not all(c in CHANNELS for c in channels):
        problems.append(problem("/channels", "invalid_value"))
        channels = []
    for channel, address in (("email", email), ("sms", phone)):
        if channel in channels and not address:
            problems.append(problem(f"/{'email' if channel == 'email' else 'phone'}", "required"))
    language = data.get("language", preferred_language(accept_language))
    if language not in LANGUAGES:
        problems.append(problem("/language", "invalid_value"))
    if problems:
        raise ValidationFailedError(f"{len(problems)} problem(s) found", errors=problems)
    return ContactPreferences(
        person_id,
        email=email,
        phone=phone,
        channels=tuple(dict.fromkeys(channels)),
        language=language,
        source="resident",
        updated_at=at,
    )


def _valid_email(value: str) -> bool:
    return len(value) <= 254 and _EMAIL.fullmatch(value) is not None
