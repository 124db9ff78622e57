"""The matter catalog: reviewed YAML in ``mappings/matters/`` -> frozen :class:`Matter` objects.

Each file, named ``<code>.yaml``, holds one matter: top-level fields, and a ``versions:`` list
whose entries are merged over them. Loading checks every rule it can and reports every problem
at once, each prefixed with the file name (Art. 10, 12, 20, 24):

- the code is a valid Guangdong implementation code (:class:`MatterCode`); its basic code is in
  the Guangdong catalogue (``44``) and its type slot equals ``type``, a type of the national
  dictionary (01-10, 20; ``shared/reference/domain.md`` §1.2-1.3);
- names in zh-Hans, zh-Hant, en and pt for the matter, its materials and its counterparts, and
  no other key (an unquoted comma in a YAML flow mapping would otherwise cut a name short);
- known material rules, channels, assurance levels, time units, calendars and particular kinds;
- labels of every particular in zh-Hans, zh-Hant, en and pt, and its code list if any;
- promised limit <= statutory limit (see :func:`_exceeds` for limits in different units);
- HK or MO counterparts with a known relation and, unless the relation is ``none``, a
  well-formed ``code`` (:data:`COUNTERPART_CODE`) that names one service of its jurisdiction
  across the whole catalog; a route whose lead is not also a reviewer and whose reviewers are
  unique;
- unique material codes and particular names, non-overlapping versions;
- a material's ``evidence`` (by_data_sharing only) is a type of ``mappings/evidence.yaml``.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import opencc

from gateway.domain.errors import UnknownMatterError
from gateway.domain.materials import DEFAULT_MEDIA_TYPES
from gateway.domain.matters import (
    Assurance,
    AutomaticDecision,
    Counterpart,
    DecisionRule,
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
from gateway.mapping.evidence import FILE_NAME as EVIDENCE_FILE
from gateway.mapping.evidence import read_evidence_types
from gateway.mapping.fields import MappingError
from gateway.mapping.files import read_yaml_mapping

GUANGDONG_CATALOGUE = "44"  # owner of the basic code (domain.md §1.2)
MATTER_TYPES = frozenset({f"{n:02d}" for n in range(1, 11)} | {"20"})  # domain.md §1.3
RELATIONS = frozenset({"equivalent", "partial", "reverse-direction", "none"})
PARTICULAR_KINDS = frozenset({"text", "address", "money", "date", "integer"})
COUNTERPART_JURISDICTIONS = (Jurisdiction.HK, Jurisdiction.MO)
SCRIPTS = ("zh-Hans", "zh-Hant", "en")
LANGUAGES = (*SCRIPTS, "pt")

# A counterpart code: the department's acronym, then the service (IRD-BR, DSF-M1, CR-NNC1)
COUNTERPART_CODE = re.compile(r"[A-Z]{2,6}(?:-[A-Z0-9]{1,10}){1,3}")
_MATERIAL_CODE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")
_PARTICULAR_NAME = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_E = TypeVar("_E", bound=StrEnum)
_T = TypeVar("_T")


def _enum(kind: type[_E], value: object, what: str) -> _E:
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(m.value for m in kind)
        raise ValueError(f"unknown {what} {value!r} (known: {known})") from None


def _mapping(spec: object, what: str) -> Mapping[str, Any]:
    if not isinstance(spec, Mapping):
        raise TypeError(f"{what} must be a mapping, not {type(spec).__name__}")
    return spec


def _list(spec: object, what: str) -> list[Any]:
    if not isinstance(spec, list):
        raise TypeError(f"{what} must be a list, not {type(spec).__name__}")
    return spec


def _text(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty text, not {value!r}")
    return value


def _names(spec: object) -> Names:
    names = _mapping(spec, "names")
    unknown = sorted(str(key) for key in names if key not in LANGUAGES)
    if unknown:
        raise ValueError(f"unknown language(s) {', '.join(unknown)} (a comma in an unquoted name?)")
    missing = [s for s in SCRIPTS if not isinstance(names.get(s), str) or not names[s].strip()]
    if missing:
        raise ValueError(f"no name in {', '.join(missing)}")
    pt = names.get("pt")
    if pt is not None and not isinstance(pt, str):
        raise ValueError("the pt name must be a text")
    return Names(names["zh-Hans"], names["zh-Hant"], names["en"], pt)


def _resident_names(spec: object) -> Names:
    """A name a resident reads (the matter, a material, a counterpart): in zh-Hans, zh-Hant,
    en and pt, Macao's other official language (Art. 15)."""
    names = _names(spec)
    if not (names.pt or "").strip():
        raise ValueError("no name in pt")
    return names


