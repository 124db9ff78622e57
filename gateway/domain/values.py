"""Value objects of the canonical model: jurisdictions, matter codes, identity documents.

Check characters are validated here because a wrong number is wrong in every jurisdiction.
Algorithms and sources: ``shared/reference/domain.md`` §1 and §3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from enum import StrEnum


class Jurisdiction(StrEnum):
    """A spoke of the hub. Codes follow ISO 3166 where one exists (Guangdong is GD)."""

    HK = "HK"
    MO = "MO"
    GD = "GD"

    @classmethod
    def parse(cls, text: str) -> Jurisdiction:
        try:
            return cls(text.upper())
        except ValueError:
            raise ValueError(f"unknown jurisdiction {text!r}") from None


# Hong Kong, Macao and Guangdong all keep UTC+8 without daylight saving (since 1992), so one
# fixed offset gives each jurisdiction's calendar date without a time-zone database.
GBA_TIME = timezone(timedelta(hours=8), "UTC+08:00")


def local_date(moment: datetime) -> date:
    """The calendar date in the Greater Bay Area at ``moment`` (an aware datetime)."""
    return moment.astimezone(GBA_TIME).date()


class Channel(StrEnum):
    """Art. 17-18: every channel takes the same path and is recorded."""

    ONLINE = "online"
    COUNTER = "counter"
    KIOSK = "kiosk"
    MOBILE = "mobile"


_USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_is_valid(code: str) -> bool:
    """GB 32100-2015 Unified Social Credit Code with its MOD 31 check character."""
    if len(code) != 18 or any(ch not in _USCC_ALPHABET for ch in code):
        return False
    total = sum(_USCC_ALPHABET.index(ch) * w for ch, w in zip(code, _USCC_WEIGHTS, strict=False))
    return _USCC_ALPHABET[(31 - total % 31) % 31] == code[17]


@dataclass(frozen=True, slots=True)
class MatterCode:
    """A Guangdong implementation code (实施编码): USCC(18) + level(1) + basic code(12) [+ item].

    Validation is deliberately lenient about the basic code's type slot (domain.md §1.2): the
    USCC check character, the level digit and the length are enforced.
    """

    value: str

    def __post_init__(self) -> None:
        v = self.value
        if not 31 <= len(v) <= 36 or not v.isascii() or not v.isalnum():
            raise ValueError("a matter code has 31 to 36 ASCII letters and digits")
        if not uscc_is_valid(v[:18]):
            raise ValueError("the matter code does not start with a valid USCC")
        if v[18] not in "123456":
            raise ValueError("the level digit of the matter code must be 1 to 6")

    @property
    def agency_uscc(self) -> str:
        return self.value[:18]

    @property
    def level(self) -> int:
        return int(self.value[18])

    @property
    def basic_code(self) -> str:
        return self.value[19:31]

    def __str__(self) -> str:
        return self.value


class DocumentType(StrEnum):
    """Canonical identity-document types; each system's own code list maps onto these."""

    HKID = "HKID"  # Hong Kong identity card
    MO_BIR = "MO_BIR"  # Macao resident identity card (BIR)
    HRP = "HRP"  # Mainland travel permit for HK/Macao residents (回乡证)
    RESIDENCE_PERMIT = "RESIDENCE_PERMIT"  # residence permit for HK/Macao residents (810000/820000)
    CN_RIC = "CN_RIC"  # mainland resident identity card
    USCC = "USCC"  # unified social credit code (organisations)
    HK_BRN = "HK_BRN"  # Hong Kong business registration number


_HKID_RE = re.compile(r"^([A-Z]{1,2})([0-9]{6})\(?([0-9A])\)?$")
_BIR_RE = re.compile(r"^([157])([0-9]{6})\(?([0-9])\)?$")
_HRP_RE = re.compile(r"^([HM])([0-9]{8})([0-9]{2})?$")
_RIC_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def hkid_check_digit(prefix: str, digits: str) -> str:
    """HKID check character: weights 9..2, letters A=10..Z=35, a missing letter is 36."""
    letters = prefix if len(prefix) == 2 else " " + prefix
    values = [36 if ch == " " else ord(ch) - 55 for ch in letters] + [int(d) for d in digits]
    total = sum(v * w for v, w in zip(values, range(9, 1, -1), strict=True))
    check = (11 - total % 11) % 11
    return "A" if check == 10 else str(check)


