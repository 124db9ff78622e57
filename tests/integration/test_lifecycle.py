"""The case lifecycle over the signed partner API, with a fixed clock, on both databases:
the lead's examination, the deemed-acceptance sweep (as of the receipt date), supplements,
withdrawal, overdue cases, and refusals that change nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.bootstrap import Overrides, create_app, sweep_deadlines
from gateway.operations import mappings_sample
from gateway.services import lifecycle
from gateway.trust.receipts import verify_receipt
from gateway.web.keys import DEPENDENCIES
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.fakes import FixedClock
from tests.support import CASE_TABLES, row_counts, send

MEDICAL = "11440300MB2C00091K3440120007000"  # acceptance: agency; lead sz-hc, reviewer hk-mchk
HENGQIN = "11440400MB2C00081P4440120002000"  # acceptance: automatic; lead gd-hq-csb
# Friday 25 September 2026, 10:00 in Guangdong: the Mid-Autumn Festival (a holiday), a few
# days before the National Day week and its make-up working Saturday (10 October).
FRIDAY = datetime(2026, 9, 25, 2, 0, tzinfo=UTC)
JSON = "application/json"


@pytest.fixture
async def quiet(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> AsyncIterator[tuple[RunningGateway, FixedClock]]:
    """A sandbox gateway with a fixed clock and no relay: cases stay where the test puts them."""
    settings = sandbox_settings(tmp_path, database, relay_enabled=False)
    clock = FixedClock(FRIDAY)
    app = create_app(settings, Overrides(clock=clock))
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    yield RunningGateway(settings, settings.base_url, app), clock
    await server.close()


def clock_of(gateway: RunningGateway) -> datetime:
    return gateway.app[DEPENDENCIES].clock.now()  # type: ignore[index,no-any-return]


async def submit(gateway: RunningGateway, code: str, document: dict[str, Any] | None = None) -> Any:
    if document is None:
        document = json.loads(mappings_sample(gateway.settings, code, "canonical", "chan-tai-man"))
    answer = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=json.dumps(document, ensure_ascii=False).encode(),
        content_type=JSON,
        now=clock_of(gateway),
    )
    assert answer.status == 202, answer.body
    return answer.json()


async def act(
    gateway: RunningGateway, app_id: str, action: str, body: Any = None, agency: str = "sz-hc"
) -> Any:
    return await send(
        gateway.settings,
        "POST",
        f"/v1/applications/{app_id}/{action}",
        agency=agency,
        body=json.dumps(body or {}, ensure_ascii=False).encode(),
        content_type=JSON,
        now=clock_of(gateway),
    )


async def view(gateway: RunningGateway, app_id: str) -> Any:
    answer = await send(
        gateway.settings, "GET", f"/v1/applications/{app_id}", now=clock_of(gateway)
    )
    return answer.json()


async def jwks(gateway: RunningGateway) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/.well-known/jwks.json") as response,
    ):
        return await response.json()


async def test_without_a_notice_in_five_working_days_the_case_is_deemed_accepted_as_of_receipt(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, clock = quiet
    received = await submit(gateway, MEDICAL)
    assert received["status"] == "received"
    case = await view(gateway, received["application_id"])
    # 5 working days in Guangdong from the Mid-Autumn Festival: 28, 29, 30 September, then
    # the National Day week off, and the 9th and the make-up working Saturday the 10th.
    assert case["deadlines"]["acceptance_due"] == "2026-10-10"

    clock.current = datetime(2026, 10, 10, 8, 0, tzinfo=UTC)  # the last day: not yet
    assert (await sweep_deadlines(gateway.app))["deemed_accepted"] == 0  # type: ignore[arg-type]
    clock.current = datetime(2026, 10, 11, 8, 0, tzinfo=UTC)
    done = await sweep_deadlines(gateway.app)  # type: ignore[arg-type]
    again = await sweep_deadlines(gateway.app)  # type: ignore[arg-type]

    assert done["deemed_accepted"] == 1
    assert again["deemed_accepted"] == 0  # once
    case = await view(gateway, received["application_id"])
    assert case["status"] == "accepted"
    accepted = next(e for e in case["timeline"] if e["type"] == "application.accepted")
    assert accepted["deemed"] is True
    assert accepted["effective"] == FRIDAY.isoformat()
    # time limits run from the receipt date: 10 working days from Friday 25 September
    assert case["deadlines"]["promised"] == accepted["deadline"] == "2026-10-16"
    voucher = next(e for e in case["timeline"] if e["type"] == "voucher.issued")
    claims = verify_receipt(voucher["voucher"], await jwks(gateway))
    assert (claims["kind"], claims["deemed"], claims["sub"]) == (
        "acceptance",
        True,
        received["application_id"],
    )
    # accepted: the reviewer gets its forward now (the lead had the case to examine)
    queued = [e["agency"] for e in case["timeline"] if e["type"] == "message.queued"]
    assert queued == ["sz-hc", "hk-mchk"]


async def test_the_lead_asks_once_for_everything_missing_then_accepts_the_supplement(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, _ = quiet
    app_id = (await submit(gateway, MEDICAL))["application_id"]

    notice = await act(
        gateway,
        app_id,
        "acceptance",
        {"outcome": "supplement", "missing": ["PRACTISING_CERTIFICATE", "APPLICATION_FORM"]},
    )
    assert notice.status == 200, notice.body
    assert notice.json()["status"] == "awaiting_supplement"
    assert notice.json()["missing"] == ["PRACTISING_CERTIFICATE", "APPLICATION_FORM"]

    not_the_lead = await act(gateway, app_id, "acceptance", {"outcome": "accepted"}, "hk-mchk")
    assert not_the_lead.status == 403
    supplied = await act(
        gateway,
        app_id,
        "supplements",
        {
            "materials": [
                {"code": "PRACTISING_CERTIFICATE", "digest": "sha-256=:" + "A" * 43 + "=:"},
                {"code": "APPLICATION_FORM", "digest": "sha-256=:" + "B" * 43 + "=:"},
            ]
        },
        agency="hk-ird",
    )
    assert supplied.status == 200, supplied.body
    assert supplied.json()["status"] == "received"  # back to the lead

    accepted = await act(gateway, app_id, "acceptance", {"outcome": "accepted"})
    assert accepted.json()["status"] == "accepted"
    case = await view(gateway, app_id)
    kinds = [e["kind"] for e in case["timeline"] if e["type"] == "voucher.issued"]
    assert kinds == ["supplement_notice", "acceptance"]
    assert case["deadlines"]["promised"] is not None


async def test_refusals_change_nothing(quiet: tuple[RunningGateway, FixedClock]) -> None:
    gateway, _ = quiet
    app_id = (await submit(gateway, MEDICAL))["application_id"]
    before = await view(gateway, app_id)
    counts = await row_counts(gateway.settings, CASE_TABLES)

    refusals = [
        (await act(gateway, app_id, "acceptance", {"outcome": "not_accepted"}), 409),
        (await act(gateway, app_id, "acceptance", {"outcome": "maybe"}), 409),
        (await act(gateway, app_id, "acceptance", {"outcome": "accepted"}, "gd-tax"), 404),
        (await act(gateway, app_id, "result", {"channel": "post"}), 409),
        (await act(gateway, app_id, "withdrawal", {}, "sz-hc"), 403),  # not the submitter
        (await act(gateway, app_id, "supplements", {"materials": []}, "hk-ird"), 409),
        (
            await act(gateway, app_id, "acceptance", {"outcome": "supplement", "missing": ["X"]}),
            422,
        ),
    ]

    assert [(r.status, want) for r, want in refusals] == [(w, w) for _, w in refusals]
    assert all(r.json()["type"].startswith(gateway.url + "/problems/") for r, _ in refusals)
    assert await view(gateway, app_id) == before
    after = await row_counts(gateway.settings, CASE_TABLES)
    assert after["applications"] == counts["applications"]
    assert after["timeline_events"] == counts["timeline_events"]
    assert after["outbox"] == counts["outbox"]


async def test_the_submitter_withdraws_and_the_case_closes(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, _ = quiet
    app_id = (await submit(gateway, MEDICAL))["application_id"]

    withdrawn = await act(gateway, app_id, "withdrawal", agency="hk-ird")

    assert withdrawn.json()["status"] == "withdrawn"
    assert (await act(gateway, app_id, "acceptance", {"outcome": "accepted"})).status == 409


async def test_an_open_case_past_its_promised_deadline_is_flagged_once(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    gateway, clock = quiet
    app_id = (await submit(gateway, HENGQIN))["application_id"]  # accepted at once
    promised = (await view(gateway, app_id))["deadlines"]["promised"]
    assert promised == "2026-09-28"  # the same working day: the next one after the festival

    clock.current = FRIDAY + timedelta(days=4)
    first = await sweep_deadlines(gateway.app)  # type: ignore[arg-type]
    second = await sweep_deadlines(gateway.app)  # type: ignore[arg-type]

    assert (first["overdue"], second["overdue"]) == (1, 0)
    case = await view(gateway, app_id)
    assert case["deadlines"]["overdue"] is True
    overdue = next(e for e in case["timeline"] if e["type"] == "deadline.overdue")
    assert overdue["waiting_for"] == ["gd-hq-csb"]


async def test_a_sweep_that_loses_a_race_for_a_case_reads_it_again_and_flags_it_once(
    quiet: tuple[RunningGateway, FixedClock],
) -> None:
    """Another writer (the relay recording a delivery, say) saves the case between the sweep's
    read and its save: the sweep's save is refused as a lost update, and the sweep reads the
    case again instead of failing for every case after it."""
    gateway, clock = quiet
    app_id = (await submit(gateway, HENGQIN))["application_id"]
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    async with deps.uow() as uow:
        stale = await uow.applications.get(app_id)  # what the sweep is about to read ...
    async with deps.uow() as uow:
        await uow.applications.save(await uow.applications.get(app_id))  # ... moved meanwhile
        await uow.commit()
    reads: list[str] = []

    class FirstReadStale:
        def __init__(self, inner: Any) -> None:
            self._inner = inner

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

        async def get(self, application_id: str) -> Any:
            reads.append(application_id)
            fresh = await self._inner.get(application_id)
            return stale if len(reads) == 1 else fresh

    class Racing:
        def __init__(self) -> None:
            self._uow = deps.uow()

        async def __aenter__(self) -> Any:
            uow = await self._uow.__aenter__()
            uow.applications = FirstReadStale(uow.applications)
            return uow

        async def __aexit__(self, *exc: Any) -> None:
            await self._uow.__aexit__(*exc)

    clock.current = FRIDAY + timedelta(days=4)
    done = await lifecycle.sweep(replace(deps, uow=Racing))

    assert reads == [app_id, app_id]  # refused once, read again
    assert done["overdue"] == 1
    case = await view(gateway, app_id)
    assert case["deadlines"]["overdue"] is True
    assert [e["type"] for e in case["timeline"]].count("deadline.overdue") == 1
