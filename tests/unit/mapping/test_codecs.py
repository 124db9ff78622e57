"""The Hong Kong and Macau XML codecs: golden documents, every problem at once, hostile XML."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from lxml import etree

import adapters.hk
import adapters.macau
import gateway.mapping.xml as hardened_xml
from gateway.domain.errors import FieldProblem, MalformedBodyError, ValidationFailedError
from gateway.mapping.catalog import Catalog
from gateway.mapping.fields import XmlCodec
from gateway.mapping.xml import parse_xml
from gateway.services.validation import assess
from gateway.trust.digest import content_digest

ROOT = Path(__file__).parents[3]
MAPPINGS = ROOT / "mappings"
PARTICULARS = Catalog.load(MAPPINGS / "matters").particulars()
DOCUMENTS = ROOT / "tests" / "fixtures" / "documents"
MATTER = "11440400MB2C00081P4440120002000"

# The bytes each golden document's APPLICATION_FORM digest was computed over.
MATERIAL_BYTES = {
    "hk": b"application form of CHAN Tai Man (synthetic)\n",
    "macau": b"application form of LEI Sio Meng (synthetic)\n",
}

# Refusals must not wait on anything (network, big expansions): well under this bound.
QUICK_SECONDS = 1.0


@pytest.fixture(scope="module")
def hk_codec() -> XmlCodec:
    return adapters.hk.ADAPTER.load_codec(MAPPINGS, PARTICULARS)


@pytest.fixture(scope="module")
def macau_codec() -> XmlCodec:
    return adapters.macau.ADAPTER.load_codec(MAPPINGS, PARTICULARS)


def _golden_xml(name: str) -> str:
    return (DOCUMENTS / f"{name}-individual-business.xml").read_text("utf-8")


def _golden_canonical(name: str) -> dict[str, Any]:
    return json.loads((DOCUMENTS / f"{name}-individual-business.canonical.json").read_text("utf-8"))


def _edit(text: str, old: str, new: str) -> str:
    """Replace exactly one occurrence, so a drifting fixture cannot silently void a test."""
    assert text.count(old) == 1, old
    return text.replace(old, new)


def _where(errors: tuple[FieldProblem, ...]) -> set[tuple[str, str | None]]:
    return {(p.code, p.xpath) for p in errors}


def _refused_quickly(decode: Callable[[bytes], object], body: bytes) -> MalformedBodyError:
    started = time.perf_counter()
    with pytest.raises(MalformedBodyError) as info:
        decode(body)
    assert time.perf_counter() - started < QUICK_SECONDS
    return info.value


# --- golden documents ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "name", "jurisdiction", "version"),
    [
        (adapters.hk, "hk", "HK", "hk-2026.2"),
        (adapters.macau, "macau", "MO", "macau-2026.2"),
    ],
)
def test_golden_document_decodes_to_the_expected_canonical_json(
    module: Any, name: str, jurisdiction: str, version: str
) -> None:
    codec = module.ADAPTER.load_codec(MAPPINGS, PARTICULARS)
    assert jurisdiction == module.JURISDICTION
    assert codec.jurisdiction == jurisdiction

    decoded = codec.decode(_golden_xml(name).encode("utf-8"))

    assert decoded.mapping_version == version
    assert decoded.document == _golden_canonical(name)


@pytest.mark.parametrize("name", ["hk", "macau"])
def test_golden_canonical_document_is_complete_for_the_matter(name: str) -> None:
    matter = Catalog.load(MAPPINGS / "matters").get(MATTER, date(2026, 1, 1))

    assessment = assess(_golden_canonical(name), matter)

    assert assessment.problems == ()
    assert assessment.missing == ()


@pytest.mark.parametrize("name", ["hk", "macau"])
def test_golden_material_digest_is_the_rfc9530_digest_of_its_bytes(name: str) -> None:
    (material,) = _golden_canonical(name)["materials"]

    assert material["code"] == "APPLICATION_FORM"
    assert material["digest"] == content_digest(MATERIAL_BYTES[name], "sha-256")


def _pointers(path: Path) -> tuple[set[str], dict[str, set[str]]]:
    spec = yaml.safe_load(path.read_text("utf-8"))
    fields = {f["to"] for f in spec["fields"]}
    lists = {item["to"]: {f["to"] for f in item["fields"]} for item in spec["lists"]}
    return fields, lists


def test_macau_mapping_fills_exactly_the_canonical_pointers_of_the_hk_mapping() -> None:
    assert _pointers(adapters.macau.ADAPTER.fields_dir / "macau.yaml") == _pointers(
        adapters.hk.ADAPTER.fields_dir / "hk.yaml"
    )


def test_macau_original_name_falls_back_to_the_portuguese_surname(
    macau_codec: XmlCodec,
) -> None:
    body = _edit(_golden_xml("macau"), "<NomeChines>李小明</NomeChines>", "")

    names = macau_codec.decode(body.encode("utf-8")).document["applicant"]["names"]

    assert names == {
        "original": "LEI",
        "family_name_latin": "LEI",
        "given_names_latin": "Sio Meng",
        "latin": "LEI Sio Meng",
    }


# --- every problem at once -------------------------------------------------------------------


def test_hk_document_with_several_errors_reports_every_problem_at_once(
    hk_codec: XmlCodec,
) -> None:
    body = _golden_xml("hk")
    body = _edit(
        body, "<DateOfBirth>15/03/1988</DateOfBirth>", "<DateOfBirth>31/02/1990</DateOfBirth>"
    )
    body = _edit(body, '<Document type="HRP">', '<Document type="PASSPORT">')
    body = _edit(body, "<Phone>9123 4567</Phone>", "<Phone>9123 ABCD</Phone>")

    errors = hk_codec.decode(body.encode("utf-8")).problems

    assert len(errors) == 4
    assert _where(errors) == {
        # the schema refuses the unknown document type (2nd Document of IdentityDocuments) ...
        ("schema", "/*/*[2]/*[4]/*[2]"),
        # ... and the mapping finds the rest, in the same pass
        ("invalid_date", "h:Applicant/h:DateOfBirth"),
        ("invalid_phone", "h:Applicant/h:Phone"),
        ("unknown_code", "h:Applicant/h:IdentityDocuments/h:Document[2]/@type"),
    }


def test_macau_document_with_several_errors_reports_every_problem_at_once(
    macau_codec: XmlCodec,
) -> None:
    body = _golden_xml("macau")
    body = _edit(body, "<DataNascimento>07/07/1992</DataNascimento>", "")
    body = _edit(body, '<Documento tipo="HRP">', '<Documento tipo="PASSAPORTE">')
    body = _edit(body, "<Telefone>6612 3456</Telefone>", "<Telefone>6612-ABCD</Telefone>")
    body = _edit(
        body, '<Capital moeda="MOP">80000.5</Capital>', '<Capital moeda="MOP">12.345</Capital>'
    )

    errors = macau_codec.decode(body.encode("utf-8")).problems

    assert len(errors) == 5
    assert _where(errors) == {
        # Documentos where DataNascimento was expected
        ("schema", "/*/*[2]/*[3]"),
        ("required", "m:Requerente/m:DataNascimento"),
        ("unknown_code", "m:Requerente/m:Documentos/m:Documento[2]/@tipo"),
        ("invalid_phone", "m:Requerente/m:Telefone"),
        ("invalid_amount", "m:Particularidades/m:Capital"),
    }


@pytest.mark.parametrize(
    ("codec_name", "body"),
    [
        ("macau", _golden_xml("hk").encode("utf-8")),
        ("hk", _golden_xml("macau").encode("utf-8")),
        ("hk", b'<Application xmlns="urn:gba:hk:application:2"/>'),
        ("hk", b"<Application/>"),
    ],
    ids=["hk-to-macau", "macau-to-hk", "other-namespace", "no-namespace"],
)
def test_wrong_root_element_is_a_validation_failure(
    codec_name: str, body: bytes, hk_codec: XmlCodec, macau_codec: XmlCodec
) -> None:
    codec = {"hk": hk_codec, "macau": macau_codec}[codec_name]

    with pytest.raises(ValidationFailedError) as info:
        codec.decode(body)

    assert [(p.code, p.xpath) for p in info.value.errors] == [("schema", "/")]


# --- hostile XML -----------------------------------------------------------------------------


@pytest.fixture
def secret(tmp_path: Path) -> Path:
    """A local file no XML body may ever cause the gateway to read."""
    path = tmp_path / "secret.txt"
    path.write_text("S3CRET-MARKER-7f3a\n", "utf-8")
    return path


@pytest.fixture
def libxml2_never_called(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Fails the test if the body reaches lxml: refusals must happen before libxml2 sees it."""
    calls: list[bytes] = []

    def spy(data: bytes, *args: object, **kwargs: object) -> None:
        calls.append(data)
        raise AssertionError("the body reached libxml2")

    monkeypatch.setattr(hardened_xml.etree, "fromstring", spy)
    return calls


