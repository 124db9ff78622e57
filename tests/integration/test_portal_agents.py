"""Applying for someone else in the portal (Art. 24), over HTTP without a browser.

陳大文 (HK) asks to act for 李小明 (Macao) on the Hengqin business registration; 李小明
confirms without consenting, so the application 陳大文 files for him is refused — an agent
cannot consent for the principal — and nothing is stored. 李小明 then consents for the
agent's applications on his delegations page, and the same form goes through: the case is
李小明's, filed by his agent, and relies on his own consent for that service."""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from gateway.store.tables import applications, consents, timeline
from gateway.web.keys import STORE
from tests.conftest import RunningGateway
from tests.portal_support import application_form, browser, csrf_of, log_in

HENGQIN_BUSINESS = "11440400MB2C00081P4440120002000"
DELEGATION = re.compile(r'<tr data-delegation="([^"]+)">')
EN = {"Accept-Language": "en"}


async def _rows(gateway: RunningGateway, query: Any) -> list[Any]:
    async with gateway.app[STORE].engine.connect() as conn:  # type: ignore[index]
        return list((await conn.execute(query)).all())


async def test_an_agent_applies_for_the_principal_under_the_principal_s_own_consent(
    gateway: RunningGateway,
) -> None:
    portal = f"{gateway.url}/portal"
    apply = f"{portal}/matters/{HENGQIN_BUSINESS}/apply"
    consent = f"{portal}/matters/{HENGQIN_BUSINESS}/consent"
    async with browser() as agent, browser() as principal:
        await log_in(agent, gateway, "chan-tai-man", "hk")
        csrf = await csrf_of(agent, f"{portal}/delegations")
        asked = {
            "csrf": csrf,
            "type": "MO_BIR",
            "number": "1234567(8)",
            "matter": HENGQIN_BUSINESS,
            "until": "2030-12-31",
        }
        async with agent.post(f"{portal}/delegations", data=asked) as response:
            [delegation_id] = DELEGATION.findall(await response.text())
        async with agent.get(apply) as response:
            assert 'id="for"' not in await response.text()  # not confirmed: no one to apply for

        await log_in(principal, gateway, "lei-sio-meng", "macau")
        theirs = await csrf_of(principal, f"{portal}/delegations")
        async with principal.post(
            f"{portal}/delegations/{delegation_id}/confirm", data={"csrf": theirs}, headers=EN
        ) as response:
            page = await response.text()
        assert "Delegation confirmed." in page
        assert f'id="give-consent-{delegation_id}"' in page  # he may consent later

        async with agent.get(f"{apply}?for={delegation_id}", headers=EN) as response:
            page = await response.text()
        assert f'<dl class="facts" id="principal" data-delegation="{delegation_id}">' in page
        assert f'name="on_behalf_of" value="{delegation_id}"' in page
        assert 'id="identity"' not in page  # the agent's own identity is not the applicant's
        form = application_form(csrf, ("on_behalf_of", delegation_id))
        async with agent.post(apply, data=form) as response:
            assert response.url.path.endswith("/consent")
            page = await response.text()
        assert 'id="principal-consent"' in page
        assert 'id="agree"' not in page  # the agent is not asked to consent for him
        async with agent.post(consent, data={"csrf": csrf}, headers=EN) as response:
            assert response.status == 403  # refused: he has not consented
            page = await response.text()
        assert 'data-problem="consent_required"' in page
        assert "ask the principal to consent on their delegations page" in page
        assert await _rows(gateway, sa.select(applications.c.id)) == []
        assert await _rows(gateway, sa.select(consents.c.id)) == []

        async with principal.post(
            f"{portal}/delegations/{delegation_id}/consent", data={"csrf": theirs}, headers=EN
        ) as response:
            assert "Your consent was recorded." in await response.text()
        [(consent_id, person_id, matter)] = await _rows(
            gateway, sa.select(consents.c.id, consents.c.person_id, consents.c.matter)
        )
        assert matter == HENGQIN_BUSINESS

        async with agent.post(apply, data=form) as response:
            assert response.url.path.endswith("/consent")
        async with agent.post(consent, data={"csrf": csrf}) as response:
            assert response.status == 200
            assert response.url.path.endswith("/receipt")
            page = await response.text()
        assert 'id="principal-follows"' in page
        case_id = response.url.path.split("/")[-2]
        async with agent.get(f"{portal}/applications/{case_id}") as response:
            assert response.status == 200  # the agent who filed it follows it too
        async with agent.get(f"{portal}/applications") as response:
            assert f'data-application="{case_id}"' in await response.text()
        async with principal.get(f"{portal}/applications") as response:
            assert f'data-application="{case_id}"' in await response.text()
    [case] = await _rows(
        gateway,
        sa.select(applications.c.id, applications.c.applicant_id, applications.c.consent_id),
    )
    assert (case.applicant_id, case.consent_id) == (person_id, consent_id)
    [received] = await _rows(
        gateway,
        sa.select(timeline.c.data).where(
            timeline.c.application_id == case.id, timeline.c.type == "application.received"
        ),
    )
    assert received.data["agent"] != person_id  # filed by the agent, for him
