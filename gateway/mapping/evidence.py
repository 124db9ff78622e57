"""Evidence types: reviewed YAML in ``mappings/evidence.yaml`` -> frozen :class:`EvidenceType`.

Loading checks every rule and reports every problem at once: unique lower-case codes, names
in zh-Hans, zh-Hant and en, a consent data category the consent model knows, a registered
jurisdiction, and identifying fields the gateway can fill from a canonical applicant.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.domain.evidence import DOCUMENT_FIELD, NAME_FIELDS, EvidenceType
from gateway.domain.identity import CATEGORIES
from gateway.domain.matters import Names
from gateway.domain.values import DocumentType
from gateway.mapping.fields import MappingError
from gateway.mapping.files import read_yaml_mapping

FILE_NAME = "evidence.yaml"
_CODE = re.compile(r"[a-z]{2}(?:-[a-z0-9]+)+")
_SCRIPTS = ("zh-Hans", "zh-Hant", "en")


class EvidenceTypes:
    """The evidence types by code (``mappings/evidence.yaml``)."""

    def __init__(self, types: Mapping[str, EvidenceType]) -> None:
        self._types = dict(types)

    @classmethod
    def load(cls, mappings_dir: Path) -> EvidenceTypes:
        """The types, none when the file is absent; MappingError listing every problem."""
        path = mappings_dir / FILE_NAME
        if not path.exists():
            return cls({})
        types, problems = read_evidence_types(path)
        if problems:
            raise MappingError("; ".join(problems))
        return cls(types)

    def get(self, code: str) -> EvidenceType | None:
        return self._types.get(code)

    def codes(self) -> frozenset[str]:
        return frozenset(self._types)

    def all(self) -> list[EvidenceType]:
        return [self._types[c] for c in sorted(self._types)]


def read_evidence_types(path: Path) -> tuple[dict[str, EvidenceType], list[str]]:
    """Every evidence type of the file, and every problem, each naming the file."""
    spec, reason = read_yaml_mapping(path)
    if spec is None:
        return {}, [f"{path.name}: {reason}"]
    items = spec.get("types")
    if not isinstance(items, list):
        return {}, [f"{path.name}: types must be a list"]
    out: dict[str, EvidenceType] = {}
    problems: list[str] = []
    for i, item in enumerate(items):
        found, wrong = _type(item)
        label = f"{path.name}: types[{i}]"
        problems += [f"{label}: {p}" for p in wrong]
        if found is not None:
            if found.code in out:
                problems.append(f"{label}: duplicate evidence type {found.code}")
            out[found.code] = found
    return out, problems


def _type(item: Any) -> tuple[EvidenceType | None, list[str]]:
    if not isinstance(item, Mapping):
        return None, ["must be a mapping"]
    problems = []
    code = item.get("code")
    if not isinstance(code, str) or not _CODE.fullmatch(code):
        problems.append(f"code {code!r} is not a lower-case code such as hk-br-extract")
    names = item.get("names")
    if not isinstance(names, Mapping) or any(
        not isinstance(names.get(s), str) or not names[s].strip() for s in _SCRIPTS
    ):
        problems.append("names need zh-Hans, zh-Hant and en")
    category = item.get("category")
    if category not in CATEGORIES:
        problems.append(f"category {category!r} is not a consent data category")
    jurisdiction = item.get("jurisdiction")
    if jurisdiction not in ("HK", "MO", "GD"):
        problems.append(f"jurisdiction {jurisdiction!r} is not HK, MO or GD")
    subject = item.get("subject")
    if not isinstance(subject, list) or not subject:
        problems.append("subject lists the identifying fields the issuer needs")
        subject = []
    for name in subject:
        if not _known_field(name):
            problems.append(f"subject field {name!r} is unknown")
    if problems:
        return None, problems
    assert isinstance(names, Mapping)
    return (
        EvidenceType(
            code=str(code),
            names=Names(names["zh-Hans"], names["zh-Hant"], names["en"], names.get("pt")),
            category=str(category),
            jurisdiction=str(jurisdiction),
            subject=tuple(subject),
        ),
        [],
    )


def _known_field(name: object) -> bool:
    if not isinstance(name, str):
        return False
    if name.startswith(DOCUMENT_FIELD):
        return name[len(DOCUMENT_FIELD) :] in {t.value for t in DocumentType}
    return name in NAME_FIELDS
