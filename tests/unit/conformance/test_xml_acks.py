"""An HK or Macau partner may acknowledge a forward in its own XML format (``Ack``,
``Confirmacao``): the kit reads it through the format's field map and judges it as the JSON
acknowledgement (partner-ack.schema.json, the message id, received then duplicate)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import adapters.hk
import adapters.macau
from gateway.conformance import judges as j
from gateway.conformance.probes import Answer, Exchange, Outgoing
from gateway.conformance.runner import ack_validator
from gateway.mapping.catalog import Catalog
from gateway.settings import REPO_ROOT

MAPPINGS = REPO_ROOT / "mappings"
PARTICULARS = Catalog.load(MAPPINGS / "matters").particulars()
HK = adapters.hk.ADAPTER.load_codec(MAPPINGS, PARTICULARS)
MO = adapters.macau.ADAPTER.load_codec(MAPPINGS, PARTICULARS)
VALIDATOR = ack_validator(MAPPINGS / "schemas")
AT = "2026-12-05T10:00:00+08:00"


def _exchange(body: bytes, media_type: str, message_id: str = "msg_1") -> Exchange:
    sent = Outgoing("http://partner/inbox", {}, b"{}", message_id=message_id, note="a delivery")
    return Exchange(sent, Answer(200, (("Content-Type", media_type),), body))


def _evidence(answers: list[Exchange], ack_format: Any) -> j.Evidence:
    sent = {"first-delivery": answers[:1], "redelivery": answers[1:]}
    return j.Evidence(
        sent,
        lambda kid: None,
        lambda: datetime.now(UTC),
        VALIDATOR,
        ack_format,  # type: ignore[arg-type,return-value]
    )


def _acks(codec: Any) -> list[Exchange]:
    ack = codec.messages["ack"]
    return [
        _exchange(
            ack.encode({"message_id": "msg_1", "status": s, "received_at": AT}), "application/xml"
        )
        for s in ("received", "duplicate")
    ]


def test_the_xml_ack_of_the_partners_format_is_judged_as_the_json_one() -> None:
    for codec in (HK, MO):
        evidence = _evidence(_acks(codec), codec.messages["ack"])

        assert j.ack_schema(evidence).outcome == "pass"
        assert j.dedup_redelivery(evidence).outcome == "pass"


def test_an_xml_ack_is_refused_without_a_format_or_when_its_format_refuses_it() -> None:
    without = j.ack_schema(_evidence(_acks(HK), None))
    assert without.outcome == "fail"
    assert "Content-Type is application/xml, not application/json" in without.reason

    other_format = j.ack_schema(_evidence(_acks(HK), MO.messages["ack"]))  # an Ack, not Confirmacao
    assert other_format.outcome == "fail"
    assert "the XML acknowledgement is refused" in other_format.reason

    elsewhere = _exchange(_acks(MO)[0].answer.body, "application/xml", "msg_2")  # type: ignore[union-attr]
    mismatch = j.ack_schema(_evidence([elsewhere], MO.messages["ack"]))
    assert mismatch.outcome == "fail"
    assert "message_id is 'msg_1', not 'msg_2'" in mismatch.reason
