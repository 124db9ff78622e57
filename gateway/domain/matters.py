"""The matter catalog's model (Art. 10): what a matter is, what it needs, who handles it.

Loaded from the reviewed data in ``mappings/matters/`` by :mod:`gateway.mapping.catalog`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from gateway.domain.materials import DEFAULT_MEDIA_TYPES
from gateway.domain.values import Channel, Jurisdiction, MatterCode


class MaterialRule(StrEnum):
    """How a material is treated at acceptance (Art. 12, 19(5))."""

    REQUIRED = "required"
    MAY_BE_MISSING = "may_be_missing"  # 容缺受理: accepted now, supplied later
    COMMITMENT_ALLOWED = "commitment_allowed"  # 告知承诺: a signed commitment replaces it
    BY_DATA_SHARING = "by_data_sharing"  # never asked of the applicant


OWED_WITHIN_WORKING_DAYS = 10  # default time to supply a 容缺 material after acceptance


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
    """A material a matter asks for. ``media_types``: what an upload named as this material
    may be (the catalog's ``media_types``; default: every type uploads accept)."""

    code: str
    names: Names
    rule: MaterialRule
    media_types: tuple[str, ...] = DEFAULT_MEDIA_TYPES
    evidence: str | None = None  # by_data_sharing: the evidence type asked of its issuer
    # commitment_allowed (告知承诺, Art. 12): the commitment's text the applicant signs, in
    # zh-Hans, zh-Hant, en and pt (the catalog's ``commitment``)
    commitment: Names | None = None


@dataclass(frozen=True, slots=True)
class Particular:
    """A matter-specific field of the application (data minimisation, Art. 11)."""

    name: str
    required: bool
    kind: str = "text"  # text | address | money | date | integer
    labels: Names | None = None  # what a form shows: zh-Hans, zh-Hant, en, pt
    values: tuple[str, ...] = ()  # a code list: the only values a text particular may take


@dataclass(frozen=True, slots=True)
class Counterpart:
    """The HK or Macau service that corresponds to a Guangdong matter."""

    jurisdiction: Jurisdiction
    relation: str  # equivalent | partial | reverse-direction | none
    service: str | None
    names: Names | None
    code: str | None = None  # the HK or Macao service's short id (IRD-BR, DSF-M1), stable


@dataclass(frozen=True, slots=True)
class Route:
    """Joint handling: one lead acceptor and the agencies reviewing in parallel."""

    lead: str
    reviewers: tuple[str, ...] = ()
    # data minimisation (docs/minimisation.md): the fields each handler needs, as JSON
    # pointers into the canonical document, by agency; one not named: the lead gets the whole
    # document, a reviewer the minimum (gateway.domain.minimisation.MINIMUM)
    fields: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def handlers(self) -> tuple[str, ...]:
        return (self.lead, *self.reviewers)

    def fields_of(self, agency_id: str) -> tuple[str, ...] | None:
        """The fields declared for the agency (None: none declared)."""
        return dict(self.fields).get(agency_id)


@dataclass(frozen=True, slots=True)
class DecisionRule:
    """One data comparison of an automatic decision (Art. 25): a particular ``in`` a list of
    values, ``equals`` one, ``matches`` a pattern or is ``present``; or a material present."""

    subject: str  # particular | material
    name: str
    test: str  # in | equals | matches | present
    value: Any = True  # a tuple for ``in``; a pattern for ``matches``; a bool for ``present``

    def holds(self, document: Mapping[str, Any]) -> bool:
        if self.subject == "material":
            given = {m.get("code") for m in document.get("materials", []) if isinstance(m, dict)}
            return (self.name in given) is bool(self.value)
        found = document.get("particulars", {}).get(self.name)
        if self.test == "present":
            return (found not in (None, "")) is bool(self.value)
        if self.test == "in":
            return found in self.value
        if self.test == "matches":
            return isinstance(found, str) and re.fullmatch(str(self.value), found) is not None
        return found == self.value

    def describe(self) -> str:
        """The rule as a reason (codes only, never the applicant's data)."""
        if self.test == "in":
            shown = "|".join(map(str, self.value))
        elif isinstance(self.value, bool):
            shown = "true" if self.value else "false"
        else:
            shown = str(self.value)
        return f"{self.subject} {self.name} {self.test} {shown}"


@dataclass(frozen=True, slots=True)
class AutomaticDecision:
    """Art. 25: the matter is decided by comparing data; a share is re-checked by a person."""

    rules: tuple[DecisionRule, ...]
    recheck_sample: float = 0.0

    def failed(self, document: Mapping[str, Any]) -> tuple[str, ...]:
        """Every rule the document fails, described; empty when it meets them all."""
        return tuple(rule.describe() for rule in self.rules if not rule.holds(document))

    def sampled(self, application_id: str) -> bool:
        """Drawn for a human re-check: deterministic per application id."""
        return hashlib.sha256(application_id.encode()).digest()[0] / 256 < self.recheck_sample


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
    # automatic: the gateway accepts a complete application; agency: the lead examines it
    # and, with no notice within 5 working days, it is deemed accepted (Art. 19(3))
    acceptance: str = "automatic"
    automatic_decision: AutomaticDecision | None = None  # decidable by data comparison
    # 容缺受理 (Art. 12): a may_be_missing material not given at acceptance is owed, due
    # within ``owed_within`` of the acceptance (default :data:`OWED_WITHIN`); no approval
    # while one is owed unless ``owed_before_decision`` is false
    owed_within: TimeLimit | None = None
    owed_before_decision: bool = True

    @property
    def owed_limit(self) -> TimeLimit:
        return self.owed_within or TimeLimit(
            OWED_WITHIN_WORKING_DAYS, TimeUnit.WORKING_DAYS, self.statutory_limit.calendar
        )

    def in_force(self, on: date) -> bool:
        return self.effective_from <= on and (self.effective_to is None or on < self.effective_to)

    def counterpart(self, jurisdiction: Jurisdiction) -> Counterpart | None:
        return next((c for c in self.counterparts if c.jurisdiction is jurisdiction), None)

    def has_counterpart(self, jurisdiction: Jurisdiction, code: str) -> bool:
        """Whether the HK or Macao service ``code`` of ``jurisdiction`` corresponds to this
        matter (codes compare without regard to case)."""
        found = self.counterpart(jurisdiction)
        return found is not None and (found.code or "").casefold() == code.casefold()
