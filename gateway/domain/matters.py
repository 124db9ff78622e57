"""The matter catalog's model (Art. 10): what a matter is, what it needs, who handles it.

Loaded from the reviewed data in ``mappings/matters/`` by :mod:`gateway.mapping.catalog`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from gateway.domain.values import Channel, Jurisdiction, MatterCode


class MaterialRule(StrEnum):
    """How a material is treated at acceptance (Art. 12, 19(5))."""

    REQUIRED = "required"
    MAY_BE_MISSING = "may_be_missing"  # 容缺受理: accepted now, supplied later
    COMMITMENT_ALLOWED = "commitment_allowed"  # 告知承诺: a signed commitment replaces it
    BY_DATA_SHARING = "by_data_sharing"  # never asked of the applicant


class TimeUnit(StrEnum):
    WORKING_DAYS = "working_days"
    NATURAL_DAYS = "natural_days"


class Assurance(StrEnum):
    """One assurance scale for three identity systems; ordered low < substantial < high."""

    LOW = "low"
    SUBSTANTIAL = "substantial"
    HIGH = "high"

    @property
    def rank(self) -> int:
        return ("low", "substantial", "high").index(self.value)


@dataclass(frozen=True, slots=True)
class Names:
    zh_hans: str
    zh_hant: str
    en: str
    pt: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"zh-Hans": self.zh_hans, "zh-Hant": self.zh_hant, "en": self.en}
        if self.pt:
            out["pt"] = self.pt
        return out


@dataclass(frozen=True, slots=True)
class TimeLimit:
    value: int
    unit: TimeUnit
    calendar: Jurisdiction

    def as_dict(self) -> dict[str, object]:
        return {"value": self.value, "unit": self.unit.value, "calendar": self.calendar.value}


@dataclass(frozen=True, slots=True)
class Material:
    code: str
    names: Names
    rule: MaterialRule


@dataclass(frozen=True, slots=True)
class Particular:
    """A matter-specific field of the application (data minimisation, Art. 11)."""

    name: str
    required: bool
    kind: str = "text"  # text | address | money | date


@dataclass(frozen=True, slots=True)
class Counterpart:
    """The HK or Macau service that corresponds to a Guangdong matter."""

    jurisdiction: Jurisdiction
    relation: str  # equivalent | partial | reverse-direction | none
    service: str | None
    names: Names | None


@dataclass(frozen=True, slots=True)
class Route:
    """Joint handling: one lead acceptor and the agencies reviewing in parallel."""

    lead: str
    reviewers: tuple[str, ...] = ()

    @property
    def handlers(self) -> tuple[str, ...]:
        return (self.lead, *self.reviewers)


@dataclass(frozen=True, slots=True)
class Matter:
    code: MatterCode
    version: int
    effective_from: date
    effective_to: date | None
    names: Names
    matter_type: str
    legal_basis: str
    statutory_limit: TimeLimit
    promised_limit: TimeLimit
    fee: str
    channels: tuple[Channel, ...]
    min_assurance: Assurance
    agent_allowed: bool
    materials: tuple[Material, ...]
    particulars: tuple[Particular, ...]
    route: Route
    counterparts: tuple[Counterpart, ...]

    def in_force(self, on: date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on < self.effective_to)

    def counterpart(self, jurisdiction: Jurisdiction) -> Counterpart | None:
        return next((c for c in self.counterparts if c.jurisdiction is jurisdiction), None)