def _limit(spec: object) -> TimeLimit:
    limit = _mapping(spec, "a time limit")
    value = limit.get("value")
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"value must be a whole number of days >= 0, not {value!r}")
    return TimeLimit(
        value,
        _enum(TimeUnit, limit.get("unit"), "time unit"),
        Jurisdiction.parse(str(limit.get("calendar"))),
    )


def _date(value: object) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _exceeds(promised: TimeLimit, statutory: TimeLimit) -> bool:
    """Whether the promised limit certainly exceeds the statutory one.

    Limits in the same unit compare by value (working days only on the same calendar). Across
    units nothing is assumed about a particular calendar: N working days always span at least N
    natural days, so a promise of N working days exceeds a statutory M natural days when N > M.
    A promise in natural days against a statutory limit in working days, or working days on two
    calendars, cannot be compared without dates, so it is not flagged.
    """
    p, s = promised, statutory
    if p.unit is s.unit:
        if p.unit is TimeUnit.WORKING_DAYS and p.calendar is not s.calendar:
            return False
        return p.value > s.value
    return p.unit is TimeUnit.WORKING_DAYS and p.value > s.value


@dataclass
class _Reader:
    """Reads one matter version, recording every problem instead of stopping at the first."""

    label: str
    problems: list[str]
    evidence_types: frozenset[str] = frozenset()  # the codes a material may name

    def problem(self, text: str) -> None:
        self.problems.append(f"{self.label}: {text}")

    def read(self, spec: Mapping[str, Any], key: str, parse: Callable[[Any], _T]) -> _T | None:
        return self.parse(spec.get(key), parse, key)

    def parse(self, value: object, parse: Callable[[Any], _T], where: str) -> _T | None:
        if value is None:
            self.problem(f"{where} is missing")
            return None
        try:
            return parse(value)
        except (KeyError, TypeError, ValueError) as exc:
            self.problem(f"{where}: {exc}")
            return None


def _check(
    spec: Mapping[str, Any], evidence_types: frozenset[str] = frozenset()
) -> tuple[Matter | None, Route | None, list[str]]:
    """One merged matter version -> the matter (None if anything is wrong), its route when that
    alone is readable, and every problem. A material names only an evidence type of
    ``evidence_types``."""
    r = _Reader(f"{spec.get('code')} v{spec.get('version')}", [], evidence_types)

    code = r.read(spec, "code", lambda v: MatterCode(str(v)))
    matter_type = r.read(spec, "type", _matter_type)
    if code is not None:
        basic = code.basic_code
        if not basic.startswith(GUANGDONG_CATALOGUE):
            r.problem(
                f"basic code {basic} is not in the Guangdong catalogue ({GUANGDONG_CATALOGUE})"
            )
        if matter_type is not None and basic[2:4] != matter_type:
            r.problem(
                f"the type slot of basic code {basic} reads {basic[2:4]}, not type {matter_type}"
            )
    version = r.read(spec, "version", _version)
    effective_from = r.read(spec, "effective_from", _date)
    effective_to = None
    if spec.get("effective_to") is not None:
        effective_to = r.parse(spec["effective_to"], _date, "effective_to")
    if effective_from and effective_to and effective_to <= effective_from:
        r.problem("effective_to is not after effective_from")
    names = r.read(spec, "names", _resident_names)
    legal_basis = r.read(spec, "legal_basis", _text)
    fee = r.parse(spec.get("fee", "free"), _text, "fee")

    limits = r.read(spec, "time_limits", lambda v: _mapping(v, "time_limits"))
    statutory = promised = None
    if limits is not None:
        statutory = r.parse(limits.get("statutory"), _limit, "time_limits.statutory")
        promised = r.parse(limits.get("promised"), _limit, "time_limits.promised")
    if statutory and promised and _exceeds(promised, statutory):
        r.problem("promised limit exceeds statutory limit")

    channels = r.read(spec, "channels", _channels)
    assurance = r.read(spec, "min_assurance", lambda v: _enum(Assurance, v, "assurance level"))
    agent_allowed = r.read(spec, "agent_allowed", _bool)
    acceptance = r.parse(spec.get("acceptance", "automatic"), _acceptance, "acceptance")
    materials = _materials(spec, r)
    particulars = _particulars(spec, r)
    route = _route(spec, r, materials, particulars)
    counterparts = _counterparts(spec, r)
    automatic = _automatic_decision(spec, r, materials, particulars)
    owed_within = None
    if spec.get("owed_within") is not None:
        owed_within = r.parse(spec["owed_within"], _limit, "owed_within")
    owed_before_decision = r.parse(
        spec.get("owed_before_decision", True), _bool, "owed_before_decision"
    )

    parts: dict[str, Any] = {
        "code": code,
        "version": version,
        "effective_from": effective_from,
        "names": names,
        "matter_type": matter_type,
        "legal_basis": legal_basis,
        "statutory_limit": statutory,
        "promised_limit": promised,
        "fee": fee,
        "channels": channels,
        "min_assurance": assurance,
        "agent_allowed": agent_allowed,
        "route": route,
    }
    if r.problems or any(v is None for v in parts.values()):
        return None, route, r.problems
    matter = Matter(
        **parts,
        effective_to=effective_to,
        materials=materials,
        particulars=particulars,
        counterparts=counterparts,
        acceptance=acceptance or "automatic",
        automatic_decision=automatic,
        owed_within=owed_within,
        owed_before_decision=owed_before_decision is not False,
    )
    return matter, route, []


