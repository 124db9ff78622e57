"""The supplement loop under agency acceptance (Art. 19(3), 20), on both databases, with a
fixed clock: each supplement round restarts the lead's five-working-day examination from the
day the supplement arrived (in Guangdong's calendar, across the National Day week and its
make-up working Saturday), the lead is sent each supplemented document through the outbox and
is notified, and the case is deemed accepted after the second round's last day, as of the day
that supplement arrived."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from lxml import etree

from gateway.bootstrap import Overrides, create_app, sweep_deadlines
from gateway.sandbox.routes import PARTNERS
from gateway.settings import Settings
from gateway.store.database import create_engine
from gateway.store.tables import notifications, outbox
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.fakes import FixedClock
from tests.integration.test_lifecycle import MEDICAL, act, submit, view
from tests.support import INSURANCE

# 10:00 in Guangdong (UTC+8) on each day
RECEIVED = datetime(2026, 9, 25, 2, 0, tzinfo=UTC)  # Friday, the Mid-Autumn Festival
FIRST_NOTICE = datetime(2026, 9, 28, 2, 0, tzinfo=UTC)  # Monday
FIRST_ROUND = datetime(2026, 9, 30, 2, 0, tzinfo=UTC)  # Wednesday, before National Day
SECOND_NOTICE = datetime(2026, 10, 8, 2, 0, tzinfo=UTC)  # Thursday, after the week off
SECOND_ROUND = datetime(2026, 10, 9, 2, 0, tzinfo=UTC)  # Friday, before the make-up Saturday
LEAD = "sz-hc"


@pytest.fixture
async def quiet(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> AsyncIterator[tuple[RunningGateway, FixedClock]]:
    """A sandbox gateway with a fixed clock and no relay: forwards stay in the outbox."""
    settings = sandbox_settings(tmp_path, database, relay_enabled=False)
    clock = FixedClock(RECEIVED)
    app = create_app(settings, Overrides(clock=clock))
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    yield RunningGateway(settings, settings.base_url, app), clock
    await server.close()


def _material(code: str, letter: str) -> dict[str, str]:
    return {"code": code, "digest": "sha-256=:" + letter * 43 + "=:"}


async def _rows(settings: Settings, query: Any) -> list[Any]:
    engine = create_engine(settings.database_url, schema=settings.database_schema or None)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(query)).all())
    finally:
        await engine.dispose()


async def _round(
    gateway: RunningGateway, clock: FixedClock, app_id: str, notice: datetime, arrival: datetime
) -> dict[str, Any]:
    """The lead asks for a material at ``notice``; the submitting agency supplies it at
    ``arrival``; the answer to the supplement."""
    clock.current = notice
    asked = await act(
        gateway, app_id, "acceptance", {"outcome": "supplement", "missing": ["APPLICATION_FORM"]}
    )
    assert asked.status == 200, asked.body
    assert asked.json()["status"] == "awaiting_supplement"
    assert asked.json()["deadlines"]["acceptance_due"] is None  # the clock stops
    clock.current = arrival
    letter = "A" if arrival == FIRST_ROUND else "B"
    supplied = await act(
        gateway,
        app_id,
        "supplements",
        {"materials": [_material("APPLICATION_FORM", letter)]},
        agency="hk-ird",
    )
    assert supplied.status == 200, supplied.body
    return supplied.json()  # type: ignore[no-any-return]


async def test_two_supplement_rounds_across_a_holiday_then_deemed_acceptance(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, clock = quiet
    app_id = (await submit(gateway, MEDICAL))["application_id"]

    first = await _round(gateway, clock, app_id, FIRST_NOTICE, FIRST_ROUND)
    # 5 working days from Wednesday 30 September: the National Day week (1-8 October) is off,
    # so the 9th, the make-up Saturday the 10th, the 12th and the 13th
    assert first["status"] == "received"
    assert first["deadlines"]["acceptance_due"] == "2026-10-13"

    second = await _round(gateway, clock, app_id, SECOND_NOTICE, SECOND_ROUND)
    # from Friday 9 October: Saturday the 10th is a working day, then 12-15 October
    assert second["status"] == "received"
    assert second["deadlines"]["acceptance_due"] == "2026-10-15"

    clock.current = datetime(2026, 10, 14, 2, 0, tzinfo=UTC)  # the first round's date passed
    assert (await sweep_deadlines(gateway.app))["deemed_accepted"] == 0  # type: ignore[arg-type]
    clock.current = datetime(2026, 10, 15, 15, 0, tzinfo=UTC)  # 23:00 on the last day
    assert (await sweep_deadlines(gateway.app))["deemed_accepted"] == 0  # type: ignore[arg-type]
    clock.current = datetime(2026, 10, 16, 1, 0, tzinfo=UTC)
    assert (await sweep_deadlines(gateway.app))["deemed_accepted"] == 1  # type: ignore[arg-type]
    assert (await sweep_deadlines(gateway.app))["deemed_accepted"] == 0  # type: ignore[arg-type]

    case = await view(gateway, app_id)
    assert case["status"] == "accepted"
    accepted = next(e for e in case["timeline"] if e["type"] == "application.accepted")
    assert (accepted["actor"], accepted["deemed"]) == ("gateway", True)
    assert accepted["effective"] == SECOND_ROUND.isoformat()  # as of the last supplement
    # 10 working days from 9 October: 10, 12-16, 19-22 October
    assert case["deadlines"]["promised"] == accepted["deadline"] == "2026-10-22"
    restarted = [e for e in case["timeline"] if e["type"] == "application.examination_restarted"]
    assert [(e["round"], e["acceptance_due"]) for e in restarted] == [
        (1, "2026-10-13"),
        (2, "2026-10-15"),
    ]

    # the lead was sent the case, then each supplemented document, in its own format
    sent = await _rows(
        gateway.settings,
        sa.select(outbox.c.id, outbox.c.destination, outbox.c.body)
        .where(outbox.c.application_id == app_id)
        .order_by(outbox.c.created_at, outbox.c.id),
    )
    to_lead = [json.loads(r.body) for r in sent if r.destination == LEAD]
    assert [(m["stage"], m.get("supplement_round")) for m in to_lead] == [
        ("examination", None),
        ("supplement", 1),
        ("supplement", 2),
    ]
    forms = [
        [
            m["digest"]
            for m in message["application"]["materials"]
            if m["code"] == "APPLICATION_FORM"
        ]
        for message in to_lead
    ]
    assert forms[1:] == [
        [_material("APPLICATION_FORM", "A")["digest"]],
        [_material("APPLICATION_FORM", "B")["digest"]],
    ]
    assert forms[0] not in forms[1:]  # each message carries that round's document
    # once accepted, the reviewer gets the case for review, in Hong Kong's XML: the round's
    # document, said so by the envelope the field map declares
    (to_reviewer,) = [etree.fromstring(r.body) for r in sent if r.destination == "hk-mchk"]
    assert to_reviewer.findtext(".//{*}Envelope/{*}Stage") == "review"
    assert to_reviewer.findtext(".//{*}Envelope/{*}SupplementRound") == "2"
    queued = [
        (e["agency"], e.get("supplement_round"))
        for e in case["timeline"]
        if e["type"] == "message.queued"
    ]
    assert queued == [(LEAD, None), (LEAD, 1), (LEAD, 2), ("hk-mchk", None)]

    # application.supplement_provided notifies the lead, once per round
    told = await _rows(
        gateway.settings,
        sa.select(notifications.c.recipient, notifications.c.body).where(
            notifications.c.application_id == app_id,
            notifications.c.event == "application.supplement_provided",
        ),
    )
    assert sorted((r.recipient, r.body["round"]) for r in told) == [(LEAD, 1), (LEAD, 2)]


async def test_the_lead_accepts_within_the_restarted_period_and_nothing_is_deemed(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, clock = quiet
    app_id = (await submit(gateway, MEDICAL))["application_id"]
    await _round(gateway, clock, app_id, FIRST_NOTICE, FIRST_ROUND)

    clock.current = datetime(2026, 10, 13, 2, 0, tzinfo=UTC)  # the restarted period's last day
    accepted = await act(gateway, app_id, "acceptance", {"outcome": "accepted"})
    assert accepted.status == 200, accepted.body
    assert accepted.json()["status"] == "accepted"
    assert accepted.json()["deadlines"]["acceptance_due"] is None
    clock.current = datetime(2026, 10, 20, 2, 0, tzinfo=UTC)
    assert (await sweep_deadlines(gateway.app))["deemed_accepted"] == 0  # type: ignore[arg-type]
    case = await view(gateway, app_id)
    (event,) = [e for e in case["timeline"] if e["type"] == "application.accepted"]
    assert event["actor"] == LEAD
    assert "deemed" not in event


async def test_a_sandbox_lead_examines_the_supplemented_document_it_is_sent(
    lead_examined_gateway: RunningGateway,
) -> None:
    """With the relay and the sandbox partners running: Macao's Social Security Fund (the lead,
    in its own XML) asks for a supplement; once supplied, it is sent the supplemented document
    (``Fase`` supplement, ``RondaSuplemento`` 1) and examines it again by itself: accepted."""
    gateway = lead_examined_gateway
    partners = gateway.app[PARTNERS]  # type: ignore[index]
    partners.auto_decide = False  # the lead holds the case without answering
    app_id = (await submit(gateway, INSURANCE))["application_id"]
    case = await _until(gateway, app_id, lambda c: _state(c, "mo-fss") == "delivered")
    asked = await act(
        gateway,
        app_id,
        "acceptance",
        {"outcome": "supplement", "missing": ["EMPLOYMENT_CONTRACT"]},
        agency="mo-fss",
    )
    assert asked.status == 200, asked.body
    partners.auto_decide = True

    supplied = await act(
        gateway,
        app_id,
        "supplements",
        {"materials": [_material("EMPLOYMENT_CONTRACT", "C")]},
        agency="hk-ird",
    )
    assert supplied.status == 200, supplied.body
    assert supplied.json()["status"] == "received"

    case = await _until(gateway, app_id, lambda c: c["status"] in ("approved", "rejected"))
    accepted = next(e for e in case["timeline"] if e["type"] == "application.accepted")
    assert accepted["actor"] == "mo-fss"
    rounds = [
        (e["actor"], e.get("supplement_round"))
        for e in case["timeline"]
        if e["type"] == "message.delivered"
    ]
    assert rounds[:2] == [("mo-fss", None), ("mo-fss", 1)]


def _state(case: dict[str, Any], agency: str) -> str:
    return next(h["state"] for h in case["handlers"] if h["agency_id"] == agency)


async def _until(gateway: RunningGateway, app_id: str, done: Any) -> dict[str, Any]:
    for _ in range(300):
        case = await view(gateway, app_id)
        if done(case):
            return case  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"never got there: {case['status']} {case['handlers']}")
