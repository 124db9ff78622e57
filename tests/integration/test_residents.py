"""Residents in the store and the use cases: linking across providers, applying with the
identity from the login, assurance, consent and agents — on SQLite and PostgreSQL.

The logins here are canonical identities built from provider claims by the jurisdictions'
profiles; the OIDC flows that produce them are tested over HTTP elsewhere.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from adapters.guangdong.identity import PROFILE as GUANGDONG
from adapters.hk.identity import PROFILE as HK
from gateway.domain.commands import Applicant, Caller, SubmitApplication
from gateway.domain.errors import (
    ConsentRequiredError,
    DelegationError,
    InsufficientAssuranceError,
    ValidationFailedError,
)
from gateway.domain.identity import CanonicalIdentity, LinkStatus
from gateway.domain.values import local_date
from gateway.operations import identity_conflicts
from gateway.sandbox.personas import persona
from gateway.sandbox.samples import canonical_sample
from gateway.services import handlers
from gateway.services.identity import (
    Resident,
    SignIn,
    change_delegation,
    grant_consent,
    me,
    request_delegation,
    sign_in,
    withdraw_consent,
)
from gateway.web.keys import DEPENDENCIES
from tests.conftest import RunningGateway
from tests.support import CASE_TABLES, RESIDENT_TABLES, row_counts

HENGQIN_BUSINESS = "11440400MB2C00081P4440120002000"  # substantial, agents allowed
IN_PERSON = "11440100MB2C0002124440700001000"  # agents refused (Art. 24)
GUARDED = ("applications", "outbox", "idempotency_keys", "consents")


def chan_at_hk(**changes: Any) -> CanonicalIdentity:
    claims = {
        "sub": "TA-CHAN",
        "acr": "iamsmart",
        "idNo": {"Identification": "A123456", "CheckDigit": "3"},
        "enName": {"UnstructuredName": "CHAN, Tai Man"},
        "chName": {"ChineseName": "陳大文"},
        "birthDate": "19880315",
        **changes,
    }
    return HK.identity(claims, issuer="https://idp.example/hk")


def chan_at_guangdong() -> CanonicalIdentity:
    claims = {
        "sub": "GD-CHAN",
        "acr": "gd:loa:2",
        "cert_type": "HK_MO_RESIDENCE_PERMIT",
        "cert_no": "810000198803150123",
        "name": "陈大文",
        "birthdate": "1988-03-15",
        "hrp_no": "H12345678",
        "bound_ids": [{"idp": "iamsmart", "id_type": "HKID", "id_no": "A123456(3)"}],
    }
    return GUANGDONG.identity(claims, issuer="https://idp.example/guangdong")


def hk_person(sub: str, hkid: str, check: str, name: str, born: str, acr: str) -> CanonicalIdentity:
    return HK.identity(
        {
            "sub": sub,
            "acr": acr,
            "idNo": {"Identification": hkid, "CheckDigit": check},
            "enName": {"UnstructuredName": name},
            "birthDate": born,
        },
        issuer="https://idp.example/hk",
    )


def resident(signed: SignIn) -> Resident:
    return Resident(signed.person_id, signed.login_id, "portal-1", "gd-hq-csb", "online")


def application(matter_code: str, persona_id: str = "chan-tai-man") -> dict[str, Any]:
    return {
        k: v
        for k, v in canonical_sample(_matter(matter_code), persona(persona_id)).items()
        if k != "applicant"
    }


_DEPS: dict[str, Any] = {}


def _matter(code: str) -> Any:
    deps = _DEPS["deps"]
    return deps.catalog.get(code, local_date(deps.clock.now()))


async def submit(
    gateway: RunningGateway, signed: SignIn, matter_code: str, key: str, **applicant: Any
) -> dict[str, Any]:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    _DEPS["deps"] = deps
    body = {"application": application(matter_code), **applicant}
    raw = json.dumps(body).encode()
    stored = await handlers.submit_application(
        SubmitApplication(
            caller=Caller.resident(signed.person_id, signed.login_id),
            body=raw,
            media_type="application/json",
            content_digest="sha-256=:" + key + ":",
            idempotency_key=key,
            applicant=Applicant(
                person_id=signed.person_id,
                login_id=signed.login_id,
                client_id="portal-1",
                application=body["application"],
                consent_id=applicant.get("consent_id"),
                consent=applicant.get("consent"),
                on_behalf_of=applicant.get("on_behalf_of"),
            ),
        ),
        deps,
    )
    return stored.body


CONSENT = {
    "categories": ["identity", "contact", "address", "application", "materials"],
    "destinations": ["GD"],
}


async def test_a_guangdong_login_bound_to_the_hkid_is_the_same_person(
    gateway: RunningGateway,
) -> None:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]

    first = await sign_in(chan_at_hk(), deps)
    second = await sign_in(chan_at_guangdong(), deps)
    again = await sign_in(chan_at_hk(), deps)

    assert second.person_id == first.person_id == again.person_id
    assert second.login_id != first.login_id
    held = await me(resident(second), deps)
    links = {(link["type"], link["source"], link["status"]) for link in held["links"]}
    assert links == {
        ("HKID", "hk", "linked"),
        ("RESIDENCE_PERMIT", "guangdong", "linked"),
        ("HRP", "guangdong", "linked"),
    }
    assert held["identity"]["assurance"] == "substantial"
    counts = await row_counts(gateway.settings, CASE_TABLES + RESIDENT_TABLES)
    assert counts["persons"] == 1
    assert counts["logins"] == 3


async def test_a_document_claimed_by_someone_else_is_flagged_for_review_not_merged(
    gateway: RunningGateway,
) -> None:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    chan = await sign_in(chan_at_guangdong(), deps)  # links RP, HRP and the bound HKID
    # Another iAM Smart account, another person, whose provider asserts chan's HKID and
    # another birth date: a new person, and the HKID is a conflict.
    other = await sign_in(
        hk_person("TA-OTHER", "A123456", "3", "CHAN, Siu Man", "19700101", "iamsmart"), deps
    )

    assert other.person_id != chan.person_id
    assert [c.document.type.value for c in other.conflicts] == ["HKID"]
    held = await me(resident(other), deps)
    assert [(x["type"], x["status"]) for x in held["links"]] == [
        ("HKID", LinkStatus.CONFLICT.value)
    ]
    lines: list[str] = []
    await identity_conflicts(gateway.settings, lines.append)
    (line,) = lines
    assert f"{other.person_id}  HKID A1****63  from hk" in line
    assert "A1234563" not in line


async def test_a_resident_applies_with_the_identity_from_the_login_and_a_consent(
    gateway: RunningGateway,
) -> None:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    chan = await sign_in(chan_at_hk(), deps)

    answer = await submit(gateway, chan, HENGQIN_BUSINESS, "key-00000001", consent=CONSENT)

    assert answer["status"] == "accepted"
    async with deps.uow() as uow:
        app = await uow.applications.get(answer["application_id"])
        consents = await uow.identities.consents_of(chan.person_id)
    assert app is not None
    assert app.applicant_id == chan.person_id
    assert app.document["applicant"] == chan_at_hk().applicant()
    assert [c.id for c in consents] == [app.consent_id]
    assert consents[0].matter == HENGQIN_BUSINESS
    assert consents[0].recipients == ("gd-hq-csb",)
    envelope = await _forwarded_envelope(gateway, app.id)
    assert envelope["consent_id"] == app.consent_id


async def _forwarded_envelope(gateway: RunningGateway, application_id: str) -> dict[str, Any]:
    from gateway.store.tables import outbox  # the stored message, as signed and sent

    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    async with deps.uow() as uow:
        row = (
            await uow._conn.execute(
                outbox.select().where(outbox.c.application_id == application_id)
            )
        ).first()
    assert row is not None
    message = json.loads(row.body)
    return message.get("envelope", message)


async def test_a_low_assurance_login_is_refused_and_nothing_is_stored(
    gateway: RunningGateway,
) -> None:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    wong = await sign_in(
        hk_person("TA-WONG", "C668668", "9", "WONG, Siu Ming", "19791102", "iamsmart:basic"), deps
    )
    before = await row_counts(gateway.settings, CASE_TABLES + RESIDENT_TABLES)

    with pytest.raises(InsufficientAssuranceError, match="substantial"):
        await submit(gateway, wong, HENGQIN_BUSINESS, "key-00000002", consent=CONSENT)

    after = await row_counts(gateway.settings, CASE_TABLES + RESIDENT_TABLES)
    assert {t: after[t] for t in GUARDED} == {t: before[t] for t in GUARDED}


async def test_without_consent_nothing_crosses_the_border(gateway: RunningGateway) -> None:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    chan = await sign_in(chan_at_hk(), deps)
    before = await row_counts(gateway.settings, CASE_TABLES + RESIDENT_TABLES)

    with pytest.raises(ConsentRequiredError):
        await submit(gateway, chan, HENGQIN_BUSINESS, "key-00000003")
    narrow = {"categories": ["identity"], "destinations": ["GD"]}
    with pytest.raises(ConsentRequiredError):  # the application carries more than identity
        await submit(gateway, chan, HENGQIN_BUSINESS, "key-00000004", consent=narrow)

    after = await row_counts(gateway.settings, CASE_TABLES + RESIDENT_TABLES)
    assert {t: after[t] for t in GUARDED} == {t: before[t] for t in GUARDED}


async def test_a_withdrawn_consent_cannot_be_relied_on(gateway: RunningGateway) -> None:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    chan = await sign_in(chan_at_hk(), deps)
    given = await grant_consent(resident(chan), CONSENT, deps)
    withdrawn = await withdraw_consent(resident(chan), given["consent_id"], deps)
    assert withdrawn["withdrawn_at"] is not None

    with pytest.raises(ConsentRequiredError):
        await submit(
            gateway, chan, HENGQIN_BUSINESS, "key-00000005", consent_id=given["consent_id"]
        )


async def test_the_identity_part_is_never_asked_again(gateway: RunningGateway) -> None:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    _DEPS["deps"] = deps
    chan = await sign_in(chan_at_hk(), deps)
    sample = canonical_sample(_matter(HENGQIN_BUSINESS), persona("chan-tai-man"))

    with pytest.raises(ValidationFailedError) as caught:
        await handlers.submit_application(
            SubmitApplication(
                caller=Caller.resident(chan.person_id, chan.login_id),
                body=b"{}",
                media_type="application/json",
                content_digest="sha-256=:x:",
                idempotency_key="key-00000006",
                applicant=Applicant(chan.person_id, chan.login_id, "portal-1", sample),
            ),
            deps,
        )

    assert [p.code for p in caught.value.errors] == ["identity_from_login"]


async def _agent_asks(deps: Any, matters: list[str]) -> tuple[SignIn, SignIn, dict[str, Any]]:
    """陳大文 and an agent sign in; the agent asks to act for him on ``matters`` for 30 days.
    (the principal, the agent, the delegation asked)."""
    chan = await sign_in(chan_at_hk(), deps)
    agent = await sign_in(
        hk_person("TA-LEUNG", "K246810", "7", "LEUNG, Mei Ling", "19900808", "iamsmart"), deps
    )
    until = (deps.clock.now() + timedelta(days=30)).isoformat()
    asked = await request_delegation(
        resident(agent),
        {"principal": {"type": "HKID", "number": "A123456(3)"}, "matters": matters, "until": until},
        deps,
    )
    return chan, agent, asked


async def test_an_agent_applies_for_the_principal_under_a_confirmed_delegation(
    gateway: RunningGateway,
) -> None:
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    chan, agent, asked = await _agent_asks(deps, [HENGQIN_BUSINESS, IN_PERSON])
    consent = await grant_consent(resident(chan), CONSENT, deps)

    with pytest.raises(DelegationError):  # not confirmed yet
        await submit(
            gateway,
            agent,
            HENGQIN_BUSINESS,
            "key-00000007",
            on_behalf_of=asked["delegation_id"],
            consent_id=consent["consent_id"],
        )
    with pytest.raises(DelegationError):  # the agent cannot confirm for the principal
        await change_delegation(resident(agent), asked["delegation_id"], "confirm", deps)
    confirmed = await change_delegation(resident(chan), asked["delegation_id"], "confirm", deps)
    assert confirmed["confirmed_at"] is not None

    answer = await submit(
        gateway,
        agent,
        HENGQIN_BUSINESS,
        "key-00000008",
        on_behalf_of=asked["delegation_id"],
        consent_id=consent["consent_id"],
    )

    async with deps.uow() as uow:
        app = await uow.applications.get(answer["application_id"])
        timeline = await uow.applications.timeline(answer["application_id"])
    assert app is not None
    assert app.applicant_id == chan.person_id
    assert app.document["applicant"] == chan_at_hk().applicant()
    assert timeline[0].data["agent"] == agent.person_id
    with pytest.raises(DelegationError, match="in person"):
        await submit(
            gateway,
            agent,
            IN_PERSON,
            "key-00000009",
            on_behalf_of=asked["delegation_id"],
            consent_id=consent["consent_id"],
        )
    with pytest.raises(ConsentRequiredError):  # an agent cannot consent for the principal
        await submit(
            gateway,
            agent,
            HENGQIN_BUSINESS,
            "key-00000010",
            on_behalf_of=asked["delegation_id"],
            consent=CONSENT,
        )


async def test_an_agent_naming_no_consent_relies_on_the_principal_s_own(
    gateway: RunningGateway,
) -> None:
    """The agent cannot consent and does not know the principal's consents: naming none, the
    submission relies on the principal's consent in force for the matter (before a general
    one); without one that covers the case it is refused and nothing is stored."""
    deps = gateway.app[DEPENDENCIES]  # type: ignore[index]
    chan, agent, asked = await _agent_asks(deps, [HENGQIN_BUSINESS])
    await change_delegation(resident(chan), asked["delegation_id"], "confirm", deps)
    await grant_consent(resident(agent), CONSENT, deps)  # the agent's own: never the principal's
    narrow = await grant_consent(resident(chan), {**CONSENT, "categories": ["identity"]}, deps)
    before = await row_counts(gateway.settings)

    with pytest.raises(ConsentRequiredError):  # the principal's consent does not cover it
        await submit(
            gateway, agent, HENGQIN_BUSINESS, "key-00000011", on_behalf_of=asked["delegation_id"]
        )
    assert await row_counts(gateway.settings) == before

    general = await grant_consent(resident(chan), CONSENT, deps)
    for_matter = await grant_consent(resident(chan), {**CONSENT, "matter": HENGQIN_BUSINESS}, deps)
    answer = await submit(
        gateway, agent, HENGQIN_BUSINESS, "key-00000012", on_behalf_of=asked["delegation_id"]
    )

    async with deps.uow() as uow:
        app = await uow.applications.get(answer["application_id"])
    assert app is not None
    assert app.applicant_id == chan.person_id
    assert app.consent_id == for_matter["consent_id"]
    assert app.consent_id not in (narrow["consent_id"], general["consent_id"])