def mod11_2_check(body17: str) -> str:
    """ISO 7064 MOD 11-2 check character of an 18-digit mainland / residence-permit number."""
    total = sum(int(d) * w for d, w in zip(body17, _RIC_WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


def _valid_birth_date(text: str) -> bool:
    try:
        date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return False
    return True


def _normalise_hkid(raw: str) -> str:
    m = _HKID_RE.match(raw)
    if not m or hkid_check_digit(m[1], m[2]) != m[3]:
        raise ValueError("not a valid HKID number")
    return m[1] + m[2] + m[3]


def _normalise_bir(raw: str) -> str:
    m = _BIR_RE.match(raw)
    if not m:  # no public check algorithm: format only (domain.md §3)
        raise ValueError("not a valid Macao BIR number")
    return m[1] + m[2] + m[3]


def _normalise_hrp(raw: str) -> str:
    if not _HRP_RE.match(raw):
        raise ValueError("not a valid Mainland travel permit number")
    return raw


def _normalise_18(raw: str, *, residence_permit: bool) -> str:
    if len(raw) != 18 or not raw[:17].isdigit() or mod11_2_check(raw[:17]) != raw[17]:
        raise ValueError("not a valid MOD 11-2 identity number")
    if not _valid_birth_date(raw[6:14]):
        raise ValueError("the identity number carries an impossible birth date")
    if residence_permit != raw.startswith(("810000", "820000", "830000")):
        raise ValueError("residence permits start 810000, 820000 or 830000; RICs do not")
    return raw


def _normalise_uscc(raw: str) -> str:
    if not uscc_is_valid(raw):
        raise ValueError("not a valid unified social credit code")
    return raw


def _normalise_brn(raw: str) -> str:
    if not re.fullmatch(r"[0-9]{8}|[CF][0-9]{7}", raw):
        raise ValueError("not a valid HK business registration number")
    return raw


_NORMALISERS = {
    DocumentType.HKID: _normalise_hkid,
    DocumentType.MO_BIR: _normalise_bir,
    DocumentType.HRP: _normalise_hrp,
    DocumentType.RESIDENCE_PERMIT: lambda raw: _normalise_18(raw, residence_permit=True),
    DocumentType.CN_RIC: lambda raw: _normalise_18(raw, residence_permit=False),
    DocumentType.USCC: _normalise_uscc,
    DocumentType.HK_BRN: _normalise_brn,
}

_ISSUERS = {
    DocumentType.HKID: "HK",
    DocumentType.MO_BIR: "MO",
    DocumentType.HRP: "CN",
    DocumentType.RESIDENCE_PERMIT: "CN",
    DocumentType.CN_RIC: "CN",
    DocumentType.USCC: "CN",
    DocumentType.HK_BRN: "HK",
}


def normalise_document_number(doc_type: DocumentType, raw: str) -> str:
    """Compact, upper-case form with the check character validated; ValueError otherwise."""
    compact = re.sub(r"[\s\-]", "", raw)
    if not compact.isascii():  # before upper(): "ſ".upper() is "S", "ı".upper() is "I"
        raise ValueError("identity numbers are written in ASCII letters and digits")
    return _NORMALISERS[doc_type](compact.upper())


@dataclass(frozen=True, slots=True)
class IdentityDocument:
    """One identity document as a unit: type, number (compact form), issuing jurisdiction."""

    type: DocumentType
    number: str
    issuer: str

    @classmethod
    def parse(cls, doc_type: str, number: str) -> IdentityDocument:
        kind = DocumentType(doc_type)
        return cls(kind, normalise_document_number(kind, number), _ISSUERS[kind])

    def display(self) -> str:
        """Printed form: ``A123456(3)`` for HKID, ``1234567(8)`` for BIR, else compact."""
        if self.type in (DocumentType.HKID, DocumentType.MO_BIR):
            return f"{self.number[:-1]}({self.number[-1]})"
        return self.number
