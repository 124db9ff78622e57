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

:func:`build_inverse` gives the reverse direction (canonical value -> native text) used by
:mod:`gateway.mapping.encode`: ``text``, ``upper`` and ``decimal`` write the value as it is,
``date_dmy`` writes ``DD/MM/YYYY``, ``e164`` the international form with a space after the
country code (``+852 9123 4567``), ``id_compact`` the printed form of HKID and Macao BIR
numbers (``A123456(3)``, ``1234567(8)``; other numbers as they are) and ``enum`` the reverse
code list, which must be one-to-one. ``hk2s`` and ``s2hk`` have no inverse: the fields they
fill are derived from the original-script field, which is the one written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import opencc

from gateway import jurisdictions


class TransformError(ValueError):
    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


Transform = Callable[[str], Any]

_DMY = re.compile(r"([0-9]{1,2})/([0-9]{1,2})/([0-9]{4})")  # ASCII digits only


def _text(value: str) -> str:
    # str.split() and re's \s use the same Unicode whitespace: this equals \s+ -> " ", strip.
    return " ".join(value.split())


def _upper(value: str) -> str:
    return " ".join(value.split()).upper()


def _date_dmy(value: str) -> str:
    m = _DMY.fullmatch(value.strip())
    if not m:
        raise TransformError("invalid_date")
    try:
        return date(int(m[3]), int(m[2]), int(m[1])).isoformat()
    except ValueError:
        raise TransformError("invalid_date") from None


@lru_cache(maxsize=4)
def _converter(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


TEXT: Transform = _text
"""The ``text`` transform (the decoder runs it inline)."""
UPPER: Transform = _upper
"""The ``upper`` transform (the decoder runs it inline)."""


def _script(config: str) -> Transform:
    convert = _converter(config).convert
    return lambda value: convert(" ".join(value.split()))


_PHONE_PUNCTUATION = re.compile(r"[\s\-().]")
_ID_PUNCTUATION = re.compile(r"[\s\-()]")


def _e164(country: str) -> Transform:
    """A phone number in E.164, a national one read as ``country``'s (a jurisdiction code:
    its calling code and national trunk prefix, gateway/jurisdictions.py)."""
    try:
        jurisdiction = jurisdictions.registered().by_code(country)
    except KeyError:
        raise ValueError(f"e164: unknown country {country!r}") from None
    prefix, trunk = jurisdiction.calling_code, jurisdiction.trunk_prefix

    def convert(value: str) -> str:
        digits = _PHONE_PUNCTUATION.sub("", value)
        if digits.startswith("+"):
            number = digits[1:]
        elif digits.startswith("00"):
            number = digits[2:]
        else:
            number = prefix + (digits.lstrip(trunk) if trunk else digits)
        # ASCII digits only (str.isdigit also takes "٨" and "²"); no country code starts with 0
        if not (number.isascii() and number.isdigit()) or number[:1] == "0":
            raise TransformError("invalid_phone")
        if not 8 <= len(number) <= 15:
            raise TransformError("invalid_phone")
        return "+" + number

    return convert


def _id_compact(value: str) -> str:
    return _ID_PUNCTUATION.sub("", value).upper()


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
    # is_signed(): a minus sign is refused, on zero too ("-0" would give "-0.00")
    if not amount.is_finite() or amount.is_signed() or amount >= Decimal(10) ** 15:
        raise TransformError("invalid_amount")
    if amount.as_tuple().exponent < -2:  # type: ignore[operator]
        raise TransformError("invalid_amount")
    return f"{amount:.2f}"


def build(name: str, options: Mapping[str, Any]) -> Transform:
    """The transform ``name`` configured with ``options``; ValueError for unknown names."""
    if name == "text":
        return _text
    if name == "upper":
        return _upper
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


# --- the reverse direction: canonical value -> native text -----------------------------------

Inverse = Callable[[str, Mapping[str, Any]], str]
"""Canonical value and the canonical object holding it (a list item, or the document)."""

_ISO_DATE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")  # whole value, ASCII digits
_E164 = re.compile(r"\+([1-9][0-9]{7,14})")
# Printed with the check character in parentheses (IdentityDocument.display does the same).
_PRINTED_WITH_CHECK = {
    "HKID": re.compile(r"[A-Z]{1,2}[0-9]{6}[0-9A]"),
    "MO_BIR": re.compile(r"[0-9]{8}"),
}


def _as_is(value: str, _: Mapping[str, Any]) -> str:
    return value


AS_IS: Inverse = _as_is  # the encoder writes such a field's text as it is, inline


def _dmy_from_iso(value: str, _: Mapping[str, Any]) -> str:
    m = _ISO_DATE.fullmatch(value)
    try:
        day = date(int(m[1]), int(m[2]), int(m[3])) if m else None
    except ValueError:
        day = None
    if day is None:
        raise TransformError("invalid_date")
    return f"{day.day:02d}/{day.month:02d}/{day.year:04d}"


def _international(value: str, _: Mapping[str, Any]) -> str:
    m = _E164.fullmatch(value)
    if not m:
        raise TransformError("invalid_phone")
    number = m[1]
    for code in (j.calling_code for j in jurisdictions.registered() if j.calling_code):
        if number.startswith(code):
            local = number[len(code) :]
            if len(local) == 8:
                local = f"{local[:4]} {local[4:]}"
            return f"+{code} {local}"
    return value


def _printed_id(value: str, holder: Mapping[str, Any]) -> str:
    pattern = _PRINTED_WITH_CHECK.get(str(holder.get("type")))
    if pattern is not None and pattern.fullmatch(value):
        return f"{value[:-1]}({value[-1]})"
    return value


def _amount(value: str, _: Mapping[str, Any]) -> str:
    _decimal(value)  # refuse what the decoder would refuse, with the same problem code
    return value


def _reverse_enum(table: Mapping[str, str]) -> Inverse:
    reverse: dict[str, str] = {}
    for code, canonical in table.items():
        if canonical in reverse:
            raise ValueError(
                f"enum map is not one-to-one: {reverse[canonical]!r} and {code!r} both give"
                f" {canonical!r}, so {canonical!r} cannot be encoded"
            )
        reverse[str(canonical)] = str(code)

    def convert(value: str, _: Mapping[str, Any]) -> str:
        try:
            return reverse[value]
        except KeyError:
            raise TransformError("unknown_code") from None

    return convert


def build_inverse(name: str, options: Mapping[str, Any]) -> Inverse | None:
    """The reverse of transform ``name``; None for derived fields (``hk2s``, ``s2hk``).

    ValueError for unknown names and for an ``enum`` map that is not one-to-one.
    """
    if name in ("text", "upper"):
        return _as_is
    if name == "date_dmy":
        return _dmy_from_iso
    if name in ("hk2s", "s2hk"):
        return None
    if name == "e164":
        return _international
    if name == "id_compact":
        return _printed_id
    if name == "enum":
        return _reverse_enum(dict(options["map"]))
    if name == "decimal":
        return _amount
    raise ValueError(f"unknown transform {name!r}")
