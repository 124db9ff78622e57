"""The small, documented set of field transforms a mapping file may name.

Each transform takes the text found in the source document and returns the canonical value,
or raises :class:`TransformError` with a problem code. The set is closed: a mapping that names
an unknown transform fails to load.

=============== ==============================================================
``text``        trimmed text, inner whitespace collapsed
``upper``       trimmed, upper-case
``date_dmy``    ``DD/MM/YYYY`` (HK and Macau forms) -> ISO ``YYYY-MM-DD``
``hk2s``        Traditional (HK/Macau usage) -> Simplified, with OpenCC
``s2hk``        Simplified -> Traditional (HK usage), with OpenCC
``e164``        national or international phone number -> E.164 (``country`` argument)
``id_compact``  identity number without spaces, dashes or parentheses, upper-case
``enum``        a code-list map (``map`` argument); unknown codes are problems
``decimal``     a money or quantity amount with at most two decimals
=============== ==============================================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import opencc


class TransformError(ValueError):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


Transform = Callable[[str], Any]

_SPACES = re.compile(r"\s+")
_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")
_COUNTRY_CODES = {"HK": "852", "MO": "853", "GD": "86"}


def _text(value: str) -> str:
    return _SPACES.sub(" ", value).strip()


def _date_dmy(value: str) -> str:
    m = _DMY.match(value.strip())
    if not m:
        raise TransformError("invalid_date")
    try:
        return date(int(m[3]), int(m[2]), int(m[1])).isoformat()
    except ValueError:
        raise TransformError("invalid_date") from None


@lru_cache(maxsize=4)
def _converter(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


def _script(config: str) -> Transform:
    return lambda value: _converter(config).convert(_text(value))


def _e164(country: str) -> Transform:
    prefix = _COUNTRY_CODES[country]

    def convert(value: str) -> str:
        digits = re.sub(r"[\s\-().]", "", value)
        if digits.startswith("+"):
            number = digits[1:]
        elif digits.startswith("00"):
            number = digits[2:]
        else:
            number = prefix + digits.lstrip("0") if country == "GD" else prefix + digits
        if not number.isdigit() or not 8 <= len(number) <= 15:
            raise TransformError("invalid_phone")
        return "+" + number

    return convert


def _id_compact(value: str) -> str:
    return re.sub(r"[\s\-()]", "", value).upper()


def _enum(table: Mapping[str, str]) -> Transform:
    def convert(value: str) -> str:
        try:
            return table[value.strip()]
        except KeyError:
            raise TransformError("unknown_code") from None

    return convert


def _decimal(value: str) -> str:
    try:
        amount = Decimal(value.strip().replace(",", ""))
    except InvalidOperation:
        raise TransformError("invalid_amount") from None
    if not amount.is_finite() or amount < 0 or abs(amount) >= Decimal(10) ** 15:
        raise TransformError("invalid_amount")
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise TransformError("invalid_amount")
    return f"{amount:.2f}"


def build(name: str, options: Mapping[str, Any]) -> Transform:
    """The transform ``name`` configured with ``options``; ValueError for unknown names."""
    if name == "text":
        return _text
    if name == "upper":
        return lambda v: _text(v).upper()
    if name == "date_dmy":
        return _date_dmy
    if name in ("hk2s", "s2hk"):
        return _script(name)
    if name == "e164":
        return _e164(str(options.get("country", "HK")))
    if name == "id_compact":
        return _id_compact
    if name == "enum":
        return _enum(dict(options["map"]))
    if name == "decimal":
        return _decimal
    raise ValueError(f"unknown transform {name!r}")
