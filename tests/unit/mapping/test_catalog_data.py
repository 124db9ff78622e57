"""The shipped matter catalog: the ten sample matters of domain.md §7.3, as reviewed data."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from gateway.bootstrap import check_routes
from gateway.domain.matters import Assurance, Matter, TimeUnit
from gateway.domain.values import Jurisdiction, MatterCode, uscc_is_valid
from gateway.mapping.catalog import MATTER_TYPES, Catalog
from gateway.sandbox.agencies import SANDBOX_AGENCIES

MATTERS = Path(__file__).parents[3] / "mappings" / "matters"
ON = date(2026, 6, 1)

# code -> (a word of the zh-Hant name, the same word in zh-Hans), domain.md §7.3 #1-#10
SAMPLES = {
    "11440300MB2C00011B3440120001000": ("外商投資企業", "外商投资企业"),
    "11440400MB2C00081P4440120002000": ("個體工商戶", "个体工商户"),
    "11440100MB2C0002124440700001000": ("居住證申領", "居住证申领"),
    "11440400MB2C00031J3442030001000": ("參加社會保險", "参加社会保险"),
    "11440100MB2C0004143440120003000": ("免試換領", "免试换领"),
    "11440700MB2C0005143440720004000": ("不動產轉移", "不动产转移"),
    "11442000MB2C00071T3440720005000": ("結婚登記", "结婚登记"),
    "11440000MB2C0006112442030006000": ("完稅證明", "完税证明"),
    "11440300MB2C00091K3440120007000": ("短期行醫", "短期行医"),
    "12440100MB2C00121L3442030008000": ("住房公積金", "住房公积金"),
}
IN_PERSON = {"11440100MB2C0002124440700001000", "11442000MB2C00071T3440720005000"}
HIGH_ASSURANCE = {
    "11440700MB2C0005143440720004000",  # real-property transfer
    "11442000MB2C00071T3440720005000",  # marriage
    "11440300MB2C00091K3440120007000",  # medical practice
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load(MATTERS)


@pytest.fixture(scope="module")
def matters(catalog: Catalog) -> list[Matter]:
    return catalog.all(ON)


def test_all_ten_sample_matters_load(matters: list[Matter]) -> None:
    assert sorted(str(m.code) for m in matters) == sorted(SAMPLES)
    assert sorted(p.stem for p in MATTERS.glob("*.yaml")) == sorted(SAMPLES)


@pytest.mark.parametrize("code", SAMPLES)
def test_each_code_is_a_valid_guangdong_implementation_code(catalog: Catalog, code: str) -> None:
    matter = catalog.get(code, ON)
    parsed = MatterCode(code)

    assert uscc_is_valid(parsed.agency_uscc)
    assert parsed.basic_code.startswith("44")
    assert matter.matter_type in MATTER_TYPES
    assert parsed.basic_code[2:4] == matter.matter_type


@pytest.mark.parametrize("code", SAMPLES)
def test_lookup_in_2026_returns_version_1(catalog: Catalog, code: str) -> None:
    matter = catalog.get(code, ON)

    assert str(matter.code) == code
    assert matter.version == 1
    assert matter.effective_from == date(2024, 1, 1)


@pytest.mark.parametrize(("code", "words"), SAMPLES.items())
def test_search_finds_each_matter_by_a_word_of_its_chinese_names(
    catalog: Catalog, code: str, words: tuple[str, str]
) -> None:
    hant, hans = words
    matter = catalog.get(code, ON)
    assert hant in matter.names.zh_hant
    assert hans in matter.names.zh_hans

    assert [str(m.code) for m in catalog.search(hant, ON)] == [code]
    assert [str(m.code) for m in catalog.search(hans, ON)] == [code]


def test_every_matter_speaks_four_languages(matters: list[Matter]) -> None:
    for matter in matters:
        assert matter.names.pt, matter.code
        for material in matter.materials:
            assert material.names.en, (matter.code, material.code)
            assert material.names.pt, (matter.code, material.code)
        for counterpart in matter.counterparts:
            assert counterpart.names is None or counterpart.names.pt, matter.code


def test_every_routed_agency_is_a_sandbox_agency_so_the_sandbox_starts(
    catalog: Catalog, matters: list[Matter]
) -> None:
    sandbox = {a.id: a for a in SANDBOX_AGENCIES}
    for matter in matters:
        for agency in matter.route.handlers:
            assert agency in sandbox, (matter.code, agency)
        # The lead decides by itself, wherever it is; a Hong Kong or Macao reviewer (joint
        # review) decides nothing: the tester decides for it.
        assert sandbox[matter.route.lead].auto_decision == "approved", matter.code
        for reviewer in matter.route.reviewers:
            expected = "approved" if sandbox[reviewer].jurisdiction == "GD" else None
            assert sandbox[reviewer].auto_decision == expected, (matter.code, reviewer)
    check_routes(catalog, set(sandbox), ON)  # what the gateway runs before it serves


def test_one_matter_is_reviewed_jointly_with_hong_kong() -> None:
    by_id = {a.id: a for a in SANDBOX_AGENCIES}
    assert (by_id["hk-mchk"].jurisdiction, by_id["hk-mchk"].auto_decision) == ("HK", None)


def test_sandbox_agencies_are_unique_and_keep_the_originals() -> None:
    ids = [a.id for a in SANDBOX_AGENCIES]
    assert len(ids) == len(set(ids))
    by_id = {a.id: a for a in SANDBOX_AGENCIES}
    assert by_id["hk-ird"].alg == "ed25519"
    assert by_id["mo-dsf"].auto_decision is None
    assert by_id["gd-hq-csb"].auto_decision == "approved"
    assert (by_id["hk-cr"].jurisdiction, by_id["hk-cr"].auto_decision) == ("HK", None)
    assert (by_id["mo-ipim"].jurisdiction, by_id["mo-ipim"].auto_decision) == ("MO", None)
    for agency in SANDBOX_AGENCIES:
        assert set(agency.names) == {"zh-Hans", "zh-Hant", "en", "pt"}, agency.id
        if agency.jurisdiction == "GD":
            assert agency.alg == "ecdsa-p256-sha256", agency.id


@pytest.mark.parametrize("code", SAMPLES)
def test_promised_limit_is_within_the_statutory_limit(catalog: Catalog, code: str) -> None:
    matter = catalog.get(code, ON)
    promised, statutory = matter.promised_limit, matter.statutory_limit

    assert promised.calendar is statutory.calendar is Jurisdiction.GD
    assert promised.value <= statutory.value
    # across units only an immediate promise is within the limit without a calendar
    assert promised.unit is statutory.unit or promised.value == 0


def test_the_provident_fund_limit_counts_natural_days(catalog: Catalog) -> None:
    matter = catalog.get("12440100MB2C00121L3442030008000", ON)
    assert (matter.statutory_limit.value, matter.statutory_limit.unit) == (
        3,
        TimeUnit.NATURAL_DAYS,
    )


def test_at_least_two_matters_are_handled_jointly(matters: list[Matter]) -> None:
    joint = {str(m.code): m.route.reviewers for m in matters if m.route.reviewers}
    assert len(joint) >= 2
    assert joint["11440300MB2C00011B3440120001000"] == ("gd-tax", "mo-ipim")
    assert joint["11440700MB2C0005143440720004000"] == ("gd-tax",)


def test_at_least_four_matters_cross_a_border_one_with_macao_one_led_from_outside_guangdong(
    matters: list[Matter],
) -> None:
    where = {a.id: a.jurisdiction for a in SANDBOX_AGENCIES}
    crossing = {
        str(m.code): [where[h] for h in m.route.handlers]
        for m in matters
        if len({where[h] for h in m.route.handlers}) > 1
    }
    assert len(crossing) >= 4, crossing
    assert any("MO" in places for places in crossing.values())
    led_from = {code: places[0] for code, places in crossing.items()}
    assert {"HK", "MO"} & set(led_from.values()), led_from
    assert led_from["11440400MB2C00031J3442030001000"] == "MO"
    assert crossing["11440300MB2C00091K3440120007000"] == ["GD", "HK"]  # the doctor's


def test_in_person_matters_refuse_agents(matters: list[Matter]) -> None:
    assert {str(m.code) for m in matters if not m.agent_allowed} == IN_PERSON


def test_property_marriage_and_medical_matters_need_high_assurance(
    matters: list[Matter],
) -> None:
    assert {str(m.code) for m in matters if m.min_assurance is Assurance.HIGH} == HIGH_ASSURANCE


def test_every_matter_lists_its_hong_kong_and_macao_counterparts(matters: list[Matter]) -> None:
    for matter in matters:
        for jurisdiction in (Jurisdiction.HK, Jurisdiction.MO):
            counterpart = matter.counterpart(jurisdiction)
            assert counterpart is not None, (matter.code, jurisdiction)
            if counterpart.relation != "none":
                assert counterpart.service, (matter.code, jurisdiction)
    residence = next(m for m in matters if str(m.code) == "11440100MB2C0002124440700001000")
    assert {c.relation for c in residence.counterparts} == {"none"}
    licence = next(m for m in matters if str(m.code) == "11440100MB2C0004143440120003000")
    assert {c.relation for c in licence.counterparts} == {"reverse-direction"}
