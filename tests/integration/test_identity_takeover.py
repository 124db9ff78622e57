"""Issue 13 item 3: a weak login that asserts someone else's document does not become them.

Each attempt runs through the real OIDC flow: a sandbox portal, the gateway's broker and a
sandbox identity provider whose ID token (signed normally, through the tamper seam) names
another account at a lower assurance but the victim's document — directly (iAM Smart, Macao
One Account) or as a Guangdong ``bound_ids`` entry. The victim has a case, a consent, a
complaint and a delegation naming their document waiting for confirmation. The attacker's
login must be its own person with a ``conflict`` for review, see none of the victim's records
through ``/v1/me...``, change none of them, and leave the victim's person and links as they
were — on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa

from gateway.domain.values import local_date
from gateway.sandbox.idp import IDENTITY_PROVIDERS
from gateway.sandbox.personas import persona
from gateway.sandbox.portal import SandboxPortal
from gateway.sandbox.samples import canonical_sample
from gateway.store.database import create_engine
from gateway.store.tables import (
    applications,
    complaints,
    consents,
    delegations,
    identity_accounts,
    identity_links,
    persons,
)
from gateway.web.keys import DEPENDENCIES
from tests.conftest import RunningGateway

HENGQIN_BUSINESS = "11440400MB2C00081P4440120002000"  # substantial, agents allowed
CONSENT = {
    "categories": ["identity", "contact", "address", "application", "materials"],
    "destinations": ["GD"],
}
PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Attempt:
    victim: str  # persona
    victim_idp: str
    principal: dict[str, str]  # the victim's document a delegation names
    attacker_idp: str
    attacker_persona: str  # whose profile the provider asserts
    claims: dict[str, Any]  # ID token overrides: another account, a lower acr
    conflicted: str  # the document type flagged for review


ATTEMPTS = {
    "iam-smart-basic-with-the-victims-hkid": Attempt(
        victim="chan-tai-man",
        victim_idp="hk",
        principal={"type": "HKID", "number": "A123456(3)"},
        attacker_idp="hk",
        attacker_persona="chan-tai-man",
        claims={"sub": "TAMALLORYMALLORYMALLORY1", "acr": "iamsmart:basic"},
        conflicted="HKID",
    ),
    "one-account-loa1-with-the-victims-bir": Attempt(
        victim="lei-sio-meng",
        victim_idp="macau",
        principal={"type": "MO_BIR", "number": "1234567(8)"},
        attacker_idp="macau",
        attacker_persona="lei-sio-meng",
        claims={"sub": "MO-66666666", "acr": "mo:loa:1"},
        conflicted="MO_BIR",
    ),
    "guangdong-loa1-with-the-victims-hkid-in-bound-ids": Attempt(
        victim="chan-tai-man",
        victim_idp="hk",
        principal={"type": "HKID", "number": "A123456(3)"},
        attacker_idp="guangdong",
        attacker_persona="chan-tai-man",  # its permit and HRP, and the HKID in bound_ids
        claims={"sub": "GD-666666666666", "acr": "gd:loa:1"},
        conflicted="HKID",
    ),
    "substantial-against-a-link-made-at-high": Attempt(
        victim="zhang-wei",
        victim_idp="guangdong",  # gd:loa:3
        principal={"type": "CN_RIC", "number": "440304198506120035"},
        attacker_idp="guangdong",
        attacker_persona="zhang-wei",
        claims={"sub": "GD-777777777777", "acr": "gd:loa:2"},
        conflicted="CN_RIC",
    ),
}


async def call(
    gateway: RunningGateway,
    method: str,
    path: str,
    token: str,
    body: dict[str, Any] | None = None,
    key: str | None = None,
) -> tuple[int, str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    if key:
        headers["Idempotency-Key"] = key
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, gateway.url + path, json=body, headers=headers) as response,
    ):
        return response.status, response.content_type, await response.json(content_type=None)


async def login(gateway: RunningGateway, idp: str, persona_id: str, **claims: Any) -> str:
    """A sandbox portal logs the persona in (the provider's ID token changed by ``claims``)."""
    provider = gateway.app[IDENTITY_PROVIDERS].provider(idp)  # type: ignore[index]
    if claims:
        provider.tamper(id_token_claims=claims)
    try:
        portal = await SandboxPortal.register(gateway.url)
        return (await portal.login(idp, persona_id)).access_token
    finally:
        provider.tamper()


@dataclass(frozen=True)
class Victim:
    token: str
    case: str
    consent: str
    complaint: str
    delegation: str


async def victim_with_records(gateway: RunningGateway, a: Attempt, **claims: Any) -> Victim:
    """The victim logs in, applies with a consent, complains; an agent names their document."""
    token = await login(gateway, a.victim_idp, a.victim, **claims)
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    matter = deps.catalog.get(HENGQIN_BUSINESS, local_date(deps.clock.now()))
    sample = canonical_sample(matter, persona(a.victim))
    application = {k: v for k, v in sample.items() if k != "applicant"}
    body = {"application": application, "consent": CONSENT}
    status, _, case = await call(gateway, "POST", "/v1/me/applications", token, body, "victim-01")
    assert status == 202, case
    await settled(gateway, token, case["application_id"])
    path = f"/v1/me/applications/{case['application_id']}/complaints"
    status, _, complaint = await call(gateway, "POST", path, token, {"text": "slow"}, "victim-02")
    assert status == 201, complaint
    agent = await login(gateway, "hk", "leung-mei-ling")
    until = (datetime.now(UTC) + timedelta(days=30)).isoformat()
    asked = {"principal": a.principal, "matters": [HENGQIN_BUSINESS], "until": until}
    status, _, delegation = await call(gateway, "POST", "/v1/me/delegations", agent, asked)
    assert status == 201, delegation
    async with deps.uow() as uow:
        stored = await uow.applications.get(case["application_id"])
    assert stored is not None
    assert stored.consent_id is not None
    return Victim(
        token,
        case["application_id"],
        stored.consent_id,
        complaint["complaint_id"],
        delegation["delegation_id"],
    )


async def settled(gateway: RunningGateway, token: str, case_id: str) -> None:
    """Wait until the sandbox agencies have decided the case: it changes no more by itself."""
    for _ in range(150):
        _, _, case = await call(gateway, "GET", f"/v1/me/applications/{case_id}", token)
        if case["status"] in ("approved", "rejected"):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the case was never decided: {case['status']}")


async def snapshot(gateway: RunningGateway, person_id: str) -> dict[str, list[tuple[Any, ...]]]:
    """The victim's person, accounts and links, and every case-side record, as stored."""
    settings = gateway.settings
    engine = create_engine(settings.database_url, schema=settings.database_schema or None)
    mine = {
        persons: persons.c.id == person_id,
        identity_accounts: identity_accounts.c.person_id == person_id,
        identity_links: identity_links.c.person_id == person_id,
        applications: sa.true(),
        consents: sa.true(),
        complaints: sa.true(),
        delegations: sa.true(),
    }
    try:
        async with engine.connect() as conn:
            return {
                table.name: sorted(
                    tuple(str(v) for v in row)
                    for row in await conn.execute(table.select().where(where))
                )
                for table, where in mine.items()
            }
    finally:
        await engine.dispose()


@pytest.mark.parametrize("attempt", list(ATTEMPTS.values()), ids=list(ATTEMPTS))
async def test_a_weaker_login_with_the_victims_document_gets_nothing_of_theirs(
    gateway: RunningGateway, attempt: Attempt
) -> None:
    victim = await victim_with_records(gateway, attempt)
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    async with deps.uow() as uow:
        case = await uow.applications.get(victim.case)
    assert case is not None
    assert case.applicant_id is not None
    victim_id = case.applicant_id
    before = await snapshot(gateway, victim_id)

    attacker = await login(
        gateway, attempt.attacker_idp, attempt.attacker_persona, **attempt.claims
    )

    status, _, held = await call(gateway, "GET", "/v1/me", attacker)
    assert status == 200, held
    assert held["consents"] == []
    assert held["delegations"] == []
    assert {link["status"] for link in held["links"]} <= {"conflict", "unverified"}
    assert (attempt.conflicted, "conflict") in {(x["type"], x["status"]) for x in held["links"]}
    status, _, own = await call(gateway, "GET", "/v1/me/applications", attacker)
    assert (status, own["items"]) == (200, [])
    case_path = f"/v1/me/applications/{victim.case}"
    refused = [
        await call(gateway, "GET", case_path, attacker),
        await call(gateway, "GET", case_path + "/complaints", attacker),
        await call(gateway, "POST", case_path + "/withdrawal", attacker, None, "attack-01"),
        await call(
            gateway, "POST", case_path + "/complaints", attacker, {"text": "x"}, "attack-02"
        ),
        await call(gateway, "POST", f"/v1/me/consents/{victim.consent}/withdraw", attacker),
        await call(gateway, "POST", f"/v1/me/delegations/{victim.delegation}/confirm", attacker),
    ]
    assert [(status, kind) for status, kind, _ in refused] == [(404, PROBLEM)] * 6
    assert await snapshot(gateway, victim_id) == before
    async with deps.uow() as uow:
        flagged = await uow.identities.conflicts()
        attacker_person = await uow.identities.account_person(
            attempt.attacker_idp, attempt.claims["sub"]
        )
    assert attacker_person is not None
    assert attacker_person.id != victim_id
    assert (attacker_person.id, attempt.conflicted) in {
        (link.person_id, link.document.type.value) for link in flagged
    }


async def test_the_victims_own_weaker_login_cannot_act_on_what_was_made_stronger(
    gateway: RunningGateway,
) -> None:
    """Same account, lower acr: the case, its consent and the delegation naming the HKID
    were made at iAM Smart+ (high); an iAM Smart (substantial) login of the same account sees
    them but acting on them answers insufficient-assurance and changes nothing."""
    attempt = ATTEMPTS["iam-smart-basic-with-the-victims-hkid"]
    victim = await victim_with_records(gateway, attempt, acr="iamsmart+")
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    async with deps.uow() as uow:
        case = await uow.applications.get(victim.case)
    assert case is not None
    assert case.applicant_id is not None
    before = await snapshot(gateway, case.applicant_id)

    weaker = await login(gateway, "hk", "chan-tai-man", acr="iamsmart")

    status, _, mine = await call(gateway, "GET", "/v1/me/applications", weaker)
    assert [item["application_id"] for item in mine["items"]] == [victim.case]
    case_path = f"/v1/me/applications/{victim.case}"
    refused = [
        await call(gateway, "POST", case_path + "/withdrawal", weaker, None, "weaker-01"),
        await call(
            gateway, "POST", case_path + "/supplements", weaker, {"materials": []}, "weaker-02"
        ),
        await call(gateway, "POST", case_path + "/complaints", weaker, {"text": "x"}, "weaker-03"),
        await call(gateway, "POST", f"/v1/me/consents/{victim.consent}/withdraw", weaker),
        await call(gateway, "POST", f"/v1/me/delegations/{victim.delegation}/confirm", weaker),
    ]
    assert [(status, kind) for status, kind, _ in refused] == [(403, PROBLEM)] * 5
    assert all(body["type"].endswith("/insufficient-assurance") for _, _, body in refused)
    assert await snapshot(gateway, case.applicant_id) == before

    again = await login(gateway, "hk", "chan-tai-man", acr="iamsmart+")
    path = f"/v1/me/delegations/{victim.delegation}/confirm"
    status, _, confirmed = await call(gateway, "POST", path, again)
    assert (status, confirmed["confirmed_at"] is not None) == (200, True)
