"""Sandbox personas: synthetic residents with valid check digits (domain.md §7.2).

They belong to no real person. Each logs in at the sandbox identity providers named by
:meth:`Persona.providers` (``gateway/sandbox/idp``); they are also the people the tracer flow
applies for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway import jurisdictions
from gateway.domain.values import Jurisdiction


@dataclass(frozen=True, slots=True)
class Organisation:
    """A company the persona represents (its registration number is public, not personal)."""

    id_type: str  # canonical document type: HK_BRN or USCC
    number: str
    name_en: str
    name_zh: str


@dataclass(frozen=True, slots=True)
class Persona:
    id: str
    jurisdiction: str
    name_original: str
    family_name_latin: str
    given_names_latin: str
    birth_date: str  # ISO
    documents: tuple[tuple[str, str], ...]  # (canonical type, display number)
    assurance: str
    phone: str
    email: str
    address: str
    district: str
    description: str
    gender: str  # "M" or "F", as the identity providers report it
    organisation: Organisation | None = None  # set for a company representative
    acts_for: tuple[str, ...] = ()  # persona ids this agent acts for (by delegation)

    def document(self, doc_type: str) -> str | None:
        """The display number of the document of this type the persona holds, if any."""
        return next((number for kind, number in self.documents if kind == doc_type), None)

    def providers(self) -> tuple[str, ...]:
        """Sandbox identity providers where the persona can log in: its jurisdiction's, and
        ``guangdong`` too for an HK or Macao resident holding a residence permit."""
        registered = jurisdictions.registered()
        home = registered.by_code(self.jurisdiction).provider
        mainland = registered.by_code(Jurisdiction.GD).provider  # issues residence permits
        if home != mainland and self.document("RESIDENCE_PERMIT"):
            return (home, mainland)
        return (home,)

    def summary(self) -> dict[str, Any]:
        """What a tester may see: no document numbers beyond the types held."""
        return {
            "id": self.id,
            "jurisdiction": self.jurisdiction,
            "names": {
                "original": self.name_original,
                "latin": f"{self.family_name_latin} {self.given_names_latin}",
            },
            "assurance": self.assurance,
            "documents": [doc_type for doc_type, _ in self.documents],
            "description": self.description,
            "providers": list(self.providers()),
            "organisation": self.organisation
            and {
                "type": self.organisation.id_type,
                "names": {"en": self.organisation.name_en, "zh": self.organisation.name_zh},
            },
            "acts_for": list(self.acts_for),
        }


PERSONAS: tuple[Persona, ...] = (
    Persona(
        id="chan-tai-man",
        jurisdiction="HK",
        name_original="陳大文",
        family_name_latin="CHAN",
        given_names_latin="Tai Man",
        birth_date="1988-03-15",
        documents=(
            ("HKID", "A123456(3)"),
            ("HRP", "H12345678"),
            ("RESIDENCE_PERMIT", "810000198803150123"),
        ),
        assurance="substantial",
        phone="9123 4567",
        email="chan.taiman@example.hk",
        address="Flat A, 12/F, 8 Sample Road, Wan Chai, Hong Kong",
        district="Wan Chai",
        description="HK permanent resident with HKID, Home Return Permit and residence permit",
        gender="M",
    ),
    Persona(
        id="lei-sio-meng",
        jurisdiction="MO",
        name_original="李小明",
        family_name_latin="LEI",
        given_names_latin="Sio Meng",
        birth_date="1992-07-07",
        documents=(
            ("MO_BIR", "1234567(8)"),
            ("HRP", "M87654321"),
            ("RESIDENCE_PERMIT", "820000199207070465"),
        ),
        assurance="substantial",
        phone="6612 3456",
        email="lei.siomeng@example.mo",
        address="Rua Exemplo 1, 3.º andar, Macau",
        district="Sé",
        description="Macao resident with BIR, Home Return Permit and residence permit",
        gender="M",
    ),
    Persona(
        id="zhang-wei",
        jurisdiction="GD",
        name_original="张伟",
        family_name_latin="ZHANG",
        given_names_latin="Wei",
        birth_date="1985-06-12",
        documents=(("CN_RIC", "440304198506120035"),),
        assurance="high",
        phone="138 0013 8000",
        email="zhang.wei@example.cn",
        address="广东省深圳市福田区示例路 1 号",
        district="福田区",
        description="Mainland resident with a resident identity card",
        gender="M",
    ),
    Persona(
        id="wong-siu-ming",
        jurisdiction="HK",
        name_original="黃小明",
        family_name_latin="WONG",
        given_names_latin="Siu Ming",
        birth_date="1979-11-02",
        documents=(("HKID", "C668668(9)"),),
        assurance="low",
        phone="6123 4567",
        email="wong.siuming@example.hk",
        address="Room 3, 5/F, 20 Example Street, Sham Shui Po, Hong Kong",
        district="Sham Shui Po",
        description="HK resident with a low-assurance account only",
        gender="M",
    ),
    Persona(
        id="ho-ka-yan",
        jurisdiction="HK",
        name_original="何嘉欣",
        family_name_latin="HO",
        given_names_latin="Ka Yan",
        birth_date="1975-04-21",
        documents=(("HKID", "XA000001(6)"),),
        assurance="high",
        phone="9876 5432",
        email="ho.kayan@example.hk",
        address="Unit 1203, 12/F, 88 Sample Street, Kwun Tong, Kowloon, Hong Kong",
        district="Kwun Tong",
        description="HK company representative (iAM Smart+) for Sample Trading Limited",
        gender="F",
        organisation=Organisation(
            "HK_BRN", "12345678", "Sample Trading Limited", "樣本貿易有限公司"
        ),
    ),
    Persona(
        id="li-na",
        jurisdiction="GD",
        name_original="李娜",
        family_name_latin="LI",
        given_names_latin="Na",
        birth_date="1990-02-14",
        documents=(("CN_RIC", "440106199002140047"),),
        assurance="high",
        phone="139 2000 0001",
        email="li.na@example.cn",
        address="广东省深圳市南山区示例大道 100 号",
        district="南山区",
        description="Mainland company representative for 深圳示例科技有限公司",
        gender="F",
        organisation=Organisation(
            "USCC",
            "91440300MA5GBA001A",
            "Shenzhen Example Technology Co., Ltd.",
            "深圳示例科技有限公司",
        ),
    ),
    Persona(
        id="leung-mei-ling",
        jurisdiction="HK",
        name_original="梁美玲",
        family_name_latin="LEUNG",
        given_names_latin="Mei Ling",
        birth_date="1990-08-08",
        documents=(("HKID", "K246810(7)"),),
        assurance="substantial",
        phone="6234 5678",
        email="leung.meiling@example.hk",
        address="Flat C, 7/F, 3 Example Lane, Sha Tin, New Territories, Hong Kong",
        district="Sha Tin",
        description="HK agent who acts for chan-tai-man once a delegation is created "
        "through the gateway API",
        gender="F",
        acts_for=("chan-tai-man",),
    ),
)


def persona(persona_id: str) -> Persona:
    for p in PERSONAS:
        if p.id == persona_id:
            return p
    raise KeyError(persona_id)
