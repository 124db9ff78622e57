"""Every channel real (Art. 17, 18), on SQLite and PostgreSQL: a partner call states its
channel in the signed ``GBA-Channel`` header; a counter files a case by the identity document
its officer inspected in person, without any online login, at ``high`` assurance, and the
resident sees that case once a login links the document; a matter refuses the channels it
does not list, for partners and residents alike; the progress is the same on every channel.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from gateway.domain.commands import Caller
from gateway.domain.errors import ValidationFailedError
from gateway.domain.matters import Assurance
from gateway.domain.values import local_date
from gateway.sandbox.personas import persona
from gateway.sandbox.samples import canonical_sample
from gateway.services import queries
from gateway.services.identity import sign_in
from gateway.trust.jws import unverified
from gateway.trust.profile import sign_request
from gateway.web.keys import DEPENDENCIES
from tests.conftest import RunningGateway
from tests.integration.test_residents import CONSENT, IN_PERSON, chan_at_hk, submit
from tests.support import CASE_TABLES, agency_key, row_counts, send

RESIDENCE_PERMIT = IN_PERSON  # channels: [counter]
COUNTER = 'counter;point="GZ-TH-PSB-01";officer="OFF-0042";document=HKID'


def _body(gateway: RunningGateway, code: str) -> bytes:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    matter = deps.catalog.get(code, local_date(deps.clock.now()))
    return json.dumps(canonical_sample(matter, persona("chan-tai-man"))).encode()


async def _submit(gateway: RunningGateway, code: str, channel: str | None) -> Any:
    headers = {"GBA-Channel": channel} if channel is not None else {}
    return await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=_body(gateway, code),
        content_type="application/json",
        headers=headers,
    )


async def test_a_counter_files_by_the_inspected_document_without_any_login(
    gateway: RunningGateway,
) -> None:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]

    answer = await _submit(gateway, RESIDENCE_PERMIT, COUNTER)

    assert answer.status == 202, answer.body
    body = answer.json()
    claims = unverified(body["receipt"]).claims  # its signature is tested elsewhere
    assert claims["channel"] == {
        "channel": "counter",
        "service_point": "GZ-TH-PSB-01",
        "officer": "OFF-0042",
        "identity_inspected": "HKID",
    }
    async with deps.uow() as uow:
        app = await uow.applications.get(body["application_id"])
        assert await uow.identities.links_of("nobody") == []
    assert app is not None
    assert app.channel == "counter"
    assert app.applicant_id is None  # no login: the officer identified the applicant
    assert app.filed_assurance is Assurance.HIGH
    assert app.identified_by == ("HKID", "A1234563")
    view = await queries.application_view(deps, Caller("hk-ird", "HK", "k"), app.id)
    received = view["timeline"][0]
    assert view["channel"] == "counter"
    assert received["type"] == "application.received"
    assert (received["service_point"], received["officer"]) == ("GZ-TH-PSB-01", "OFF-0042")
    assert received["identity_inspected"] == "HKID"


async def test_the_resident_sees_the_counter_case_once_a_login_links_the_document(
    gateway: RunningGateway,
) -> None:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    filed = (await _submit(gateway, RESIDENCE_PERMIT, COUNTER)).json()
    application_id = filed["application_id"]

    chan = await sign_in(chan_at_hk(), deps)  # later, online: the HKID is linked to him
    resident = Caller.resident(chan.person_id, chan.login_id)
    stranger = await sign_in(
        chan_at_hk(sub="TA-OTHER", idNo={"Identification": "C668668", "CheckDigit": "9"}), deps
    )

    own = await queries.own_applications(
        deps, chan.person_id, limit=10, after=None, login_id=chan.login_id
    )
    assert [item["application_id"] for item in own["items"]] == [application_id]
    theirs = await queries.own_applications(
        deps, stranger.person_id, limit=10, after=None, login_id=stranger.login_id
    )
    assert theirs["items"] == []
    # Art. 22: the progress answers identically on every channel: online, the counter agency
    # in process, and its signed call over HTTP. The sandbox agencies move the case meanwhile,
    # so the three are read again until no move fell between them.
    progress = ("status", "matter", "channel", "missing", "handlers", "deadlines", "timeline")
    for _ in range(100):
        online = await queries.application_view(deps, resident, application_id)
        counter = await queries.application_view(deps, Caller("hk-ird", "HK", "k"), application_id)
        signed = await send(gateway.settings, "GET", f"/v1/applications/{application_id}")
        assert signed.status == 200
        views = [{k: v[k] for k in progress} for v in (online, counter, signed.json())]
        if views[0] == views[1] == views[2]:
            break
        await asyncio.sleep(0.05)
    assert {k: online[k] for k in progress} == {k: counter[k] for k in progress}
    assert {k: signed.json()[k] for k in progress} == {k: online[k] for k in progress}


async def test_a_matter_refuses_a_channel_it_does_not_list_and_stores_nothing(
    gateway: RunningGateway,
) -> None:
    before = await row_counts(gateway.settings, CASE_TABLES)

    online = await _submit(gateway, RESIDENCE_PERMIT, None)  # no header: online
    kiosk = await _submit(gateway, RESIDENCE_PERMIT, 'kiosk;point="GZ-01";device="K-7"')

    for refused in (online, kiosk):
        assert refused.status == 422, refused.body
        problem = refused.json()
        errors = [e for e in problem["errors"] if e["code"] == "channel_not_offered"]
        assert len(errors) == 1
        assert errors[0]["message"]["en"].endswith(": counter")
    assert await row_counts(gateway.settings, CASE_TABLES) == before


async def test_a_resident_cannot_file_a_counter_only_matter_online(
    gateway: RunningGateway,
) -> None:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    chan = await sign_in(chan_at_hk(), deps)
    before = await row_counts(gateway.settings, CASE_TABLES)

    with pytest.raises(ValidationFailedError) as refused:
        await submit(gateway, chan, RESIDENCE_PERMIT, "key-counter-only-1", consent=CONSENT)

    assert [e.code for e in refused.value.errors] == ["channel_not_offered"]
    assert await row_counts(gateway.settings, CASE_TABLES) == before


async def test_a_counter_call_must_name_its_officer_and_sign_its_channel(
    gateway: RunningGateway,
) -> None:
    before = await row_counts(gateway.settings, CASE_TABLES)

    incomplete = await _submit(gateway, RESIDENCE_PERMIT, 'counter;point="GZ-01"')
    elsewhere = await _submit(
        gateway, RESIDENCE_PERMIT, 'counter;point="GZ-01";officer="OFF-1";document=CN_RIC'
    )
    unknown = await _submit(gateway, RESIDENCE_PERMIT, "post")

    assert incomplete.status == 422
    pointers = {(e["pointer"], e["code"]) for e in incomplete.json()["errors"]}
    assert pointers == {
        ("/headers/gba-channel/officer", "required"),
        ("/headers/gba-channel/document", "required"),
    }
    assert elsewhere.status == 422
    assert [e["code"] for e in elsewhere.json()["errors"]] == [
        "inspected_document_not_in_application"
    ]
    assert unknown.status == 422
    assert [e["code"] for e in unknown.json()["errors"]] == ["unknown_channel"]
    assert await row_counts(gateway.settings, CASE_TABLES) == before


async def test_a_channel_header_outside_the_signature_is_refused(gateway: RunningGateway) -> None:
    """A counter's claim cannot be added by whoever relays the request: it must be signed."""
    before = await row_counts(gateway.settings, CASE_TABLES)
    url = gateway.settings.base_url + "/v1/applications"
    body = _body(gateway, RESIDENCE_PERMIT)
    headers = sign_request(
        method="POST",
        url=url,
        key=agency_key(gateway.settings, "hk-ird"),
        now=datetime.now(UTC),
        body=body,
        content_type="application/json",
        idempotency_key="key-unsigned-channel",
    )
    headers["GBA-Channel"] = COUNTER  # added after signing
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        status = response.status

    assert status == 401
    assert await row_counts(gateway.settings, CASE_TABLES) == before
