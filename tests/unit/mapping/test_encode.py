"""Canonical -> native XML (XmlCodec.to_native): inverse transforms, XSD order, problems."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

import adapters.hk
import adapters.macau
from gateway.domain.errors import ValidationFailedError
from gateway.mapping.catalog import Catalog
from gateway.mapping.encode import schema_order
from gateway.mapping.fields import MappingError, XmlCodec
from gateway.mapping.paths import SimplePath, parse_simple
from gateway.mapping.transforms import TransformError, build, build_inverse

ROOT = Path(__file__).parents[3]
MAPPINGS = ROOT / "mappings"
PARTICULARS = Catalog.load(MAPPINGS / "matters").particulars()
PARTICULARS_BY_NAME = {p.name: p for p in PARTICULARS}
DOCUMENTS = ROOT / "tests" / "fixtures" / "documents"
HK = "{urn:gba:hk:application:1}"
MO = "{urn:gba:mo:requerimento:1}"


@pytest.fixture(scope="module")
def hk_codec() -> XmlCodec:
    return adapters.hk.ADAPTER.load_codec(MAPPINGS, PARTICULARS)


@pytest.fixture(scope="module")
def macau_codec() -> XmlCodec:
    return adapters.macau.ADAPTER.load_codec(MAPPINGS, PARTICULARS)


def _golden(name: str) -> dict[str, Any]:
    path = DOCUMENTS / f"{name}-individual-business.canonical.json"
    return json.loads(path.read_text("utf-8"))


def _problems(codec: XmlCodec, document: dict[str, Any]) -> list[tuple[str, str | None]]:
    with pytest.raises(ValidationFailedError) as info:
        codec.to_native(document)
    assert info.value.status == 422
    return [(p.code, p.pointer or p.xpath) for p in info.value.errors]


# --- inverse transforms ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options", "value", "holder", "native"),
    [
        ("text", {}, "香港灣仔 軒尼詩道", {}, "香港灣仔 軒尼詩道"),
        ("upper", {}, "CHAN", {}, "CHAN"),
        ("date_dmy", {}, "1988-03-15", {}, "15/03/1988"),
        ("date_dmy", {}, "1900-01-01", {}, "01/01/1900"),
        ("e164", {"country": "HK"}, "+85291234567", {}, "+852 9123 4567"),
        ("e164", {"country": "MO"}, "+85366123456", {}, "+853 6612 3456"),
        ("e164", {"country": "HK"}, "+8613812345678", {}, "+86 13812345678"),
        ("e164", {"country": "HK"}, "+4930123456", {}, "+4930123456"),
        ("id_compact", {}, "A1234563", {"type": "HKID"}, "A123456(3)"),
        ("id_compact", {}, "XA123456A", {"type": "HKID"}, "XA123456(A)"),
        ("id_compact", {}, "12345678", {"type": "MO_BIR"}, "1234567(8)"),
        ("id_compact", {}, "12345678", {"type": "HK_BRN"}, "12345678"),
        ("id_compact", {}, "H12345678", {"type": "HRP"}, "H12345678"),
        ("id_compact", {}, "A1234563", {}, "A1234563"),
        ("enum", {"map": {"BIR": "MO_BIR", "RP": "RESIDENCE_PERMIT"}}, "MO_BIR", {}, "BIR"),
        ("decimal", {}, "50000.00", {}, "50000.00"),
    ],
)
def test_inverse_transform_writes_the_native_form_that_decodes_back(
    name: str, options: dict[str, Any], value: str, holder: dict[str, Any], native: str
) -> None:
    inverse = build_inverse(name, options)

    assert inverse is not None
    assert inverse(value, holder) == native
    assert build(name, options)(native) == value


@pytest.mark.parametrize(
    ("name", "options", "value", "code"),
    [
        ("date_dmy", {}, "1990-02-31", "invalid_date"),
        ("date_dmy", {}, "15/03/1988", "invalid_date"),
        ("date_dmy", {}, "19880315", "invalid_date"),
        ("e164", {"country": "HK"}, "91234567", "invalid_phone"),
        ("e164", {"country": "HK"}, "+852 9123 4567", "invalid_phone"),
        ("enum", {"map": {"BIR": "MO_BIR"}}, "PASSPORT", "unknown_code"),
        ("decimal", {}, "12.345", "invalid_amount"),
        ("decimal", {}, "-1", "invalid_amount"),
    ],
)
def test_inverse_transform_refuses_what_is_not_canonical(
    name: str, options: dict[str, Any], value: str, code: str
) -> None:
    inverse = build_inverse(name, options)

    assert inverse is not None
    with pytest.raises(TransformError) as info:
        inverse(value, {})
    assert info.value.code == code


@pytest.mark.parametrize("name", ["hk2s", "s2hk"])
def test_script_conversions_have_no_inverse(name: str) -> None:
    assert build_inverse(name, {}) is None


def test_enum_inverse_needs_a_one_to_one_map() -> None:
    with pytest.raises(ValueError, match="not one-to-one"):
        build_inverse("enum", {"map": {"BIR": "MO_BIR", "BI": "MO_BIR"}})


# --- simple paths and the XSD order ----------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("h:MatterCode", SimplePath((f"{HK}MatterCode",), None)),
        ("h:A/h:B/@district", SimplePath((f"{HK}A", f"{HK}B"), "district")),
        ("@h:code", SimplePath((), f"{HK}code")),
        (".", SimplePath((), None)),
        ("./h:A", SimplePath((f"{HK}A",), None)),
        ("Plain", SimplePath(("Plain",), None)),
    ],
)
def test_simple_paths_are_parsed_into_clark_steps(expression: str, expected: SimplePath) -> None:
    assert parse_simple(expression, {"h": HK[1:-1]}) == expected


@pytest.mark.parametrize(
    "expression",
    [
        "h:A | h:B",
        "concat(h:A, ' ', h:B)",
        "h:A[1]",
        "//h:A",
        "h:A/../h:B",
        "h:A/text()",
        "@a/h:B",
        "h:A/@b/@c",
        "string(h:A)",
    ],
)
def test_other_xpath_is_not_a_simple_path(expression: str) -> None:
    assert parse_simple(expression, {"h": HK[1:-1]}) is None


def test_an_undeclared_prefix_is_refused() -> None:
    with pytest.raises(ValueError, match="undeclared namespace prefix 'x'"):
        parse_simple("x:A", {"h": HK[1:-1]})


def test_schema_order_reads_the_sequences_of_the_hk_xsd(hk_codec: XmlCodec) -> None:
    assert hk_codec.schema_document is not None
    xsd = etree.fromstring(hk_codec.schema_document)  # as generated: the particulars filled in

    order = schema_order(xsd)

    application, applicant = (f"{HK}Application",), (f"{HK}Application", f"{HK}Applicant")
    assert list(order[application]) == [
        f"{HK}{name}"
        for name in ("MatterCode", "Applicant", "Particulars", "Materials", "Commitments")
    ]
    assert list(order[applicant]) == [
        f"{HK}{name}"
        for name in (
            "ChineseName",
            "EnglishName",
            "DateOfBirth",
            "IdentityDocuments",
            "Phone",
            "Email",
            "Address",
        )
    ]
    # a named complex type; the generated particulars, one element each, by canonical name
    assert list(order[(*applicant, f"{HK}EnglishName")]) == [f"{HK}Surname", f"{HK}GivenNames"]
    assert (*applicant, f"{HK}Address") not in order
    particulars = list(order[(*application, f"{HK}Particulars")])
    assert particulars[:3] == [f"{HK}BusinessAddress", f"{HK}BusinessName", f"{HK}BusinessScope"]
    assert len(particulars) == len(PARTICULARS_BY_NAME)


def test_schema_order_follows_refs_extensions_and_unqualified_locals() -> None:
    xsd = etree.fromstring(
        b"""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:t="urn:t"
              targetNamespace="urn:t">
          <xs:element name="Top"><xs:complexType><xs:sequence>
            <xs:element ref="t:Shared"/>
            <xs:element name="Local" type="t:Derived"/>
          </xs:sequence></xs:complexType></xs:element>
          <xs:element name="Shared" type="xs:string"/>
          <xs:complexType name="Base"><xs:sequence>
            <xs:element name="First" type="xs:string"/>
          </xs:sequence></xs:complexType>
          <xs:complexType name="Derived"><xs:complexContent><xs:extension base="t:Base">
            <xs:sequence><xs:element name="Second" type="xs:string"/></xs:sequence>
          </xs:extension></xs:complexContent></xs:complexType>
        </xs:schema>"""
    )

    order = schema_order(xsd)

    assert order[("{urn:t}Top",)] == {"{urn:t}Shared": 0, "Local": 1}
    assert order[("{urn:t}Top", "Local")] == {"First": 0, "Second": 1}


# --- to_native -------------------------------------------------------------------------------


def test_to_native_writes_utf8_xml_with_a_declaration_in_the_xsd_order(
    hk_codec: XmlCodec,
) -> None:
    body = hk_codec.to_native(_golden("hk"))

    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    root = etree.fromstring(body)
    assert root.tag == f"{HK}Application"
    assert root.nsmap == {None: HK[1:-1]}
    applicant = [child.tag.removeprefix(HK) for child in root.find(f"{HK}Applicant")]
    # the mapping lists the identity documents last; the XSD wants them before the phone
    assert applicant == [
        "ChineseName",
        "EnglishName",
        "DateOfBirth",
        "IdentityDocuments",
        "Phone",
        "Email",
        "Address",
    ]
    assert root.findtext(f"{HK}Applicant/{HK}IdentityDocuments/{HK}Document") == "A123456(3)"
    assert root.find(f"{HK}Applicant/{HK}Address").get("district") == "灣仔"
    assert "陳大文" in body.decode("utf-8")  # characters, not character references


def test_macau_document_numbers_are_written_as_printed(macau_codec: XmlCodec) -> None:
    root = etree.fromstring(macau_codec.to_native(_golden("macau")))

    documents = root.findall(f"{MO}Requerente/{MO}Documentos/{MO}Documento")
    assert [(d.get("tipo"), d.text) for d in documents] == [
        ("BIR", "1234567(8)"),
        ("HRP", "M87654321"),
        ("RP", "820000199207070465"),
    ]
    assert root.findtext(f"{MO}Requerente/{MO}DataNascimento") == "07/07/1992"
    assert root.findtext(f"{MO}Requerente/{MO}Telefone") == "+853 6612 3456"


def test_derived_fields_are_not_written_but_come_back_from_their_source(
    hk_codec: XmlCodec,
) -> None:
    document = _golden("hk")
    names = document["applicant"]["names"]
    names.update({"zh-Hans": "ignored", "latin": "ignored", "original": "ignored"})

    decoded = hk_codec.decode(hk_codec.to_native(document)).document

    assert decoded["applicant"]["names"] == _golden("hk")["applicant"]["names"]


def test_absent_optional_parts_write_no_elements(hk_codec: XmlCodec) -> None:
    document = _golden("hk")
    for key in ("particulars", "materials", "commitments"):
        del document[key]
    del document["applicant"]["names"]["zh-Hant"]
    document["applicant"]["email"] = "   "  # blank is absent, as in decoding

    root = etree.fromstring(hk_codec.to_native(document))

    assert [child.tag.removeprefix(HK) for child in root] == ["MatterCode", "Applicant"]
    assert root.find(f"{HK}Applicant/{HK}ChineseName") is None
    assert root.find(f"{HK}Applicant/{HK}Email") is None
    names = hk_codec.decode(etree.tostring(root)).document["applicant"]["names"]
    assert names["original"] == "CHAN"  # the union falls back to the surname


def test_every_problem_is_reported_at_once_with_its_pointer(hk_codec: XmlCodec) -> None:
    document = _golden("hk")
    del document["matter"]
    document["applicant"]["birth_date"] = "1988-02-30"
    document["applicant"]["phone"] = "9123 4567"
    document["applicant"]["documents"][1]["type"] = "PASSPORT"
    document["applicant"]["email"] = ["not", "text"]
    document["particulars"]["business_name"] = "bell\x07"
    document["materials"][0]["code"] = None

    problems = _problems(hk_codec, document)

    assert set(problems) >= {
        ("required", "/matter"),
        ("invalid_date", "/applicant/birth_date"),
        ("invalid_phone", "/applicant/phone"),
        ("wrong_type", "/applicant/email"),
        ("invalid_value", "/particulars/business_name"),
        ("unknown_code", "/applicant/documents/1/type"),
        ("required", "/materials/0/code"),
    }
    # what is missing is also what the XSD refuses
    assert {code for code, _ in problems} - {
        "required",
        "invalid_date",
        "invalid_phone",
        "wrong_type",
        "invalid_value",
        "unknown_code",
    } == {"schema"}


def test_a_document_without_identity_documents_does_not_validate(hk_codec: XmlCodec) -> None:
    document = _golden("hk")
    document["applicant"]["documents"] = []

    assert _problems(hk_codec, document) == [("schema", "/*/*[2]/*[4]")]


@pytest.mark.parametrize(
    ("pointer", "value"),
    [(("applicant", "documents"), {"type": "HKID"}), (("materials",), ["not an item"])],
)
def test_lists_of_the_wrong_shape_are_wrong_type(
    hk_codec: XmlCodec, pointer: tuple[str, ...], value: Any
) -> None:
    document = _golden("hk")
    node = document
    for part in pointer[:-1]:
        node = node[part]
    node[pointer[-1]] = value

    problems = _problems(hk_codec, document)

    where = "/" + "/".join(pointer) + ("/0" if isinstance(value, list) else "")
    assert ("wrong_type", where) in problems


def test_integers_are_written_as_text(hk_codec: XmlCodec) -> None:
    document = _golden("hk")
    document["particulars"]["employees"] = 3

    decoded = hk_codec.decode(hk_codec.to_native(document)).document

    assert decoded["particulars"]["employees"] == "3"


def test_to_native_leaves_the_document_unchanged(hk_codec: XmlCodec) -> None:
    document = _golden("hk")
    before = copy.deepcopy(document)

    hk_codec.to_native(document)

    assert document == before


# --- mapping files for the reverse direction -------------------------------------------------


def _mapping(tmp_path: Path, text: str) -> Path:
    (tmp_path / "fields").mkdir()
    (tmp_path / "schemas").mkdir()
    shutil.copy(adapters.hk.ADAPTER.schemas_dir / "hk-application.xsd", tmp_path / "schemas")
    path = tmp_path / "fields" / "x.yaml"
    path.write_text(text, "utf-8")
    return path


_HEADER = """
format: x
version: x-1
root: h:Application
namespaces: {h: "urn:gba:hk:application:1"}
"""


def test_an_enum_that_is_not_one_to_one_fails_the_load(tmp_path: Path) -> None:
    path = _mapping(
        tmp_path,
        _HEADER
        + """
