"""The fault form: an HTML form's fields as the changes :meth:`FaultBoard.update` validates.

Every field is sent (an unchecked box means off), so a submitted form states every switch.
A number that is not one is passed on as text, for the board to report with the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.domain.errors import FieldProblem

SWITCHES = ("down", "timeout", "duplicates", "out_of_order", "lax")
NUMBERS = ("latency_ms", "clock_skew_s")
FIELDS = (
    "down",
    "latency_ms",
    "error_status",
    "timeout",
    "signature",
    "clock_skew_s",
    "duplicates",
    "out_of_order",
    "lax",
)
_INTEGER = re.compile(r"[+-]?[0-9]{1,9}")


def _number(raw: object) -> int | str:
    text = str(raw if raw is not None else "").strip()
    return int(text) if _INTEGER.fullmatch(text) else text


def changes_from_form(form: Mapping[str, Any]) -> dict[str, Any]:
    """Every switch as the form states it."""
    changes: dict[str, Any] = {name: form.get(name) == "on" for name in SWITCHES}
    for name in NUMBERS:
        raw = str(form.get(name) or "").strip()
        changes[name] = 0 if raw == "" else _number(raw)
    status = str(form.get("error_status") or "").strip()
    changes["error_status"] = None if status == "" else _number(status)
    changes["signature"] = str(form.get("signature") or "valid")
    return changes


def field_errors(problems: Iterable[FieldProblem], lang: str) -> dict[str, str]:
    """Each refused field's message in ``lang``, by field name (first problem per field)."""
    out: dict[str, str] = {}
    for found in problems:
        name = (found.pointer or "").lstrip("/") or "form"
        out.setdefault(name, found.message.as_dict().get(lang) or found.message.en)
    return out
