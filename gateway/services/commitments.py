"""Commitments (告知承诺, Art. 12): a signed promise that replaces a material.

A ``commitments[]`` item of an application names the material it replaces and, optionally,
the ``language`` the applicant read it in (``zh-Hant``, ``zh-Hans``, ``en`` or ``pt``). The
gateway fills in the text the catalog declares for that material (the matter's ``commitment``
per material) in that language and its digest; without a ``language``, the applicant's
language (:func:`applicant_language`): a resident's own contact preference when they set one,
else where the application came from: Traditional Chinese for Hong Kong and Macao, Simplified
Chinese for Guangdong and the canonical form. What the case stores,
what its forwards carry and what its receipt signs is that filled-in item, so the receipt
binds the exact words the applicant committed to (:func:`receipt_claim`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from gateway.domain.documents import problem
from gateway.domain.errors import FieldProblem
from gateway.domain.matters import MaterialRule, Matter
from gateway.services.ports import UnitOfWork

LANGUAGES = ("zh-Hant", "zh-Hans", "en", "pt")
_BY_SOURCE = {"HK": "zh-Hant", "MO": "zh-Hant", "GD": "zh-Hans"}


def language_of(source_format: str) -> str:
    """The language of an application's source format (HK, MO: zh-Hant; else zh-Hans)."""
    return _BY_SOURCE.get(source_format.upper(), "zh-Hans")


async def applicant_language(uow: UnitOfWork, person_id: str | None, source_format: str) -> str:
    """The applicant's language when a commitment does not name one: the resident's contact
    preference (Art. 22) when they set one, else that of the source format."""
    preferences = await uow.contacts.get(person_id) if person_id else None
    if preferences is not None and preferences.language in LANGUAGES:
        return preferences.language
    return language_of(source_format)


def digest(text: str) -> str:
    """RFC 9530 form of the SHA-256 of the text in UTF-8."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + ":"


def filled(
    document: Mapping[str, Any], matter: Matter, default_language: str
) -> tuple[dict[str, Any], list[FieldProblem]]:
    """``document`` with each commitment's text, language and digest filled in, and every
    problem: a material that no commitment may replace, a language the catalog has no text
    in."""
    items = document.get("commitments")
    if not isinstance(items, list) or not items:
        return dict(document), []
    texts = {
        m.code: m.commitment.as_dict()
        for m in matter.materials
        if m.rule is MaterialRule.COMMITMENT_ALLOWED and m.commitment is not None
    }
    problems: list[FieldProblem] = []
    out: list[Any] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(problem(f"/commitments/{i}", "wrong_type"))
            continue
        code = item.get("material")
        language = item.get("language", default_language)
        if not isinstance(code, str) or code not in texts:
            problems.append(problem(f"/commitments/{i}/material", "commitment_not_allowed"))
            continue
        if language not in LANGUAGES or language not in texts[code]:
            problems.append(problem(f"/commitments/{i}/language", "unknown_code"))
            continue
        text = texts[code][language]
        out.append({"material": code, "language": language, "text": text, "digest": digest(text)})
    return {**document, "commitments": out}, problems


def receipt_claim(document: Mapping[str, Any]) -> list[dict[str, str]]:
    """What a receipt binds of the commitments: material, language and the text's digest."""
    items = document.get("commitments")
    if not isinstance(items, list):
        return []
    return [
        {k: item[k] for k in ("material", "language", "digest") if isinstance(item.get(k), str)}
        for item in items
        if isinstance(item, dict)
    ]
