"""The portal's four languages (Art. 15): zh-Hant, zh-Hans, en and pt.

:func:`negotiate` picks one: a valid ``?lang=`` (which the portal then remembers in a
cookie), else the cookie, else ``Accept-Language`` by q-value, else zh-Hant. Every label is
in ``messages.yaml`` beside this module; a label missing in a language falls back to
English, then to the key. Labels the gateway sends (matter names, particulars, problem
messages) come as ``{language: text}`` maps: :meth:`Translator.pick` chooses from them.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from importlib import resources
from typing import Any

import yaml

LANGUAGES = ("zh-Hant", "zh-Hans", "en", "pt")
DEFAULT = "zh-Hant"
NAMES = {"zh-Hant": "繁體中文", "zh-Hans": "简体中文", "en": "English", "pt": "Português"}
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


@functools.cache
def _catalog() -> dict[str, dict[str, str]]:
    text = resources.files("gateway.portal").joinpath("messages.yaml").read_text("utf-8")
    return dict(yaml.safe_load(text))


def _tag(value: str) -> str | None:
    lower = value.strip().lower()
    if lower in _TAGS:
        return _TAGS[lower]
    if lower.startswith(("zh-hant", "zh-hk", "zh-mo", "zh-tw")):
        return "zh-Hant"
    primary = lower.split("-")[0]
    return _TAGS.get(primary)


def negotiate(asked: str | None, remembered: str | None, accept: str | None) -> str:
    for value in (asked, remembered):
        if value in LANGUAGES:
            return value
    ranked = []
    for index, item in enumerate((accept or "").split(",")):
        tag, _, params = item.partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        found = _tag(tag)
        if found and quality > 0:
            ranked.append((-quality, index, found))
    return sorted(ranked)[0][2] if ranked else DEFAULT


class Translator:
    def __init__(self, lang: str) -> None:
        self.lang = lang

    def __call__(self, key: str, **values: Any) -> str:
        entry = _catalog().get(key, {})
        text = entry.get(self.lang) or entry.get("en") or key
        return text.format(**values) if values else text

    def maybe(self, key: str, default: str) -> str:
        """The label for ``key`` if the catalog has one, else ``default`` as it is."""
        return self(key) if key in _catalog() else default

    def pick(self, labels: Mapping[str, Any] | None, default: str = "") -> str:
        """One language's text from a ``{language: text}`` map the gateway sent."""
        if not labels:
            return default
        for lang in (self.lang, "en", "zh-Hant"):
            if labels.get(lang):
                return str(labels[lang])
        return str(next(iter(labels.values()), default))


def switcher(current: str) -> list[dict[str, Any]]:
    return [{"code": c, "name": NAMES[c], "current": c == current} for c in LANGUAGES]
