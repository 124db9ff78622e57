"""Sample applications that the gateway accepts, built from a persona (for demo and tests)."""

from __future__ import annotations

import hashlib
from base64 import b64encode
from datetime import date
from typing import Any

import opencc
from lxml import etree

from gateway.domain.errors import NotFoundError
from gateway.domain.matters import MaterialRule, Matter, Particular
from gateway.domain.values import IdentityDocument
from gateway.sandbox.personas import Persona, persona

HK_NS = "urn:gba:hk:application:1"
INDIVIDUAL_BUSINESS = "11440400MB2C00081P4440120002000"
_HK_DOC_TYPES = {"HKID": "HKID", "HRP": "HRP", "RESIDENCE_PERMIT": "RP", "MO_BIR": "BIR"}


def material_digest(data: bytes) -> str:
    return "sha-256=:" + b64encode(hashlib.sha256(data).digest()).decode() + ":"


def hk_individual_business(persona: Persona, *, business_name: str = "大文茶餐廳") -> bytes:
    """The HK native XML of sample matter #2 (individual business registration, Hengqin)."""

    def el(parent: etree._Element, name: str, text: str | None = None, **attrs: str):
        child = etree.SubElement(parent, f"{{{HK_NS}}}{name}", attrs)
        if text is not None:
            child.text = text
        return child

    root = etree.Element(f"{{{HK_NS}}}Application", nsmap={None: HK_NS}, formVersion="1")
    el(root, "MatterCode", INDIVIDUAL_BUSINESS)
    applicant = el(root, "Applicant")
    el(applicant, "ChineseName", persona.name_original)
    english = el(applicant, "EnglishName")
    el(english, "Surname", persona.family_name_latin)
    el(english, "GivenNames", persona.given_names_latin)
    el(applicant, "DateOfBirth", date.fromisoformat(persona.birth_date).strftime("%d/%m/%Y"))
    documents = el(applicant, "IdentityDocuments")
    for doc_type, number in persona.documents:
        if doc_type in _HK_DOC_TYPES:
            el(documents, "Document", number, type=_HK_DOC_TYPES[doc_type])
    el(applicant, "Phone", persona.phone)
    el(applicant, "Email", persona.email)
    el(applicant, "Address", persona.address, district=persona.district)
    business = el(root, "Business")
    el(business, "Name", business_name)
    el(business, "Address", "广东省珠海市横琴粤澳深度合作区示例大道 88 号 1 层")
    el(business, "Scope", "餐飲服務")
    el(business, "Capital", "50000", currency="CNY")
    el(business, "Employees", "3")
    materials = el(root, "Materials")
    form = f"application form of {persona.id}".encode()
    el(
        materials,
        "Material",
        "application-form.pdf",
        code="APPLICATION_FORM",
        mediaType="application/pdf",
        digest=material_digest(form),
    )
    commitments = el(root, "Commitments")
    el(commitments, "Commitment", material="PREMISES_PROOF")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


_COUNTRY = {"HK": "852", "MO": "853", "GD": "86"}
_SAMPLE_VALUES = {
    "business_name": "大文茶餐廳",
    "business_address": {"text": "广东省珠海市横琴粤澳深度合作区示例大道 88 号 1 层"},
    "business_scope": "餐飲服務",
    "employees": "3",
    "employer_uscc": "91440400MA4W2X3Y58",  # well formed, GB 32100 check character valid
}


def _convert(config: str, text: str) -> str:
    return opencc.OpenCC(config).convert(text)


def _phone(persona: Persona) -> str:
    digits = "".join(ch for ch in persona.phone if ch.isdigit())
    return f"+{_COUNTRY[persona.jurisdiction]}{digits}"


def _particular(particular: Particular) -> Any:
    name, kind = particular.name, particular.kind
    if name in _SAMPLE_VALUES:
        return _SAMPLE_VALUES[name]
    if particular.values:
        return particular.values[0]
    if kind == "integer":
        return "1"
    if kind == "money":
        return {"amount": "50000.00", "currency": "CNY"}
    if kind == "address":
        return {"text": "广东省广州市天河区示例路 1 号", "jurisdiction": "GD"}
    if kind == "date":
        return date.today().isoformat()
    return f"示例 {name}"


def canonical_sample(matter: Matter, persona: Persona) -> dict[str, Any]:
    """A canonical application for ``matter`` by ``persona`` that the gateway accepts.

    Every required particular is filled, every required material is attached (with the
    digest of a synthetic file), materials that a commitment may replace are committed to,
    and materials obtainable by data sharing are not asked for (Art. 19(5)).
    """
    simplified = persona.jurisdiction == "GD"
    names: dict[str, str] = {
        "original": persona.name_original,
        "zh-Hans": persona.name_original if simplified else _convert("hk2s", persona.name_original),
        "zh-Hant": _convert("s2hk", persona.name_original) if simplified else persona.name_original,
        "latin": f"{persona.family_name_latin} {persona.given_names_latin}",
        "family_name_latin": persona.family_name_latin,
        "given_names_latin": persona.given_names_latin,
    }
    materials, commitments = [], []
    for material in matter.materials:
        if material.rule is MaterialRule.COMMITMENT_ALLOWED:
            commitments.append({"material": material.code})
        elif material.rule is MaterialRule.REQUIRED:
            data = f"{material.code} of {persona.id}".encode()
            materials.append(
                {
                    "code": material.code,
                    "digest": material_digest(data),
                    "media_type": "application/pdf",
                    "filename": f"{material.code.lower()}.pdf",
                }
            )
    return {
        "matter": str(matter.code),
        "applicant": {
            "names": names,
            "birth_date": persona.birth_date,
            "documents": [
                {"type": doc_type, "number": IdentityDocument.parse(doc_type, number).number}
                for doc_type, number in persona.documents
            ],
            "phone": _phone(persona),
            "email": persona.email,
            "address": {
                "text": persona.address,
                "district": persona.district,
                "jurisdiction": persona.jurisdiction,
            },
        },
        "particulars": {p.name: _particular(p) for p in matter.particulars},
        "materials": materials,
        "commitments": commitments,
    }


# The persona a sample is for when none is named: one whose documents the format carries.
DEFAULT_PERSONA = {"macau": "lei-sio-meng"}


def sample_application(matter: Matter, fmt: str, persona_id: str | None) -> dict[str, Any]:
    """The canonical sample of ``gba-gateway mappings sample`` (rendered in ``fmt`` there)."""
    try:
        applicant = persona(persona_id or DEFAULT_PERSONA.get(fmt, "chan-tai-man"))
    except KeyError:
        raise NotFoundError(f"no persona {persona_id!r}") from None
    return canonical_sample(matter, applicant)