def _billion_laughs() -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)
    ]
    return (
        '<?xml version="1.0"?><!DOCTYPE Application [' + "".join(entities) + "]>"
        '<Application xmlns="urn:gba:hk:application:1"><MatterCode>&lol9;</MatterCode>'
        "</Application>"
    ).encode()


def _doctype_attacks(secret: Path) -> dict[str, bytes]:
    return {
        "xxe-etc-passwd": (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
            b'<Application xmlns="urn:gba:hk:application:1"><MatterCode>&e;</MatterCode>'
            b"</Application>"
        ),
        "xxe-local-file": (
            f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "{secret.as_uri()}">]>'
            '<Application xmlns="urn:gba:hk:application:1"><MatterCode>&e;</MatterCode>'
            "</Application>"
        ).encode(),
        "billion-laughs": _billion_laughs(),
        "external-dtd": (
            f'<?xml version="1.0"?><!DOCTYPE Application SYSTEM "{secret.as_uri()}">'
            '<Application xmlns="urn:gba:hk:application:1"/>'
        ).encode(),
        "parameter-entity": (
            f'<!DOCTYPE x [<!ENTITY % p SYSTEM "{secret.as_uri()}"> %p;]>'
            '<Application xmlns="urn:gba:hk:application:1"/>'
        ).encode(),
        "lower-case-doctype": b'<!doctype x [<!entity e "x">]><x>&e;</x>',
    }


