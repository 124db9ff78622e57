"""Canonical identity, identity links, consent and delegation. No I/O.

Three identity systems (HK iAM Smart, Macao One Account, Guangdong unified identity) each
assert a person in their own claims; a jurisdiction's identity profile turns those claims
into one :class:`CanonicalIdentity`. The gateway then *links* what it is told to the person
it already knows, document by document, keeping where each link came from; it never merges
two people on its own — a document already linked to someone else, or a birth date that
disagrees, is a conflict flagged for review (:func:`resolve_links`). A document links a login
to a person only when the login is at least ``substantial`` and at least as sure as the links
it would join; a weaker login is its own person, and what it asserts links no one.

Consent (Art. 28, PIPL arts. 29/39) is recorded per purpose, data categories and destination
jurisdictions; biometric checks need a consent of their own. A delegation (Art. 24) lets an
agent act for a principal once the principal has confirmed it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum
from typing import Any

from gateway.domain.documents import problem
from gateway.domain.errors import (
    ConsentRequiredError,
    DelegationError,
    InsufficientAssuranceError,
    ValidationFailedError,
)
from gateway.domain.matters import Assurance, Matter
from gateway.domain.values import DocumentType, IdentityDocument

ORGANISATION_DOCUMENTS = frozenset({DocumentType.USCC, DocumentType.HK_BRN})


@dataclass(frozen=True, slots=True)
class PersonNames:
    """A name in its original script, converted forms and Latin transcription."""

    original: str
    zh_hant: str | None = None
    zh_hans: str | None = None
    latin: str | None = None
    family_name_latin: str | None = None
    given_names_latin: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {
            "original": self.original,
            "zh-Hant": self.zh_hant,
            "zh-Hans": self.zh_hans,
            "latin": self.latin,
            "family_name_latin": self.family_name_latin,
            "given_names_latin": self.given_names_latin,
        }
        return {k: v for k, v in out.items() if v}

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> PersonNames:
        return cls(
            original=data["original"],
            zh_hant=data.get("zh-Hant"),
            zh_hans=data.get("zh-Hans"),
            latin=data.get("latin"),
            family_name_latin=data.get("family_name_latin"),
            given_names_latin=data.get("given_names_latin"),
        )


@dataclass(frozen=True, slots=True)
class Organisation:
    """The company a representative acts for (USCC or HK BRN), as the provider asserts it."""

    name: str
    document: IdentityDocument


@dataclass(frozen=True, slots=True)
class CanonicalIdentity:
    """One login, in the gateway's terms: who, how sure, and which provider said so."""

    provider: str  # hk | macau | guangdong
    issuer: str  # the provider's issuer URL
    subject: str  # the provider's subject for the gateway (pairwise at iAM Smart)
    jurisdiction: str  # HK | MO | GD: where the account is held
    names: PersonNames
    birth_date: date
    documents: tuple[IdentityDocument, ...]
    assurance: Assurance
    acr: str  # the provider's own value, kept as evidence
    organisation: Organisation | None = None
    # documents the provider says it has bound to this account (粤港在线身份互认)
    bound_documents: tuple[IdentityDocument, ...] = ()

    def applicant(self) -> dict[str, Any]:
        """The ``applicant`` part of a canonical application, filled from the login."""
        return applicant_document(self.names, self.birth_date, self.documents)

    def claims(self) -> dict[str, Any]:
        """The canonical identity as ID-token / userinfo claims (no provider subject)."""
        out: dict[str, Any] = {
            "name": self.names.original,
            "names": self.names.as_dict(),
            "birthdate": self.birth_date.isoformat(),
            "gba_documents": [document_claim(d) for d in self.documents],
            "gba_jurisdiction": self.jurisdiction,
            "gba_idp": self.provider,
        }
        if self.organisation is not None:
            out["gba_organisation"] = {
                "name": self.organisation.name,
                **document_claim(self.organisation.document),
            }
        return out

    def all_documents(self) -> tuple[IdentityDocument, ...]:
        return self.documents + tuple(d for d in self.bound_documents if d not in self.documents)


