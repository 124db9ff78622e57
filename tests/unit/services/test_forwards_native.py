"""milestones.forwards: each handler's forward in the format its agency receives; a format
that cannot carry the whole case queues nothing for that agency and says so on the timeline,
while the other handlers' forwards still go."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import adapters.guangdong
import adapters.hk
from gateway.domain.agencies import Agency
from gateway.domain.application import Application
from gateway.domain.matters import Route
from gateway.mapping.canonical import CanonicalCodec
from gateway.mapping.catalog import Catalog
from gateway.mapping.xml import parse_xml
from gateway.sandbox.samples import SANDBOX_LEGAL_BASIS
from gateway.services.milestones import forwards

ROOT = Path(__file__).parents[3]
MAPPINGS = ROOT / "mappings"
AT = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
CODECS = {
    "canonical": CanonicalCodec(MAPPINGS / "schemas"),
    "HK": adapters.hk.ADAPTER.load_codec(
        MAPPINGS, Catalog.load(MAPPINGS / "matters").particulars()
    ),
    "GD": adapters.guangdong.ADAPTER.load_codec(MAPPINGS),
}
AGENCIES = {
    "gd-lead": Agency("gd-lead", "GD", {}),
    "hk-review": Agency("hk-review", "HK", {}),
    "hk-json": Agency("hk-json", "HK", {}, receives="canonical"),
}
# the reviewers here need the whole application (a matter declares what each handler needs)
WHOLE = ("/applicant", "/particulars", "/materials", "/commitments")
ROUTE = Route("gd-lead", ("hk-review", "hk-json"), (("hk-review", WHOLE), ("hk-json", WHOLE)))
DEPS = SimpleNamespace(
    codecs=CODECS,
    issuer="https://gateway.test",
    catalog=SimpleNamespace(get=lambda code, on: SimpleNamespace(route=ROUTE)),
)


def _case(document: dict[str, Any]) -> Application:
    app = Application.receive(
        application_id="app_01JBQ7ZP6W3N0X8Y2D5K4R9T1V",
        matter=document["matter"],
        matter_version=1,
        submitted_by="hk-ird",
        channel="online",
        source_format="HK",
        content_digest="sha-256=:R7qqQA6Z5bl826qGIRqaGz8YwH2fkweCuH6MyFfwdIs=:",
        document=document,
        handlers=tuple(AGENCIES),
        missing=(),
        deadline="2026-03-17",
        at=AT,
        mapping_version="hk-2026.1",
        legal_basis=SANDBOX_LEGAL_BASIS.record(),  # an agency's case: its declared basis
    )
    app.pending_events.clear()
    return app


def _golden() -> dict[str, Any]:
    path = ROOT / "tests" / "fixtures" / "documents" / "hk-individual-business.canonical.json"
    return json.loads(path.read_text("utf-8"))


def test_each_agency_gets_the_format_it_receives() -> None:
    app = _case(_golden())

    sent = forwards(app, DEPS, AGENCIES, AT)  # type: ignore[arg-type]

    by_agency = {m.destination: m for m in sent}
    assert {a: m.media_type for a, m in by_agency.items()} == {
        "gd-lead": "application/json",
        "hk-review": "application/xml",
        "hk-json": "application/json",
    }
    assert parse_xml(by_agency["hk-review"].body).tag == "{urn:gba:hk:application:1}Message"
    assert json.loads(by_agency["hk-json"].body)["translation"]["output_format"] == "canonical"
    assert json.loads(by_agency["gd-lead"].body)["translation"]["output_format"] == "GD"
    assert [e.type for e in app.pending_events] == ["message.queued"] * 3


def test_a_format_that_cannot_carry_the_case_blocks_only_its_forward() -> None:
    document = _golden()
    document["particulars"]["not_a_particular_of_any_matter"] = "x"  # no format has it
    app = _case(document)

    sent = forwards(app, DEPS, AGENCIES, AT)  # type: ignore[arg-type]

    assert sorted(m.destination for m in sent) == ["gd-lead", "hk-json"]
    blocked = [e for e in app.pending_events if e.type == "message.forward_blocked"]
    assert [(e.actor, e.data) for e in blocked] == [
        (
            "gateway",
            {
                "agency": "hk-review",
                "problems": [
                    {
                        "pointer": "/particulars/not_a_particular_of_any_matter",
                        "code": "not_in_format",
                    }
                ],
            },
        )
    ]
    assert app.handler("hk-review").message_id is None
    # the next move tries again; the same problems are not recorded twice
    again = forwards(app, DEPS, AGENCIES, AT)  # type: ignore[arg-type]
    assert again == []
    assert len([e for e in app.pending_events if e.type == "message.forward_blocked"]) == 1
