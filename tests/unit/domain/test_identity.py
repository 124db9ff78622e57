"""Canonical identity: linking without merging, assurance, consent and delegation rules."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from gateway.domain.errors import (
    ConsentRequiredError,
    DelegationError,
    InsufficientAssuranceError,
    ValidationFailedError,
)
from gateway.domain.identity import (
    CanonicalIdentity,
    Consent,
    Delegation,
    IdentityLink,
    LinkStatus,
    Person,
    PersonNames,
    assurance_of,
    identity_from_json,
    identity_to_json,
    may_join,
    require_consent,
    require_delegation,
    require_filed_assurance,
    resolve_links,
)
from gateway.domain.matters import Assurance
from gateway.domain.values import IdentityDocument

NOW = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
HKID = IdentityDocument.parse("HKID", "A123456(3)")
HRP = IdentityDocument.parse("HRP", "H12345678")
PERMIT = IdentityDocument.parse("RESIDENCE_PERMIT", "810000198803150123")
BORN = date(1988, 3, 15)


def identity(
    *documents: IdentityDocument,
    provider: str = "hk",
    subject: str = "sub-1",
    born: date = BORN,
    bound: tuple[IdentityDocument, ...] = (),
    assurance: Assurance = Assurance.SUBSTANTIAL,
) -> CanonicalIdentity:
    return CanonicalIdentity(
        provider=provider,
        issuer=f"https://idp.example/{provider}",
        subject=subject,
        jurisdiction="HK",
        names=PersonNames("陳大文", zh_hant="陳大文", zh_hans="陈大文", latin="CHAN Tai Man"),
        birth_date=born,
        documents=documents or (HKID,),
        assurance=assurance,
        acr="iamsmart",
        bound_documents=bound,
    )


def person(pid: str, born: date = BORN) -> Person:
    return Person(pid, PersonNames("陳大文"), born, NOW)


def known(
    link_doc: IdentityDocument, owner: Person, assurance: Assurance = Assurance.SUBSTANTIAL
) -> dict:
    link = IdentityLink(owner.id, link_doc, "hk", assurance, NOW)
    return {link.key: (link, owner)}


def test_a_first_login_creates_a_person_with_its_documents_linked() -> None:
    decision = resolve_links(
        identity(HKID), account_person=None, known={}, new_person_id="per_new", at=NOW
    )

    assert decision.new_person is not None
    assert decision.person_id == "per_new"
    assert [link.document for link in decision.new_links] == [HKID]
    assert decision.conflicts == ()


def test_a_guangdong_login_bound_to_the_hkid_links_permit_and_travel_permit_to_that_person() -> (
    None
):
    chan = person("per_chan")
    gd = identity(PERMIT, HRP, provider="guangdong", subject="gd-1", bound=(HKID,))

    decision = resolve_links(
        gd, account_person=None, known=known(HKID, chan), new_person_id="per_x", at=NOW
    )

    assert decision.person_id == "per_chan"
    assert decision.new_person is None
    assert {link.document for link in decision.new_links} == {PERMIT, HRP}
    assert all(link.source == "guangdong" for link in decision.new_links)


def test_a_document_already_linked_to_someone_else_is_flagged_not_merged() -> None:
    other = person("per_other")
    decision = resolve_links(
        identity(HKID, HRP),
        account_person=person("per_me"),
        known=known(HRP, other),
        new_person_id="per_x",
        at=NOW,
    )

    assert decision.person_id == "per_me"
    assert [c.document for c in decision.conflicts] == [HRP]
    assert decision.conflicts[0].status is LinkStatus.CONFLICT
    assert "another person" in decision.conflicts[0].note
    assert [link.document for link in decision.new_links] == [HKID]


def test_documents_of_two_different_people_in_one_login_make_a_new_person_and_two_conflicts() -> (
    None
):
    found = {**known(HKID, person("per_a")), **known(HRP, person("per_b"))}

    decision = resolve_links(
        identity(HKID, HRP), account_person=None, known=found, new_person_id="per_c", at=NOW
    )

    assert decision.person_id == "per_c"
    assert len(decision.conflicts) == 2
    assert decision.new_links == ()


def test_a_permit_whose_number_carries_another_birth_date_is_a_conflict() -> None:
    decision = resolve_links(
        identity(PERMIT, born=date(1990, 1, 1)),
        account_person=None,
        known={},
        new_person_id="per_x",
        at=NOW,
    )

    assert [c.document for c in decision.conflicts] == [PERMIT]
    assert "birth date" in decision.conflicts[0].note


def test_a_known_document_with_another_asserted_birth_date_is_not_that_person() -> None:
    decision = resolve_links(
        identity(HKID, born=date(1970, 1, 1)),
        account_person=None,
        known=known(HKID, person("per_chan")),
        new_person_id="per_new",
        at=NOW,
    )

    assert decision.person_id == "per_new"
    assert [c.document for c in decision.conflicts] == [HKID]


@pytest.mark.parametrize(
    ("login", "bound"),
    [
        (identity(HKID, subject="mallory", assurance=Assurance.LOW), ()),  # iAM Smart basic
        (identity(PERMIT, provider="guangdong", assurance=Assurance.LOW), (HKID,)),  # bound_ids
    ],
)
def test_a_low_login_asserting_a_linked_document_is_its_own_person_with_a_conflict(
    login: CanonicalIdentity, bound: tuple[IdentityDocument, ...]
) -> None:
    login = replace(login, bound_documents=bound)
    decision = resolve_links(
        login,
        account_person=None,
        known=known(HKID, person("per_chan")),
        new_person_id="per_m",
        at=NOW,
    )

    assert decision.person_id == "per_m"
    assert decision.new_person is not None
    assert [(c.document, c.person_id, c.status) for c in decision.conflicts] == [
        (HKID, "per_m", LinkStatus.CONFLICT)
    ]
    assert all(link.person_id == "per_m" for link in decision.new_links)
    assert all(link.status is LinkStatus.UNVERIFIED for link in decision.new_links)


def test_a_login_weaker_than_the_link_it_would_join_is_its_own_person() -> None:
    chan = person("per_chan")

    decision = resolve_links(
        identity(HKID, subject="other", assurance=Assurance.SUBSTANTIAL),
        account_person=None,
        known=known(HKID, chan, Assurance.HIGH),
        new_person_id="per_x",
        at=NOW,
    )

    assert decision.person_id == "per_x"
    assert [c.document for c in decision.conflicts] == [HKID]
    assert "assurance 'high'" in decision.conflicts[0].note


def test_a_low_first_login_links_no_one_so_a_later_strong_login_is_not_pulled_in() -> None:
    first = resolve_links(
        identity(HKID, subject="mallory", assurance=Assurance.LOW),
        account_person=None,
        known={},
        new_person_id="per_m",
        at=NOW,
    )

    assert [(link.document, link.status) for link in first.new_links] == [
        (HKID, LinkStatus.UNVERIFIED)
    ]
    assert "links no one" in first.new_links[0].note


def test_who_may_join_a_person_by_a_document() -> None:
    def link(level: Assurance) -> IdentityLink:
        return IdentityLink("per_a", HKID, "hk", level, NOW)

    assert may_join(Assurance.SUBSTANTIAL, [link(Assurance.SUBSTANTIAL)])
    assert may_join(Assurance.HIGH, [link(Assurance.SUBSTANTIAL), link(Assurance.HIGH)])
    assert not may_join(Assurance.LOW, [link(Assurance.LOW)])
    assert not may_join(Assurance.SUBSTANTIAL, [link(Assurance.HIGH)])


def test_acting_on_a_case_needs_the_assurance_it_was_filed_with() -> None:
    require_filed_assurance(Assurance.HIGH, Assurance.SUBSTANTIAL, "this case")
    require_filed_assurance(Assurance.LOW, None, "this case")  # filed before it was recorded
    with pytest.raises(InsufficientAssuranceError, match="'high'; the login has 'substantial'"):
        require_filed_assurance(Assurance.SUBSTANTIAL, Assurance.HIGH, "this case")


def test_acr_missing_or_unknown_is_refused_never_defaulted() -> None:
    table = {"iamsmart": Assurance.SUBSTANTIAL}

    assert assurance_of("iamsmart", table, "hk") is Assurance.SUBSTANTIAL
    for value in (None, "", "iamsmart++", "IAMSMART"):
        with pytest.raises(InsufficientAssuranceError):
            assurance_of(value, table, "hk")


def test_the_identity_survives_its_json_form() -> None:
    original = identity(PERMIT, HRP, provider="guangdong", bound=(HKID,))

    assert identity_from_json(identity_to_json(original)) == original


def test_the_applicant_part_is_a_canonical_person() -> None:
    applicant = identity(HKID, HRP).applicant()

    assert applicant["birth_date"] == "1988-03-15"
    assert applicant["documents"] == [
        {"type": "HKID", "number": "A123456(3)", "issuer": "HK"},
        {"type": "HRP", "number": "H12345678", "issuer": "CN"},
    ]
    assert applicant["names"]["zh-Hans"] == "陈大文"


# ---- consent ---------------------------------------------------------------------------


def grant(**changes: object) -> Consent:
    args: dict = {
        "consent_id": "cns_1",
        "person_id": "per_1",
        "purpose": "cross_border_application",
        "categories": ["identity", "application"],
        "destinations": ["GD"],
        "at": NOW,
    }
    args.update(changes)
    return Consent.grant(**args)


def test_a_consent_covers_only_its_purpose_data_destinations_and_time() -> None:
    consent = grant(expires_at=NOW + timedelta(days=30), matter="M1")

    def covers(**changes: object) -> bool:
        args: dict = {
            "purpose": "cross_border_application",
            "categories": ["identity"],
            "destinations": ["GD"],
            "matter": "M1",
            "at": NOW,
        }
        args.update(changes)
        return consent.covers(**args)

    assert covers()
    assert not covers(categories=["identity", "contact"])
    assert not covers(destinations=["GD", "MO"])
    assert not covers(matter="M2")
    assert not covers(at=NOW + timedelta(days=31))
    assert not consent.withdraw(NOW).covers(
        purpose="cross_border_application",
        categories=["identity"],
        destinations=["GD"],
        matter="M1",
        at=NOW,
    )


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"categories": ["identity", "biometric"]}, "biometric_consent_separate"),
        (
            {"purpose": "biometric_verification", "categories": ["identity"]},
            "biometric_consent_separate",
        ),
        ({"destinations": []}, "required"),
        ({"destinations": ["US"]}, "invalid_consent"),
        ({"categories": ["dna"]}, "invalid_consent"),
        ({"purpose": "marketing"}, "invalid_consent"),
    ],
)
def test_invalid_consents_are_refused_with_the_problem_named(changes: dict, code: str) -> None:
    with pytest.raises(ValidationFailedError) as caught:
        grant(**changes)

    assert code in {p.code for p in caught.value.errors}


def test_biometric_checks_take_a_consent_of_their_own() -> None:
    consent = grant(purpose="biometric_verification", categories=["biometric"], destinations=[])

    assert consent.categories == ("biometric",)


def test_a_forward_needs_the_applicants_own_covering_consent() -> None:
    consent = grant()
    args: dict = {
        "person_id": "per_1",
        "matter": "M1",
        "destinations": ["GD"],
        "categories": ["identity"],
        "at": NOW,
    }

    assert require_consent(consent, **args) is consent
    with pytest.raises(ConsentRequiredError):
        require_consent(None, **args)
    with pytest.raises(ConsentRequiredError):
        require_consent(consent, **{**args, "person_id": "per_2"})
    with pytest.raises(ConsentRequiredError):
        require_consent(consent.withdraw(NOW), **args)


# ---- delegation ------------------------------------------------------------------------


def delegation(**changes: object) -> Delegation:
    args: dict = {
        "id": "dlg_1",
        "agent_id": "per_agent",
        "principal_document": HKID,
        "matters": ("M1",),
        "until": NOW + timedelta(days=10),
        "requested_at": NOW,
    }
    args.update(changes)
    return Delegation(**args)


class _Matter:
    def __init__(self, *, agent_allowed: bool) -> None:
        self.agent_allowed = agent_allowed
        self.code = "M1"


def test_only_the_holder_of_the_named_document_confirms_and_then_the_agent_may_act() -> None:
    requested = delegation()
    with pytest.raises(DelegationError):
        requested.confirm("per_other", [HRP], NOW)
    with pytest.raises(DelegationError):  # the agent cannot confirm its own request
        requested.confirm("per_agent", [HKID], NOW)

    confirmed = requested.confirm("per_chan", [HKID, HRP], NOW)

    assert confirmed.principal_id == "per_chan"
    assert not requested.allows("per_agent", "M1", NOW)
    assert confirmed.allows("per_agent", "M1", NOW)
    assert not confirmed.allows("per_agent", "M2", NOW)
    assert not confirmed.allows("per_agent", "M1", NOW + timedelta(days=11))
    assert not confirmed.revoke("per_chan", NOW).allows("per_agent", "M1", NOW)


def test_in_person_matters_refuse_agents_even_with_a_delegation() -> None:
    confirmed = delegation(matters=("*",)).confirm("per_chan", [HKID], NOW)

    require_delegation(confirmed, agent_id="per_agent", matter=_Matter(agent_allowed=True), at=NOW)  # type: ignore[arg-type]
    with pytest.raises(DelegationError, match="in person"):
        require_delegation(
            confirmed,
            agent_id="per_agent",
            matter=_Matter(agent_allowed=False),
            at=NOW,  # type: ignore[arg-type]
        )
    with pytest.raises(DelegationError):
        require_delegation(None, agent_id="per_agent", matter=_Matter(agent_allowed=True), at=NOW)  # type: ignore[arg-type]