schema: hk-application.xsd
fields: []
lists:
  - to: /documents
    each: h:Applicant/h:IdentityDocuments/h:Document
    fields:
      - {to: type, from: "@type", transform: {name: enum, map: {HKID: HKID, ID: HKID}}}
""",
    )

    with pytest.raises(MappingError, match=r"x\.yaml: field 'type': enum map is not one-to-one"):
        XmlCodec.load(path, "HK", PARTICULARS)


def test_without_a_schema_the_mapping_order_is_kept_and_the_first_writer_wins(
    tmp_path: Path,
) -> None:
    path = _mapping(
        tmp_path,
        _HEADER
        + """
fields:
  - {to: /b, from: h:B}
  - {to: /a, from: h:A/@code}
  - {to: /a2, from: h:A/@code}
  - {to: /c, value: constant}
  - {to: /d, from: "concat(h:B, h:A)"}
""",
    )
    codec = XmlCodec.load(path, "HK", PARTICULARS)

    body = codec.to_native({"a": "1", "a2": "2", "b": "x", "c": "y", "d": "z"})

    root = etree.fromstring(body)
    assert [(child.tag.removeprefix(HK), child.get("code")) for child in root] == [
        ("B", None),
        ("A", "1"),
    ]
    assert codec.decode(body).document == {
        "b": "x",
        "a": "1",
        "a2": "1",
        "c": "constant",
        "d": "x",  # B, then the string-value of A: empty
    }


def test_a_many_to_one_enum_is_fine_where_nothing_is_written(tmp_path: Path) -> None:
    path = _mapping(
        tmp_path,
        _HEADER
        + """
