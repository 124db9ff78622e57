"""Sample applications that the gateway accepts, built from a persona (for demo and tests).

The canonical sample of a matter fills every particular with a value the matter accepts
(:func:`_particular`, by kind); the native samples are that document written by the format's
codec (:func:`native_sample`), so every matter has one in every format.
"""

from __future__ import annotations

import hashlib
from base64 import b64encode
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import opencc

from gateway import jurisdictions
from gateway.domain.errors import NotFoundError
from gateway.domain.legal_basis import HEADER as LEGAL_BASIS_HEADER
from gateway.domain.legal_basis import LegalBasis
from gateway.domain.matters import MaterialRule, Matter, Particular
from gateway.domain.values import IdentityDocument
from gateway.mapping.catalog import Catalog
from gateway.sandbox.personas import Persona, persona
from gateway.settings import REPO_ROOT

INDIVIDUAL_BUSINESS = "11440400MB2C00081P4440120002000"


def material_digest(data: bytes) -> str:
    return "sha-256=:" + b64encode(hashlib.sha256(data).digest()).decode() + ":"


@lru_cache(maxsize=4)
def _native_codecs(mappings_dir: Path) -> tuple[Catalog, dict[str, Any]]:
    catalog = Catalog.load(mappings_dir / "matters")
    particulars = catalog.particulars()
    return catalog, {
        j.format: j.load_codec(mappings_dir, particulars) for j in jurisdictions.registered()
    }


def native_sample(
    code: str, fmt: str, persona: Persona, mappings_dir: Path = REPO_ROOT / "mappings"
) -> bytes:
    """The sample of matter ``code`` by ``persona`` in a jurisdiction's format (``hk`` or
    ``macau`` XML): the canonical sample written by the format's codec (as ``mappings sample``
    prints it)."""
    catalog, codecs = _native_codecs(mappings_dir)
    matter = catalog.get(code, date.today())
    return codecs[fmt].to_native(canonical_sample(matter, persona))


def hk_individual_business(persona: Persona) -> bytes:
    """The HK native XML of sample matter #2 (individual business registration, Hengqin)."""
    return native_sample(INDIVIDUAL_BUSINESS, "hk", persona)


_SAMPLE_VALUES = {
    "business_name": "大文茶餐廳",
    "business_address": {
        "text": "广东省珠海市横琴粤澳深度合作区示例大道 88 号 1 层",
        "jurisdiction": "GD",
    },
    "business_scope": "餐飲服務",
    "employees": "3",
    "employer_uscc": "91440400MA4W2X3Y58",  # well formed, GB 32100 check character valid
}


def _convert(config: str, text: str) -> str:
    return opencc.OpenCC(config).convert(text)


def _phone(persona: Persona) -> str:
    digits = "".join(ch for ch in persona.phone if ch.isdigit())
    calling_code = jurisdictions.registered().by_code(persona.jurisdiction).calling_code
    return f"+{calling_code}{digits}"


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
    if kind == "address":  # every member of the canonical address
        return {
            "text": "广东省广州市天河区示例路 1 号",
            "district": "天河区",
            "area_code": "440106",
            "jurisdiction": "GD",
        }
    if kind == "date":
        return date.today().isoformat()
    return f"示例 {name}"


def canonical_sample(matter: Matter, persona: Persona) -> dict[str, Any]:
    """A canonical application for ``matter`` by ``persona`` that the gateway accepts.

    Every required particular is filled, every required material and every material that may
    be missing at acceptance is attached (with the digest of a synthetic file; a 容缺 material
    left out is owed after acceptance, Art. 12), materials that a commitment may replace are
    committed to,
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
        elif material.rule in (MaterialRule.REQUIRED, MaterialRule.MAY_BE_MISSING):
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


# The persona a sample is for when none is named: the format's jurisdiction names one whose
# identity documents the format carries (``sample_persona``: lei-sio-meng, with a Macao BIR,
# HRP and residence permit, for macau), else chan-tai-man (HKID, HRP, residence permit). A
# persona holding a document the format has no code for (a mainland CN_RIC in HK or Macau
# XML) makes the sample fail with the document's problem, never drop it.
DEFAULT_PERSONA = "chan-tai-man"


def default_persona(fmt: str) -> str:
    try:
        named = jurisdictions.registered().by_format(fmt).sample_persona
    except KeyError:  # canonical
        named = None
    return named or DEFAULT_PERSONA


def sample_application(matter: Matter, fmt: str, persona_id: str | None) -> dict[str, Any]:
    """The canonical sample of ``gba-gateway mappings sample`` (rendered in ``fmt`` there)."""
    try:
        applicant = persona(persona_id or default_persona(fmt))
    except KeyError:
        raise NotFoundError(f"no persona {persona_id!r}") from None
    return canonical_sample(matter, applicant)


# The sandbox's counter and kiosk (Art. 17-18): where a tester's or a scenario's call says it
# was made when the matter is not offered online.
SANDBOX_SERVICE_POINT = "SANDBOX-SP-01"
SANDBOX_OFFICER = "SANDBOX-OFFICER-01"
SANDBOX_KIOSK = "SANDBOX-KIOSK-01"


def channel_headers(matter: Matter, who: Persona) -> dict[str, str]:
    """The ``GBA-Channel`` header a sample of ``matter`` by ``who`` is sent with: none when
    the matter is offered online; else mobile, a counter (the officer inspected ``who``'s
    first identity document in person) or a kiosk, the first the matter lists."""
    offered = [c.value for c in matter.channels]
    if "online" in offered:
        return {}
    if "mobile" in offered:
        return {"GBA-Channel": "mobile"}
    if "counter" in offered:
        document = who.documents[0][0]
        return {
            "GBA-Channel": f'counter;point="{SANDBOX_SERVICE_POINT}";'
            f'officer="{SANDBOX_OFFICER}";document={document}'
        }
    return {"GBA-Channel": f'kiosk;point="{SANDBOX_SERVICE_POINT}";device="{SANDBOX_KIOSK}"'}


# The legal basis the sandbox's agencies declare for sending an applicant's data without the
# applicant's consent (PIPL art. 13(1)(3): necessary to perform a statutory duty), in the
# signed GBA-Legal-Basis header of every agency submission (docs/minimisation.md).
SANDBOX_LEGAL_BASIS = LegalBasis(
    law="《中华人民共和国个人信息保护法》",
    article="第十三条第一款第三项",
    text="为履行法定职责或者法定义务所必需（沙盒）",
)


def legal_basis_headers(basis: LegalBasis = SANDBOX_LEGAL_BASIS) -> dict[str, str]:
    """The ``GBA-Legal-Basis`` header an agency's submission declares its basis with."""
    return {LEGAL_BASIS_HEADER: basis.header()}
