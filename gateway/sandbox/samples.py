"""Sample applications that the gateway accepts, built from a persona (for demo and tests)."""

from __future__ import annotations

import hashlib
from base64 import b64encode
from datetime import date

from lxml import etree

from gateway.sandbox.personas import Persona

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
