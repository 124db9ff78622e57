"""Native out: a forward in the format its agency receives, and nothing silently dropped.

HK and Macau forwards are the format's message (root, envelope, native application) valid
against the format's XSD, with the translation record and an output digest any receiver
recomputes from the exclusive C14N of the application element; Guangdong and ``canonical``
forwards are the JSON message of ``guangdong-message.schema.json``. A document the format
cannot carry whole raises NotExpressibleError listing every field by pointer.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

import adapters.guangdong
import adapters.hk
import adapters.macau
from gateway.domain.errors import NotExpressibleError, ValidationFailedError
from gateway.mapping.canonical import CanonicalCodec, schema_validator
from gateway.mapping.carried import dropped
from gateway.mapping.catalog import Catalog
from gateway.mapping.fields import XmlCodec
from gateway.mapping.transforms import build
from gateway.mapping.xml import parse_xml

ROOT = Path(__file__).parents[3]
MAPPINGS = ROOT / "mappings"
DOCUMENTS = ROOT / "tests" / "fixtures" / "documents"
PARTICULARS = Catalog.load(MAPPINGS / "matters").particulars()
HK = "{urn:gba:hk:application:1}"
MO = "{urn:gba:mo:requerimento:1}"
ENVELOPE: dict[str, Any] = {
    "message_id": "msg_01JBQ7ZP6W3N0X8Y2D5K4R9T1V",
    "application_id": "app_01JBQ7ZP6W3N0X8Y2D5K4R9T1V",
    "matter": "11440400MB2C00081P4440120002000",
    "matter_version": 1,
    "role": "reviewer",
    "stage": "review",
    "submitted_by": "hk-ird",
    "channel": "online",
    "received_at": "2026-03-03T01:30:00+00:00",
    "deadline": "2026-03-17",
    "translation": {
        "source_format": "HK",
        "source_digest": "sha-256=:R7qqQA6Z5bl826qGIRqaGz8YwH2fkweCuH6MyFfwdIs=:",
        "mapping_version": "hk-2026.1",
        "canonical_digest": "sha-256=:og9upbwM1l3HIgp5+Ayvus/HK89s5sQwU2LCiwv5GNw=:",
    },
    "consent_id": "con_01JBQ7ZP6W3N0X8Y2D5K4R9T1V",
}


def _golden(name: str) -> dict[str, Any]:
    return json.loads((DOCUMENTS / f"{name}-individual-business.canonical.json").read_text())


CODECS = {
    "hk": adapters.hk.ADAPTER.load_codec(MAPPINGS, PARTICULARS),
    "macau": adapters.macau.ADAPTER.load_codec(MAPPINGS, PARTICULARS),
}


def _xsd(name: str) -> etree.XMLSchema:
    """The XSD the gateway validates with and serves (its particulars type generated)."""
    document = CODECS[name].schema_document
    assert document is not None
    return etree.XMLSchema(etree.fromstring(document))


@pytest.fixture(scope="module")
def codecs() -> dict[str, XmlCodec]:
    return CODECS


def _c14n_digest(element: etree._Element) -> str:
    data = etree.tostring(element, method="c14n", exclusive=True)
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data).digest()).decode() + ":"


# --- the native message ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "root", "application"),
    [("hk", f"{HK}Message", f"{HK}Application"), ("macau", f"{MO}Mensagem", f"{MO}Requerimento")],
)
def test_a_forward_is_the_formats_message_valid_against_its_xsd(
    codecs: dict[str, XmlCodec], name: str, root: str, application: str
) -> None:
    body, media_type = codecs[name].encode(_golden(name), ENVELOPE)

    assert media_type == "application/xml"
    assert body.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    message = parse_xml(body)
    assert message.tag == root
    assert _xsd(name).validate(message), _xsd(name).error_log
    assert [child.tag for child in message] == [
        f"{root[: root.index('}') + 1]}Envelope",
        application,
    ]
    # the application inside is what to_native writes, and decodes to the same document
    assert codecs[name].decode(etree.tostring(message[1])).document == _golden(name)


def test_the_xsd_still_validates_a_submitted_application_alone() -> None:
    for name in ("hk", "macau"):
        assert _xsd(name).validate(etree.parse(str(DOCUMENTS / f"{name}-individual-business.xml")))


@pytest.mark.parametrize("name", ["hk", "macau"])
def test_every_member_of_the_envelope_is_carried_with_the_output_format(
    codecs: dict[str, XmlCodec], name: str
) -> None:
    body, _ = codecs[name].encode(_golden(name), ENVELOPE)

    envelope, _application = codecs[name].read_message(body)

    expected = {k: str(v) for k, v in ENVELOPE.items() if k != "translation"}
    translation = envelope.pop("translation")
    assert envelope == expected
    assert translation.pop("output_format") == codecs[name].jurisdiction
    assert translation.pop("output_digest").startswith("sha-256=:")
    assert translation == ENVELOPE["translation"]


def test_hk_envelope_element_names_come_from_the_field_map(codecs: dict[str, XmlCodec]) -> None:
    body, _ = codecs["hk"].encode(_golden("hk"), ENVELOPE)
    envelope = parse_xml(body).find(f"{HK}Envelope")
    assert envelope is not None

    assert envelope.findtext(f"{HK}ConsentId") == ENVELOPE["consent_id"]
    assert envelope.findtext(f"{HK}Translation/{HK}OutputFormat") == "HK"
    assert envelope.findtext(f"{HK}MatterVersion") == "1"


@pytest.mark.parametrize("name", ["hk", "macau"])
def test_the_output_digest_is_recomputed_from_the_exclusive_c14n_of_the_application(
    codecs: dict[str, XmlCodec], name: str
) -> None:
    body, _ = codecs[name].encode(_golden(name), ENVELOPE)
    envelope, _ = codecs[name].read_message(body)

    received = parse_xml(body)[1]  # as a receiver parses it, in its message

    assert envelope["translation"]["output_digest"] == _c14n_digest(received)
    # the element alone (exclusive C14N ignores the context) gives the same digest
    alone = parse_xml(etree.tostring(received))
    assert _c14n_digest(alone) == _c14n_digest(received)


def test_a_changed_application_no_longer_matches_the_output_digest(
    codecs: dict[str, XmlCodec],
) -> None:
    body, _ = codecs["hk"].encode(_golden("hk"), ENVELOPE)
    envelope, _ = codecs["hk"].read_message(body)

    tampered = parse_xml(body.replace(b"Tai Man", b"Tai Men"))[1]

    assert envelope["translation"]["output_digest"] != _c14n_digest(tampered)


def test_absent_envelope_members_write_no_element(codecs: dict[str, XmlCodec]) -> None:
    before_acceptance = {**ENVELOPE, "deadline": None, "consent_id": None, "stage": "examination"}

    body, _ = codecs["macau"].encode(_golden("macau"), before_acceptance)

    envelope = parse_xml(body).find(f"{MO}Envelope")
    assert envelope is not None
    assert envelope.find(f"{MO}Prazo") is None
    assert envelope.find(f"{MO}IdConsentimento") is None
    assert envelope.findtext(f"{MO}Fase") == "examination"
    assert _xsd("macau").validate(parse_xml(body))


def test_a_message_of_another_format_is_refused_by_the_reader(codecs: dict[str, XmlCodec]) -> None:
    body, _ = codecs["macau"].encode(_golden("macau"), ENVELOPE)

    with pytest.raises(ValidationFailedError) as refused:
        codecs["hk"].read_message(body)
    assert [(p.code, p.xpath) for p in refused.value.errors] == [("schema", "/")]


# --- nothing silently dropped ----------------------------------------------------------------


def _not_carried(error: NotExpressibleError) -> set[tuple[str | None, str]]:
    return {(p.pointer, p.code) for p in error.errors}


@pytest.mark.parametrize("name", ["hk", "macau"])
def test_fields_the_format_has_no_element_for_stop_the_forward(
    codecs: dict[str, XmlCodec], name: str
) -> None:
    document = _golden(name)
    document["applicant"]["documents"][0]["verified_by"] = "registry"
    document["particulars"]["not_a_particular_of_any_matter"] = "x"

    with pytest.raises(NotExpressibleError) as stopped:
        codecs[name].encode(document, ENVELOPE)

    assert _not_carried(stopped.value) == {
        ("/applicant/documents/0/verified_by", "not_in_format"),
        ("/particulars/not_a_particular_of_any_matter", "not_in_format"),
    }


@pytest.mark.parametrize(("name", "attribute"), [("hk", "issuer"), ("macau", "emissor")])
def test_the_issuer_of_an_identity_document_is_carried(
    codecs: dict[str, XmlCodec], name: str, attribute: str
) -> None:
    document = _golden(name)
    for entry in document["applicant"]["documents"]:
        own = {"hk": "HK", "macau": "MO"}[name]
        entry["issuer"] = "CN" if entry["type"] in ("HRP", "RESIDENCE_PERMIT") else own

    application = codecs[name].carried(document)

    assert [
        d.get(attribute)
        for d in application.iter(f"{{*}}{'Document' if name == 'hk' else 'Documento'}")
    ] == [d["issuer"] for d in document["applicant"]["documents"]]
    assert codecs[name].decode(etree.tostring(application)).document == document


def test_a_particular_the_format_cannot_carry_stops_the_forward(
    codecs: dict[str, XmlCodec],
) -> None:
    document = _golden("hk")
    document["particulars"]["no_such_particular_in_any_format"] = "x"

    with pytest.raises(NotExpressibleError) as stopped:
        codecs["hk"].carried(document)

    assert _not_carried(stopped.value) == {
        ("/particulars/no_such_particular_in_any_format", "not_in_format")
    }


def test_a_value_the_format_refuses_stops_the_forward_with_the_encoders_code(
    codecs: dict[str, XmlCodec],
) -> None:
    document = _golden("hk")
    # a name in Simplified Chinese only: the HK format has a Traditional Chinese or an English
    # name, and deriving one from the other is not the gateway's to do
    document["applicant"]["names"] = {"original": "王小明", "zh-Hans": "王小明"}

    with pytest.raises(NotExpressibleError) as stopped:
        codecs["hk"].encode(document, ENVELOPE)

    assert ("/applicant/names/original", "not_in_format") in _not_carried(stopped.value)


def test_fields_the_format_derives_do_not_stop_the_forward(codecs: dict[str, XmlCodec]) -> None:
    document = _golden("hk")  # zh-Hans, latin and original are derived on decoding
    assert document["applicant"]["names"]["zh-Hans"] != document["applicant"]["names"]["zh-Hant"]

    assert codecs["hk"].carried(document).tag == f"{HK}Application"


def test_a_derived_field_without_its_source_is_lost(codecs: dict[str, XmlCodec]) -> None:
    document = _golden("hk")
    del document["applicant"]["names"]["zh-Hant"]  # zh-Hans is derived from it: nothing left

    with pytest.raises(NotExpressibleError) as stopped:
        codecs["hk"].carried(document)

    assert ("/applicant/names/zh-Hans", "not_in_format") in _not_carried(stopped.value)


def test_a_value_that_comes_back_changed_is_reported() -> None:
    upper = build("upper", {})
    written = {("family_name_latin",): (upper,), ("phone",): (build("text", {}),)}
    document = {"family_name_latin": "Chan", "phone": "+85291234567", "blank": " "}

    assert dropped(document, {"family_name_latin": "CHAN", "phone": "+85291234567"}, written) == []
    assert [
        (p.pointer, p.code)
        for p in dropped(document, {"family_name_latin": "WONG", "phone": "+852"}, written)
    ] == [("/family_name_latin", "not_in_format"), ("/phone", "not_in_format")]


def test_encode_leaves_the_document_unchanged(codecs: dict[str, XmlCodec]) -> None:
    document = _golden("hk")
    before = copy.deepcopy(document)

    codecs["hk"].encode(document, ENVELOPE)

    assert document == before


# --- Guangdong and canonical: the JSON message -----------------------------------------------


@pytest.mark.parametrize(
    ("codec", "output_format"),
    [
        (adapters.guangdong.ADAPTER.load_codec(MAPPINGS), "GD"),
        (CanonicalCodec(MAPPINGS / "schemas"), "canonical"),
    ],
)
def test_json_forwards_carry_the_output_format_and_digest(codec: Any, output_format: str) -> None:
    document = _golden("hk")

    body, media_type = codec.encode(document, ENVELOPE)

    message = json.loads(body)
    assert media_type == "application/json"
    assert message["application"] == document
    assert message["translation"]["output_format"] == output_format
    serialised = json.dumps(
        message["application"], ensure_ascii=False, sort_keys=True, separators=(",", ":")
    ).encode()
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(serialised).digest()).decode() + ":"
    assert message["translation"]["output_digest"] == digest
    validator = schema_validator(
        adapters.guangdong.ADAPTER.schemas_dir,
        "guangdong-message.schema.json",
        also=(MAPPINGS / "schemas",),
    )
    assert list(validator.iter_errors(message)) == []


def test_an_envelope_value_the_xsd_refuses_stops_the_forward(codecs: dict[str, XmlCodec]) -> None:
    odd = {**ENVELOPE, "role": "observer"}  # Role is lead or reviewer

    with pytest.raises(NotExpressibleError) as stopped:
        codecs["hk"].encode(_golden("hk"), odd)

    assert [(p.code, p.xpath) for p in stopped.value.errors] == [("schema", "/*/*[1]/*[5]")]


@pytest.mark.parametrize(
    ("name", "ns", "stage", "round_"),
    [("hk", HK, "Stage", "SupplementRound"), ("macau", MO, "Fase", "RondaSuplemento")],
)
def test_a_supplemented_document_says_its_stage_and_round_in_the_native_envelope(
    codecs: dict[str, XmlCodec], name: str, ns: str, stage: str, round_: str
) -> None:
    supplemented = {**ENVELOPE, "stage": "supplement", "supplement_round": 2}

    body, _ = codecs[name].encode(_golden(name), supplemented)

    message = parse_xml(body)
    assert _xsd(name).validate(message), _xsd(name).error_log
    holder = message[0]
    assert (holder.findtext(f"{ns}{stage}"), holder.findtext(f"{ns}{round_}")) == (
        "supplement",
        "2",
    )
    envelope, _ = codecs[name].read_message(body)
    assert (envelope["stage"], envelope["supplement_round"]) == ("supplement", "2")
    # before any round: no element
    first, _ = codecs[name].encode(_golden(name), {**ENVELOPE, "supplement_round": None})
    assert parse_xml(first)[0].find(f"{ns}{round_}") is None


def test_guangdongs_message_schema_takes_a_supplemented_documents_stage_and_round() -> None:
    codec = adapters.guangdong.ADAPTER.load_codec(MAPPINGS)
    validator = schema_validator(
        adapters.guangdong.ADAPTER.schemas_dir,
        "guangdong-message.schema.json",
        also=(MAPPINGS / "schemas",),
    )
    document = _golden("hk")
    for envelope in (
        {**ENVELOPE, "stage": "supplement", "supplement_round": 2},
        {**ENVELOPE, "supplement_round": None},
    ):
        body, _ = codec.encode(document, envelope)
        assert list(validator.iter_errors(json.loads(body))) == []
    body, _ = codec.encode(document, {**ENVELOPE, "stage": "supplement", "supplement_round": 0})
    assert list(validator.iter_errors(json.loads(body)))  # rounds count from 1
