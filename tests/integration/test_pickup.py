"""Results collected at a counter or kiosk with a pickup code (Art. 17, 22), on SQLite and
PostgreSQL: the lead makes the decided result ready for pickup; a short random code goes to
the applicant's side only (the case keeps its hash); the counter confirms the pickup with the
code through a signed call; a wrong code is refused and counted, and the code is locked
after five.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from typing import Any

from gateway.operations import mappings_sample
from gateway.store.database import create_engine
from gateway.store.tables import applications, notifications
from tests.conftest import RunningGateway
from tests.support import send

HENGQIN = "11440400MB2C00081P4440120002000"  # automatic acceptance; gd-hq-csb approves
JSON = "application/json"
COUNTER = 'counter;point="GZ-HQ-01";officer="OFF-0007";document=HKID'


async def _decided(gateway: RunningGateway) -> str:
    """A case submitted by hk-ird and approved by its lead's sandbox system."""
    body = mappings_sample(gateway.settings, HENGQIN, "canonical", "chan-tai-man")
    answer = await send(gateway.settings, "POST", "/v1/applications", body=body, content_type=JSON)
    assert answer.status == 202, answer.body
    application_id = str(answer.json()["application_id"])
    for _ in range(150):
        view = await send(gateway.settings, "GET", f"/v1/applications/{application_id}")
        if view.json()["status"] == "approved":
            return application_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"not approved: {view.json()['status']}")


async def _post(
    gateway: RunningGateway, path: str, agency: str, body: Any, channel: str | None = None
) -> Any:
    return await send(
        gateway.settings,
        "POST",
        path,
        agency=agency,
        body=json.dumps(body).encode(),
        content_type=JSON,
        headers={"GBA-Channel": channel} if channel else None,
    )


async def _stored(gateway: RunningGateway, application_id: str) -> tuple[Any, list[Any]]:
    settings = gateway.settings
    engine = create_engine(settings.database_url, schema=settings.database_schema or None)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(applications.select().where(applications.c.id == application_id))
            ).one()
            told = (
                await conn.execute(
                    notifications.select().where(notifications.c.application_id == application_id)
                )
            ).all()
    finally:
        await engine.dispose()
    return row, list(told)


async def _timeline(gateway: RunningGateway, application_id: str) -> list[dict[str, Any]]:
    view = await send(gateway.settings, "GET", f"/v1/applications/{application_id}")
    return list(view.json()["timeline"])


async def test_a_result_is_collected_at_the_counter_with_its_pickup_code(
    gateway: RunningGateway,
) -> None:
    application_id = await _decided(gateway)
    result = f"/v1/applications/{application_id}/result"
    pickup = f"/v1/applications/{application_id}/pickup"

    ready = await _post(gateway, result, "gd-hq-csb", {"channel": "pickup"})

    assert ready.status == 200, ready.body
    assert ready.json()["status"] == "approved"  # not delivered until collected
    row, told = await _stored(gateway, application_id)
    codes = [n.body["pickup_code"] for n in told if "pickup_code" in n.body]
    # the applicant's side only: the submitting agency and whoever the case's document is
    # linked to; not the lead
    assert sorted(n.recipient for n in told if "pickup_code" in n.body) == ["applicant", "hk-ird"]
    (code,) = set(codes)
    assert len(code) == 8
    assert row.pickup_hash == hashlib.sha256(f"{application_id}:{code}".encode()).hexdigest()
    assert code not in json.dumps(await _timeline(gateway, application_id))
    assert code not in ready.body.decode()

    wrong = await _post(gateway, pickup, "hk-ird", {"code": "ZZZZ2222"}, COUNTER)

    assert wrong.status == 422
    assert [e["code"] for e in wrong.json()["errors"]] == ["wrong_pickup_code"]
    assert "4 attempt(s) left" in wrong.json()["errors"][0]["message"]["en"]
    row, _ = await _stored(gateway, application_id)
    assert (row.status, row.pickup_attempts) == ("approved", 1)

    collected = await _post(gateway, pickup, "hk-ird", {"code": code.lower()}, COUNTER)

    assert collected.status == 200, collected.body
    assert collected.json()["status"] == "result_delivered"
    timeline = await _timeline(gateway, application_id)
    kinds = [e["type"] for e in timeline]
    assert "application.result_ready_for_pickup" in kinds
    assert "application.pickup_refused" in kinds
    delivered = next(e for e in timeline if e["type"] == "application.result_delivered")
    assert delivered["picked_up"] is True
    assert (delivered["service_point"], delivered["officer"]) == ("GZ-HQ-01", "OFF-0007")
    row, _ = await _stored(gateway, application_id)
    assert row.pickup_hash is None

    again = await _post(gateway, pickup, "hk-ird", {"code": code}, COUNTER)
    assert again.status == 409  # collected once