def _matter_type(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f'must be a quoted two-digit text such as "01", not {value!r}')
    if value not in MATTER_TYPES:
        raise ValueError(f"{value!r} is not in the national dictionary (01-10, 20)")
    return value


def _version(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"must be a whole number >= 1, not {value!r}")
    return value


def _acceptance(value: object) -> str:
    if value not in ("automatic", "agency"):
        raise ValueError(f"must be 'automatic' or 'agency', not {value!r}")
    return str(value)


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"must be true or false, not {value!r}")
    return value


def _channels(value: object) -> tuple[Channel, ...]:
    items = _list(value, "channels")
    unknown = [c for c in items if c not in {ch.value for ch in Channel}]
    if unknown:
        known = ", ".join(c.value for c in Channel)
        raise ValueError(f"unknown channel(s) {', '.join(map(repr, unknown))} (known: {known})")
    if not items:
        raise ValueError("at least one channel is needed")
    if len(set(items)) != len(items):
        raise ValueError("a channel is listed twice")
    return tuple(Channel(c) for c in items)


def _materials(spec: Mapping[str, Any], r: _Reader) -> tuple[Material, ...]:
    items = r.read(spec, "materials", lambda v: _list(v, "materials")) or []
    out: list[Material] = []
    for i, item in enumerate(items):
        where = f"materials[{i}]"
        if not isinstance(item, Mapping):
            r.problem(f"{where} must be a mapping")
            continue
        code = r.parse(item.get("code"), _material_code, f"{where}.code")
        where = f"material {code or i}"
        names = r.parse(item.get("names"), _resident_names, f"{where} names")
        rule = r.parse(
            item.get("rule"), lambda v: _enum(MaterialRule, v, "material rule"), f"{where} rule"
        )
        media_types = r.parse(
            item.get("media_types", list(DEFAULT_MEDIA_TYPES)),
            _media_types,
            f"{where} media_types",
        )
        evidence = item.get("evidence")
        if evidence is not None and rule is not MaterialRule.BY_DATA_SHARING:
            r.problem(f"{where}: only a by_data_sharing material names evidence")
            evidence = None
        elif evidence is not None and evidence not in r.evidence_types:
            r.problem(f"{where}: unknown evidence type {evidence!r}")
            evidence = None
        commitment = None
        if item.get("commitment") is not None and rule is not None:
            if rule is not MaterialRule.COMMITMENT_ALLOWED:
                r.problem(f"{where}: only a commitment_allowed material has a commitment text")
            else:
                commitment = r.parse(item["commitment"], _commitment, f"{where} commitment")
        elif rule is MaterialRule.COMMITMENT_ALLOWED:
            r.problem(f"{where}: a commitment_allowed material needs its commitment text")
        if code and names and rule and media_types:
            out.append(Material(code, names, rule, media_types, evidence, commitment))
    codes = [m.get("code") for m in items if isinstance(m, Mapping)]
    for dup in sorted({str(c) for c in codes if codes.count(c) > 1}):
        r.problem(f"duplicate material code {dup}")
    return tuple(out)


