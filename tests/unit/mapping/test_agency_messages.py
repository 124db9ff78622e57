"""Agency messages in native formats: an HK or Macau agency's examination, decision, supplement
and acknowledgement, declared in its field map (``messages:``) and compiled with the
application's machinery, decode to the JSON body the partner API takes, report every schema
and field problem at once, and come back whole from the encoder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

import adapters.hk
import adapters.macau
from gateway.domain.errors import MalformedBodyError, ValidationFailedError
from gateway.mapping.catalog import Catalog
from gateway.mapping.fields import MappingError, XmlCodec
from gateway.mapping.messages import KINDS

ROOT = Path(__file__).parents[3]
MAPPINGS = ROOT / "mappings"
PARTICULARS = Catalog.load(MAPPINGS / "matters").particulars()
CODECS = {
    "hk": adapters.hk.ADAPTER.load_codec(MAPPINGS, PARTICULARS),
    "macau": adapters.macau.ADAPTER.load_codec(MAPPINGS, PARTICULARS),
}
HK = "urn:gba:hk:application:1"
MO = "urn:gba:mo:requerimento:1"


def _xml(namespace: str, text: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?>{text.format(ns=namespace)}'.encode()


# What each agency sends, written by hand as a partner system would, and the JSON body it is.
NATIVE: list[tuple[str, str, bytes, dict[str, Any]]] = [
    (
        "hk",
        "examination",
        _xml(
            HK,
            '<Examination xmlns="{ns}"><Outcome>SupplementRequired</Outcome>'
            '<MissingMaterials><Material code="EMPLOYMENT_CONTRACT"/><Material code="LEASE"/>'
            "</MissingMaterials></Examination>",
        ),
        {"outcome": "supplement", "missing": ["EMPLOYMENT_CONTRACT", "LEASE"]},
    ),
    (
        "hk",
        "decision",
        _xml(
            HK,
            '<Decision xmlns="{ns}"><Outcome>Rejected</Outcome><Reasons>'
            "<Reason>The licence has expired</Reason><Reason>執業證書已過期</Reason>"
            "</Reasons></Decision>",
        ),
        {"decision": "rejected", "reasons": ["The licence has expired", "執業證書已過期"]},
    ),
    (
        "hk",
        "supplement",
        _xml(
            HK,
            '<Supplement xmlns="{ns}"><Particulars><EmployerName>陳氏貿易有限公司</EmployerName>'
            "<EmploymentStart>01/03/2026</EmploymentStart></Particulars>"
            '<Materials><Material code="EMPLOYMENT_CONTRACT" digest="sha-256=:AAAA:" '
            'mediaType="application/pdf">contract.pdf</Material></Materials>'
            '<Commitments><Commitment material="LEASE"/></Commitments></Supplement>',
        ),
        {
            "particulars": {"employer_name": "陳氏貿易有限公司", "employment_start": "2026-03-01"},
            "materials": [
                {
                    "code": "EMPLOYMENT_CONTRACT",
                    "digest": "sha-256=:AAAA:",
                    "media_type": "application/pdf",
                    "filename": "contract.pdf",
                }
            ],
            "commitments": [{"material": "LEASE"}],
        },
    ),
    (
        "hk",
        "ack",
        _xml(
            HK,
            '<Ack xmlns="{ns}"><MessageId>msg_1</MessageId><Status>Duplicate</Status>'
            "<ReceivedAt>2026-12-05T10:00:00+08:00</ReceivedAt></Ack>",
        ),
        {"message_id": "msg_1", "status": "duplicate", "received_at": "2026-12-05T10:00:00+08:00"},
    ),
    (
        "macau",
        "examination",
        _xml(
            MO,
            '<Exame xmlns="{ns}"><Resultado>NaoAceite</Resultado><Fundamentos>'
            "<Fundamento>Fora da competência do serviço</Fundamento></Fundamentos></Exame>",
        ),
        {"outcome": "not_accepted", "reasons": ["Fora da competência do serviço"]},
    ),
    (
        "hk",
        "decision",
        _xml(
            HK,
            '<Decision xmlns="{ns}"><Outcome>Approved</Outcome>'
            "<Certificate><Jws>eyJh.eyJp.c2ln</Jws></Certificate></Decision>",
        ),
        {"decision": "approved", "certificate": {"jws": "eyJh.eyJp.c2ln"}},
    ),
    (
        "macau",
        "decision",
        _xml(
            MO,
            '<Decisao xmlns="{ns}"><Resultado>Deferido</Resultado><Certificado>'
            "<Documento>JVBERi0xLjcK</Documento><TipoMedia>application/pdf</TipoMedia>"
            "<Assinatura>eyJh..c2ln</Assinatura></Certificado></Decisao>",
        ),
        {
            "decision": "approved",
            "certificate": {
                "document": "JVBERi0xLjcK",
                "media_type": "application/pdf",
                "signature": "eyJh..c2ln",
            },
        },
    ),
    (
        "macau",
        "decision",
        _xml(MO, '<Decisao xmlns="{ns}"><Resultado>Deferido</Resultado></Decisao>'),
        {"decision": "approved"},
    ),
    (
        "macau",
        "supplement",
        _xml(
            MO,
            '<Suplemento xmlns="{ns}"><Particularidades>'
            "<NomeEntidadeEmpregadora>Companhia de Macau</NomeEntidadeEmpregadora>"
            '<PrecoTransaccao moeda="MOP">1,200,000.5</PrecoTransaccao></Particularidades>'
            '<Anexos><Anexo codigo="EMPLOYMENT_CONTRACT" resumo="sha-256=:AAAA:">c.pdf</Anexo>'
            "</Anexos></Suplemento>",
        ),
        {
            "particulars": {
                "employer_name": "Companhia de Macau",
                "transaction_price": {"amount": "1200000.50", "currency": "MOP"},
            },
            "materials": [
                {"code": "EMPLOYMENT_CONTRACT", "digest": "sha-256=:AAAA:", "filename": "c.pdf"}
            ],
        },
    ),
    (
        "macau",
        "ack",
        _xml(
            MO,
            '<Confirmacao xmlns="{ns}"><IdMensagem>msg_2</IdMensagem><Estado>Recebida</Estado>'
            "<RecebidaEm>2026-12-05T02:00:00Z</RecebidaEm></Confirmacao>",
        ),
        {"message_id": "msg_2", "status": "received", "received_at": "2026-12-05T02:00:00Z"},
    ),
]


def test_each_format_declares_every_message_kind() -> None:
    for codec in CODECS.values():
        assert sorted(codec.messages) == sorted(KINDS)


@pytest.mark.parametrize(("name", "kind", "body", "expected"), NATIVE)
def test_each_message_decodes_to_the_json_body_of_its_route(
    name: str, kind: str, body: bytes, expected: dict[str, Any]
) -> None:
    assert CODECS[name].messages[kind].decode(body) == expected


@pytest.mark.parametrize(("name", "kind", "body", "expected"), NATIVE)
def test_the_json_body_comes_back_whole_through_the_native_message(
    name: str, kind: str, body: bytes, expected: dict[str, Any]
) -> None:
    message = CODECS[name].messages[kind]
    native = message.encode(expected)

    assert message.decode(native) == expected
    # valid against the XSD the gateway serves at /v1/schemas (particulars generated)
    document = CODECS[name].schema_document
    assert document is not None
    assert etree.XMLSchema(etree.fromstring(document)).validate(etree.fromstring(native))


@pytest.mark.parametrize(
    ("name", "kind", "element"),
    [
        ("hk", "examination", "Examination"),
        ("hk", "decision", "Decision"),
        ("hk", "supplement", "Supplement"),
        ("hk", "ack", "Ack"),
        ("macau", "examination", "Exame"),
        ("macau", "decision", "Decisao"),
        ("macau", "supplement", "Suplemento"),
        ("macau", "ack", "Confirmacao"),
    ],
)
def test_the_served_xsd_declares_each_message_as_a_global_element(
    name: str, kind: str, element: str
) -> None:
    document = CODECS[name].schema_document
    assert document is not None
    tops = etree.fromstring(document).findall("{http://www.w3.org/2001/XMLSchema}element")
    assert element in {top.get("name") for top in tops}
    assert CODECS[name].messages[kind].element == element


def test_every_schema_and_field_problem_is_reported_at_once() -> None:
    body = _xml(
        HK,
        '<Examination xmlns="{ns}"><Outcome>Maybe</Outcome><Reasons><Reason/></Reasons>'
        "<MissingMaterials><Material/></MissingMaterials><Extra/></Examination>",
    )
    with pytest.raises(ValidationFailedError) as caught:
        CODECS["hk"].messages["examination"].decode(body)

    found = [(p.code, p.xpath) for p in caught.value.errors]
    schema = [xpath for code, xpath in found if code == "schema"]
    assert len(schema) >= 4  # the outcome, the blank reason, the code, the unknown element
    assert ("unknown_code", "h:Outcome") in found
    assert ("required", "h:Reasons/h:Reason[1]/.") in found
    assert ("required", "h:MissingMaterials/h:Material[1]/@code") in found


def test_another_root_is_a_schema_problem_and_malformed_xml_is_refused() -> None:
    decision = CODECS["macau"].messages["decision"]
    exame = _xml(MO, '<Exame xmlns="{ns}"><Resultado>Aceite</Resultado></Exame>')
    with pytest.raises(ValidationFailedError) as caught:
        decision.decode(exame)
    assert [(p.code, p.xpath) for p in caught.value.errors] == [("schema", "/")]
    hk = _xml(HK, '<Decision xmlns="{ns}"><Outcome>Approved</Outcome></Decision>')
    with pytest.raises(ValidationFailedError):
        decision.decode(hk)  # HK's Decision is not Macau's Decisao
    with pytest.raises(MalformedBodyError):
        decision.decode(b"<Decisao")


def test_the_encoder_reports_every_problem_of_a_json_body() -> None:
    with pytest.raises(ValidationFailedError) as caught:
        CODECS["macau"].messages["decision"].encode(
            {"decision": "maybe", "reasons": ["ok", {"text": "no"}, ""]}
        )
    found = {(p.pointer, p.code) for p in caught.value.errors}
    assert {("/decision", "unknown_code"), ("/reasons/1", "wrong_type")} <= found
    assert ("/reasons/2", "required") in found


def test_a_message_kind_the_gateway_does_not_know_is_refused_at_load(tmp_path: Path) -> None:
    (tmp_path / "fields").mkdir()
    (tmp_path / "schemas").mkdir()
    text = (ROOT / "adapters" / "hk" / "fields" / "hk.yaml").read_text("utf-8")
    text = text.replace("  ack:\n", "  receipt:\n")
    (tmp_path / "fields" / "hk.yaml").write_text(text, "utf-8")
    xsd = ROOT / "adapters" / "hk" / "schemas" / "hk-application.xsd"
    (tmp_path / "schemas" / "hk-application.xsd").write_bytes(xsd.read_bytes())

    with pytest.raises(MappingError, match="receipt"):
        XmlCodec.load(tmp_path / "fields" / "hk.yaml", "HK", PARTICULARS)


def test_a_message_whose_root_the_xsd_does_not_declare_is_refused_at_load(
    tmp_path: Path,
) -> None:
    (tmp_path / "fields").mkdir()
    (tmp_path / "schemas").mkdir()
    text = (ROOT / "adapters" / "macau" / "fields" / "macau.yaml").read_text("utf-8")
    (tmp_path / "fields" / "macau.yaml").write_text(
        text.replace("root: m:Decisao", "root: m:Despacho"), "utf-8"
    )
    xsd = ROOT / "adapters" / "macau" / "schemas" / "macau-application.xsd"
    (tmp_path / "schemas" / "macau-application.xsd").write_bytes(xsd.read_bytes())

    with pytest.raises(MappingError, match="Despacho"):
        XmlCodec.load(tmp_path / "fields" / "macau.yaml", "MO", PARTICULARS)


# Texts as the decoder keeps them: words joined by one space (it collapses white space).
_WORDS = st.text(alphabet=st.sampled_from("abcXYZ019陳大文éçã-"), min_size=1, max_size=8)
_TEXTS = st.lists(_WORDS, min_size=1, max_size=4).map(" ".join)
_CODES = st.from_regex(r"[A-Z][A-Z_]{0,15}", fullmatch=True)


@settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(sorted(CODECS)),
    decision=st.sampled_from(["approved", "rejected"]),
    reasons=st.lists(_TEXTS, max_size=5),
    outcome=st.sampled_from(["accepted", "not_accepted", "supplement"]),
    missing=st.lists(_CODES, max_size=5),
)
def test_decisions_and_examinations_round_trip_through_both_formats(
    name: str, decision: str, reasons: list[str], outcome: str, missing: list[str]
) -> None:
    messages = CODECS[name].messages
    for kind, body in (
        ("decision", {"decision": decision, "reasons": reasons}),
        ("examination", {"outcome": outcome, "reasons": reasons, "missing": missing}),
    ):
        expected = {k: v for k, v in body.items() if v != []}
        assert messages[kind].decode(messages[kind].encode(body)) == expected