def document_claim(doc: IdentityDocument) -> dict[str, str]:
    return {"type": doc.type.value, "number": doc.display(), "issuer": doc.issuer}


def applicant_document(
    names: PersonNames, birth_date: date, documents: Iterable[IdentityDocument]
) -> dict[str, Any]:
    return {
        "names": names.as_dict(),
        "birth_date": birth_date.isoformat(),
        "documents": [
            {"type": d.type.value, "number": d.display(), "issuer": d.issuer}
            for d in documents
            if d.type not in ORGANISATION_DOCUMENTS
        ],
    }


def named_documents(document: Mapping[str, Any]) -> tuple[IdentityDocument, ...]:
    """The identity documents a canonical application names its applicant by (each once;
    an entry that does not parse is skipped: the case was validated on receipt)."""
    applicant = document.get("applicant")
    entries = applicant.get("documents") if isinstance(applicant, Mapping) else None
    found: list[IdentityDocument] = []
    for entry in entries if isinstance(entries, list) else []:
        try:
            doc = IdentityDocument.parse(str(entry["type"]), str(entry["number"]))
        except (KeyError, TypeError, ValueError):
            continue
        if doc.type not in ORGANISATION_DOCUMENTS and doc not in found:
            found.append(doc)
    return tuple(found)


def assurance_of(acr: str | None, table: Mapping[str, Assurance], provider: str) -> Assurance:
    """The provider's ``acr`` on the one scale; a missing or unknown value is refused."""
    if not acr:
        raise InsufficientAssuranceError(f"the {provider} identity provider sent no acr")
    try:
        return table[acr]
    except KeyError:
        raise InsufficientAssuranceError(
            f"the {provider} identity provider sent an acr the gateway does not know"
        ) from None


def require_filed_assurance(level: Assurance, filed: Assurance | None, what: str) -> None:
    """Acting on a case (or on what it rests on) needs the assurance it was made with."""
    if filed is not None and level.rank < filed.rank:
        raise InsufficientAssuranceError(
            f"{what} needs assurance '{filed.value}'; the login has '{level.value}'"
        )


def require_assurance(level: Assurance, matter: Matter) -> None:
    """Art. 19 and the matter's minimum: a lower level is refused, never raised or defaulted."""
    if level.rank < matter.min_assurance.rank:
        raise InsufficientAssuranceError(
            f"this matter needs assurance '{matter.min_assurance.value}'; "
            f"the login has '{level.value}'"
        )


# ---- linking -------------------------------------------------------------------------


class LinkStatus(StrEnum):
    LINKED = "linked"
    CONFLICT = "conflict"  # flagged for review, never merged
    UNVERIFIED = "unverified"  # asserted by a login below LINKING_ASSURANCE: links no one


#: The least assurance at which an asserted document ties a login to a person.
LINKING_ASSURANCE = Assurance.SUBSTANTIAL


@dataclass(frozen=True, slots=True)
class IdentityLink:
    """One identifier tied to a person, with where, when and how surely it was learnt."""

    person_id: str
    document: IdentityDocument
    source: str  # provider that asserted it
    assurance: Assurance
    at: datetime
    status: LinkStatus = LinkStatus.LINKED
    note: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.document.type.value, self.document.number)


@dataclass(frozen=True, slots=True)
class Person:
    """A resident as the gateway knows them, across accounts and documents."""

    id: str
    names: PersonNames
    birth_date: date
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LinkDecision:
    """What one login means for the records: which person, what to add, what to flag."""

    person_id: str
    new_person: Person | None
    new_links: tuple[IdentityLink, ...]
    conflicts: tuple[IdentityLink, ...]