@pytest.mark.parametrize(
    "attack",
    [
        "xxe-etc-passwd",
        "xxe-local-file",
        "billion-laughs",
        "external-dtd",
        "parameter-entity",
        "lower-case-doctype",
    ],
)
def test_doctype_attacks_are_refused_before_libxml2_sees_them(
    attack: str, secret: Path, hk_codec: XmlCodec, libxml2_never_called: list[bytes]
) -> None:
    body = _doctype_attacks(secret)[attack]

    error = _refused_quickly(hk_codec.decode, body)

    assert error.detail == "XML with a DOCTYPE or entity declaration is refused"
    assert error.status == 400
    assert libxml2_never_called == []
    assert "S3CRET" not in str(error)
    assert "root:" not in str(error)


def test_deep_nesting_is_refused_quickly(hk_codec: XmlCodec) -> None:
    depth = 100_000
    body = b'<Application xmlns="urn:gba:hk:application:1">' + b"<a>" * depth
    body += b"</a>" * depth + b"</Application>"

    error = _refused_quickly(hk_codec.decode, body)

    assert error.detail.startswith("XML is not well-formed")


@pytest.mark.parametrize("body", [b"", b"   ", b"not xml", b"<Application>"])
def test_bodies_that_are_not_xml_are_malformed(body: bytes, hk_codec: XmlCodec) -> None:
    _refused_quickly(hk_codec.decode, body)


def _with_xinclude(secret: Path) -> bytes:
    include = (
        '<Email><xi:include xmlns:xi="http://www.w3.org/2001/XInclude"'
        f' href="{secret.as_uri()}" parse="text"/></Email>'
    )
    return _edit(_golden_xml("hk"), "<Email>chan.taiman@example.com</Email>", include).encode()


def test_xinclude_is_never_expanded_by_the_parser(secret: Path) -> None:
    root = parse_xml(_with_xinclude(secret))

    included = root.findall(".//{http://www.w3.org/2001/XInclude}include")
    assert len(included) == 1
    assert "S3CRET" not in etree.tostring(root, encoding="unicode")


def test_xinclude_element_fails_the_schema_and_nothing_is_included(
    secret: Path, hk_codec: XmlCodec
) -> None:
    decoded = hk_codec.decode(_with_xinclude(secret))

    # the schema refuses an element inside Email (the 6th child of Applicant)
    assert _where(decoded.problems) == {("schema", "/*/*[2]/*[6]")}
    assert "S3CRET" not in repr(decoded.document)
    assert "S3CRET" not in repr([p.as_dict() for p in decoded.problems])


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
def test_doctype_in_a_non_utf8_encoding_is_refused_too(encoding: str, tmp_path: Path) -> None:
    # well-formed DTD text, so that only a refusal (not a parse error) can make this pass
    dtd = tmp_path / "secret.dtd"
    dtd.write_text('<!ENTITY leak "S3CRET-MARKER-7f3a">', "utf-8")
    body = (
        f'<?xml version="1.0" encoding="{encoding.upper()}"?>'
        f'<!DOCTYPE x [<!ENTITY % p SYSTEM "{dtd.as_uri()}"> %p;]>'
        '<Application xmlns="urn:gba:hk:application:1"/>'
    ).encode(encoding)

    with pytest.raises(MalformedBodyError):
        parse_xml(body)
