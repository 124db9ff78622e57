"""Evidence types (mappings/evidence.yaml) and the catalog's check of a material's evidence."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.mapping.catalog import Catalog
from gateway.mapping.evidence import EvidenceTypes, read_evidence_types
from gateway.mapping.fields import MappingError

MAPPINGS = Path(__file__).parents[3] / "mappings"
FUND = "12440100MB2C00121L3442030008000"


def test_the_three_evidence_types_load_with_their_category_and_subject() -> None:
    types = EvidenceTypes.load(MAPPINGS)
    assert types.codes() == {"hk-br-extract", "mo-resident-status", "gd-residence-permit"}
    permit = types.get("gd-residence-permit")
    assert permit is not None
    assert (permit.category, permit.jurisdiction) == ("residence_status", "GD")
    assert "document:RESIDENCE_PERMIT" in permit.subject


def test_every_problem_of_the_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "evidence.yaml"
    path.write_text(
        "types:\n"
        "  - code: Bad Code\n"
        "    names: {en: x}\n"
        "    category: favourite_colour\n"
        "    jurisdiction: TW\n"
        "    subject: [shoe_size]\n",
        "utf-8",
    )
    _, problems = read_evidence_types(path)
    text = "; ".join(problems)
    for fragment in ("code", "names", "category", "jurisdiction", "shoe_size"):
        assert fragment in text


def _catalog_with(tmp_path: Path, old: str, new: str) -> Path:
    mappings = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, mappings)
    path = mappings / "matters" / f"{FUND}.yaml"
    text = path.read_text("utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), "utf-8")
    return mappings / "matters"


def test_the_catalog_refuses_an_unknown_evidence_type(tmp_path: Path) -> None:
    matters = _catalog_with(tmp_path, "evidence: gd-residence-permit", "evidence: gd-horoscope")
    with pytest.raises(MappingError, match="unknown evidence type 'gd-horoscope'"):
        Catalog.load(matters)


def test_only_a_by_data_sharing_material_names_evidence(tmp_path: Path) -> None:
    matters = _catalog_with(
        tmp_path,
        "    rule: required\n",
        "    rule: required\n    evidence: gd-residence-permit\n",
    )
    with pytest.raises(MappingError, match="only a by_data_sharing material names evidence"):
        Catalog.load(matters)


def test_three_matters_name_evidence_their_issuers_declare() -> None:
    from datetime import date

    from gateway.sandbox.agencies import SANDBOX_AGENCIES

    catalog = Catalog.load(MAPPINGS / "matters")
    named = {
        (str(m.code), x.code, x.evidence)
        for m in catalog.all(date(2026, 6, 1))
        for x in m.materials
        if x.evidence
    }
    assert {e for _, _, e in named} == {
        "hk-br-extract",
        "mo-resident-status",
        "gd-residence-permit",
    }
    issued = {e for a in SANDBOX_AGENCIES for e in a.issues_evidence}
    assert {e for _, _, e in named} <= issued