fields:
  - {to: /kind, from: "h:A/@kind | h:B/@kind", transform: {name: enum, map: {X: K, Y: K}}}
  - {to: /fixed, value: X, transform: {name: enum, map: {X: K, Y: K}}}
""",
    )

    codec = XmlCodec.load(path, "HK", PARTICULARS)

    assert codec.decode(
        b'<Application xmlns="urn:gba:hk:application:1"><A kind="Y"/></Application>'
    ).document == {"kind": "K", "fixed": "K"}


@pytest.mark.parametrize("name", ["hk", "macau"])
def test_materials_named_by_upload_carry_id_size_and_href_both_ways(
    name: str, hk_codec: XmlCodec, macau_codec: XmlCodec
) -> None:
    codec = hk_codec if name == "hk" else macau_codec
    document = _golden(name)
    filled = {
        "code": "APPLICATION_FORM",
        "material_id": "mat_01J0000000000000000000000A",
        "digest": "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
        "size": 183224,
        "media_type": "application/pdf",
        "href": "https://gw.example/v1/applications/app_1/materials/mat_01J0000000000000000000000A",
        "filename": "form.pdf",
    }
    document["materials"] = [filled]

    back = codec.decode(codec.to_native(document)).document["materials"]
    assert back == [{**filled, "size": "183224"}]  # XML text; the gateway fills in sizes

    named = {"code": "APPLICATION_FORM", "material_id": filled["material_id"]}
    document["materials"] = [named]  # inbound: the upload's id alone is a whole item
    assert codec.decode(codec.to_native(document)).document["materials"] == [named]
