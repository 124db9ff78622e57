"""The pages' languages (Art. 15): zh-Hant, zh-Hans, en and pt, chosen per request.

:func:`negotiate` picks the language: a valid ``?lang=`` first, then ``Accept-Language`` (with
its q-values), then zh-Hant. :class:`Translator` speaks one language: every label comes from
one message catalog, ``i18n.yaml`` beside this module (read once, on first use), with a
fallback to English and then to the key itself, so an event type the catalog does not know
is shown by its raw dotted name. Dates are shown plainly, in Greater Bay Area time (UTC+8):
``Friday, 4 December 2026``, ``sexta-feira, 4 de dezembro de 2026`` or ``2026年12月4日（星期五）``.
Portuguese is an official language of Macau, beside Chinese.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from typing import Any

import yaml

from gateway.domain.values import GBA_TIME

LANGUAGES = ("zh-Hant", "zh-Hans", "en", "pt")
DEFAULT_LANGUAGE = "zh-Hant"
LANGUAGE_NAMES = {"zh-Hant": "繁體中文", "zh-Hans": "简体中文", "en": "English", "pt": "Português"}
FALLBACK = "en"

# BCP 47 tags (lower case) a browser may send, and the script they mean.
_TAGS = {
    "zh-hant": "zh-Hant",
    "zh-hk": "zh-Hant",
    "zh-mo": "zh-Hant",
    "zh-tw": "zh-Hant",
    "yue": "zh-Hant",
    "zh-hans": "zh-Hans",
    "zh-cn": "zh-Hans",
    "zh-sg": "zh-Hans",
    "zh": "zh-Hans",
    "en": "en",
    "pt": "pt",
}
_MONTHS = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]
_WEEKDAYS_EN = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_WEEKDAYS_ZH = "一二三四五六日"
_MONTHS_PT = [
    "janeiro",
    "fevereiro",
    "março",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
]
_WEEKDAYS_PT = [
    "segunda-feira",
    "terça-feira",
    "quarta-feira",
    "quinta-feira",
    "sexta-feira",
    "sábado",
    "domingo",
]


@functools.cache
def catalog() -> Mapping[str, Mapping[str, Mapping[str, str]]]:
    """The message catalog: section -> key -> language -> text (read on first use)."""
    text = resources.files("gateway.web").joinpath("i18n.yaml").read_text("utf-8")
    return yaml.safe_load(text)


def supported(tag: str | None) -> str | None:
    """The language a BCP 47 tag asks for, if it is one we speak (``zh-HK`` -> zh-Hant)."""
    if not tag:
        return None
    parts = tag.strip().lower().replace("_", "-").split("-")
    while parts:  # zh-hant-hk -> zh-hant -> zh
        found = _TAGS.get("-".join(parts))
        if found:
            return found
        parts.pop()
    return None


def negotiate(query: str | None, accept_language: str | None) -> str:
    """``?lang=`` when it names a language we speak; else the best of Accept-Language."""
    chosen = supported(query)
    if chosen:
        return chosen
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate((accept_language or "").split(",")[:32]):
        tag, _, params = item.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = supported(tag)
        if language and quality > 0:
            ranked.append((-quality, position, language))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


def _as_date(value: str | date | None) -> date | None:
    if value is None or isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _as_moment(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Translator:
    """Labels and dates in one language."""

    lang: str

    def __call__(self, key: str, section: str = "ui") -> str:
        texts = catalog().get(section, {}).get(key)
        if not texts:
            return key
        return texts.get(self.lang) or texts.get(FALLBACK) or key

    def pick(self, names: Mapping[str, Any] | None, default: str = "") -> str:
        """This language's entry of a names object (``{"zh-Hant": .., "en": ..}``)."""
        if not names:
            return default
        return str(names.get(self.lang) or names.get(FALLBACK) or next(iter(names.values())))

    def event(self, event_type: str) -> str:
        return self(event_type, "events")

    def status(self, status: str) -> str:
        return self(status, "statuses")

    def date(self, value: str | date | None) -> str:
        """A calendar day: ``Friday, 4 December 2026`` / ``sexta-feira, 4 de dezembro de
        2026`` / ``2026年12月4日（星期五）``."""
        day = _as_date(value)
        if day is None:
            return str(value or "")
        if self.lang == "en":
            return f"{_WEEKDAYS_EN[day.weekday()]}, {day.day} {_MONTHS[day.month - 1]} {day.year}"
        if self.lang == "pt":
            month = _MONTHS_PT[day.month - 1]
            return f"{_WEEKDAYS_PT[day.weekday()]}, {day.day} de {month} de {day.year}"
        return f"{day.year}年{day.month}月{day.day}日（星期{_WEEKDAYS_ZH[day.weekday()]}）"

    def moment(self, value: str | datetime | None) -> str:
        """An instant in GBA time: ``4 December 2026, 14:05`` / ``2026年12月4日 14:05``."""
        at = _as_moment(value)
        if at is None:
            return str(value or "")
        local = at.astimezone(GBA_TIME) if at.tzinfo else at
        clock = f"{local.hour:02d}:{local.minute:02d}"
        if self.lang == "en":
            return f"{local.day} {_MONTHS[local.month - 1]} {local.year}, {clock}"
        if self.lang == "pt":
            return f"{local.day} de {_MONTHS_PT[local.month - 1]} de {local.year}, {clock}"
        return f"{local.year}年{local.month}月{local.day}日 {clock}"

    @staticmethod
    def iso(value: str | datetime | date | None) -> str:
        """The machine-readable form for ``<time datetime>``."""
        if isinstance(value, datetime | date):
            return value.isoformat()
        return str(value or "")


def switcher(lang: str) -> list[dict[str, Any]]:
    """The language switcher's entries, each named in its own language."""
    return [
        {"code": code, "name": LANGUAGE_NAMES[code], "current": code == lang} for code in LANGUAGES
    ]