async def test_five_wrong_codes_lock_the_pickup(gateway: RunningGateway) -> None:
    application_id = await _decided(gateway)
    ready = await _post(
        gateway, f"/v1/applications/{application_id}/result", "gd-hq-csb", {"channel": "kiosk"}
    )
    assert ready.status == 200, ready.body
    _, told = await _stored(gateway, application_id)
    (code,) = {n.body["pickup_code"] for n in told if "pickup_code" in n.body}
    pickup = f"/v1/applications/{application_id}/pickup"
    kiosk = 'kiosk;point="GZ-HQ-01";device="K-01"'

    answers = [
        await _post(gateway, pickup, "hk-ird", {"code": "WRONG234"}, kiosk) for _ in range(5)
    ]
    locked = await _post(gateway, pickup, "hk-ird", {"code": code}, kiosk)
    stranger = await _post(gateway, pickup, "mo-dsf", {"code": code}, kiosk)

    assert [a.status for a in answers] == [422] * 5
    assert locked.status == 409  # even the right code, once locked
    assert stranger.status == 404  # not a party to the case
    row, _ = await _stored(gateway, application_id)
    assert (row.status, row.pickup_attempts) == ("approved", 5)
    refused = [
        e
        for e in await _timeline(gateway, application_id)
        if e["type"] == "application.pickup_refused"
    ]
    assert [e["attempts_left"] for e in refused] == [4, 3, 2, 1, 0]
    assert refused[0]["device"] == "K-01"

    # the lead draws a new code for the locked pickup; the old one is dead, the new one works
    result = f"/v1/applications/{application_id}/result"
    other = await _post(gateway, result, "hk-ird", {"channel": "kiosk"})
    assert other.status in (403, 404)  # only the lead
    reissued = await _post(gateway, result, "gd-hq-csb", {"channel": "kiosk"})
    assert reissued.status == 200, reissued.body
    row, told = await _stored(gateway, application_id)
    assert row.pickup_attempts == 0
    codes = {n.body["pickup_code"] for n in told if "pickup_code" in n.body}
    (new,) = codes - {code}
    old = await _post(gateway, pickup, "hk-ird", {"code": code}, kiosk)
    assert old.status == 422
    collected = await _post(gateway, pickup, "hk-ird", {"code": new}, kiosk)
    assert collected.status == 200, collected.body
    ready_events = [
        e
        for e in await _timeline(gateway, application_id)
        if e["type"] == "application.result_ready_for_pickup"
    ]
    assert [e.get("reissued") for e in ready_events] == [None, True]


async def test_a_pickup_call_needs_a_code(gateway: RunningGateway) -> None:
    application_id = await _decided(gateway)
    pickup = f"/v1/applications/{application_id}/pickup"

    empty = await _post(gateway, pickup, "hk-ird", {"cod": "x"})

    assert empty.status == 422
    assert {(e["pointer"], e["code"]) for e in empty.json()["errors"]} == {
        ("/cod", "unexpected_field"),
        ("/code", "required"),
    }
    waiting = await _post(gateway, pickup, "hk-ird", {"code": "ABCD2345"})
    assert waiting.status == 409  # no result waits for its pickup yet
