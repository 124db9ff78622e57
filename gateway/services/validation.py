"""Checks a canonical application against its matter, all problems in one pass (Art. 19(3)).

Each particular is checked against its kind (:mod:`gateway.domain.particulars`: text and
its code list, date, money, address, integer), every problem with its JSON pointer.

Two outcomes are kept apart, as DESIGN.md asks:

- *structural* problems (a field the matter needs is absent or malformed): the submission is
  refused with 422 and every problem listed, and nothing is stored;
- *missing materials*: the application is well-formed but incomplete; it is stored as
  ``awaiting_supplement`` with one notice listing everything missing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from gateway.domain import particulars as kinds
from gateway.domain.documents import problem
from gateway.domain.errors import FieldProblem
from gateway.domain.matters import MaterialRule, Matter, Particular
from gateway.domain.values import DocumentType, IdentityDocument

_DOCUMENT_TYPES = frozenset(t.value for t in DocumentType)
_DIGEST_RE = re.compile(r"^sha-(256|512)=:[A-Za-z0-9+/]+={0,2}:$")
_MATERIAL_ID_RE = re.compile(r"^mat_[0-9A-Z]{26}$")


@dataclass(frozen=True, slots=True)
class Assessment:
    problems: tuple[FieldProblem, ...]
    missing: tuple[str, ...]


def assess(document: Mapping[str, Any], matter: Matter) -> Assessment:
    """Every structural problem, and the materials still missing for acceptance."""
    problems: list[FieldProblem] = []
    problems += _applicant_problems(document.get("applicant"))
    problems += _particulars_problems(document.get("particulars"), matter)
    materials = document.get("materials", [])
    if not isinstance(materials, list):
        problems.append(problem("/materials", "wrong_type"))
        materials = []
    problems += _material_problems(materials, matter)
    provided = {_text(m.get("code")) for m in materials if isinstance(m, dict)}
    given = document.get("commitments") or []
    commitments = (
        {_text(c.get("material")) for c in given if isinstance(c, dict)}
        if isinstance(given, list)
        else set()
    )
    missing = tuple(
        m.code
        for m in matter.materials
        if m.code not in provided
        and (
            m.rule is MaterialRule.REQUIRED
            or (m.rule is MaterialRule.COMMITMENT_ALLOWED and m.code not in commitments)
        )
    )
    return Assessment(tuple(problems), missing)


def _text(value: object) -> str | None:
    """A code as the document gives it, or None when it is not text (a list is unhashable)."""
    return value if isinstance(value, str) else None


def _is_iso_date(value: object) -> bool:
    """Exactly YYYY-MM-DD (``date.fromisoformat`` alone also takes 19880315 and week dates)."""
    if not isinstance(value, str) or not kinds.DATE.fullmatch(value):
        return False
    try:
        date.fromisoformat(value)
    except ValueError:
        return False
    return True


def _applicant_problems(applicant: object) -> list[FieldProblem]:
    if not isinstance(applicant, dict):
        return [problem("/applicant", "required")]
    out: list[FieldProblem] = []
    names = applicant.get("names")
    if not isinstance(names, dict) or not str(names.get("original") or "").strip():
        out.append(problem("/applicant/names/original", "required"))
    birth = applicant.get("birth_date")
    if not birth:
        out.append(problem("/applicant/birth_date", "required"))
    elif not _is_iso_date(birth):
        out.append(problem("/applicant/birth_date", "invalid_date"))
    documents = applicant.get("documents")
    if not isinstance(documents, list) or not documents:
        out.append(problem("/applicant/documents", "no_identity_document"))
        return out
    for i, doc in enumerate(documents):
        pointer = f"/applicant/documents/{i}"
        if not isinstance(doc, dict):
            out.append(problem(pointer, "wrong_type"))
            continue
        if _text(doc.get("type")) not in _DOCUMENT_TYPES:
            out.append(problem(pointer + "/type", "unknown_document_type"))
            continue
        try:
            IdentityDocument.parse(doc["type"], str(doc.get("number") or ""))
        except ValueError:
            out.append(problem(pointer + "/number", "invalid_document"))
    return out


def _particulars_problems(particulars: object, matter: Matter) -> list[FieldProblem]:
    if particulars is None:
        particulars = {}
    if not isinstance(particulars, dict):
        return [problem("/particulars", "wrong_type")]
    known = {p.name for p in matter.particulars}
    out: list[FieldProblem] = []
    for p in matter.particulars:
        value = particulars.get(p.name)
        if value in (None, "", {}, []):
            if p.required:
                out.append(problem(f"/particulars/{p.name}", "required"))
            continue
        out += _kind_problems(p, value, f"/particulars/{p.name}")
    out += [
        problem(f"/particulars/{name}", "unexpected_field")
        for name in particulars
        if name not in known
    ]
    return out


def _kind_problems(particular: Particular, value: object, pointer: str) -> list[FieldProblem]:
    """Every way ``value`` falls short of its particular's kind and code list."""
    kind = particular.kind
    if kind == "money":
        return _money_problems(value, pointer)
    if kind == "address":
        return _address_problems(value, pointer)
    if not isinstance(value, str):
        return [problem(pointer, "wrong_type")]
    if kind == "date":
        return [] if _is_iso_date(value) else [problem(pointer, "invalid_date")]
    if kind == "integer":
        return [] if kinds.INTEGER.fullmatch(value) else [problem(pointer, "invalid_value")]
    if particular.values and value not in particular.values:
        return [problem(pointer, "unknown_code")]
    if len(value) > kinds.TEXT_MAX_LENGTH:
        return [problem(pointer, "invalid_value")]
    return []


