"""Signing in and acting as a resident, by assurance (issue 13 item 3), over the fakes.

A weak login asserting someone's document becomes a person of its own with a conflict, and the
holder's records stay as they were; a login acts on a case, on a consent a case relies on, or
confirms a delegation only at the assurance those were made with.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gateway.domain.application import Application
from gateway.domain.commands import ActOnApplication, Caller
from gateway.domain.errors import InsufficientAssuranceError
from gateway.domain.identity import (
    CanonicalIdentity,
    Consent,
    Delegation,
    LinkStatus,
    PersonNames,
)
from gateway.domain.matters import Assurance
from gateway.domain.values import IdentityDocument
from gateway.mapping.catalog import Catalog
from gateway.services.calendars import HolidayCalendar
from gateway.services.handlers import Dependencies
from gateway.services.identity import (
    Resident,
    SignIn,
    change_delegation,
    sign_in,
    withdraw_consent,
)
from gateway.services.lifecycle import act_on_application
from tests.fakes import FakeReceipts, FakeUnitOfWorkFactory, FixedClock

NOW = datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
HKID = IdentityDocument.parse("HKID", "A123456(3)")
ROOT = Path(__file__).resolve().parents[3]


def login(subject: str, assurance: Assurance, *, provider: str = "hk") -> CanonicalIdentity:
    return CanonicalIdentity(
        provider=provider,
        issuer=f"https://idp.example/{provider}",
        subject=subject,
        jurisdiction="HK",
        names=PersonNames("陳大文"),
        birth_date=datetime(1988, 3, 15).date(),
        documents=(HKID,) if provider == "hk" else (),
        assurance=assurance,
        acr="test",
        bound_documents=(HKID,) if provider == "guangdong" else (),
    )


@pytest.fixture
def deps() -> Dependencies:
    return Dependencies(
        uow=FakeUnitOfWorkFactory(),
        clock=FixedClock(NOW),
        catalog=Catalog.load(ROOT / "mappings" / "matters"),
        codecs={},
        receipts=FakeReceipts(),
        calendar=HolidayCalendar(),
        issuer="https://gateway.test",
    )


def state(deps: Dependencies) -> Any:
    return deps.uow.state  # type: ignore[attr-defined]


def resident(signed: SignIn) -> Resident:
    return Resident(signed.person_id, signed.login_id, "portal-1", "gd-hq-csb", "online")


@pytest.mark.parametrize("provider", ["hk", "guangdong"])
async def test_a_low_login_with_the_holders_document_is_its_own_person(
    deps: Dependencies, provider: str
) -> None:
    holder = await sign_in(login("TA-CHAN", Assurance.SUBSTANTIAL), deps)
    kept = list(state(deps).links)

    attacker = await sign_in(login("MALLORY", Assurance.LOW, provider=provider), deps)
    await sign_in(login("MALLORY", Assurance.LOW, provider=provider), deps)  # again

    assert attacker.person_id != holder.person_id
    assert [c.document for c in attacker.conflicts] == [HKID]
    assert [x for x in state(deps).links if x.person_id == holder.person_id] == kept
    theirs = [(x.key, x.status) for x in state(deps).links if x.person_id == attacker.person_id]
    assert theirs == [(("HKID", HKID.number), LinkStatus.CONFLICT)]  # recorded once
    audit = [entry[3] for entry in state(deps).audit if entry[0] == "identity.login"]
    assert audit[1]["conflicts"] == ["HKID"]
    assert audit[1]["linked"] == []


async def test_a_low_first_login_does_not_capture_the_later_holder(deps: Dependencies) -> None:
    squatter = await sign_in(login("MALLORY", Assurance.LOW), deps)
    holder = await sign_in(login("TA-CHAN", Assurance.HIGH), deps)

    assert holder.person_id != squatter.person_id
    statuses = {(x.person_id, x.status) for x in state(deps).links}
    assert statuses == {
        (squatter.person_id, LinkStatus.UNVERIFIED),
        (holder.person_id, LinkStatus.LINKED),
    }


async def _case(deps: Dependencies, person_id: str, filed: Assurance) -> Application:
    app = Application.receive(
        application_id="app-1",
        matter="11440400MB2C00081P4440120002000",
        matter_version=1,
        submitted_by=f"resident:{person_id}",
        channel="online",
        source_format="canonical",
        content_digest="sha-256=:x:",
        document={},
        handlers=("gd-hq-csb",),
        missing=(),
        deadline="2026-03-20",
        at=NOW,
        applicant_id=person_id,
        consent_id="con-1",
        filed_assurance=filed,
    )
    async with deps.uow() as uow:
        await uow.applications.add(app)
        await uow.identities.add_consent(
            Consent.grant(
                consent_id="con-1",
                person_id=person_id,
                purpose="cross_border_application",
                categories=["identity"],
                destinations=["GD"],
                at=NOW,
            )
        )
        await uow.commit()
    return app


async def test_acting_below_the_assurance_a_case_was_filed_with_is_refused(
    deps: Dependencies,
) -> None:
    strong = await sign_in(login("TA-CHAN", Assurance.HIGH), deps)
    await _case(deps, strong.person_id, Assurance.HIGH)
    weaker = await sign_in(login("TA-CHAN", Assurance.SUBSTANTIAL), deps)  # same account
    assert weaker.person_id == strong.person_id
    before = copy.deepcopy(state(deps))

    with pytest.raises(InsufficientAssuranceError, match="'high'; the login has 'substantial'"):
        await act_on_application(
            ActOnApplication(
                Caller.resident(weaker.person_id, weaker.login_id), "app-1", "withdraw"
            ),
            deps,
        )
    with pytest.raises(InsufficientAssuranceError):
        await withdraw_consent(resident(weaker), "con-1", deps)

    assert state(deps).applications == before.applications
    assert state(deps).consents == before.consents
    answer = await withdraw_consent(resident(strong), "con-1", deps)
    assert answer["withdrawn_at"] is not None


async def test_confirming_a_delegation_needs_the_assurance_of_the_named_link(
    deps: Dependencies,
) -> None:
    strong = await sign_in(login("TA-CHAN", Assurance.HIGH), deps)
    weaker = await sign_in(login("TA-CHAN", Assurance.SUBSTANTIAL), deps)
    asked = Delegation("del-1", "per-agent", HKID, ("*",), NOW + timedelta(days=9), NOW)
    async with deps.uow() as uow:
        await uow.identities.add_delegation(asked)
        await uow.commit()

    with pytest.raises(InsufficientAssuranceError):
        await change_delegation(resident(weaker), "del-1", "confirm", deps)
    assert state(deps).delegations["del-1"] == asked

    confirmed = await change_delegation(resident(strong), "del-1", "confirm", deps)
    assert confirmed["confirmed_at"] == NOW.isoformat()
