"""Notifications (Art. 22): who is told of which milestone, what a resident reads, and how the
dispatcher hands them over (retry later, give up, survive cancellation)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import pytest

from gateway.domain.agencies import Agency
from gateway.domain.application import Application
from gateway.domain.errors import PermanentDeliveryError, TransientDeliveryError
from gateway.services.notifications import Dispatcher, DispatchPolicy, recipients, record
from gateway.services.ports import Notification

AT = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)


def _app(*, resident: bool) -> Application:
    app = Application.receive(
        application_id="app_01NOTIFY",
        matter="11440400MB2C00081P4440120002000",
        matter_version=1,
        submitted_by="resident:per_1" if resident else "hk-ird",
        channel="online",
        source_format="canonical",
        content_digest="sha-256=:AA==:",
        document={},
        handlers=("gd-hq-csb", "gd-hq-tax"),
        missing=(),
        deadline="2026-03-10",
        at=AT,
        applicant_id="per_1" if resident else None,
    )
    app.pending_events.clear()
    return app


class Rows:
    """The notifications table in memory: just what the dispatcher and ``record`` use."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    async def add(self, n: Notification) -> None:
        self.rows[n.id] = {"n": n, "status": "pending", "due": n.created_at, "lease": None}

    async def claim(self, now: datetime, *, limit: int, lease_seconds: int) -> list[Notification]:
        taken = []
        for row in self.rows.values():
            due = (row["status"] == "pending" and row["due"] <= now) or (
                row["status"] == "in_flight" and row["lease"] < now
            )
            if due and len(taken) < limit:
                row["status"], row["lease"] = "in_flight", now + timedelta(seconds=lease_seconds)
                taken.append(row["n"])
        return taken

    async def delivered(self, notification_id: str, at: datetime) -> bool:
        row = self.rows[notification_id]
        ok = row["status"] == "in_flight"
        if ok:
            row["status"] = "delivered"
        return ok

    async def retry_later(self, notification_id: str, at: datetime, error: str) -> None:
        row = self.rows[notification_id]
        row.update(status="pending", due=at, error=error)
        row["n"].attempts += 1

    async def dead(self, notification_id: str, error: str) -> None:
        self.rows[notification_id].update(status="dead", error=error)


class Agencies:
    async def get(self, agency_id: str) -> Agency | None:
        return Agency(agency_id, "GD", {}) if agency_id != "gone" else None


class Uow:
    def __init__(self, rows: Rows) -> None:
        self.notifications, self.agencies = rows, Agencies()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    async def commit(self) -> None:
        return None


class Clock:
    def __init__(self) -> None:
        self.at = AT

    def now(self) -> datetime:
        return self.at


class Recorder:
    def __init__(self, *failures: Exception) -> None:
        self.failures = list(failures)
        self.got: list[tuple[str | None, str]] = []

    async def notify(self, agency: Agency | None, notification: Notification) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.got.append((agency and agency.id, notification.recipient))


def _notification(recipient: str = "hk-ird", n: int = 1) -> Notification:
    return Notification(f"ntf_{n}", "app_1", recipient, "application.approved", {}, AT)


# ---- recipients and rows -------------------------------------------------------------


def test_an_agency_case_tells_the_submitting_agency() -> None:
    app = _app(resident=False)
    app.withdraw("hk-ird", AT)
    (withdrawn,) = app.pending_events
    assert recipients(app, withdrawn) == ["hk-ird", "applicant", "gd-hq-csb", "gd-hq-tax"]


def test_a_residents_case_tells_the_resident_and_a_complaint_tells_the_lead() -> None:
    app = _app(resident=True)
    app.complaint_filed("cmp_1", "resident:per_1", AT)
    (filed,) = app.pending_events
    assert recipients(app, filed) == ["resident:per_1", "gd-hq-csb"]


async def test_record_writes_one_row_per_recipient_with_the_message_for_residents() -> None:
    app = _app(resident=True)
    app.withdraw("resident:per_1", AT)
    rows = Rows()

    assert await record(app, Uow(rows), AT) == 3  # type: ignore[arg-type]

    told = {r["n"].recipient: r["n"].body for r in rows.rows.values()}
    assert set(told) == {"resident:per_1", "gd-hq-csb", "gd-hq-tax"}
    resident = told["resident:per_1"]
    assert resident["event"] == "application.withdrawn"
    assert resident["status"] == "withdrawn"
    assert set(resident["message"]) == {"zh-Hant", "zh-Hans", "en", "pt"}
    assert "message" not in told["gd-hq-csb"]
    assert {"notification_id", "application_id", "event", "status", "at", "recipient"} <= set(
        told["gd-hq-csb"]
    )


