"""``mappings check`` lists every problem of the mapping data; ``mappings report`` the coverage."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gateway.jurisdictions import Jurisdictions
from gateway.mapping.catalog import Catalog
from gateway.mapping.check import check_mappings
from gateway.mapping.fields import MappingError
from gateway.mapping.report import coverage_report
from gateway.sandbox.agencies import SANDBOX_AGENCIES
from tests.support import copied_jurisdictions

MAPPINGS = Path(__file__).parents[3] / "mappings"
AGENCIES = [a.id for a in SANDBOX_AGENCIES]

LICENCE = "11440100MB2C0004143440120003000"  # #5, statutory 1 working day
INSURANCE = "11440400MB2C00031J3442030001000"  # #4, type 20
FUND = "12440100MB2C00121L3442030008000"  # #10, statutory 3 natural days, lead gz-hpf
TAX = "11440000MB2C0006112442030006000"  # #8
HENGQIN = "11440400MB2C00081P4440120002000"  # #2
RESIDENCE = "11440100MB2C0002124440700001000"  # #3, no HK/MO counterpart


@pytest.fixture
def mappings(tmp_path: Path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    return target


@pytest.fixture
def copies(tmp_path: Path) -> Jurisdictions:
    """The jurisdiction folders copied, to break their field maps and XSDs."""
    return copied_jurisdictions(tmp_path / "adapters")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert text.count(old) == 1, (path.name, old)
    path.write_text(text.replace(old, new), "utf-8")


def _matter(mappings: Path, code: str) -> Path:
    return mappings / "matters" / f"{code}.yaml"


def _lines_naming(lines: list[str], name: str) -> list[str]:
    return [line for line in lines if name in line]


def test_the_shipped_mappings_have_no_problem() -> None:
    assert check_mappings(MAPPINGS, known_agencies=AGENCIES) == []
    assert check_mappings(MAPPINGS) == []


def test_every_problem_of_a_broken_copy_is_one_line_naming_its_file(
    mappings: Path, copies: Jurisdictions
) -> None:
    _edit(
        _matter(mappings, LICENCE),
        "promised: {value: 0, unit: working_days, calendar: GD}",
        "promised: {value: 5, unit: working_days, calendar: GD}",
    )
    _edit(_matter(mappings, INSURANCE), 'type: "20"', 'type: "01"')
    _edit(
        copies.by_code("HK").fields_dir / "hk.yaml",
        "{to: /applicant/email, from: h:Applicant/h:Email}",
        "{to: /applicant/email, from: h:Applicant/h:Email, transform: shout}",
    )
    _edit(_matter(mappings, FUND), "lead: gz-hpf", "lead: gz-nowhere")
    tax = _matter(mappings, TAX)
    tax.write_text(
        tax.read_text("utf-8") + "  - version: 2\n    effective_from: 2025-07-01\n", "utf-8"
    )

    lines = check_mappings(mappings, known_agencies=AGENCIES, jurisdictions=copies)

    assert len(lines) == 5, "\n".join(lines)
    (licence,) = _lines_naming(lines, f"matters/{LICENCE}.yaml")
    assert "promised limit exceeds statutory limit" in licence
    (insurance,) = _lines_naming(lines, f"matters/{INSURANCE}.yaml")
    assert "type slot" in insurance
    assert "reads 20, not type 01" in insurance
    (hk,) = _lines_naming(lines, "hk/fields/hk.yaml")
    assert "unknown transform 'shout'" in hk
    (fund,) = _lines_naming(lines, f"matters/{FUND}.yaml")
    assert "'gz-nowhere'" in fund
    assert "not registered" in fund
    (tax_line,) = _lines_naming(lines, f"matters/{TAX}.yaml")
    assert "versions 1 and 2 overlap" in tax_line


def test_unknown_agencies_are_only_checked_against_a_given_registry(mappings: Path) -> None:
    _edit(_matter(mappings, FUND), "lead: gz-hpf", "lead: gz-nowhere")

    assert check_mappings(mappings) == []
    assert len(check_mappings(mappings, known_agencies=AGENCIES)) == 1


def test_every_catalog_rule_of_one_file_is_reported_at_once(mappings: Path) -> None:
    path = _matter(mappings, HENGQIN)
    _edit(path, "channels: [online, counter, kiosk, mobile]", "channels: [online, fax]")
    _edit(path, "rule: commitment_allowed", "rule: bring_it_later")
    _edit(
        path,
        "  en: Registration of an individual business by a Hong Kong or Macao resident (Hengqin)\n",
        "",
    )
    _edit(path, "reviewers: []", "reviewers: [gd-hq-csb, gd-tax, gd-tax]")
    _edit(
        path,
        "  - jurisdiction: HK\n    relation: partial",
        "  - jurisdiction: GD\n    relation: partial",
    )
    _edit(
        path,
        "  - jurisdiction: MO\n    relation: partial",
        "  - jurisdiction: MO\n    relation: similar",
    )
    _edit(path, "kind: money\n", "kind: currency\n")
    _edit(path, 'en: "Business premises", pt: "Local de exploração"', 'en: "Business premises"')
    _edit(path, "kind: integer\n", "kind: integer\n    values: [few, many]\n")
    _edit(path, "min_assurance: substantial", "min_assurance: very high")

    lines = check_mappings(mappings)

    assert all(line.startswith(f"matters/{HENGQIN}.yaml: {HENGQIN} v1: ") for line in lines)
    found = "\n".join(lines)
    for expected in (
        "unknown channel(s) 'fax'",
        "unknown material rule 'bring_it_later'",
        "names: no name in en",
        "the lead agency gd-hq-csb is also a reviewer",
        "reviewer gd-tax is listed twice",
        "a counterpart is in HK or MO, not GD",
        "unknown relation 'similar'",
        "unknown kind 'currency'",
        "particular business_address labels: no label in pt",
        "particular employees: only a text particular takes a list of values",
        "unknown assurance level 'very high'",
    ):
        assert expected in found, expected
    assert len(lines) == 11, found


def test_a_code_outside_the_guangdong_catalogue_and_a_type_outside_the_dictionary(
    mappings: Path,
) -> None:
    # a real-looking national code (catalogue owner 00) under a new file name
    source = _matter(mappings, HENGQIN)
    code = HENGQIN.replace("4440120002000", "4000120002000")
    text = source.read_text("utf-8").replace(HENGQIN, code)
    source.unlink()
    _matter(mappings, code).write_text(text, "utf-8")
    _edit(_matter(mappings, INSURANCE), 'type: "20"', 'type: "21"')

    lines = check_mappings(mappings)

    assert any("basic code 000120002000 is not in the Guangdong catalogue" in x for x in lines)
    assert any("'21' is not in the national dictionary" in x for x in lines)
    assert len(lines) == 2, "\n".join(lines)


def test_time_limits_in_different_units_are_compared_only_where_certain(mappings: Path) -> None:
    # 5 working days always span at least 5 natural days: more than the statutory 3 days
    _edit(
        _matter(mappings, FUND),
        "promised: {value: 0, unit: working_days, calendar: GD}",
        "promised: {value: 5, unit: working_days, calendar: GD}",
    )
    # 1 natural day against a statutory 1 working day: within it on any calendar
    _edit(
        _matter(mappings, LICENCE),
        "promised: {value: 0, unit: working_days, calendar: GD}",
        "promised: {value: 1, unit: natural_days, calendar: GD}",
    )

    lines = check_mappings(mappings)

    assert lines == [f"matters/{FUND}.yaml: {FUND} v1: promised limit exceeds statutory limit"]


def test_unreadable_files_are_problems_not_crashes(mappings: Path, copies: Jurisdictions) -> None:
    _matter(mappings, RESIDENCE).write_text("code: [unclosed\n", "utf-8")
    (copies.by_code("HK").schemas_dir / "hk-application.xsd").write_text("<xs:schema", "utf-8")

    lines = check_mappings(mappings, jurisdictions=copies)

    assert any(x.startswith(f"matters/{RESIDENCE}.yaml: cannot be read") for x in lines)
    assert any(x.startswith("hk/schemas/hk-application.xsd: ") for x in lines)
    # the HK field mapping cannot load its schema either
    assert any(x.startswith("hk/fields/hk.yaml: ") for x in lines)
    assert len(lines) == 3, "\n".join(lines)


def test_the_catalog_refuses_to_load_and_names_every_file(mappings: Path) -> None:
    _edit(_matter(mappings, INSURANCE), 'type: "20"', 'type: "01"')
    _edit(
        _matter(mappings, LICENCE),
        "promised: {value: 0, unit: working_days, calendar: GD}",
        "promised: {value: 5, unit: working_days, calendar: GD}",
    )

    with pytest.raises(MappingError) as info:
        Catalog.load(mappings / "matters")

    message = str(info.value)
    assert f"{INSURANCE}.yaml: {INSURANCE} v1: the type slot" in message
    assert f"{LICENCE}.yaml: {LICENCE} v1: promised limit exceeds statutory limit" in message


def test_the_coverage_report_names_jurisdictions_and_matters_without_counterparts() -> None:
    report = coverage_report(MAPPINGS)

    assert "HK (" in report
    assert "MO (" in report
    assert "/applicant/birth_date" in report
    section = report.split("4. Matters without")[1]
    assert RESIDENCE in section
    assert "no HK counterpart (relation none)" in section
    assert HENGQIN not in section


def test_the_coverage_report_shows_pointers_only_one_jurisdiction_maps(
    mappings: Path, copies: Jurisdictions
) -> None:
    _edit(
        copies.by_code("MO").fields_dir / "macau.yaml",
        "  - {to: /applicant/email, from: m:Requerente/m:Email}\n",
        "",
    )

    report = coverage_report(mappings, copies)

    assert "/applicant/email: mapped by HK; not by MO" in report