def _commitment(value: object) -> Names:
    """The text of a commitment (告知承诺, Art. 12) in zh-Hans, zh-Hant, en and pt."""
    names = _names(value)
    if not (names.pt or "").strip():
        raise ValueError("no text in pt")
    return names


def _media_types(value: object) -> tuple[str, ...]:
    """A non-empty list drawn from the upload allow-list (PDF, JPEG, PNG, OFD)."""
    if not isinstance(value, list) or not value:
        raise ValueError("media_types must be a non-empty list")
    unknown = [v for v in value if v not in DEFAULT_MEDIA_TYPES]
    if unknown:
        raise ValueError(f"{unknown!r} not among {', '.join(DEFAULT_MEDIA_TYPES)}")
    return tuple(dict.fromkeys(value))


def _material_code(value: object) -> str:
    if not isinstance(value, str) or not _MATERIAL_CODE.fullmatch(value):
        raise ValueError(f"{value!r} is not an UPPER_SNAKE material code")
    return value


def _particulars(spec: Mapping[str, Any], r: _Reader) -> tuple[Particular, ...]:
    items = r.parse(spec.get("particulars", []), lambda v: _list(v, "particulars"), "particulars")
    out: list[Particular] = []
    for i, item in enumerate(items or []):
        if not isinstance(item, Mapping):
            r.problem(f"particulars[{i}] must be a mapping")
            continue
        name = item.get("name")
        if not isinstance(name, str) or not _PARTICULAR_NAME.fullmatch(name):
            r.problem(f"particulars[{i}]: {name!r} is not a snake_case name")
            continue
        kind = item.get("kind", "text")
        if not isinstance(kind, str) or kind not in PARTICULAR_KINDS:
            known = ", ".join(sorted(PARTICULAR_KINDS))
            r.problem(f"particular {name}: unknown kind {kind!r} (known: {known})")
            continue
        required = item.get("required", False)
        if not isinstance(required, bool):
            r.problem(f"particular {name}: required must be true or false")
            continue
        labels = r.parse(item.get("labels"), _labels, f"particular {name} labels")
        values = r.parse(item.get("values", []), _values, f"particular {name} values")
        if values and kind != "text":
            r.problem(f"particular {name}: only a text particular takes a list of values")
            continue
        if labels is not None and values is not None:
            out.append(Particular(name, required, kind, labels, values))
    names = [item.get("name") for item in items or [] if isinstance(item, Mapping)]
    for dup in sorted({str(n) for n in names if names.count(n) > 1}):
        r.problem(f"duplicate particular {dup}")
    return tuple(out)


def _labels(spec: object) -> Names:
    """A form label in every script, Portuguese included (Macao's official languages)."""
    labels = _names(spec)
    if not labels.pt or not labels.pt.strip():
        raise ValueError("no label in pt")
    return labels


def _values(spec: object) -> tuple[str, ...]:
    values = _list(spec, "values")
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise ValueError("every value must be a non-empty text")
    if len(set(values)) != len(values):
        raise ValueError("a value is listed twice")
    return tuple(values)


def _route(
    spec: Mapping[str, Any],
    r: _Reader,
    materials: tuple[Material, ...] = (),
    particulars: tuple[Particular, ...] = (),
) -> Route | None:
    route = r.read(spec, "route", lambda v: _mapping(v, "route"))
    if route is None:
        return None
    lead = r.parse(route.get("lead"), _text, "route.lead")
    reviewers = r.parse(route.get("reviewers", []), _reviewers, "route.reviewers")
    if lead is None or reviewers is None:
        return None
    if lead in reviewers:
        r.problem(f"route: the lead agency {lead} is also a reviewer")
    for dup in sorted({a for a in reviewers if reviewers.count(a) > 1}):
        r.problem(f"route: reviewer {dup} is listed twice")
    fields = _route_fields(route.get("fields", {}), (lead, *reviewers), materials, particulars, r)
    return Route(lead, tuple(reviewers), fields)


