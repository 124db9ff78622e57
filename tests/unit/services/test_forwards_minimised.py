"""Data minimisation (PIPL art. 6; the GBA personal-information rules' minimum necessary):
for every matter of the catalog and every handler of its route, the forward carries only the
fields the matter declares the handler needs (the lead, undeclared: everything; a reviewer,
undeclared: the minimum), read back from the message as the agency receives it — its own XML
or JSON — so the reduction happened before encoding and the carried check saw the reduced
document."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from lxml import etree

from gateway.bootstrap import codecs
from gateway.domain import minimisation
from gateway.domain.application import Application
from gateway.mapping.catalog import Catalog
from gateway.sandbox.agencies import sandbox_agency
from gateway.sandbox.personas import persona
from gateway.sandbox.samples import SANDBOX_LEGAL_BASIS, canonical_sample
from gateway.services.milestones import forwards
from gateway.settings import load_settings

ROOT = Path(__file__).parents[3]
AT = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
CATALOG = Catalog.load(ROOT / "mappings" / "matters")
MATTERS = {str(m.code): m for m in CATALOG.all(AT.date())}
CASES = [(code, agency) for code, m in sorted(MATTERS.items()) for agency in m.route.handlers]


@pytest.fixture(scope="module")
def deps(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    settings = load_settings(
        environ={}, mode="sandbox", sandbox_dir=tmp_path_factory.mktemp("sandbox")
    )
    return SimpleNamespace(
        codecs=codecs(settings, CATALOG), issuer="https://gateway.test", catalog=CATALOG
    )


def _case(code: str) -> Application:
    matter = MATTERS[code]
    document = canonical_sample(matter, persona("chan-tai-man"))
    return Application.receive(
        application_id="app_01JBQ7ZP6W3N0X8Y2D5K4R9T1V",
        matter=str(code),
        matter_version=matter.version,
        submitted_by="hk-ird",
        channel="online",
        source_format="canonical",
        content_digest="sha-256=:R7qqQA6Z5bl826qGIRqaGz8YwH2fkweCuH6MyFfwdIs=:",
        document=document,
        handlers=matter.route.handlers,
        missing=(),
        deadline="2026-03-31",
        at=AT,
        legal_basis=SANDBOX_LEGAL_BASIS.record(),  # an agency's case: its declared basis
    )


def _received(deps: Any, agency: Any, body: bytes) -> dict[str, Any]:
    """The application as the agency reads it from its message."""
    codec = deps.codecs[agency.receives]
    if body.lstrip().startswith(b"{"):
        return json.loads(body)["application"]  # type: ignore[no-any-return]
    _, application = codec.read_message(body)
    document, problems = codec.translate(etree.tostring(application))
    assert not problems
    return document


def test_every_matter_with_reviewers_declares_what_they_need() -> None:
    for matter in MATTERS.values():
        assert {a for a, _ in matter.route.fields} == set(matter.route.reviewers), matter.code


@pytest.mark.parametrize(("code", "agency_id"), CASES)
def test_only_the_declared_fields_leave_for_each_handler(
    deps: SimpleNamespace, code: str, agency_id: str
) -> None:
    app = _case(code)  # complete, accepted at once: every handler is due
    agencies = {
        a: sandbox_agency(a).agency("https://partner.test") for a in MATTERS[code].route.handlers
    }

    sent = {m.destination: m for m in forwards(app, deps, agencies, AT)}  # type: ignore[arg-type]

    blocked = [e.data for e in app.pending_events if e.type == "message.forward_blocked"]
    assert agency_id in sent, blocked
    received = _received(deps, agencies[agency_id], sent[agency_id].body)
    role = "lead" if agency_id == MATTERS[code].route.lead else "reviewer"
    declared = minimisation.fields_for(MATTERS[code].route, agency_id, role)
    carried = minimisation.leaves(received)
    if declared is None:  # the lead: the whole application
        assert carried >= minimisation.leaves(app.document) - {"/materials", "/commitments"}
    else:
        assert carried, "the minimum always goes"
        extra = sorted(p for p in carried if not minimisation.selected(p, declared))
        assert extra == []
        assert any(p.startswith("/applicant/documents") for p in carried)
        assert not any(p.startswith("/applicant/phone") for p in carried)
        assert not any(p.startswith("/applicant/email") for p in carried)