async def test_events_that_are_not_milestones_write_nothing() -> None:
    app = _app(resident=False)
    app.message_queued("gd-hq-csb", "msg_1", AT)
    rows = Rows()
    assert await record(app, Uow(rows), AT) == 0  # type: ignore[arg-type]
    assert rows.rows == {}


async def test_forwards_withheld_put_the_case_on_hold_told_once_to_who_can_act() -> None:
    """Two forwards withheld in one move: the resident is told once that the case waits for
    a consent; an agency's case withheld for want of a basis tells the submitting agency."""
    app = _app(resident=True)
    app.forward_withheld("gd-hq-csb", "consent_withdrawn", AT, "msg_1")
    app.forward_withheld("gd-hq-tax", "consent_withdrawn", AT, "msg_2")
    rows = Rows()

    assert await record(app, Uow(rows), AT) == 1  # type: ignore[arg-type]

    [told] = [r["n"] for r in rows.rows.values()]
    assert told.recipient == "resident:per_1"
    assert (told.body["event"], told.body["reason"]) == ("message.withheld", "consent_withdrawn")
    assert set(told.body["message"]) == {"zh-Hant", "zh-Hans", "en", "pt"}
    agency_case = _app(resident=False)
    agency_case.forward_withheld("gd-hq-csb", "no_legal_basis", AT)
    (held,) = agency_case.pending_events
    assert recipients(agency_case, held) == ["hk-ird"]


# ---- the dispatcher --------------------------------------------------------------------


def _dispatcher(rows: Rows, notifier: Recorder, clock: Clock) -> Dispatcher:
    policy = DispatchPolicy(lease_seconds=30, max_attempts=3, backoff_max=10.0)
    return Dispatcher(lambda: Uow(rows), notifier, clock, policy)  # type: ignore[arg-type]


async def test_a_transient_failure_is_retried_later_then_delivered() -> None:
    rows, clock = Rows(), Clock()
    notifier = Recorder(TransientDeliveryError("503"))
    await rows.add(_notification())
    dispatcher = _dispatcher(rows, notifier, clock)

    assert await dispatcher.run_once() == 1
    assert rows.rows["ntf_1"]["status"] == "pending"
    assert rows.rows["ntf_1"]["due"] > AT
    assert await dispatcher.run_once() == 0  # not due yet

    clock.at = AT + timedelta(seconds=11)
    assert await dispatcher.run_once() == 1
    assert rows.rows["ntf_1"]["status"] == "delivered"
    assert notifier.got == [("hk-ird", "hk-ird")]


async def test_permanent_failures_and_unknown_agencies_are_dead_letters() -> None:
    rows, clock = Rows(), Clock()
    await rows.add(_notification("hk-ird", 1))
    await rows.add(_notification("gone", 2))
    await _dispatcher(rows, Recorder(PermanentDeliveryError("410")), clock).run_once()
    assert [r["status"] for r in rows.rows.values()] == ["dead", "dead"]


async def test_a_resident_notification_is_handed_over_without_an_agency() -> None:
    rows, notifier = Rows(), Recorder()
    await rows.add(_notification("resident:per_1"))
    await _dispatcher(rows, notifier, Clock()).run_once()
    assert notifier.got == [(None, "resident:per_1")]


async def test_cancelled_mid_hand_over_it_records_nothing_and_the_lease_brings_it_back() -> None:
    rows, clock = Rows(), Clock()
    await rows.add(_notification())
    started = asyncio.Event()

    class Hanging(Recorder):
        async def notify(self, agency: Agency | None, notification: Notification) -> None:
            started.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(_dispatcher(rows, Hanging(), clock).run())
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert rows.rows["ntf_1"]["status"] == "in_flight"

    notifier = Recorder()
    assert await _dispatcher(rows, notifier, clock).run_once() == 0  # the lease holds
    clock.at = AT + timedelta(seconds=31)
    assert await _dispatcher(rows, notifier, clock).run_once() == 1
    assert rows.rows["ntf_1"]["status"] == "delivered"
    assert len(notifier.got) == 1
