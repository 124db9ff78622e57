"""Identity profiles: one identity provider's claims -> the canonical identity.

Each jurisdiction's adapter declares a :class:`IdentityProfile` (``adapters/<x>/identity.py``):
the provider's ``acr`` values on the one assurance scale, and a function reading its claims.
The helpers here do what every profile needs: documents parsed with their check digits,
names completed in both Chinese scripts with OpenCC (``hk2s`` / ``s2hk``, domain.md §6.2),
and one refusal listing every claim that could not be read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

import opencc

from gateway.domain.errors import LoginFailedError
from gateway.domain.identity import CanonicalIdentity, PersonNames, assurance_of
from gateway.domain.matters import Assurance
from gateway.domain.values import IdentityDocument

# The whole claim, YYYYMMDD or YYYY-MM-DD (date.fromisoformat also takes week dates).
_BIRTH_DATE = re.compile(r"([0-9]{4})(-?)([0-9]{2})\2([0-9]{2})")


@cache
def _converter(config: str) -> opencc.OpenCC:
    return opencc.OpenCC(config)


def person_names(
    original: str,
    *,
    simplified_original: bool,
    latin: str | None = None,
    family_name_latin: str | None = None,
    given_names_latin: str | None = None,
) -> PersonNames:
    """A name in its own script plus the other Chinese script (HK usage for Traditional)."""
    if simplified_original:
        hans, hant = original, _converter("s2hk").convert(original)
    else:
        hant, hans = original, _converter("hk2s").convert(original)
    if not latin and family_name_latin:
        latin = f"{family_name_latin} {given_names_latin or ''}".strip()
    return PersonNames(
        original=original,
        zh_hant=hant,
        zh_hans=hans,
        latin=latin or None,
        family_name_latin=family_name_latin,
        given_names_latin=given_names_latin,
    )


class ClaimReader:
    """Reads claims and collects every problem, so one refusal names them all."""

    def __init__(self, provider: str, claims: Mapping[str, Any]) -> None:
        self.provider = provider
        self.claims = claims
        self.problems: list[str] = []

    def text(self, value: Any, name: str, *, required: bool = True) -> str | None:
        if isinstance(value, str) and value.strip():
            return value.strip()
        if required or value is not None:
            self.problems.append(f"claim {name} is missing or not text")
        return None

    def claim(self, name: str, *, required: bool = True) -> str | None:
        return self.text(self.claims.get(name), name, required=required)

    def member(self, name: str, member: str, *, required: bool = True) -> str | None:
        value = self.claims.get(name)
        if not isinstance(value, Mapping):
            if required or value is not None:
                self.problems.append(f"claim {name} is missing or not an object")
            return None
        return self.text(value.get(member), f"{name}.{member}", required=required)

    def document(self, doc_type: str, number: str | None, name: str) -> IdentityDocument | None:
        if number is None:
            return None
        try:
            return IdentityDocument.parse(doc_type, number)
        except ValueError:
            self.problems.append(f"claim {name} is not a valid {doc_type} number")
            return None

    def birth_date(self, value: str | None, name: str) -> date | None:
        """``YYYYMMDD`` (iAM Smart) or ``YYYY-MM-DD``, whole; nothing else is a birth date."""
        if value is None:
            return None
        found = _BIRTH_DATE.fullmatch(value)
        try:
            if found is None:
                raise ValueError(value)
            return date(int(found[1]), int(found[3]), int(found[4]))
        except ValueError:
            self.problems.append(f"claim {name} is not a date")
            return None

    def refuse_if_any(self) -> None:
        if self.problems:
            raise LoginFailedError(
                f"the {self.provider} identity provider's claims cannot be used: "
                + "; ".join(self.problems)
            )


Reader = Callable[[ClaimReader, str, Assurance, str], CanonicalIdentity | None]


@dataclass(frozen=True, slots=True)
class IdentityProfile:
    """How one identity provider's claims become a :class:`CanonicalIdentity`."""

    provider: str  # hk | macau | guangdong
    jurisdiction: str  # HK | MO | GD
    acr_values: Mapping[str, Assurance]
    read: Reader  # (reader, issuer, assurance, acr) -> identity, or None with problems noted

    def identity(self, claims: Mapping[str, Any], *, issuer: str) -> CanonicalIdentity:
        """Refuses a missing or unknown ``acr`` (never defaulted) and unreadable claims."""
        acr = claims.get("acr")
        assurance = assurance_of(
            acr if isinstance(acr, str) else None, self.acr_values, self.provider
        )
        reader = ClaimReader(self.provider, claims)
        identity = self.read(reader, issuer, assurance, str(acr))
        reader.refuse_if_any()
        if identity is None:  # a reader that noted nothing must return an identity
            raise LoginFailedError(f"the {self.provider} identity provider's claims are incomplete")
        return identity
