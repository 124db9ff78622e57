"""Residents told (Art. 22) on both databases: each milestone e-mailed through a real SMTP
server (the sandbox's aiosmtpd sink) and texted to the SMS sink, in the language the resident
chose; a transient SMTP failure retried through the notification queue; and an
agency-submitted case seen by its applicant once a login of sufficient assurance links the
document it names."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import sqlalchemy as sa

from gateway.domain.values import local_date
from gateway.operations import mappings_sample
from gateway.sandbox.personas import persona
from gateway.sandbox.portal import SandboxPortal
from gateway.sandbox.samples import canonical_sample
from gateway.store.tables import audit_log, resident_contacts
from gateway.web.keys import DEPENDENCIES, STORE
from tests.conftest import RunningGateway
from tests.support import send

HENGQIN = "11440400MB2C00081P4440120002000"  # substantial; automatic acceptance
MEDICAL = "11440300MB2C00091K3440120007000"  # high; the lead examines it
JSON = "application/json"
CONSENT = {
    "categories": ["identity", "contact", "address", "application", "materials"],
    "destinations": ["GD"],
}
EMAIL = "chan.taiman@example.hk"


async def _call(
    gateway: RunningGateway, method: str, path: str, token: str, body: Any = None, key: str = ""
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    if key:
        headers["Idempotency-Key"] = key
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, gateway.url + path, json=body, headers=headers) as response,
    ):
        text = await response.text()
        return response.status, json.loads(text) if text.startswith(("{", "[")) else text


async def _sandbox(gateway: RunningGateway, method: str = "GET", body: Any = None) -> Any:
    path = "/sandbox/v1/mailbox" + ("/faults" if method == "POST" else "")
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, gateway.url + path, json=body) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


async def _until(check: Any, what: str, tries: int = 200) -> Any:
    for _ in range(tries):
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


async def _login(gateway: RunningGateway, idp: str, who: str) -> str:
    portal = await SandboxPortal.register(gateway.url)
    return (await portal.login(idp, who)).access_token


async def _apply(gateway: RunningGateway, token: str, who: str, key: str) -> str:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    matter = deps.catalog.get(HENGQIN, local_date(deps.clock.now()))
    sample = canonical_sample(matter, persona(who))
    application = {k: v for k, v in sample.items() if k != "applicant"}
    body = {"application": application, "consent": CONSENT}
    status, submitted = await _call(gateway, "POST", "/v1/me/applications", token, body, key)
    assert status == 202, submitted
    return str(submitted["application_id"])


async def _emails_of(gateway: RunningGateway, app_id: str) -> list[dict[str, Any]]:
    return [m for m in (await _sandbox(gateway))["emails"] if app_id in m["text"]]


async def test_each_milestone_is_emailed_through_smtp_in_the_residents_language(
    gateway: RunningGateway,
) -> None:
    token = await _login(gateway, "hk", "chan-tai-man")
    chosen = {"email": EMAIL, "channels": ["email"], "language": "pt"}
    status, held = await _call(gateway, "PUT", "/v1/me/contact", token, chosen)
    assert status == 200, held
    assert (held["channels"], held["language"]) == (["email"], "pt")
    app_id = await _apply(gateway, token, "chan-tai-man", "told-email-1")

    async def approved() -> list[dict[str, Any]]:  # dispatched concurrently: in any order
        mails = await _emails_of(gateway, app_id)
        said = [m["text"] for m in mails]
        both = any("deferido" in t for t in said) and any("foi aceite" in t for t in said)
        return mails if both else []

    mails = await _until(approved, "the acceptance and the approval e-mailed")
    accepted = [m for m in mails if "O seu pedido foi aceite." in m["text"]]
    assert len(accepted) == 1
    mail = accepted[0]
    assert mail["to"] == [EMAIL]
    assert mail["subject"] == "Serviços transfronteiriços da Grande Baía: novidades do seu pedido"
    assert f"/me/applications/{app_id}" in mail["text"]
    assert "受理" not in mail["text"]
    assert "accepted" not in mail["text"]
    assert persona("chan-tai-man").name_original not in mail["text"]  # no personal data
    # The same notifications are still read at the gateway, whatever was pushed.
    _, page = await _call(gateway, "GET", "/v1/me/notifications", token)
    assert {"application.accepted", "application.approved"} <= {n["event"] for n in page["items"]}
    assert page["items"][0]["message"]["pt"]
    # The console lists what the sinks received, for a tester to read.
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/sandbox/console/notifications?lang=en") as response,
    ):
        console = await response.text()
    assert response.status == 200
    assert "Messages received by the sandbox e-mail and SMS sinks" in console
    assert "novidades do seu pedido" in console
    assert "O seu pedido foi aceite." in console


async def test_contact_preferences_are_checked_whole_and_a_refusal_keeps_nothing(
    gateway: RunningGateway,
) -> None:
    token = await _login(gateway, "hk", "chan-tai-man")
    status, before = await _call(gateway, "GET", "/v1/me/contact", token)
    assert (status, before["channels"]) == (200, [])
    bad = {"email": "not-an-address", "phone": "9123 4567", "channels": ["fax"], "language": "fr"}
    status, problem = await _call(gateway, "PUT", "/v1/me/contact", token, {**bad, "extra": 1})
    assert status == 422, problem
    pointers = sorted(e["pointer"] for e in problem["errors"])
    assert pointers == ["/channels", "/email", "/extra", "/language", "/phone"]
    status, missing = await _call(gateway, "PUT", "/v1/me/contact", token, {"channels": ["sms"]})
    assert status == 422
    assert [e["pointer"] for e in missing["errors"]] == ["/phone"]
    async with gateway.app[STORE]() as uow:  # type: ignore[index]
        rows = (await uow._conn.execute(sa.select(resident_contacts))).all()  # type: ignore[attr-defined]
    assert rows == []
    status, _ = await _call(gateway, "PUT", "/v1/me/contact", token, {"email": EMAIL})
    assert status == 200
    async with gateway.app[STORE]() as uow:  # type: ignore[index]
        chain = (await uow._conn.execute(sa.select(audit_log))).all()  # type: ignore[attr-defined]
    assert any("resident.contact_set" in str(row) for row in chain)
    assert not any(EMAIL in str(row) for row in chain)  # the address never on the chain


async def test_a_transient_smtp_failure_is_retried_through_the_queue(
    gateway: RunningGateway,
) -> None:
    token = await _login(gateway, "hk", "chan-tai-man")
    chosen = {"email": EMAIL, "channels": ["email"], "language": "zh-Hant"}
    assert (await _call(gateway, "PUT", "/v1/me/contact", token, chosen))[0] == 200
    await _sandbox(gateway, "POST", {"defer": 1})  # the next message is answered 451
    app_id = await _apply(gateway, token, "chan-tai-man", "told-retry-1")

    async def both() -> list[dict[str, Any]]:
        mails = await _emails_of(gateway, app_id)
        said = [m["text"] for m in mails]
        done = any("您的申請已獲受理。" in t for t in said) and any("已獲批准" in t for t in said)
        return mails if done else []

    mails = await _until(both, "acceptance and approval e-mailed, one after a retry")
    assert (await _sandbox(gateway))["deferred"] == 1
    assert len(mails) == 2  # each milestone once: the deferred one was sent again, not twice
    assert all(m["subject"].startswith("大灣區跨境政務服務") for m in mails)

    async def recorded() -> list[Any]:  # the sink answers before the queue marks the row
        async with gateway.app[STORE]() as uow:  # type: ignore[index]
            rows = await uow.notifications.listing(application_id=app_id)
        resident = [n for n in rows if n.recipient.startswith("resident:")]
        return resident if {n.status for n in resident} == {"delivered"} else []

    resident = await _until(recorded, "both resident notifications marked delivered")
    assert sorted(n.attempts for n in resident) == [0, 1], [(n.event, n.attempts) for n in resident]


async def test_a_text_message_reaches_the_sms_sink_in_the_residents_language(
    gateway: RunningGateway,
) -> None:
    token = await _login(gateway, "hk", "chan-tai-man")
    chosen = {"phone": "+85291234567", "channels": ["sms"], "language": "zh-Hans"}
    assert (await _call(gateway, "PUT", "/v1/me/contact", token, chosen))[0] == 200
    app_id = await _apply(gateway, token, "chan-tai-man", "told-sms-1")

    async def texted() -> list[dict[str, Any]]:
        return [m for m in (await _sandbox(gateway))["sms"] if app_id in m["text"]]

    async def approved() -> list[dict[str, Any]]:  # dispatched concurrently: in any order
        found = await texted()
        said = [m["text"] for m in found]
        both = any("您的申请已获批准。" in t for t in said) and any("已获受理" in t for t in said)
        return found if both else []

    sms = await _until(approved, "the acceptance and the approval texted")
    assert {m["to"] for m in sms} == {"+85291234567"}
    assert any(m["text"].startswith("您的申请已获受理。") for m in sms)
    assert not [m for m in (await _sandbox(gateway))["emails"] if app_id in m["text"]]


async def _agency_submits(gateway: RunningGateway, matter: str, who: str) -> str:
    document = mappings_sample(gateway.settings, matter, "canonical", who)
    answer = await send(
        gateway.settings, "POST", "/v1/applications", body=document, content_type=JSON
    )
    assert answer.status == 202, answer.body
    return str(answer.json()["application_id"])


async def _sees(gateway: RunningGateway, token: str, app_id: str) -> tuple[bool, int, int]:
    _, page = await _call(gateway, "GET", "/v1/me/applications", token)
    listed = app_id in [a["application_id"] for a in page["items"]]
    detail, _ = await _call(gateway, "GET", f"/v1/me/applications/{app_id}", token)
    progress, _ = await _call(gateway, "GET", f"/me/applications/{app_id}", token)
    return listed, detail, progress


async def test_an_agency_submitted_case_is_seen_after_a_login_that_links_its_document(
    gateway: RunningGateway,
) -> None:
    high_case = await _agency_submits(gateway, HENGQIN, "zhang-wei")
    low_case = await _agency_submits(gateway, HENGQIN, "wong-siu-ming")
    strict_case = await _agency_submits(gateway, MEDICAL, "chan-tai-man")

    zhang = await _login(gateway, "guangdong", "zhang-wei")  # high: links the CN RIC
    assert await _sees(gateway, zhang, high_case) == (True, 200, 200)
    _, view = await _call(gateway, "GET", f"/v1/me/applications/{high_case}", zhang)
    assert view["timeline"][0]["type"] == "application.received"
    assert await _sees(gateway, zhang, low_case) == (False, 404, 404)  # someone else's

    wong = await _login(gateway, "hk", "wong-siu-ming")  # low: its HKID links no one
    assert await _sees(gateway, wong, low_case) == (False, 404, 404)

    chan = await _login(gateway, "hk", "chan-tai-man")  # substantial; the matter needs high
    assert await _sees(gateway, chan, strict_case) == (False, 404, 404)
    # Seeing is not acting: the case stays the submitting agency's.
    status, _ = await _call(
        gateway,
        "POST",
        f"/v1/me/applications/{high_case}/withdrawal",
        zhang,
        {},
        "withdraw-named-case-1",
    )
    assert status in (403, 404)


async def test_the_resident_behind_an_agency_case_is_told_of_its_milestones(
    gateway: RunningGateway,
) -> None:
    zhang = await _login(gateway, "guangdong", "zhang-wei")  # high: links the CN RIC
    chosen = {"email": "zhang.wei@example.cn", "channels": ["email"], "language": "en"}
    assert (await _call(gateway, "PUT", "/v1/me/contact", zhang, chosen))[0] == 200
    chan = await _login(gateway, "hk", "chan-tai-man")  # substantial: below MEDICAL's high
    mine = {"email": EMAIL, "channels": ["email"]}
    assert (await _call(gateway, "PUT", "/v1/me/contact", chan, mine))[0] == 200
    zhang_case = await _agency_submits(gateway, HENGQIN, "zhang-wei")
    strict_case = await _agency_submits(gateway, MEDICAL, "chan-tai-man")

    async def approved() -> list[dict[str, Any]]:
        mails = await _emails_of(gateway, zhang_case)
        return mails if any("approved" in m["text"] for m in mails) else []

    mails = await _until(approved, "the approval of the agency's case e-mailed to its applicant")
    assert {tuple(m["to"]) for m in mails} == {("zhang.wei@example.cn",)}
    assert any("Your application has been accepted." in m["text"] for m in mails)
    assert persona("zhang-wei").name_original not in "".join(m["text"] for m in mails)

    async def told(app_id: str) -> list[Any]:  # every applicant notification handled
        async with gateway.app[STORE]() as uow:  # type: ignore[index]
            rows = await uow.notifications.listing(application_id=app_id)
        mine = [n for n in rows if n.recipient == "applicant"]
        return mine if mine and {n.status for n in mine} == {"delivered"} else []

    await _until(lambda: told(zhang_case), "the applicant's notifications delivered")
    assert await _until(lambda: told(strict_case), "the strict case's applicant notifications")
    # chan's HKID was linked at substantial; the matter needs high: no one is told
    assert await _emails_of(gateway, strict_case) == []

    # and each reads them at /v1/me/notifications: zhang the milestones of the case naming
    # him, chan nothing of the case he may not see
    status, listed = await _call(gateway, "GET", "/v1/me/notifications", zhang)
    assert status == 200
    about = [n for n in listed["items"] if n["application_id"] == zhang_case]
    assert "application.approved" in [n["event"] for n in about]
    assert {n["recipient"] for n in about} == {"applicant"}
    assert all(set(n["message"]) == {"zh-Hant", "zh-Hans", "en", "pt"} for n in about)
    status, listed = await _call(gateway, "GET", "/v1/me/notifications", chan)
    assert status == 200
    assert [n for n in listed["items"] if n["application_id"] == strict_case] == []