def _money_problems(value: object, pointer: str) -> list[FieldProblem]:
    if not isinstance(value, dict):
        return [problem(pointer, "wrong_type")]
    out = [
        problem(f"{pointer}/{name}", "unexpected_field")
        for name in value
        if name not in {"amount", "currency"}
    ]
    amount, currency = value.get("amount"), value.get("currency")
    if amount is None:
        out.append(problem(f"{pointer}/amount", "required"))
    elif not isinstance(amount, str) or not kinds.AMOUNT.fullmatch(amount):
        out.append(problem(f"{pointer}/amount", "invalid_amount"))
    if currency is None:
        out.append(problem(f"{pointer}/currency", "required"))
    elif currency not in kinds.CURRENCIES:
        out.append(problem(f"{pointer}/currency", "unknown_code"))
    return out


def _address_problems(value: object, pointer: str) -> list[FieldProblem]:
    if not isinstance(value, dict):
        return [problem(pointer, "wrong_type")]
    out: list[FieldProblem] = []
    for name, member in value.items():
        where = f"{pointer}/{name}"
        if name in kinds.ADDRESS_MEMBERS:
            if not isinstance(member, str) or len(member) > kinds.ADDRESS_MEMBERS[name]:
                out.append(problem(where, "invalid_value"))
        elif name == "area_code":
            if not isinstance(member, str) or not kinds.AREA_CODE.fullmatch(member):
                out.append(problem(where, "invalid_value"))
        elif name == "jurisdiction":
            if member not in kinds.ADDRESS_JURISDICTIONS:
                out.append(problem(where, "unknown_code"))
        else:
            out.append(problem(where, "unexpected_field"))
    return out


def _material_problems(materials: list[Any], matter: Matter) -> list[FieldProblem]:
    known = {m.code for m in matter.materials}
    out: list[FieldProblem] = []
    for i, item in enumerate(materials):
        pointer = f"/materials/{i}"
        if not isinstance(item, dict):
            out.append(problem(pointer, "wrong_type"))
            continue
        if _text(item.get("code")) not in known:
            out.append(problem(pointer + "/code", "unknown_material"))
        named = "material_id" in item  # an upload (case_materials checks it is the caller's)
        if named and not _MATERIAL_ID_RE.match(str(item["material_id"])):
            out.append(problem(pointer + "/material_id", "unknown_material_id"))
        if (not named or "digest" in item) and not _DIGEST_RE.match(str(item.get("digest") or "")):
            out.append(problem(pointer + "/digest", "invalid_digest"))
        if not named:  # the gateway fills these in for uploads only
            out += [
                problem(f"{pointer}/{k}", "unexpected_field") for k in ("size", "href") if k in item
            ]
    return out
