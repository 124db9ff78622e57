"""The particulars of every matter reach the HK and Macau formats from one declarative section.

The catalog defines the particulars once (``mappings/matters``); each field map's
``particulars:`` section says how its format writes a particular of each kind, and loading
expands it into fields and into the content of the XSD's particulars type.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from lxml import etree

import adapters.hk
import adapters.macau
from gateway.domain.errors import ValidationFailedError
from gateway.domain.matters import Particular
from gateway.jurisdictions import Jurisdictions
from gateway.mapping.catalog import Catalog
from gateway.mapping.check import check_mappings
from gateway.mapping.fields import MappingError, XmlCodec
from gateway.mapping.report import coverage_report
from gateway.sandbox.personas import persona
from gateway.sandbox.samples import canonical_sample
from tests.support import copied_jurisdictions

MAPPINGS = Path(__file__).parents[3] / "mappings"
CATALOG = Catalog.load(MAPPINGS / "matters")
COMPANY = "11440300MB2C00011B3440120001000"  # company_name, registered_address, ..._capital
XS = "{http://www.w3.org/2001/XMLSchema}"


@pytest.fixture
def mappings(tmp_path: Path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(MAPPINGS, target)
    return target


@pytest.fixture
def copies(tmp_path: Path) -> Jurisdictions:
    """The jurisdiction folders copied, to change their field maps and XSDs."""
    return copied_jurisdictions(tmp_path / "adapters")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text("utf-8")
    assert text.count(old) == 1, (path.name, old)
    path.write_text(text.replace(old, new), "utf-8")


LABELS = "{zh-Hans: 开业日期, zh-Hant: 開業日期, en: Opening date, pt: Data de abertura}"


def _add_particular(mappings: Path, entry: str) -> None:
    """Append a particular to the company matter's list (the last one: legal_representative)."""
    last = '    labels: {zh-Hans: "法定代表人", zh-Hant: "法定代表人", en: "Legal representative", '
    path = mappings / "matters" / f"{COMPANY}.yaml"
    text = path.read_text("utf-8")
    start = text.index(last)
    end = text.index("\n", start) + 1
    path.write_text(text[:end] + f"  - {{{entry}, labels: {LABELS}}}\n" + text[end:], "utf-8")


def _declared(codec: XmlCodec, holder: str) -> dict[str, str]:
    assert codec.schema_document is not None
    schema = etree.fromstring(codec.schema_document)
    (model,) = [t for t in schema.iterchildren(f"{XS}complexType") if t.get("name") == holder]
    return {e.get("name"): e.get("type") for e in model.iter(f"{XS}element")}


def test_hk_writes_each_particular_as_its_pascal_case_element_typed_by_kind() -> None:
    codec = adapters.hk.ADAPTER.load_codec(MAPPINGS, CATALOG.particulars())
    matter = CATALOG.get(COMPANY, date.today())

    body = codec.to_native(canonical_sample(matter, persona("chan-tai-man")))

    root = etree.fromstring(body)
    h = "{urn:gba:hk:application:1}"
    assert root.findtext(f"{h}Particulars/{h}CompanyName") == "示例 company_name"
    capital = root.find(f"{h}Particulars/{h}RegisteredCapital")
    assert (capital.text, capital.get("currency")) == ("50000.00", "CNY")
    address = root.find(f"{h}Particulars/{h}RegisteredAddress")
    assert address.get("jurisdiction") == "GD"
    assert address.get("areaCode") == "440106"
    declared = _declared(codec, "Particulars")
    assert declared["CompanyName"] == "ParticularText"
    assert declared["RegisteredCapital"] == "Money"
    assert declared["RegisteredAddress"] == "Address"
    assert declared["Employees"] == "xs:nonNegativeInteger"
    assert declared["PeriodFrom"] == "DateDMY"
    # labelled in every script the catalog gives
    assert codec.schema_document is not None
    schema = etree.fromstring(codec.schema_document)
    (company,) = schema.iterfind(f".//{XS}element[@name='CompanyName']")
    labels = {
        d.get("{http://www.w3.org/XML/1998/namespace}lang"): d.text
        for d in company.iter(f"{XS}documentation")
    }
    assert labels["en"] == matter.particulars[0].labels.en
    assert set(labels) == {"zh-Hans", "zh-Hant", "en", "pt"}
    # one optional element per particular of the catalog, in canonical name order
    names = sorted({p.name for p in CATALOG.particulars()})
    assert list(declared) == ["".join(w.title() for w in n.split("_")) for n in names]


def test_macau_writes_the_portuguese_names_of_its_table() -> None:
    codec = adapters.macau.ADAPTER.load_codec(MAPPINGS, CATALOG.particulars())
    matter = CATALOG.get(COMPANY, date.today())

    body = codec.to_native(canonical_sample(matter, persona("lei-sio-meng")))

    m = "{urn:gba:mo:requerimento:1}"
    root = etree.fromstring(body)
    assert root.findtext(f"{m}Particularidades/{m}Denominacao") == "示例 company_name"
    assert root.find(f"{m}Particularidades/{m}CapitalSocial").get("moeda") == "CNY"
    assert root.find(f"{m}Particularidades/{m}Sede").get("jurisdicao") == "GD"
    assert all(name.isascii() for name in _declared(codec, "Particularidades"))