def resolve_links(
    identity: CanonicalIdentity,
    *,
    account_person: Person | None,
    known: Mapping[tuple[str, str], tuple[IdentityLink, Person]],
    new_person_id: str,
    at: datetime,
) -> LinkDecision:
    """Decide which person a login is and what it teaches about their documents.

    ``account_person`` is who this provider account was linked to before; ``known`` holds
    the existing *linked* records of the login's documents. The person is the account's, else
    the one person every known document points to — when the login may join them
    (:func:`may_join`); a document of someone else, or a birth date that disagrees, becomes a
    conflict for review. A login below ``LINKING_ASSURANCE`` links nothing: its new documents
    are recorded ``unverified``. Nothing is ever merged here.
    """
    owners = {person.id: person for _, person in known.values()}
    if account_person is not None:
        person = account_person
    elif len(owners) == 1 and may_join(identity.assurance, [link for link, _ in known.values()]):
        (person,) = owners.values()
    else:  # nobody yet, several people, or too weak a login: a new person, the others apart
        person = None
    new_person = None
    if person is None or person.birth_date != identity.birth_date:
        # Nobody, or the provider says another birth date: a person of its own.
        new_person = Person(new_person_id, identity.names, identity.birth_date, at)
        person = new_person
    links, conflicts = [], []
    verified = identity.assurance.rank >= LINKING_ASSURANCE.rank
    for doc in identity.all_documents():
        if doc.type in ORGANISATION_DOCUMENTS:
            continue
        link = IdentityLink(person.id, doc, identity.provider, identity.assurance, at)
        existing = known.get(link.key)
        if existing is None:
            problem = _embedded_birth_date_conflict(doc, identity.birth_date)
            if problem:
                conflicts.append(replace(link, status=LinkStatus.CONFLICT, note=problem))
            elif verified:
                links.append(link)
            else:
                note = f"asserted at assurance '{identity.assurance.value}'; links no one"
                links.append(replace(link, status=LinkStatus.UNVERIFIED, note=note))
        elif existing[1].id != person.id:
            conflicts.append(
                replace(
                    link,
                    status=LinkStatus.CONFLICT,
                    note=f"already linked to another person by {existing[0].source} "
                    f"at assurance '{existing[0].assurance.value}'",
                )
            )
    return LinkDecision(person.id, new_person, tuple(links), tuple(conflicts))


def may_join(level: Assurance, links: Iterable[IdentityLink]) -> bool:
    """A login joins the person its documents are linked to only when it is at least
    ``LINKING_ASSURANCE`` and at least as sure as every link that established them."""
    return level.rank >= LINKING_ASSURANCE.rank and all(
        level.rank >= link.assurance.rank for link in links
    )


def _embedded_birth_date_conflict(doc: IdentityDocument, birth_date: date) -> str:
    """18-digit numbers carry the birth date; it must agree with the asserted one."""
    embedded = doc.type in (DocumentType.RESIDENCE_PERMIT, DocumentType.CN_RIC)
    if embedded and doc.number[6:14] != birth_date.strftime("%Y%m%d"):
        return "the birth date in the number differs from the asserted birth date"
    return ""


# ---- consent ---------------------------------------------------------------------------

CATEGORIES = frozenset(
    {
        "identity",
        "contact",
        "address",
        "application",
        "materials",
        "biometric",
        # evidence obtained by data sharing (mappings/evidence.yaml names each type's)
        "business_registration",
        "residence_status",
    }
)
BIOMETRIC = "biometric"
PURPOSES = frozenset({"cross_border_application", "biometric_verification", "e_certificate"})


