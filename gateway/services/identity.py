"""Use cases of residents: signing in, what the gateway knows of them, consents, delegations.

A federated login arrives here already verified (signature, issuer, audience, nonce, acr) and
already in canonical form. :func:`sign_in` decides which person it is (linking, never merging),
records the login and puts it on the audit chain, all in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.domain import ids
from gateway.domain.documents import problem
from gateway.domain.errors import ConflictError, NotFoundError, ValidationFailedError
from gateway.domain.identity import (
    CanonicalIdentity,
    Delegation,
    IdentityLink,
    LinkStatus,
    document_claim,
    require_filed_assurance,
    resolve_links,
)
from gateway.domain.values import IdentityDocument
from gateway.services import notifications
from gateway.services.consents import consent_from_request
from gateway.services.handlers import Dependencies
from gateway.services.ports import OutboxMessage, UnitOfWork
from gateway.services.residents import login_assurance


@dataclass(frozen=True, slots=True)
class SignIn:
    login_id: str
    person_id: str
    identity: CanonicalIdentity
    conflicts: tuple[IdentityLink, ...]


@dataclass(frozen=True, slots=True)
class Resident:
    """A resident acting through a gateway access token (the applicant API)."""

    person_id: str
    login_id: str
    client_id: str
    agency_id: str  # the partner the token is audience-bound to
    channel: str


async def sign_in(identity: CanonicalIdentity, deps: Dependencies) -> SignIn:
    """Record a verified login: which person, which new links, which conflicts for review."""
    for attempt in range(2):  # a concurrent first login of the same documents: decide again
        try:
            return await _sign_in_once(identity, deps)
        except ConflictError:
            if attempt:
                raise
    raise AssertionError("unreachable")


async def _sign_in_once(identity: CanonicalIdentity, deps: Dependencies) -> SignIn:
    now = deps.clock.now()
    async with deps.uow() as uow:
        repo = uow.identities
        account = await repo.account_person(identity.provider, identity.subject)
        keys = [(d.type.value, d.number) for d in identity.all_documents()]
        decision = resolve_links(
            identity,
            account_person=account,
            known=await repo.linked(keys),
            new_person_id=ids.new_person_id(),
            at=now,
        )
        recorded: set[tuple[tuple[str, str], LinkStatus]] = set()
        if decision.new_person is not None:
            await repo.add_person(decision.new_person)
        else:  # a returning person: what was flagged before is not flagged again
            recorded = {(link.key, link.status) for link in await repo.links_of(decision.person_id)}
        await repo.link_account(identity.provider, identity.subject, decision.person_id, now)
        await repo.add_links(
            [
                link
                for link in (*decision.new_links, *decision.conflicts)
                if (link.key, link.status) not in recorded
            ]
        )
        login_id = ids.new_login_id()
        await repo.add_login(login_id, decision.person_id, identity, now)
        uow.audit.record(
            "identity.login",
            f"idp:{identity.provider}",
            decision.person_id,
            {
                "login_id": login_id,
                "acr": identity.acr,
                "assurance": identity.assurance.value,
                "linked": [
                    link.document.type.value
                    for link in decision.new_links
                    if link.status is LinkStatus.LINKED
                ],
                "unverified": [
                    link.document.type.value
                    for link in decision.new_links
                    if link.status is LinkStatus.UNVERIFIED
                ],
                "conflicts": [link.document.type.value for link in decision.conflicts],
            },
            now,
        )
        await uow.commit()
    return SignIn(login_id, decision.person_id, identity, decision.conflicts)


async def me(resident: Resident, deps: Dependencies) -> dict[str, Any]:
    """What the gateway holds about the resident: identity, links, consents, delegations."""
    async with deps.uow() as uow:
        found = await uow.identities.login(resident.login_id)
        if found is None or found[0] != resident.person_id:
            raise NotFoundError("the login behind this token is unknown")
        identity = found[1]
        links = await uow.identities.links_of(resident.person_id)
        consents = await uow.identities.consents_of(resident.person_id)
        delegations = await uow.identities.delegations_of(resident.person_id)
    return {
        "identity": {**identity.claims(), "assurance": identity.assurance.value},
        "links": [
            {
                **document_claim(link.document),
                "source": link.source,
                "assurance": link.assurance.value,
                "at": link.at.isoformat(),
                "status": link.status.value,
                **({"note": link.note} if link.note else {}),
            }
            for link in links
        ],
        "consents": [c.as_dict() for c in consents],
        "delegations": [_delegation_view(d, resident.person_id) for d in delegations],
    }


def _delegation_view(d: Delegation, person_id: str) -> dict[str, Any]:
    return {**d.as_dict(), "role": "agent" if d.agent_id == person_id else "principal"}


# ---- consents --------------------------------------------------------------------------


async def grant_consent(
    resident: Resident, data: Mapping[str, Any], deps: Dependencies
) -> dict[str, Any]:
    now = deps.clock.now()
    consent = consent_from_request(data, person_id=resident.person_id, at=now)
    async with deps.uow() as uow:
        await uow.identities.add_consent(consent)
        uow.audit.record(
            "consent.granted",
            f"person:{resident.person_id}",
            consent.id,
            {
                "purpose": consent.purpose,
                "categories": list(consent.categories),
                "destinations": list(consent.destinations),
            },
            now,
        )
        await uow.commit()
    return consent.as_dict()


async def withdraw_consent(
    resident: Resident, consent_id: str, deps: Dependencies
) -> dict[str, Any]:
    now = deps.clock.now()
    async with deps.uow() as uow:
        consent = await uow.identities.consent(consent_id)
        if consent is None or consent.person_id != resident.person_id:
            raise NotFoundError("no such consent of yours")
        require_filed_assurance(
            await login_assurance(uow, resident.person_id, resident.login_id),
            await uow.applications.assurance_relying_on(consent.id),
            "withdrawing a consent a case relies on",
        )
        withdrawn = consent.withdraw(now)
        if withdrawn is not consent:
            await uow.identities.save_consent(withdrawn)
            held = await withhold_forwards(
                uow, consent.id, "consent_withdrawn", now, notify=deps.notify
            )
            # portals holding the resident's refresh tokens must come back through a login
            ended = await uow.identities.end_grants(resident.person_id, now)
            details: dict[str, Any] = {"forwards_withheld": held} if held else {}
            if ended:
                details["refresh_tokens_revoked"] = ended
            uow.audit.record(
                "consent.withdrawn", f"person:{resident.person_id}", consent.id, details, now
            )
        await uow.commit()
    return withdrawn.as_dict()


async def withhold_forwards(
    uow: UnitOfWork, consent_id: str, reason: str, now: datetime, *, notify: bool = False
) -> int:
    """Cancel the forwards not yet delivered that rely on the consent: each outbox row is
    ``withheld`` (the relay never sends it) and its case's timeline says so
    (``message.withheld`` with the reason), and, with ``notify``, the applicant is told the
    case is on hold. Later forwards are checked as they fall due (milestones.forwards). The
    number of forwards withheld."""
    queued = await uow.outbox.relying_on(consent_id)
    held = await uow.outbox.withhold([m.id for m in queued], reason)
    by_case: dict[str, list[OutboxMessage]] = {}
    for message in queued:
        if message.id in held:
            by_case.setdefault(message.application_id, []).append(message)
    for application_id, messages in sorted(by_case.items()):
        app = await uow.applications.get(application_id)
        if app is None:
            continue
        for message in messages:
            app.forward_withheld(message.destination, reason, now, message.id)
        if notify:  # the applicant is told the case is on hold (Art. 22)
            await notifications.record(app, uow, now)
        await uow.applications.save(app)
    return len(held)


# ---- delegations -----------------------------------------------------------------------


async def request_delegation(
    resident: Resident, data: Mapping[str, Any], deps: Dependencies
) -> dict[str, Any]:
    """An agent asks to act for the person holding a document; the principal confirms."""
    now = deps.clock.now()
    problems = []
    principal = data.get("principal")
    document = None
    if not isinstance(principal, Mapping):
        problems.append(problem("/principal", "required"))
    else:
        try:
            document = IdentityDocument.parse(
                str(principal.get("type")), str(principal.get("number"))
            )
        except ValueError:
            problems.append(problem("/principal", "invalid_document"))
    matters = data.get("matters")
    if not isinstance(matters, list) or not matters or not all(isinstance(m, str) for m in matters):
        problems.append(problem("/matters", "required"))
    until = None
    try:
        until = datetime.fromisoformat(str(data.get("until")))
        if until.tzinfo is None or until <= now:
            problems.append(problem("/until", "invalid_value"))
    except ValueError:
        problems.append(problem("/until", "invalid_date"))
    if problems or document is None or until is None:
        raise ValidationFailedError(f"{len(problems)} problem(s) found", errors=problems)
    delegation = Delegation(
        id=ids.new_delegation_id(),
        agent_id=resident.person_id,
        principal_document=document,
        matters=tuple(matters),  # type: ignore[arg-type]
        until=until,
        requested_at=now,
    )
    async with deps.uow() as uow:
        await uow.identities.add_delegation(delegation)
        uow.audit.record(
            "delegation.requested",
            f"person:{resident.person_id}",
            delegation.id,
            {"matters": list(delegation.matters), "until": until.isoformat()},
            now,
        )
        await uow.commit()
    return _delegation_view(delegation, resident.person_id)


async def change_delegation(
    resident: Resident, delegation_id: str, action: str, deps: Dependencies
) -> dict[str, Any]:
    """``confirm`` (the principal, online) or ``revoke`` (either party)."""
    now = deps.clock.now()
    async with deps.uow() as uow:
        delegation = await uow.identities.delegation(delegation_id)
        held = [
            link
            for link in await uow.identities.links_of(resident.person_id)
            if link.status is LinkStatus.LINKED
        ]
        mine = [link.document for link in held]
        visible = delegation is not None and (
            resident.person_id in (delegation.agent_id, delegation.principal_id)
            or delegation.principal_document in mine
        )
        if delegation is None or not visible:
            raise NotFoundError("no such delegation for you")
        if action == "confirm":
            named = [link for link in held if link.document == delegation.principal_document]
            require_filed_assurance(
                await login_assurance(uow, resident.person_id, resident.login_id),
                named[0].assurance if named else None,
                "confirming a delegation as the holder of the document it names",
            )
            changed = delegation.confirm(resident.person_id, mine, now)
        else:
            changed = delegation.revoke(resident.person_id, now)
        if changed != delegation:
            await uow.identities.save_delegation(changed)
            uow.audit.record(
                f"delegation.{action}ed".replace("eed", "ed"),
                f"person:{resident.person_id}",
                delegation.id,
                {},
                now,
            )
        await uow.commit()
    return _delegation_view(changed, resident.person_id)
