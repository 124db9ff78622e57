"""The hardened XML parser (gateway/mapping/xml.py) and the HK and Macau codecs (adapters/*).

Any bytes are either one element or a ``MalformedBodyError``; a DOCTYPE or an entity
declaration anywhere is refused, processing instructions are dropped, and no entity is ever
expanded. A codec decodes any bytes into a canonical document with its field problems, or
refuses them as malformed or as another jurisdiction's document; the golden documents with
any text in any field still decode, every problem at an XPath with a known code.
``tests/unit/mapping/test_roundtrip.py`` compares the fast decoder with plain XPath on
damaged documents; ``tests/fixtures/attacks`` holds the classic XML attacks.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from lxml import etree

import adapters.hk
import adapters.macau
from gateway.domain.documents import MESSAGES
from gateway.domain.errors import MalformedBodyError, ValidationFailedError
from gateway.mapping.catalog import Catalog
from gateway.mapping.xml import parse_xml
from gateway.settings import REPO_ROOT
from tests.fuzz.conftest import examples

MAPPINGS = REPO_ROOT / "mappings"
PARTICULARS = Catalog.load(MAPPINGS / "matters").particulars()
DOCUMENTS = REPO_ROOT / "tests" / "fixtures" / "documents"
CODECS = {
    "hk": adapters.hk.ADAPTER.load_codec(MAPPINGS, PARTICULARS),
    "macau": adapters.macau.ADAPTER.load_codec(MAPPINGS, PARTICULARS),
}
GOLDEN = {name: (DOCUMENTS / f"{name}-individual-business.xml").read_bytes() for name in CODECS}

XMLISH = b"<>/=\"' ?!-[]&;#xa:Application\n\xe9\x00\xff"
xml_bytes = (
    st.binary(max_size=80)
    | st.lists(st.sampled_from([bytes([b]) for b in XMLISH]), max_size=80).map(b"".join)
    | st.sampled_from(list(GOLDEN.values())).flatmap(
        lambda body: st.integers(min_value=0, max_value=len(body)).map(lambda at: body[:at])
    )
)


@settings(max_examples=examples(300))
@given(body=xml_bytes)
@example(body=b"<a>" * 100_000)  # deeper than libxml2's 256 levels
@example(body=b'<?xml version="1.0" encoding="ISO-8859-1"?><a>\xe9</a>')
@example(body=b"\xef\xbb\xbf<a/>")  # a byte-order mark
def test_any_bytes_are_one_element_or_a_malformed_body(body: bytes) -> None:
    try:
        root = parse_xml(body)
    except MalformedBodyError:
        return
    assert isinstance(root, etree._Element)
    assert b"<!DOCTYPE" not in body.upper()
    assert not list(root.iter(etree.ProcessingInstruction))


@settings(max_examples=examples(150))
@given(
    before=st.text(alphabet=" \n<a>b", max_size=10),
    declaration=st.sampled_from(
        [
            "<!DOCTYPE a>",
            '<!DOCTYPE a [<!ENTITY e "x">]>',
            '<!doctype a SYSTEM "file:///etc/passwd">',
            '<!ENTITY e SYSTEM "http://127.0.0.1/">',
        ]
    ),
    after=st.text(alphabet=" \n<a>b&e;/", max_size=10),
)
def test_a_doctype_or_entity_declaration_anywhere_is_refused(
    before: str, declaration: str, after: str
) -> None:
    with pytest.raises(MalformedBodyError):
        parse_xml(f"{before}{declaration}{after}".encode())


@settings(max_examples=examples(150))
@given(text=st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=30))
def test_element_text_survives_serialization_and_the_parser(text: str) -> None:
    root = etree.Element("a")
    root.text = text
    root.append(etree.ProcessingInstruction("x", "y"))
    parsed = parse_xml(etree.tostring(root, encoding="UTF-8", xml_declaration=True))
    assert (parsed.text or "") == text
    assert len(parsed) == 0  # the processing instruction is gone


# --- the codecs ---------------------------------------------------------------------------------


def _decode_outcome(name: str, body: bytes) -> Any:
    try:
        decoded = CODECS[name].decode(body)
    except MalformedBodyError:
        return "malformed"
    except ValidationFailedError as refused:  # the root element is another one
        return f"wrong root: {[p.code for p in refused.errors]}"
    return decoded


@pytest.mark.parametrize("name", list(CODECS))
@settings(max_examples=examples(150))
@given(body=xml_bytes)
def test_a_codec_decodes_any_bytes_or_refuses_them(name: str, body: bytes) -> None:
    outcome = _decode_outcome(name, body)
    if isinstance(outcome, str):
        assert outcome in ("malformed", "wrong root: ['schema']")
    else:
        _check_decoded(outcome)


def _check_decoded(decoded: Any) -> None:
    json.dumps(decoded.document, ensure_ascii=False)  # plain JSON data, nothing else
    for found in decoded.problems:
        assert found.code in MESSAGES
        assert found.xpath is not None


# Every character XML 1.0 can carry, with the ones transforms react to more often.
xml_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=20) | (
    st.text(alphabet="0123456789/+-.,() \t\n\u3000٨²ABCHK陳", max_size=20)
)


@pytest.mark.parametrize("name", list(CODECS))
@settings(max_examples=examples(150))
@given(data=st.data())
def test_the_golden_document_with_any_text_in_its_fields_still_decodes(
    name: str, data: st.DataObject
) -> None:
    root = parse_xml(GOLDEN[name])
    elements = [e for e in root.iter(etree.Element) if len(e) == 0]
    for element in data.draw(st.lists(st.sampled_from(elements), min_size=1, max_size=6)):
        element.text = data.draw(xml_text)
        for attribute in list(element.attrib):
            if data.draw(st.booleans()):
                element.set(attribute, data.draw(xml_text))
    body = etree.tostring(copy.deepcopy(root), encoding="UTF-8", xml_declaration=True)
    outcome = _decode_outcome(name, body)
    assert not isinstance(outcome, str)
    _check_decoded(outcome)


@pytest.mark.parametrize("name", list(CODECS))
def test_the_golden_documents_decode_without_a_problem(name: str) -> None:
    outcome = _decode_outcome(name, GOLDEN[name])
    assert not isinstance(outcome, str)
    assert outcome.problems == ()