# the canonical document's members a handler's field list may name (docs/minimisation.md)
_APPLICANT_FIELDS = {"names", "birth_date", "documents", "phone", "email", "address"}


def _route_fields(
    spec: object,
    handlers: tuple[str, ...],
    materials: tuple[Material, ...],
    particulars: tuple[Particular, ...],
    r: _Reader,
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``route.fields``: per handling agency, the JSON pointers of what it needs."""
    if not isinstance(spec, Mapping):
        r.problem("route.fields must map agency ids to lists of JSON pointers")
        return ()
    codes = {m.code for m in materials}
    names = {p.name for p in particulars}
    out = []
    for agency, pointers in spec.items():
        if agency not in handlers:
            r.problem(f"route.fields: {agency} does not handle this matter")
            continue
        if not isinstance(pointers, list) or not all(isinstance(p, str) for p in pointers):
            r.problem(f"route.fields.{agency} must be a list of JSON pointers")
            continue
        for pointer in pointers:
            parts = pointer.split("/")
            known = (
                pointer in ("/applicant", "/particulars", "/materials", "/commitments")
                or (len(parts) == 3 and parts[1] == "applicant" and parts[2] in _APPLICANT_FIELDS)
                or (len(parts) == 3 and parts[1] == "particulars" and parts[2] in names)
                or (
                    len(parts) == 3
                    and parts[1] in ("materials", "commitments")
                    and parts[2] in codes
                )
            )
            if not known:
                r.problem(f"route.fields.{agency}: {pointer} names no field of this matter")
        out.append((agency, tuple(pointers)))
    return tuple(out)


def _reviewers(value: object) -> list[str]:
    items = _list(value, "reviewers")
    if not all(isinstance(a, str) and a.strip() for a in items):
        raise ValueError("every reviewer must be an agency id")
    return items


def _automatic_decision(
    spec: Mapping[str, Any],
    r: _Reader,
    materials: tuple[Material, ...],
    particulars: tuple[Particular, ...],
) -> AutomaticDecision | None:
    """``automatic_decision: {rules: [...], recheck_sample: 0.2}`` (Art. 25): each rule names
    a declared particular (``in``, ``equals``, ``matches`` or ``present``) or a material of the
    matter (``present``)."""
    if spec.get("automatic_decision") is None:
        return None
    where = "automatic_decision"
    block = r.parse(spec["automatic_decision"], lambda v: _mapping(v, where), where)
    if block is None:
        return None
    sample = block.get("recheck_sample", 0.0)
    if isinstance(sample, bool) or not isinstance(sample, int | float) or not 0 <= sample <= 1:
        r.problem(f"{where}.recheck_sample must be a number from 0 to 1, not {sample!r}")
    known = {"particular": {p.name for p in particulars}, "material": {m.code for m in materials}}
    items = r.parse(block.get("rules"), lambda v: _list(v, "rules"), f"{where}.rules") or []
    rules = [
        r.parse(item, lambda v: _decision_rule(v, known), f"{where}.rules[{i}]")
        for i, item in enumerate(items)
    ]
    if not items:
        r.problem(f"{where} needs at least one rule")
    parsed = tuple(rule for rule in rules if rule is not None)
    if len(parsed) != len(items) or not parsed:
        return None
    return AutomaticDecision(parsed, float(sample))


def _decision_rule(value: object, known: Mapping[str, set[str]]) -> DecisionRule:
    item = _mapping(value, "a rule")
    subjects = [s for s in ("particular", "material") if s in item]
    tests = [t for t in ("in", "equals", "matches", "present") if t in item]
    if len(subjects) != 1 or len(tests) != 1 or len(item) != 2:
        raise ValueError("a rule is one particular or material and one test")
    subject, test = subjects[0], tests[0]
    name, expected = item[subject], item[test]
    if name not in known[subject]:
        raise ValueError(f"{subject} {name!r} is not one of the matter's")
    if subject == "material" and test != "present":
        raise ValueError("a material rule tests present")
    if test == "present" and not isinstance(expected, bool):
        raise TypeError("present is true or false")
    if test == "in":
        expected = tuple(_list(expected, "in"))
    if test == "matches":
        try:
            re.compile(_text(expected))
        except re.error as exc:
            raise ValueError(f"{expected!r} is not a regular expression: {exc}") from None
    return DecisionRule(subject, str(name), test, expected)


def _counterparts(spec: Mapping[str, Any], r: _Reader) -> tuple[Counterpart, ...]:
    items = r.parse(
        spec.get("counterparts", []), lambda v: _list(v, "counterparts"), "counterparts"
    )
    out: list[Counterpart] = []
    for i, item in enumerate(items or []):
        where = f"counterparts[{i}]"
        if not isinstance(item, Mapping):
            r.problem(f"{where} must be a mapping")
            continue
        jurisdiction = r.parse(item.get("jurisdiction"), _counterpart_jurisdiction, where)
        where = f"counterpart {jurisdiction or i}"
        relation = item.get("relation")
        if not isinstance(relation, str) or relation not in RELATIONS:
            known = ", ".join(sorted(RELATIONS))
            r.problem(f"{where}: unknown relation {relation!r} (known: {known})")
            relation = None
        service = item.get("service")
        if service is not None and not isinstance(service, str):
            r.problem(f"{where}: service must be a text")
        names = None
        if item.get("names") is not None:
            names = r.parse(item["names"], _resident_names, f"{where} names")
        code = item.get("code")
        if code is None and relation not in (None, "none"):
            r.problem(f"{where}: code is missing (a short id of the service, e.g. IRD-BR)")
        elif code is not None and not (isinstance(code, str) and COUNTERPART_CODE.fullmatch(code)):
            r.problem(f"{where}: {code!r} is not a counterpart code such as IRD-BR or DSF-M1")
            code = None
        if jurisdiction and relation:
            out.append(Counterpart(jurisdiction, relation, service, names, code))
    seen = [c.jurisdiction for c in out]
    for dup in sorted({j.value for j in seen if seen.count(j) > 1}):
        r.problem(f"more than one {dup} counterpart")
    return tuple(out)


def _counterpart_jurisdiction(value: object) -> Jurisdiction:
    jurisdiction = Jurisdiction.parse(str(value))
    if jurisdiction not in COUNTERPART_JURISDICTIONS:
        raise ValueError(f"a counterpart is in HK or MO, not {jurisdiction.value}")
    return jurisdiction


@dataclass(frozen=True, slots=True)
class MatterVersion:
    """One version as read from its file: what could be read, and the matter if all of it was."""

    file: str
    code: str
    version: object
    effective_from: date | None
    effective_to: date | None
    route: Route | None
    matter: Matter | None


def read_catalog(directory: Path) -> tuple[list[MatterVersion], list[str]]:
    """Every matter version under ``directory``, and every problem found, each naming its file.
    Evidence types come from ``evidence.yaml`` beside ``directory`` (``mappings/``)."""
    versions: list[MatterVersion] = []
    problems: list[str] = []
    evidence_types: frozenset[str] = frozenset()
    evidence_file = directory.parent / EVIDENCE_FILE
    if evidence_file.exists():
        known, found = read_evidence_types(evidence_file)
        evidence_types, problems = frozenset(known), found
    for path in sorted(directory.glob("*.yaml")):
        spec, reason = read_yaml_mapping(path)
        if spec is None:
            problems.append(f"{path.name}: {reason}")
            continue
        if str(spec.get("code")) != path.stem:
            problems.append(f"{path.name}: the file is not named after its code {spec.get('code')}")
        entries = spec.get("versions")
        if not isinstance(entries, list) or not entries:
            problems.append(f"{path.name}: versions must be a non-empty list")
            continue
        top = {k: v for k, v in spec.items() if k != "versions"}
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict):
                problems.append(f"{path.name}: versions[{i}] must be a mapping")
                continue
            merged = {**top, **entry}
            matter, route, found = _check(merged, evidence_types)
            problems += [f"{path.name}: {p}" for p in found]
            start, end = _window(merged)
            versions.append(
                MatterVersion(
                    path.name,
                    str(merged.get("code")),
                    merged.get("version"),
                    start,
                    end,
                    route,
                    matter,
                )
            )
    problems += _overlaps(versions)
    problems += _shared_counterpart_codes(versions)
    problems += _kind_conflicts(versions)
    return versions, problems


def _shared_counterpart_codes(versions: Sequence[MatterVersion]) -> list[str]:
    """A counterpart code names one HK or Macao service: two matters may not share it (the
    versions of one matter may)."""
    owner: dict[tuple[Jurisdiction, str], str] = {}
    problems = []
    for v in versions:
        for c in v.matter.counterparts if v.matter is not None else ():
            if c.code is None:
                continue
            first = owner.setdefault((c.jurisdiction, c.code.casefold()), v.code)
            if first != v.code:
                problems.append(
                    f"{v.file}: counterpart code {c.jurisdiction.value}:{c.code} "
                    f"is already the counterpart of {first}"
                )
    return problems


def _kind_conflicts(versions: Sequence[MatterVersion]) -> list[str]:
    """A particular name has one kind in the whole catalog: the native formats write it the
    same way for every matter (``gateway/mapping/particulars.py``)."""
    first: dict[str, tuple[str, MatterVersion]] = {}
    problems = []
    for v in versions:
        for p in v.matter.particulars if v.matter is not None else ():
            kind, where = first.setdefault(p.name, (p.kind, v))
            if kind != p.kind:
                problems.append(
                    f"{v.file}: {v.code} v{v.version}: particular {p.name} is of kind {p.kind}, "
                    f"but of kind {kind} in {where.code} v{where.version}"
                )
    return problems


def _window(spec: Mapping[str, Any]) -> tuple[date | None, date | None]:
    """A version's validity as far as it parses (_check reports what does not)."""
    try:
        start = _date(spec["effective_from"])
        end = _date(spec["effective_to"]) if spec.get("effective_to") else None
    except (KeyError, TypeError, ValueError):
        return None, None
    return start, end


def _overlaps(versions: Sequence[MatterVersion]) -> list[str]:
    problems = []
    by_code: dict[str, list[MatterVersion]] = {}
    for v in versions:
        by_code.setdefault(v.code, []).append(v)
    for code, same in by_code.items():
        numbers = [v.version for v in same]
        for dup in sorted({str(n) for n in numbers if numbers.count(n) > 1}):
            problems.append(f"{same[0].file}: {code}: version {dup} is defined twice")
        dated = sorted((v for v in same if v.effective_from), key=lambda v: v.effective_from)
        for a, b in itertools.pairwise(dated):
            if a.effective_to is None or a.effective_to > b.effective_from:
                problems.append(f"{b.file}: {code}: versions {a.version} and {b.version} overlap")
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
        """The catalog, or MappingError listing every problem of every file."""
        versions, problems = read_catalog(directory)
        if problems:
            raise MappingError("; ".join(problems))
        return cls([v.matter for v in versions if v.matter is not None])

    def particulars(self) -> tuple[Particular, ...]:
        """Every particular of every version of every matter, in catalog order (the native
        formats write each of them, ``gateway/mapping/particulars.py``)."""
        return tuple(
            p for versions in self._versions.values() for m in versions for p in m.particulars
        )

    def get(self, code: str, on: date) -> Matter:
        for matter in self._versions.get(code, ()):
            if matter.in_force(on):
                return matter
        raise UnknownMatterError(f"no matter {code[:40]!r} is in force on {on.isoformat()}")

    def all(self, on: date) -> list[Matter]:
        return [m for versions in self._versions.values() for m in versions if m.in_force(on)]

    def search(self, text: str, on: date) -> list[Matter]:
        """Matters whose names contain ``text`` in any script (個體 finds 个体 and back) and
        with or without accents (``empresario`` finds ``empresário``)."""
        needle = self._folded(text.strip())
        return [
            m for m in self.all(on) if needle in self._folded(" ".join(m.names.as_dict().values()))
        ]

    def _folded(self, text: str) -> str:
        """Simplified script, no combining accents, case-folded: what search compares."""
        decomposed = unicodedata.normalize("NFD", self._to_simplified.convert(text))
        bare = "".join(c for c in decomposed if not unicodedata.combining(c))
        return unicodedata.normalize("NFC", bare).casefold()
