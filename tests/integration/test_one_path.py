"""One path for every move of a case (issue 17 item 7), on both databases: a case accepted at
its receipt, or sent the notice of what is missing at its receipt, gets what the same milestone
gets later from an agency's act — the signed voucher (Art. 19(4)) in its timeline, the
notifications (Art. 22), the forwards — in the same shape."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.bootstrap import Overrides, create_app
from gateway.operations import mappings_sample
from gateway.store.database import create_engine
from gateway.store.tables import notifications
from gateway.trust.receipts import verify_receipt
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.fakes import FixedClock
from tests.integration.test_lifecycle import FRIDAY, HENGQIN, MEDICAL, act, jwks, submit, view


@pytest.fixture
async def quiet(tmp_path: Path, database: Database, aiohttp_server: Any) -> AsyncIterator[Any]:
    """A sandbox gateway with a fixed clock and no relay: cases stay where the test puts them."""
    settings = sandbox_settings(tmp_path, database, relay_enabled=False)
    app = create_app(settings, Overrides(clock=FixedClock(FRIDAY)))
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    yield RunningGateway(settings, settings.base_url, app), None
    await server.close()


SAME_EVERYWHERE = {"iss", "iat", "jti", "sub", "at", "deadline", "statutory_deadline"}


def _sample(gateway: RunningGateway, code: str) -> dict[str, Any]:
    return json.loads(mappings_sample(gateway.settings, code, "canonical", "chan-tai-man"))


def _after(case: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The timeline from the milestone event ``kind`` on, up to the next milestone."""
    events = case["timeline"]
    start = next(i for i, e in enumerate(events) if e["type"] == kind)
    return events[start:]


async def _voucher(gateway: RunningGateway, case: dict[str, Any], kind: str) -> dict[str, Any]:
    vouchers = [e for e in case["timeline"] if e["type"] == "voucher.issued"]
    found = [v for v in vouchers if v["kind"] == kind]
    assert len(found) == 1, vouchers
    return verify_receipt(found[0]["voucher"], await jwks(gateway))


async def _notified(gateway: RunningGateway, app_id: str) -> list[tuple[str, str]]:
    settings = gateway.settings
    engine = create_engine(settings.database_url, schema=settings.database_schema or None)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(notifications.c.event, notifications.c.recipient)
                .where(notifications.c.application_id == app_id)
                .order_by(notifications.c.event, notifications.c.recipient)
            )
            return [(r.event, r.recipient) for r in rows]
    finally:
        await engine.dispose()


def _shape(claims: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in claims.items() if k not in SAME_EVERYWHERE}


async def test_a_case_accepted_at_receipt_has_its_acceptance_voucher_as_a_later_one_does(
    quiet: tuple[RunningGateway, Any],
) -> None:
    gateway, _ = quiet
    at_receipt = (await submit(gateway, HENGQIN))["application_id"]
    later = (await submit(gateway, MEDICAL))["application_id"]
    assert (await act(gateway, later, "acceptance", {"outcome": "accepted"})).status == 200

    now_case, later_case = await view(gateway, at_receipt), await view(gateway, later)
    assert now_case["status"] == later_case["status"] == "accepted"
    now_claims = await _voucher(gateway, now_case, "acceptance")
    later_claims = await _voucher(gateway, later_case, "acceptance")

    # the same claims, but for the case and the matter; each names its own case's deadlines
    # what the case itself carries aside (its commitments, Art. 12), the same claims
    case_content = {"commitments", "owed"}
    assert set(now_claims) - case_content == set(later_claims) - case_content
    ignore = {"matter": None, "commitments": None, "owed": None}
    assert {**_shape(now_claims), **ignore} == {**_shape(later_claims), **ignore}
    assert (now_claims["kind"], now_claims["event"], now_claims["status"]) == (
        "acceptance",
        "application.accepted",
        "accepted",
    )
    assert (now_claims["sub"], now_claims["matter"]) == (at_receipt, HENGQIN)
    assert now_claims["deadline"] == now_case["deadlines"]["promised"]
    # the voucher follows the acceptance, as it does after a later one, and before forwards
    for case in (now_case, later_case):
        types = [e["type"] for e in _after(case, "application.accepted")]
        assert types[:2] == ["application.accepted", "voucher.issued"], types
        assert "message.queued" in types
    now_event = next(e for e in now_case["timeline"] if e["type"] == "voucher.issued")
    later_event = next(e for e in later_case["timeline"] if e["type"] == "voucher.issued")
    assert set(now_event) == set(later_event)

    # the acceptance is told to whom it is told after a later acceptance (Art. 22)
    assert ("application.accepted", "hk-ird") in await _notified(gateway, at_receipt)
    assert ("application.accepted", "hk-ird") in await _notified(gateway, later)


async def test_a_notice_of_what_is_missing_at_receipt_has_its_voucher_as_a_later_notice_does(
    quiet: tuple[RunningGateway, Any],
) -> None:
    gateway, _ = quiet
    incomplete = _sample(gateway, HENGQIN)
    dropped = incomplete["materials"].pop(0)["code"]
    at_receipt = await submit(gateway, HENGQIN, incomplete)
    assert at_receipt["status"] == "awaiting_supplement"
    later = (await submit(gateway, MEDICAL))["application_id"]
    notice = await act(
        gateway, later, "acceptance", {"outcome": "supplement", "missing": ["APPLICATION_FORM"]}
    )
    assert notice.status == 200, notice.body

    now_case = await view(gateway, at_receipt["application_id"])
    later_case = await view(gateway, later)
    now_claims = await _voucher(gateway, now_case, "supplement_notice")
    later_claims = await _voucher(gateway, later_case, "supplement_notice")

    assert set(now_claims) == set(later_claims)
    assert (now_claims["event"], now_claims["status"]) == (
        "application.supplement_requested",
        "awaiting_supplement",
    )
    assert dropped in now_claims["missing"]
    assert later_claims["missing"] == ["APPLICATION_FORM"]
    types = [e["type"] for e in _after(now_case, "application.supplement_requested")]
    assert types[:2] == ["application.supplement_requested", "voucher.issued"], types
