"""A resident's own submission: identity from the login, assurance, agents and consent.

The applicant never types who they are: the ``applicant`` part of the canonical application
is the identity their login asserted (Art. 19(5)); an agent applies under a confirmed
delegation with the principal's identity (Art. 24); the login's assurance must reach the
matter's minimum; and data leaves the applicant's jurisdiction only under a consent that
covers the matter, the data and the destinations (Art. 28, PIPL art. 39), whose id travels
signed with every forward.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.domain.agencies import Agency
from gateway.domain.application import Application
from gateway.domain.commands import Applicant, Caller
from gateway.domain.documents import problem
from gateway.domain.errors import (
    ConsentRequiredError,
    DelegationError,
    InvalidTokenError,
    ValidationFailedError,
)
from gateway.domain.identity import (
    CanonicalIdentity,
    Consent,
    Delegation,
    require_assurance,
    require_consent,
    require_delegation,
    require_filed_assurance,
)
from gateway.domain.matters import Assurance, Matter
from gateway.services.consents import consent_from_request
from gateway.services.milestones import data_categories
from gateway.services.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class ResidentPart:
    login: CanonicalIdentity  # who is acting, at which assurance
    applicant: CanonicalIdentity  # whose application it is (the principal, for an agent)
    applicant_id: str
    agent_id: str | None
    delegation: Delegation | None


async def resident_part(applicant: Applicant, deps: Any) -> ResidentPart:
    """Read the login (and the delegation, for an agent) behind a resident's submission."""
    async with deps.uow() as uow:
        found = await uow.identities.login(applicant.login_id)
        if found is None or found[0] != applicant.person_id:
            raise InvalidTokenError("the login behind this token is unknown")
        login = found[1]
        if applicant.on_behalf_of is None:
            return ResidentPart(login, login, applicant.person_id, None, None)
        delegation = await uow.identities.delegation(applicant.on_behalf_of)
        if delegation is None or delegation.agent_id != applicant.person_id:
            raise DelegationError("no such delegation for this agent")
        if delegation.principal_id is None:
            raise DelegationError("the principal has not confirmed this delegation")
        principal = await uow.identities.latest_identity(delegation.principal_id)
    if principal is None:
        raise DelegationError("the principal has not confirmed this delegation")
    return ResidentPart(login, principal, delegation.principal_id, applicant.person_id, delegation)


async def login_assurance(uow: UnitOfWork, person_id: str, login_id: str) -> Assurance:
    """The assurance of the login a resident acts through, as recorded at sign-in."""
    found = await uow.identities.login(login_id)
    if found is None or found[0] != person_id:
        raise InvalidTokenError("the login behind this token is unknown")
    return found[1].assurance


async def require_case_assurance(uow: UnitOfWork, caller: Caller, app: Application) -> None:
    """A resident acts on a case only at the assurance it was filed with, or more."""
    if caller.person_id is None or caller.login_id is None:
        return  # an agency: its signature, not a login, stands behind it
    level = await login_assurance(uow, caller.person_id, caller.login_id)
    require_filed_assurance(level, app.filed_assurance, "acting on this case")


def with_applicant(applicant: Applicant, part: ResidentPart) -> bytes:
    """The canonical application with its identity part filled from the login."""
    if "applicant" in applicant.application:
        raise ValidationFailedError(
            "the applicant's identity comes from the login",
            errors=[problem("/application/applicant", "identity_from_login")],
        )
    document = {**applicant.application, "applicant": part.applicant.applicant()}
    return json.dumps(document, ensure_ascii=False).encode()


def home_jurisdiction(identity: CanonicalIdentity) -> str:
    """Where the person lives, from their documents (not where the login account is)."""
    for doc in identity.all_documents():
        if doc.type.value == "HKID" or doc.number.startswith("810000"):
            return "HK"
        if doc.type.value == "MO_BIR" or doc.number.startswith("820000"):
            return "MO"
    return "GD"


async def admit(
    applicant: Applicant,
    part: ResidentPart,
    matter: Matter,
    document: Mapping[str, Any],
    handlers: Mapping[str, Agency],
    uow: UnitOfWork,
    now: datetime,
    delivery_channel: str | None = None,
) -> Consent | None:
    """Assurance, delegation and consent checks; the consent the forwards rely on."""
    require_assurance(part.login.assurance, matter)
    if delivery_channel == "electronic":  # Art. 22: an e-certificate result needs consent
        held = await uow.identities.consents_of(part.applicant_id)
        if not any(c.purpose == "e_certificate" and c.active(now) for c in held):
            raise ConsentRequiredError(
                "an electronic certificate is delivered only with the applicant's consent "
                "(purpose e_certificate)"
            )
    if part.agent_id is not None:
        require_delegation(part.delegation, agent_id=part.agent_id, matter=matter, at=now)
    home = home_jurisdiction(part.applicant)
    destinations = sorted({a.jurisdiction for a in handlers.values()} - {home})
    consent = await _consent(applicant, part, matter, handlers, uow, now)
    if consent is None and part.agent_id is not None and destinations:
        consent = await _principal_s(uow, part.applicant_id, matter, destinations, document, now)
    if not destinations and consent is None:
        return None
    consent = require_consent(
        consent,
        person_id=part.applicant_id,
        matter=str(matter.code),
        destinations=destinations,
        categories=data_categories(document),
        at=now,
    )
    if applicant.consent is not None:  # given with this submission: recorded with it
        await uow.identities.add_consent(consent)
        uow.audit.record(
            "consent.granted",
            f"person:{part.applicant_id}",
            consent.id,
            {
                "purpose": consent.purpose,
                "categories": list(consent.categories),
                "destinations": list(consent.destinations),
                "matter": consent.matter,
            },
            now,
        )
    return consent


async def _principal_s(
    uow: UnitOfWork,
    principal_id: str,
    matter: Matter,
    destinations: list[str],
    document: Mapping[str, Any],
    now: datetime,
) -> Consent | None:
    """An agent names no consent (it cannot give one, Art. 24): the principal's own consent
    in force that covers this matter, its data and destinations, if they gave one; one for
    this matter before a general one, the newest first."""
    categories = data_categories(document)
    covering = [
        c
        for c in await uow.identities.consents_of(principal_id)
        if c.covers(
            purpose="cross_border_application",
            categories=categories,
            destinations=destinations,
            matter=str(matter.code),
            at=now,
        )
    ]
    return max(covering, key=lambda c: (c.matter is not None, c.granted_at), default=None)


async def _consent(
    applicant: Applicant,
    part: ResidentPart,
    matter: Matter,
    handlers: Mapping[str, Agency],
    uow: UnitOfWork,
    now: datetime,
) -> Consent | None:
    if applicant.consent is not None and applicant.consent_id is not None:
        raise ValidationFailedError(
            "give a consent or name one, not both", errors=[problem("/consent", "invalid_value")]
        )
    if applicant.consent is not None:
        if part.agent_id is not None:
            raise ConsentRequiredError(
                "an agent cannot consent for the applicant; the applicant gives consent"
            )
        return consent_from_request(
            {**applicant.consent, "matter": str(matter.code)},
            person_id=part.applicant_id,
            at=now,
            recipients=sorted(handlers),
        )
    if applicant.consent_id is not None:
        return await uow.identities.consent(applicant.consent_id)
    return None