@dataclass(frozen=True, slots=True)
class Consent:
    """One recorded consent: purpose, data categories, destinations, validity, withdrawal."""

    id: str
    person_id: str
    purpose: str
    categories: tuple[str, ...]
    destinations: tuple[str, ...]  # jurisdictions the data may go to
    granted_at: datetime
    expires_at: datetime | None = None
    withdrawn_at: datetime | None = None
    matter: str | None = None  # None: any matter
    recipients: tuple[str, ...] = ()  # agencies named at the time of consent

    @classmethod
    def grant(
        cls,
        *,
        consent_id: str,
        person_id: str,
        purpose: str,
        categories: Sequence[str],
        destinations: Sequence[str],
        at: datetime,
        expires_at: datetime | None = None,
        matter: str | None = None,
        recipients: Sequence[str] = (),
    ) -> Consent:
        """A new consent; biometric data only under a consent for biometric checks alone."""
        problems = []
        if purpose not in PURPOSES:
            problems.append(problem("/purpose", "invalid_consent"))
        if not categories or set(categories) - CATEGORIES:
            problems.append(problem("/categories", "invalid_consent"))
        if (BIOMETRIC in categories or purpose == "biometric_verification") and set(categories) | {
            purpose
        } != {BIOMETRIC, "biometric_verification"}:
            problems.append(problem("/categories", "biometric_consent_separate"))
        if purpose == "cross_border_application" and not destinations:
            problems.append(problem("/destinations", "required"))
        if set(destinations) - {"HK", "MO", "GD"}:  # no onward transfer outside the GBA
            problems.append(problem("/destinations", "invalid_consent"))
        if expires_at is not None and expires_at <= at:
            problems.append(problem("/expires_at", "invalid_value"))
        if problems:
            raise ValidationFailedError(f"{len(problems)} problem(s) found", errors=problems)
        return cls(
            id=consent_id,
            person_id=person_id,
            purpose=purpose,
            categories=tuple(sorted(set(categories))),
            destinations=tuple(sorted(set(destinations))),
            granted_at=at,
            expires_at=expires_at,
            matter=matter,
            recipients=tuple(recipients),
        )

    def active(self, at: datetime) -> bool:
        return self.withdrawn_at is None and (self.expires_at is None or at < self.expires_at)

    def covers(
        self,
        *,
        purpose: str,
        categories: Iterable[str],
        destinations: Iterable[str],
        matter: str,
        at: datetime,
    ) -> bool:
        return (
            self.active(at)
            and self.purpose == purpose
            and (self.matter is None or self.matter == matter)
            and set(categories) <= set(self.categories)
            and set(destinations) <= set(self.destinations)
        )

    def withdraw(self, at: datetime) -> Consent:
        if self.withdrawn_at is not None:
            return self
        return replace(self, withdrawn_at=at)

    def as_dict(self) -> dict[str, Any]:
        return {
            "consent_id": self.id,
            "purpose": self.purpose,
            "categories": list(self.categories),
            "destinations": list(self.destinations),
            "matter": self.matter,
            "recipients": list(self.recipients),
            "granted_at": self.granted_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "withdrawn_at": self.withdrawn_at.isoformat() if self.withdrawn_at else None,
        }


def require_consent(
    consent: Consent | None,
    *,
    person_id: str,
    matter: str,
    destinations: Iterable[str],
    categories: Iterable[str],
    at: datetime,
) -> Consent:
    """The consent a cross-border forward relies on, or ConsentRequiredError."""
    wanted = sorted(set(destinations))
    if consent is None or consent.person_id != person_id:
        raise ConsentRequiredError(
            f"sending this application to {', '.join(wanted)} needs the applicant's consent"
        )
    if not consent.covers(
        purpose="cross_border_application",
        categories=categories,
        destinations=wanted,
        matter=matter,
        at=at,
    ):
        raise ConsentRequiredError(
            "the consent given does not cover this matter, its data or its destinations, "
            "or was withdrawn"
        )
    return consent


