"""What a format carries: the canonical document against what comes back from its native form.

Before a forward leaves in an agency's own format, the native application written by the
encoder is decoded again and compared with the canonical document, field by field (generic:
nothing here knows a jurisdiction or a matter):

* every non-blank value of the document must come back at the same JSON pointer (list items
  by position); one that does not is ``not_in_format``;
* a field the mapping *writes* (a simple path with an inverse transform) must come back with
  its value: the same, or what the decoding transform makes of it (``upper``, whitespace);
* a field the format only *derives* on decoding (``zh-Hans`` from ``zh-Hant``, ``latin`` from
  the surname and given names, ``original`` from the Chinese name) must come back, with the
  value its rule derives.

So a particular the format has no element for, an identity document's issuer, an address's
area code all stop the forward instead of being dropped without a word.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gateway.domain.documents import problem
from gateway.domain.errors import FieldProblem
from gateway.mapping import transforms

Pattern = tuple[str, ...]  # a JSON pointer's parts with every list index as "*"


def written_transforms(
    rules: Iterable[tuple[Pattern, Any]],
) -> dict[Pattern, tuple[transforms.Transform, ...]]:
    """The decoding transforms of the written fields, by pointer pattern. ``rules`` gives
    (pattern, FieldRule) pairs; only those the encoder writes count."""
    found: dict[Pattern, list[transforms.Transform]] = {}
    for pattern, rule in rules:
        if rule.inverse is not None and rule.path is not None:
            found.setdefault(pattern, []).append(rule.transform)
    return {pattern: tuple(ts) for pattern, ts in found.items()}


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _same(original: Any, back: Any, decoders: tuple[transforms.Transform, ...]) -> bool:
    if str(original) == str(back):
        return True
    for decode in decoders:
        try:
            if decode(str(original)) == str(back):
                return True
        except transforms.TransformError:
            continue
    return False


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


def dropped(
    document: Mapping[str, Any],
    back: Mapping[str, Any],
    written: Mapping[Pattern, tuple[transforms.Transform, ...]],
) -> list[FieldProblem]:
    """Every field of ``document`` that ``back`` (its native form decoded again) lost or
    changed, as ``not_in_format`` problems at its JSON pointer."""
    problems: list[FieldProblem] = []

    def walk(original: Any, found: Any, pointer: str, pattern: Pattern) -> None:
        if _blank(original):
            return
        if isinstance(original, Mapping):
            holder = found if isinstance(found, Mapping) else {}
            for key, value in original.items():
                walk(value, holder.get(key), f"{pointer}/{_escape(key)}", (*pattern, key))
            return
        if isinstance(original, list):
            items = found if isinstance(found, list) else []
            for i, value in enumerate(original):
                item = items[i] if i < len(items) else None
                walk(value, item, f"{pointer}/{i}", (*pattern, "*"))
            return
        lost = _blank(found) or isinstance(found, Mapping | list)
        if lost or (pattern in written and not _same(original, found, written[pattern])):
            problems.append(problem(pointer, "not_in_format"))

    walk(document, back, "", ())
    return problems


__all__ = ["Pattern", "dropped", "written_transforms"]