def test_a_particular_without_a_portuguese_name_fails_the_macau_load_naming_it(
    mappings: Path, copies: Jurisdictions
) -> None:
    extra = [*CATALOG.particulars(), Particular("vessel_name", True, "text")]

    copies.by_code("HK").load_codec(mappings, extra)  # HK derives the name: VesselName
    with pytest.raises(MappingError, match=r"macau.yaml: particulars: .*vessel_name"):
        copies.by_code("MO").load_codec(mappings, extra)


def test_a_non_ascii_or_duplicate_element_name_is_refused(
    mappings: Path, copies: Jurisdictions
) -> None:
    fields = copies.by_code("MO").fields_dir / "macau.yaml"
    _edit(fields, "company_name: Denominacao", "company_name: Denominação")
    with pytest.raises(MappingError, match="ASCII PascalCase: company_name"):
        copies.by_code("MO").load_codec(mappings, CATALOG.particulars())

    _edit(fields, "company_name: Denominação", "company_name: Sede")
    with pytest.raises(
        MappingError,
        match=r"(registered_address and company_name|company_name and registered_address)",
    ):
        copies.by_code("MO").load_codec(mappings, CATALOG.particulars())


def test_one_name_with_two_kinds_is_a_catalog_problem_and_a_mapping_error(
    mappings: Path, copies: Jurisdictions
) -> None:
    conflicting = [Particular("capital", False, "money"), Particular("capital", True, "text")]
    with pytest.raises(MappingError, match=r"'capital' is of kind money .* and text"):
        copies.by_code("HK").load_codec(mappings, conflicting)

    _add_particular(mappings, "name: capital, required: false")
    (line,) = check_mappings(
        mappings, jurisdictions=copies
    )  # only the catalog's: the formats keep the first kind
    assert line.startswith("matters/")
    assert "particular capital is of kind" in line
    assert "money" in line
    assert "text" in line


def test_a_kind_without_a_shape_and_a_missing_placeholder_are_refused(
    mappings: Path, copies: Jurisdictions
) -> None:
    fields = copies.by_code("HK").fields_dir / "hk.yaml"
    _edit(fields, '    integer: {type: "xs:nonNegativeInteger"}\n', "")
    with pytest.raises(MappingError, match=r"no shape in kinds: for employees \(integer\)"):
        copies.by_code("HK").load_codec(mappings, CATALOG.particulars())

    shutil.copy(adapters.hk.ADAPTER.fields_dir / "hk.yaml", fields)
    _edit(
        copies.by_code("HK").schemas_dir / "hk-application.xsd",
        '<xs:complexType name="Particulars"/>',
        "",
    )
    with pytest.raises(MappingError, match="no complexType Particulars"):
        copies.by_code("HK").load_codec(mappings, CATALOG.particulars())


def test_a_new_particular_in_a_matter_file_reaches_both_formats_without_a_mapping_change(
    mappings: Path, copies: Jurisdictions
) -> None:
    _add_particular(mappings, "name: opening_date, required: false, kind: date")
    _edit(
        copies.by_code("MO").fields_dir / "macau.yaml",
        "    company_name: Denominacao\n",
        "    company_name: Denominacao\n    opening_date: DataAbertura\n",
    )
    catalog = Catalog.load(mappings / "matters")
    matter = catalog.get(COMPANY, date.today())
    for codec, who in (
        (copies.by_code("HK").load_codec(mappings, catalog.particulars()), "chan-tai-man"),
        (copies.by_code("MO").load_codec(mappings, catalog.particulars()), "lei-sio-meng"),
    ):
        document = canonical_sample(matter, persona(who))
        document["particulars"]["opening_date"] = "2026-03-01"

        body = codec.to_native(document)

        assert b"01/03/2026" in body
        assert codec.decode(body).document["particulars"] == document["particulars"]


def test_check_is_clean_and_the_report_finds_no_particular_a_format_cannot_fill() -> None:
    assert check_mappings(MAPPINGS) == []

    report = coverage_report(MAPPINGS)

    section = report.split("3. ", 1)[1].split("\n4. ", 1)[0]
    assert section.splitlines()[1:] == ["   (none)"]
    for p in CATALOG.particulars():
        assert f"/particulars/{p.name}" in report


def test_the_report_names_a_particular_the_macau_table_lacks(
    mappings: Path, copies: Jurisdictions
) -> None:
    _edit(copies.by_code("MO").fields_dir / "macau.yaml", "    specialty: Especialidade\n", "")

    report = coverage_report(mappings, copies)

    assert "fields/macau.yaml: particulars: no element name in names: for specialty" in report
    assert "MO lacks host_institution, specialty, practice_from, practice_to" in report


@pytest.mark.parametrize("module", [adapters.hk, adapters.macau])
def test_a_code_list_restricts_the_element_in_the_xsd(module: object) -> None:
    residence = CATALOG.get("11440100MB2C0002124440700001000", date.today())
    (condition,) = [p for p in residence.particulars if p.name == "residence_condition"]
    assert condition.values
    codec = module.ADAPTER.load_codec(MAPPINGS, CATALOG.particulars())  # type: ignore[attr-defined]
    document = canonical_sample(residence, persona("chan-tai-man"))

    for value in condition.values:
        document["particulars"]["residence_condition"] = value
        assert codec.decode(codec.to_native(document)).document == document

    document["particulars"]["residence_condition"] = "tourism"
    with pytest.raises(ValidationFailedError) as refused:
        codec.to_native(document)
    assert {e.code for e in refused.value.errors} == {"schema"}
