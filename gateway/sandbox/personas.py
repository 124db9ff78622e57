"""Sandbox personas: synthetic residents with valid check digits (domain.md §7.2).

They belong to no real person. The identity federation issue gives them logins at the
sandbox identity providers; here they are the people the tracer flow applies for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
    ),
)


def persona(persona_id: str) -> Persona:
    for p in PERSONAS:
        if p.id == persona_id:
            return p
    raise KeyError(persona_id)
