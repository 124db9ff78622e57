"""Which agency cases a resident sees: a counter's case by the document inspected in person."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.domain.application import Application
from gateway.domain.matters import Assurance
from gateway.mapping.catalog import Catalog
from gateway.services.visibility import Viewer
from gateway.settings import REPO_ROOT
from tests.fakes import FixedClock

AT = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
RESIDENCE_PERMIT = "11440100MB2C0002124440700001000"
DOCUMENTS = [
    {"type": "HKID", "number": "A1234563"},
    {"type": "HRP", "number": "H12345678"},
]


def _case(identified_by: tuple[str, str] | None) -> Application:
    return Application.receive(
        application_id="app_01COUNTER",
        matter=RESIDENCE_PERMIT,
        matter_version=1,
        submitted_by="hk-ird",
        channel="counter" if identified_by else "online",
        source_format="canonical",
        content_digest="sha-256=:AAAA:",
        document={"matter": RESIDENCE_PERMIT, "applicant": {"documents": DOCUMENTS}},
        handlers=("gz-psb",),
        missing=(),
        deadline=None,
        at=AT,
        identified_by=identified_by,
    )


def test_a_counter_case_is_seen_by_the_holder_of_the_inspected_document_only() -> None:
    catalog, clock = Catalog.load(REPO_ROOT / "mappings" / "matters"), FixedClock(AT)
    hkid = Viewer("per_1", (("HKID", "A1234563"),), Assurance.SUBSTANTIAL)
    hrp = Viewer("per_2", (("HRP", "H12345678"),), Assurance.SUBSTANTIAL)

    counter = _case(("HKID", "A1234563"))
    online = _case(None)

    assert hkid.sees(counter, catalog, clock)
    assert not hrp.sees(counter, catalog, clock)  # named, but not what the officer inspected
    assert hrp.sees(online, catalog, clock)  # an ordinary agency case: any named document
