"""Residents in SQL (the IdentityRepository port): persons, accounts, links, logins,
consents and delegations."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.domain.errors import ConflictError
from gateway.domain.identity import (
    CanonicalIdentity,
    Consent,
    Delegation,
    IdentityLink,
    LinkStatus,
    Person,
    PersonNames,
    identity_from_json,
    identity_to_json,
)
from gateway.domain.matters import Assurance
from gateway.domain.values import DocumentType, IdentityDocument
from gateway.store.database import dialect_insert
from gateway.store.tables import (
    consents,
    delegations,
    identity_accounts,
    identity_links,
    logins,
    oidc_refresh_tokens,
    persons,
)


def _person(row: Any) -> Person:
    return Person(
        row.id, PersonNames.from_dict(row.names), date.fromisoformat(row.birth_date), row.created_at
    )


def _link(row: Any) -> IdentityLink:
    return IdentityLink(
        person_id=row.person_id,
        document=IdentityDocument(DocumentType(row.doc_type), row.number, row.issuer),
        source=row.source,
        assurance=Assurance(row.assurance),
        at=row.at,
        status=LinkStatus(row.status),
        note=row.note,
    )


def _consent(row: Any) -> Consent:
    return Consent(
        id=row.id,
        person_id=row.person_id,
        purpose=row.purpose,
        categories=tuple(row.categories),
        destinations=tuple(row.destinations),
        granted_at=row.granted_at,
        expires_at=row.expires_at,
        withdrawn_at=row.withdrawn_at,
        matter=row.matter,
        recipients=tuple(row.recipients),
    )


def _delegation(row: Any) -> Delegation:
    return Delegation(
        id=row.id,
        agent_id=row.agent_id,
        principal_document=IdentityDocument.parse(row.principal_doc_type, row.principal_number),
        matters=tuple(row.matters),
        until=row.until,
        requested_at=row.requested_at,
        principal_id=row.principal_id,
        confirmed_at=row.confirmed_at,
        revoked_at=row.revoked_at,
    )


class SqlIdentities:
    def __init__(self, conn: AsyncConnection) -> None:
        self._conn = conn

    async def person(self, person_id: str) -> Person | None:
        row = (
            await self._conn.execute(persons.select().where(persons.c.id == person_id))
        ).one_or_none()
        return _person(row) if row else None

    async def account_person(self, provider: str, subject: str) -> Person | None:
        row = (
            await self._conn.execute(
                sa.select(persons)
                .join(identity_accounts, identity_accounts.c.person_id == persons.c.id)
                .where(
                    identity_accounts.c.provider == provider,
                    identity_accounts.c.subject == subject,
                )
            )
        ).one_or_none()
        return _person(row) if row else None

    async def linked(
        self, keys: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[IdentityLink, Person]]:
        if not keys:
            return {}
        rows = await self._conn.execute(
            sa.select(identity_links, persons.c.names, persons.c.birth_date, persons.c.created_at)
            .join(persons, persons.c.id == identity_links.c.person_id)
            .where(
                identity_links.c.status == LinkStatus.LINKED.value,
                sa.tuple_(identity_links.c.doc_type, identity_links.c.number).in_(list(keys)),
            )
        )
        out = {}
        for row in rows:
            link = _link(row)
            person = Person(
                row.person_id,
                PersonNames.from_dict(row.names),
                date.fromisoformat(row.birth_date),
                row.created_at,
            )
            out[link.key] = (link, person)
        return out

    async def add_person(self, person: Person) -> None:
        await self._conn.execute(
            persons.insert().values(
                id=person.id,
                names=person.names.as_dict(),
                birth_date=person.birth_date.isoformat(),
                created_at=person.created_at,
            )
        )

    async def link_account(self, provider: str, subject: str, person_id: str, at: datetime) -> None:
        insert = dialect_insert(self._conn, identity_accounts)
        await self._conn.execute(
            insert.values(
                provider=provider, subject=subject, person_id=person_id, linked_at=at
            ).on_conflict_do_nothing(index_elements=["provider", "subject"])
        )

    async def add_links(self, links: Sequence[IdentityLink]) -> None:
        if not links:
            return
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(
                    identity_links.insert(),
                    [
                        {
                            "person_id": link.person_id,
                            "doc_type": link.document.type.value,
                            "number": link.document.number,
                            "issuer": link.document.issuer,
                            "source": link.source,
                            "assurance": link.assurance.value,
                            "status": link.status.value,
                            "note": link.note,
                            "at": link.at,
                        }
                        for link in links
                    ],
                )
        except IntegrityError:
            raise ConflictError("a document was linked to another person meanwhile") from None

    async def links_of(self, person_id: str) -> list[IdentityLink]:
        rows = await self._conn.execute(
            identity_links.select()
            .where(identity_links.c.person_id == person_id)
            .order_by(identity_links.c.id)
        )
        return [_link(r) for r in rows]

    async def conflicts(self) -> list[IdentityLink]:
        """Every link flagged for review, oldest first (operators: ``identities conflicts``)."""
        rows = await self._conn.execute(
            identity_links.select()
            .where(identity_links.c.status == LinkStatus.CONFLICT.value)
            .order_by(identity_links.c.id)
        )
        return [_link(r) for r in rows]

    async def add_login(
        self, login_id: str, person_id: str, identity: CanonicalIdentity, at: datetime
    ) -> None:
        await self._conn.execute(
            logins.insert().values(
                id=login_id,
                person_id=person_id,
                provider=identity.provider,
                identity=identity_to_json(identity),
                assurance=identity.assurance.value,
                at=at,
            )
        )

    async def login(self, login_id: str) -> tuple[str, CanonicalIdentity] | None:
        row = (
            await self._conn.execute(logins.select().where(logins.c.id == login_id))
        ).one_or_none()
        return (row.person_id, identity_from_json(row.identity)) if row else None

    async def latest_identity(self, person_id: str) -> CanonicalIdentity | None:
        row = (
            await self._conn.execute(
                logins.select()
                .where(logins.c.person_id == person_id)
                .order_by(logins.c.at.desc(), logins.c.id.desc())
                .limit(1)
            )
        ).one_or_none()
        return identity_from_json(row.identity) if row else None

    async def add_consent(self, consent: Consent) -> None:
        await self._conn.execute(consents.insert().values(**self._consent_row(consent)))

    async def save_consent(self, consent: Consent) -> None:
        await self._conn.execute(
            consents.update()
            .where(consents.c.id == consent.id)
            .values(withdrawn_at=consent.withdrawn_at)
        )

    async def end_grants(self, person_id: str, now: datetime) -> int:
        t = oidc_refresh_tokens
        revoked = await self._conn.execute(
            t.update()
            .where(t.c.person_id == person_id, t.c.revoked_at.is_(None), t.c.expires_at > now)
            .values(revoked_at=now)
        )
        return int(revoked.rowcount or 0)

    async def consent(self, consent_id: str) -> Consent | None:
        row = (
            await self._conn.execute(consents.select().where(consents.c.id == consent_id))
        ).one_or_none()
        return _consent(row) if row else None

    async def consents_of(self, person_id: str) -> list[Consent]:
        rows = await self._conn.execute(
            consents.select().where(consents.c.person_id == person_id).order_by(consents.c.id)
        )
        return [_consent(r) for r in rows]

    async def add_delegation(self, delegation: Delegation) -> None:
        await self._conn.execute(delegations.insert().values(**self._delegation_row(delegation)))

    async def save_delegation(self, delegation: Delegation) -> None:
        await self._conn.execute(
            delegations.update()
            .where(delegations.c.id == delegation.id)
            .values(
                principal_id=delegation.principal_id,
                confirmed_at=delegation.confirmed_at,
                revoked_at=delegation.revoked_at,
            )
        )

    async def delegation(self, delegation_id: str) -> Delegation | None:
        row = (
            await self._conn.execute(delegations.select().where(delegations.c.id == delegation_id))
        ).one_or_none()
        return _delegation(row) if row else None

    async def delegations_of(self, person_id: str) -> list[Delegation]:
        documents = [
            (link.document.type.value, link.document.number)
            for link in await self.links_of(person_id)
            if link.status is LinkStatus.LINKED
        ]
        named = (
            sa.tuple_(delegations.c.principal_doc_type, delegations.c.principal_number).in_(
                documents
            )
            if documents
            else sa.false()
        )
        rows = await self._conn.execute(
            delegations.select()
            .where(
                sa.or_(
                    delegations.c.agent_id == person_id,
                    delegations.c.principal_id == person_id,
                    named,
                )
            )
            .order_by(delegations.c.id)
        )
        return [_delegation(r) for r in rows]

    @staticmethod
    def _consent_row(c: Consent) -> dict[str, Any]:
        return {
            "id": c.id,
            "person_id": c.person_id,
            "purpose": c.purpose,
            "categories": list(c.categories),
            "destinations": list(c.destinations),
            "matter": c.matter,
            "recipients": list(c.recipients),
            "granted_at": c.granted_at,
            "expires_at": c.expires_at,
            "withdrawn_at": c.withdrawn_at,
        }

    @staticmethod
    def _delegation_row(d: Delegation) -> dict[str, Any]:
        return {
            "id": d.id,
            "agent_id": d.agent_id,
            "principal_doc_type": d.principal_document.type.value,
            "principal_number": d.principal_document.number,
            "principal_id": d.principal_id,
            "matters": list(d.matters),
            "until": d.until,
            "requested_at": d.requested_at,
            "confirmed_at": d.confirmed_at,
            "revoked_at": d.revoked_at,
        }
