"""The portal's consents page, over HTTP without a browser: a resident sees each consent they
gave and withdraws one as easily as it was given (PIPL Art. 15). A withdrawal without the
session's CSRF token, or of someone else's consent, is refused and changes nothing."""

from __future__ import annotations

import re
from typing import Any

import aiohttp

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
