"""The matter catalog: loading the reviewed YAML, versions in force, search in every script."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from gateway.domain.errors import UnknownMatterError
from gateway.domain.matters import MaterialRule
from gateway.domain.values import Jurisdiction
from gateway.mapping.catalog import Catalog
from gateway.mapping.fields import MappingError

MATTERS = Path(__file__).parents[3] / "mappings" / "matters"
CODE = "11440400MB2C00081P4440120002000"
IN_FORCE = date(2026, 1, 1)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(MATTERS)


def test_catalog_loads_the_reviewed_matters(catalog: Catalog) -> None:
    codes = sorted(str(m.code) for m in catalog.all(IN_FORCE))
    on_disk = sorted(p.stem for p in MATTERS.glob("*.yaml"))
    assert codes == on_disk
    assert CODE in codes
    assert len(codes) == 10


def test_get_returns_the_version_in_force(catalog: Catalog) -> None:
    matter = catalog.get(CODE, IN_FORCE)

    assert str(matter.code) == CODE
    assert matter.version == 1
    assert matter.effective_from == date(2024, 1, 1)
    assert matter.names.zh_hant == "港澳居民個體工商戶登記"
    assert matter.statutory_limit.value == 3
    assert matter.promised_limit.value == 0
    assert [(m.code, m.rule) for m in matter.materials] == [
        ("APPLICATION_FORM", MaterialRule.REQUIRED),
        ("IDENTITY_PROOF", MaterialRule.BY_DATA_SHARING),
        ("PREMISES_PROOF", MaterialRule.COMMITMENT_ALLOWED),
    ]


def test_get_on_the_first_day_in_force(catalog: Catalog) -> None:
    assert catalog.get(CODE, date(2024, 1, 1)).version == 1


def test_get_before_effective_from_is_an_unknown_matter(catalog: Catalog) -> None:
    with pytest.raises(UnknownMatterError, match="in force on 2023-12-31"):
        catalog.get(CODE, date(2023, 12, 31))


def test_get_of_an_unknown_code_is_an_unknown_matter(catalog: Catalog) -> None:
    with pytest.raises(UnknownMatterError):
        catalog.get("11440400MB2C00081P4440120009999", IN_FORCE)


@pytest.mark.parametrize(
    "text",
    [
        "個體工商戶",
        "个体工商户",
        "individual business",
        "INDIVIDUAL Business",
        " Hengqin ",
        "empresário comercial",  # Portuguese, Macao's other official language
        "EMPRESARIO COMERCIAL",  # without its accent, as typed on a keyboard without one
    ],
)
def test_search_finds_the_matter_in_every_script(catalog: Catalog, text: str) -> None:
    assert [str(m.code) for m in catalog.search(text, IN_FORCE)] == [CODE]


def test_search_finds_nothing_for_an_unrelated_text(catalog: Catalog) -> None:
    assert catalog.search("駕駛執照", IN_FORCE) == []


def test_search_finds_nothing_before_the_matter_is_in_force(catalog: Catalog) -> None:
    assert catalog.search("individual business", date(2023, 6, 1)) == []


def test_broken_matter_reports_every_problem_at_once(tmp_path: Path) -> None:
    text = (MATTERS / f"{CODE}.yaml").read_text("utf-8")
    promised = "promised: {value: 0, unit: working_days, calendar: GD}"
    assert text.count(promised) == 1
    text = text.replace(promised, "promised: {value: 5, unit: working_days, calendar: GD}")
    # version 1 has no effective_to, so a second version overlaps it
    assert text.endswith("effective_from: 2024-01-01\n")
    text += "  - version: 2\n    effective_from: 2025-07-01\n"
    (tmp_path / f"{CODE}.yaml").write_text(text, "utf-8")

    with pytest.raises(MappingError) as info:
        Catalog.load(tmp_path)

    message = str(info.value)
    assert f"{CODE} v1: promised limit exceeds statutory limit" in message
    assert f"{CODE}: versions 1 and 2 overlap" in message


def test_counterpart_codes_are_read_and_matched_without_regard_to_case(
    catalog: Catalog,
) -> None:
    matter = catalog.get(CODE, IN_FORCE)

    assert [(c.jurisdiction.value, c.code) for c in matter.counterparts] == [
        ("HK", "IRD-BR"),
        ("MO", "DSF-M1"),
    ]
    assert matter.has_counterpart(Jurisdiction.MO, "dsf-m1")
    assert not matter.has_counterpart(Jurisdiction.HK, "DSF-M1")


def test_counterpart_codes_are_well_formed_present_and_unique_per_jurisdiction(
    tmp_path: Path,
) -> None:
    text = (MATTERS / f"{CODE}.yaml").read_text("utf-8")
    assert text.count("code: IRD-BR\n") == text.count("code: DSF-M1\n") == 1
    (tmp_path / f"{CODE}.yaml").write_text(
        text.replace("code: IRD-BR\n", "code: ird br\n").replace("    code: DSF-M1\n", ""),
        "utf-8",
    )
    other = "11440700MB2C0005143440720004000"  # takes HK IRD-BR too; its MO code stays
    text = (MATTERS / f"{other}.yaml").read_text("utf-8")
    assert text.count("code: LR-DEED\n") == 1
    (tmp_path / f"{other}.yaml").write_text(
        text.replace("code: LR-DEED\n", "code: IRD-BR\n"), "utf-8"
    )

    with pytest.raises(MappingError) as info:
        Catalog.load(tmp_path)

    message = str(info.value)
    assert "counterpart HK: 'ird br' is not a counterpart code" in message
    assert "counterpart MO: code is missing" in message
    # the broken matter's code is unreadable, so the other one is the only IRD-BR: no clash
    assert "already the counterpart" not in message

    fixed = (MATTERS / f"{CODE}.yaml").read_text("utf-8")
    (tmp_path / f"{CODE}.yaml").write_text(fixed, "utf-8")
    with pytest.raises(MappingError, match=rf"HK:IRD-BR is already the counterpart of {CODE}"):
        Catalog.load(tmp_path)


def test_a_material_accepts_every_upload_type_unless_the_catalog_narrows_it(
    catalog: Catalog, tmp_path: Path
) -> None:
    from gateway.domain.materials import DEFAULT_MEDIA_TYPES

    matter = catalog.get(CODE, IN_FORCE)
    assert {m.media_types for m in matter.materials} == {DEFAULT_MEDIA_TYPES}
    text = (MATTERS / f"{CODE}.yaml").read_text("utf-8")
    rule = "    rule: commitment_allowed   # 告知承诺\n"
    assert text.count(rule) == 1
    narrowed = text.replace(rule, rule + "    media_types: [application/pdf, application/ofd]\n")
    (tmp_path / f"{CODE}.yaml").write_text(narrowed, "utf-8")
    premises = next(
        m
        for m in Catalog.load(tmp_path).get(CODE, IN_FORCE).materials
        if m.code == "PREMISES_PROOF"
    )
    assert premises.media_types == ("application/pdf", "application/ofd")

    wrong = text.replace(rule, rule + "    media_types: [text/html]\n")
    (tmp_path / f"{CODE}.yaml").write_text(wrong, "utf-8")
    with pytest.raises(MappingError, match="media_types"):
        Catalog.load(tmp_path)


def test_a_commitment_has_its_text_in_four_languages_and_owed_materials_a_time_limit(
    catalog: Catalog, tmp_path: Path
) -> None:
    from gateway.domain.matters import TimeUnit

    premises = next(m for m in catalog.get(CODE, IN_FORCE).materials if m.code == "PREMISES_PROOF")
    assert premises.commitment is not None
    assert set(premises.commitment.as_dict()) == {"zh-Hans", "zh-Hant", "en", "pt"}
    medical = catalog.get("11440300MB2C00091K3440120007000", IN_FORCE)
    assert (medical.owed_limit.value, medical.owed_limit.unit) == (10, TimeUnit.WORKING_DAYS)
    assert medical.owed_before_decision is True
    # without owed_within: 10 working days in the statutory limit's calendar
    assert catalog.get(CODE, IN_FORCE).owed_limit.calendar is Jurisdiction.GD

    text = (MATTERS / f"{CODE}.yaml").read_text("utf-8")
    start = text.index("    commitment:\n")
    end = text.index("particulars:", start)
    (tmp_path / f"{CODE}.yaml").write_text(text[:start] + text[end:], "utf-8")
    with pytest.raises(MappingError, match="needs its commitment text"):
        Catalog.load(tmp_path)
    no_pt = text.replace(text[text.index("      pt: ", start) : end], "")
    (tmp_path / f"{CODE}.yaml").write_text(no_pt, "utf-8")
    with pytest.raises(MappingError, match="no text in pt"):
        Catalog.load(tmp_path)


def test_names_a_resident_reads_are_in_portuguese_too_and_never_cut_at_a_comma(
    catalog: Catalog, tmp_path: Path
) -> None:
    matter = catalog.get(CODE, IN_FORCE)
    premises = next(m for m in matter.materials if m.code == "PREMISES_PROOF")
    assert premises.names.pt == "Comprovativo de utilização do local de exploração"
    assert all(c.names is not None and c.names.pt for c in matter.counterparts)

    text = (MATTERS / f"{CODE}.yaml").read_text("utf-8")
    pt = ", pt: Comprovativo de utilização do local de exploração}"
    assert text.count(pt) == 1
    (tmp_path / f"{CODE}.yaml").write_text(text.replace(pt, "}"), "utf-8")
    with pytest.raises(MappingError, match="material PREMISES_PROOF names: no name in pt"):
        Catalog.load(tmp_path)

    # an unquoted comma in a flow mapping makes a second key and cuts the name short
    cut = text.replace(
        "en: Proof of use of the business premises,", "en: Proof of use, of the business premises,"
    )
    (tmp_path / f"{CODE}.yaml").write_text(cut, "utf-8")
    with pytest.raises(MappingError, match=r"unknown language\(s\) of the business premises"):
        Catalog.load(tmp_path)
