"""The matter catalog: reviewed YAML in ``mappings/matters/`` -> frozen :class:`Matter` objects.

Each file holds one matter's versions. Loading checks every rule it can and reports every
problem at once: a valid code, promised limit <= statutory limit, known material rules,
unique codes, non-overlapping versions.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import opencc
import yaml

from gateway.domain.errors import UnknownMatterError
from gateway.domain.matters import (
    Assurance,
    Counterpart,
    Material,
    MaterialRule,
    Matter,
    Names,
    Particular,
    Route,
    TimeLimit,
    TimeUnit,
)
from gateway.domain.values import Channel, Jurisdiction, MatterCode
from gateway.mapping.fields import MappingError


def _names(spec: Mapping[str, str]) -> Names:
    return Names(spec["zh-Hans"], spec["zh-Hant"], spec["en"], spec.get("pt"))


def _limit(spec: Mapping[str, Any]) -> TimeLimit:
    return TimeLimit(
        int(spec["value"]), TimeUnit(spec["unit"]), Jurisdiction.parse(spec["calendar"])
    )


def _matter(spec: Mapping[str, Any]) -> Matter:
    return Matter(
        code=MatterCode(str(spec["code"])),
        version=int(spec["version"]),
        effective_from=date.fromisoformat(str(spec["effective_from"])),
        effective_to=(
            date.fromisoformat(str(spec["effective_to"])) if spec.get("effective_to") else None
        ),
        names=_names(spec["names"]),
        matter_type=str(spec["type"]),
        legal_basis=str(spec["legal_basis"]),
        statutory_limit=_limit(spec["time_limits"]["statutory"]),
        promised_limit=_limit(spec["time_limits"]["promised"]),
        fee=str(spec.get("fee", "free")),
        channels=tuple(Channel(c) for c in spec["channels"]),
        min_assurance=Assurance(spec["min_assurance"]),
        agent_allowed=bool(spec["agent_allowed"]),
        materials=tuple(
            Material(m["code"], _names(m["names"]), MaterialRule(m["rule"]))
            for m in spec["materials"]
        ),
        particulars=tuple(
            Particular(p["name"], bool(p.get("required", False)), p.get("kind", "text"))
            for p in spec.get("particulars", ())
        ),
        route=Route(spec["route"]["lead"], tuple(spec["route"].get("reviewers", ()))),
        counterparts=tuple(
            Counterpart(
                Jurisdiction.parse(c["jurisdiction"]),
                c["relation"],
                c.get("service"),
                _names(c["names"]) if c.get("names") else None,
            )
            for c in spec.get("counterparts", ())
        ),
    )


def _check(matter: Matter) -> list[str]:
    problems = []
    s, p = matter.statutory_limit, matter.promised_limit
    if s.unit is p.unit and p.value > s.value:
        problems.append(f"{matter.code} v{matter.version}: promised limit exceeds statutory limit")
    if matter.effective_to and matter.effective_to <= matter.effective_from:
        problems.append(
            f"{matter.code} v{matter.version}: effective_to is not after effective_from"
        )
    codes = [m.code for m in matter.materials]
    if len(set(codes)) != len(codes):
        problems.append(f"{matter.code} v{matter.version}: duplicate material codes")
    return problems


class Catalog:
    """:class:`~gateway.services.ports.MatterCatalog` over the loaded versions."""

    def __init__(self, matters: Sequence[Matter]) -> None:
        self._versions: dict[str, list[Matter]] = {}
        for m in sorted(matters, key=lambda m: m.effective_from):
            self._versions.setdefault(str(m.code), []).append(m)
        self._to_simplified = opencc.OpenCC("t2s")

    @classmethod
    def load(cls, directory: Path) -> Catalog:
        matters: list[Matter] = []
        problems: list[str] = []
        for path in sorted(directory.glob("*.yaml")):
            try:
                spec = yaml.load(path.read_text("utf-8"), Loader=yaml.CSafeLoader)
                for version in spec["versions"]:
                    matter = _matter({**spec, **version})
                    problems += _check(matter)
                    matters.append(matter)
            except (KeyError, TypeError, ValueError) as exc:
                problems.append(f"{path.name}: {type(exc).__name__}: {exc}")
        problems += _overlaps(matters)
        if problems:
            raise MappingError("; ".join(problems))
        return cls(matters)

    def get(self, code: str, on: date) -> Matter:
        for matter in self._versions.get(code, ()):
            if matter.in_force(on):
                return matter
        raise UnknownMatterError(f"no matter {code[:40]!r} is in force on {on.isoformat()}")

    def all(self, on: date) -> list[Matter]:
        return [m for versions in self._versions.values() for m in versions if m.in_force(on)]

    def search(self, text: str, on: date) -> list[Matter]:
        """Matters whose names contain ``text`` in any script (個體 finds 个体 and back)."""
        needle = self._to_simplified.convert(text.strip()).casefold()
        return [
            m
            for m in self.all(on)
            if needle
            in self._to_simplified.convert(" ".join(m.names.as_dict().values())).casefold()
        ]


def _overlaps(matters: Sequence[Matter]) -> list[str]:
    problems = []
    by_code: dict[str, list[Matter]] = {}
    for m in matters:
        by_code.setdefault(str(m.code), []).append(m)
    for code, versions in by_code.items():
        versions.sort(key=lambda m: m.effective_from)
        for a, b in itertools.pairwise(versions):
            if a.effective_to is None or a.effective_to > b.effective_from:
                problems.append(f"{code}: versions {a.version} and {b.version} overlap")
    return problems