# ---- delegation ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delegation:
    """An agent may act for a principal on some matters until a date, once confirmed.

    The agent names the principal by an identity document; the delegation binds to a person
    only when someone holding that document (a linked, not conflicting, record) confirms it
    online. So asking reveals nothing about whether that person uses the gateway.
    """

    id: str
    agent_id: str  # person id of the agent
    principal_document: IdentityDocument
    matters: tuple[str, ...]  # codes, or ("*",)
    until: datetime
    requested_at: datetime
    principal_id: str | None = None  # set when the principal confirms
    confirmed_at: datetime | None = None
    revoked_at: datetime | None = None

    def confirm(
        self, person_id: str, documents: Iterable[IdentityDocument], at: datetime
    ) -> Delegation:
        if self.principal_document not in set(documents) or person_id == self.agent_id:
            raise DelegationError("only the principal named in the delegation can confirm it")
        if self.revoked_at is not None or at >= self.until:
            raise DelegationError("the delegation was revoked or has expired")
        if self.confirmed_at is not None:
            return self
        return replace(self, principal_id=person_id, confirmed_at=at)

    def revoke(self, person_id: str, at: datetime) -> Delegation:
        if person_id not in (self.principal_id, self.agent_id):
            raise DelegationError("only the principal or the agent can revoke a delegation")
        return self if self.revoked_at else replace(self, revoked_at=at)

    def allows(self, agent_id: str, matter: str, at: datetime) -> bool:
        return (
            self.agent_id == agent_id
            and self.principal_id is not None
            and self.confirmed_at is not None
            and self.revoked_at is None
            and at < self.until
            and ("*" in self.matters or matter in self.matters)
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "delegation_id": self.id,
            "principal_document": document_claim(self.principal_document),
            "matters": list(self.matters),
            "until": self.until.isoformat(),
            "requested_at": self.requested_at.isoformat(),
            "confirmed_at": self.confirmed_at.isoformat() if self.confirmed_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def require_delegation(
    delegation: Delegation | None, *, agent_id: str, matter: Matter, at: datetime
) -> Delegation:
    """Art. 24: an agent acts only under a confirmed delegation, never for in-person matters."""
    if not matter.agent_allowed:
        raise DelegationError("this matter requires the applicant in person; agents are refused")
    if delegation is None or not delegation.allows(agent_id, str(matter.code), at):
        raise DelegationError(
            "no confirmed, unexpired delegation from this applicant covers this matter"
        )
    return delegation


# ---- serialisation (the login record keeps the identity as asserted) -----------------------


def identity_to_json(identity: CanonicalIdentity) -> dict[str, Any]:
    def doc(d: IdentityDocument) -> list[str]:
        return [d.type.value, d.number, d.issuer]

    return {
        "provider": identity.provider,
        "issuer": identity.issuer,
        "subject": identity.subject,
        "jurisdiction": identity.jurisdiction,
        "names": identity.names.as_dict(),
        "birth_date": identity.birth_date.isoformat(),
        "documents": [doc(d) for d in identity.documents],
        "bound_documents": [doc(d) for d in identity.bound_documents],
        "assurance": identity.assurance.value,
        "acr": identity.acr,
        "organisation": (
            {"name": identity.organisation.name, "document": doc(identity.organisation.document)}
            if identity.organisation
            else None
        ),
    }


def identity_from_json(data: Mapping[str, Any]) -> CanonicalIdentity:
    def doc(item: Sequence[str]) -> IdentityDocument:
        return IdentityDocument(DocumentType(item[0]), item[1], item[2])

    org = data.get("organisation")
    return CanonicalIdentity(
        provider=data["provider"],
        issuer=data["issuer"],
        subject=data["subject"],
        jurisdiction=data["jurisdiction"],
        names=PersonNames.from_dict(data["names"]),
        birth_date=date.fromisoformat(data["birth_date"]),
        documents=tuple(doc(d) for d in data["documents"]),
        assurance=Assurance(data["assurance"]),
        acr=data["acr"],
        organisation=Organisation(org["name"], doc(org["document"])) if org else None,
        bound_documents=tuple(doc(d) for d in data.get("bound_documents", ())),
    )
