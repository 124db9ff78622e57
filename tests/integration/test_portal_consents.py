"""The portal's consents, over HTTP without a browser: a resident sees each consent they gave
and withdraws one as easily as it was given (PIPL Art. 15); a case held back by the
withdrawal asks for a consent again on its progress page and goes on once given. A form
without the session's CSRF token, or a withdrawal of someone else's consent, is refused and
changes nothing."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp

from gateway.sandbox.routes import PARTNERS
from tests.conftest import RunningGateway
from tests.integration.test_progress_page import apply_as
from tests.portal_support import browser, csrf_of, log_in

ROW = re.compile(r'<tr data-consent="([^"]+)" data-status="([^"]+)">')


async def _consents(gateway: RunningGateway, token: str) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            gateway.url + "/v1/me/consents", headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        assert response.status == 200
        return (await response.json())["items"]  # type: ignore[no-any-return]


async def test_a_resident_withdraws_a_consent_from_the_portal_and_only_their_own(
    gateway: RunningGateway,
) -> None:
    token, _ = await apply_as(gateway, "chan-tai-man")  # the consent is given with the case
    other_token, _ = await apply_as(gateway, "lei-sio-meng")
    [mine] = await _consents(gateway, token)
    [theirs] = await _consents(gateway, other_token)
    page_url = f"{gateway.url}/portal/consents"

    async with browser() as client:
        await log_in(client, gateway, "chan-tai-man")
        async with client.get(page_url, headers={"Accept-Language": "en"}) as response:
            assert response.status == 200
            page = await response.text()
        assert ROW.findall(page) == [(mine["consent_id"], "in_force")]  # not the other's
        assert f'action="/portal/consents/{mine["consent_id"]}/withdraw"' in page
        csrf = await csrf_of(client, page_url)

        withdraw = f"{page_url}/{mine['consent_id']}/withdraw"
        for form in ({}, {"csrf": "forged-" + csrf}):
            async with client.post(withdraw, data=form) as response:
                assert response.status == 403
        async with client.post(
            f"{page_url}/{theirs['consent_id']}/withdraw",
            data={"csrf": csrf},
            headers={"Accept-Language": "en"},
        ) as response:
            assert response.status == 200  # back on the page, saying it could not be done
            assert "could not be withdrawn" in await response.text()
        assert [c["withdrawn_at"] for c in await _consents(gateway, token)] == [None]
        assert [c["withdrawn_at"] for c in await _consents(gateway, other_token)] == [None]

        async with client.post(
            withdraw, data={"csrf": csrf}, headers={"Accept-Language": "en"}
        ) as response:
            assert response.status == 200
            assert response.url.path == "/portal/consents"
            page = await response.text()
    assert "Consent withdrawn." in page
    assert ROW.findall(page) == [(mine["consent_id"], "withdrawn")]
    assert "/withdraw" not in page  # nothing left to withdraw
    [after] = await _consents(gateway, token)
    assert after["withdrawn_at"] is not None
    assert [c["withdrawn_at"] for c in await _consents(gateway, other_token)] == [None]


async def _case(gateway: RunningGateway, token: str, case_id: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{gateway.url}/v1/me/applications/{case_id}",
            headers={"Authorization": f"Bearer {token}"},
        ) as response,
    ):
        assert response.status == 200
        return await response.json()  # type: ignore[no-any-return]


def _types(view: dict[str, Any]) -> list[str]:
    return [e["type"] for e in view["timeline"]]


async def test_a_case_held_back_by_a_withdrawn_consent_goes_on_once_the_resident_consents_again(
    gateway: RunningGateway,
) -> None:
    """The lead agency is down, so the forward waits in the queue; the resident withdraws the
    consent from the portal and the forward is withheld. The progress page then says the case
    waits for a consent and asks for it; unticked, nothing is recorded; ticked, a new consent
    is recorded, the forward goes again and is delivered once the agency is back."""
    partners = gateway.app[PARTNERS]  # type: ignore[index]
    partners.faults.update("gd-hq-csb", {"down": True})
    token, case_id = await apply_as(gateway, "chan-tai-man")
    [given] = await _consents(gateway, token)
    progress = f"{gateway.url}/portal/applications/{case_id}"
    english = {"Accept-Language": "en"}

    async with browser() as client:
        await log_in(client, gateway, "chan-tai-man")
        csrf = await csrf_of(client, f"{gateway.url}/portal/consents")
        async with client.get(progress) as response:
            assert 'id="consent-again"' not in await response.text()  # nothing held back yet
        async with client.post(
            f"{gateway.url}/portal/consents/{given['consent_id']}/withdraw", data={"csrf": csrf}
        ) as response:
            assert response.status == 200
        assert "message.withheld" in _types(await _case(gateway, token, case_id))
        async with client.get(progress, headers=english) as response:
            page = await response.text()
        assert 'id="consent-again"' in page
        assert "waiting for your consent" in page

        async with client.post(f"{progress}/consent", data={"csrf": csrf}) as response:
            assert response.status == 200  # not ticked: asked again, nothing recorded
        assert len(await _consents(gateway, token)) == 1
        async with client.post(f"{progress}/consent", data={"agree": "yes"}) as response:
            assert response.status == 403  # no CSRF token: refused
        assert len(await _consents(gateway, token)) == 1

        partners.faults.update("gd-hq-csb", {"down": False})
        async with client.post(
            f"{progress}/consent", data={"csrf": csrf, "agree": "yes"}, headers=english
        ) as response:
            assert response.status == 200
            assert response.url.path == f"/portal/applications/{case_id}"
            page = await response.text()
    assert "Consent given again" in page
    assert 'id="consent-again"' not in page
    now_given = await _consents(gateway, token)
    assert [c["withdrawn_at"] is None for c in now_given] == [False, True]
    view = await _case(gateway, token, case_id)
    renewed = next(e for e in view["timeline"] if e["type"] == "consent.renewed")
    assert renewed["forwards_due"] == ["gd-hq-csb"]
    for _ in range(300):  # the relay delivers it now the agency is back
        if "message.delivered" in _types(view := await _case(gateway, token, case_id)):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"never delivered: {_types(view)}")
