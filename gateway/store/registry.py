"""Agencies and their keys in the database: one registry for every gateway process.

Every write here moves the ``registry_version`` row in the same transaction (and on PostgreSQL
notifies the new version, told to every process at commit); the signed-request edge reads that
version on every request and serves the key and agency from its process's snapshot
(:mod:`gateway.store.registry_cache`) while it is unchanged, so a revocation takes effect at the
next request in all processes. Revocation is sticky: re-importing the registry
file never clears it, and a ``revoked_at`` added to the file later revokes the stored key (the
earlier of the two times wins).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from gateway.domain.agencies import Agency
from gateway.domain.errors import ConflictError, UnknownKeyError
from gateway.store.pg_listener import REGISTRY_CHANNEL, notify
from gateway.store.registry_cache import RegistryCache, RegistrySnapshot
from gateway.store.tables import agencies, agency_keys, registry_version
from gateway.trust.keys import VerificationKey
from gateway.trust.registry import MAX_KID, KeySpec, Registration


def _agency(row: Any) -> Agency:
    return Agency(
        row.id,
        row.jurisdiction,
        dict(row.names),
        row.endpoint,
        tuple(row.matters),
        row.receives or "",
        tuple(row.issues_evidence or ()),
    )


def _spec(row: Any) -> KeySpec:
    return KeySpec(
        row.kid,
        dict(row.jwk),
        row.certificate,
        row.not_before,
        row.not_after,
        row.revoked_at,
        row.sandbox,
    )


def registry_version_of(conn: sa.Connection) -> int | None:
    """The registry version, read on a synchronous connection (the batch writer)."""
    return conn.execute(
        sa.select(registry_version.c.version).where(registry_version.c.id == 1)
    ).scalar_one_or_none()


def load_snapshot(conn: sa.Connection, version: int) -> RegistrySnapshot:
    """Every agency and key, read after ``version`` (so never older than it)."""
    loaded = {r.id: _agency(r) for r in conn.execute(agencies.select())}
    specs = {r.kid: (r.agency_id, _spec(r)) for r in conn.execute(agency_keys.select())}
    return RegistrySnapshot(version, loaded, specs)


class SqlAgencies:
    """The AgencyRepository port, and the registry's administration."""

    def __init__(self, conn: AsyncConnection, cache: RegistryCache | None = None) -> None:
        self._conn = conn
        self._cache = cache
        self._wrote = False
        self._read: dict[str, Agency | None] = {}  # agencies read by this transaction

    async def _changed(self) -> None:
        """Move the registry version, once per transaction, before its first write; on
        PostgreSQL every process's listener is told the new version at commit."""
        if not self._wrote:
            self._wrote = True
            moved = await self._conn.execute(
                registry_version.update()
                .where(registry_version.c.id == 1)
                .values(version=registry_version.c.version + 1)
                .returning(registry_version.c.version)
            )
            version = moved.scalar_one_or_none()
            if version is not None:
                await notify(self._conn, REGISTRY_CHANNEL, str(version))

    async def version(self) -> int | None:
        """The registry version (None on a schema made without :func:`create_schema`)."""
        return (
            await self._conn.execute(
                sa.select(registry_version.c.version).where(registry_version.c.id == 1)
            )
        ).scalar_one_or_none()

    async def signer(self, kid: str) -> tuple[VerificationKey, Agency | None]:
        """The key with exactly this id and its agency (None if not registered), or
        UnknownKeyError: from the process's snapshot while the registry version is unchanged,
        else read again. Once this transaction wrote to the registry it reads through."""
        if self._cache is None or self._wrote:
            key = await self.key(kid)
            return key, await self.get(key.owner)
        version = await self.version()
        if version is None:
            key = await self.key(kid)
            return key, await self.get(key.owner)
        snapshot = self._cache.at(version)
        if snapshot is None:
            snapshot = await self._load(version)
            self._cache.keep(snapshot)
        key = snapshot.key(kid)
        return key, snapshot.agency(key.owner)

    async def snapshot(self) -> RegistrySnapshot:
        """The registry as it is now: the process's snapshot if still at the current
        version, else loaded again (and kept)."""
        version = await self.version() or 0
        snapshot = self._cache.at(version) if self._cache is not None else None
        if snapshot is None:
            snapshot = await self._load(version)
            if self._cache is not None:
                self._cache.keep(snapshot)
        return snapshot

    async def still_valid(self, kid: str, at: datetime) -> None:
        """UnknownKeyError unless ``kid`` is registered to a registered agency and valid at
        ``at`` in the registry as it is now (one version read; the snapshot otherwise)."""
        key, agency = await self.signer(kid)
        if agency is None or not key.valid_at(at):
            raise UnknownKeyError("the signing key was revoked or is not valid now")

    @property
    def wrote(self) -> bool:
        """Whether this transaction wrote to the registry."""
        return self._wrote

    async def _load(self, version: int) -> RegistrySnapshot:
        return await self._conn.run_sync(load_snapshot, version)

    async def get(self, agency_id: str) -> Agency | None:
        """The agency as this transaction read it first (a batch that moves many cases of
        the same agencies reads each once), until it writes to the registry."""
        if not self._wrote and agency_id in self._read:
            return self._read[agency_id]
        row = (
            await self._conn.execute(agencies.select().where(agencies.c.id == agency_id))
        ).one_or_none()
        agency = self._read[agency_id] = None if row is None else _agency(row)
        return agency

    async def issuer_of(self, evidence_type: str) -> Agency | None:
        """The agency issuing ``evidence_type``, from the registry snapshot (first by id)."""
        snapshot = await self.snapshot()
        found = [a for a in snapshot.agencies.values() if a.issues(evidence_type)]
        return min(found, key=lambda a: a.id, default=None)

    async def all(self) -> list[tuple[Agency, bool]]:
        rows = await self._conn.execute(agencies.select().order_by(agencies.c.id))
        return [(_agency(r), r.sandbox) for r in rows]

    async def key(self, kid: str) -> VerificationKey:
        """The registered key with exactly this id, or UnknownKeyError."""
        row = None
        if len(kid) <= MAX_KID:
            row = (
                await self._conn.execute(agency_keys.select().where(agency_keys.c.kid == kid))
            ).one_or_none()
        if row is None:
            raise UnknownKeyError("the key id is not registered")
        return _spec(row).verification_key(row.agency_id)

    async def keys(self, agency_id: str | None = None) -> list[tuple[str, KeySpec]]:
        query = agency_keys.select().order_by(agency_keys.c.agency_id, agency_keys.c.created_at)
        if agency_id is not None:
            query = query.where(agency_keys.c.agency_id == agency_id)
        return [(r.agency_id, _spec(r)) for r in await self._conn.execute(query)]

    async def register(self, reg: Registration, at: datetime) -> None:
        """Create or update an agency and add its keys (a key's revocation is never undone)."""
        agency = reg.agency
        values = {
            "jurisdiction": agency.jurisdiction,
            "names": dict(agency.names),
            "endpoint": agency.endpoint,
            "matters": list(agency.matters),
            "receives": agency.receives,
            "issues_evidence": list(agency.issues_evidence),
            "sandbox": reg.sandbox,
            "updated_at": at,
        }
        await self._changed()
        existing = await self.get(agency.id)
        if existing is None:
            await self._conn.execute(agencies.insert().values(id=agency.id, **values))
        else:
            await self._conn.execute(
                agencies.update().where(agencies.c.id == agency.id).values(**values)
            )
        for spec in reg.keys:
            await self.add_key(agency.id, spec, at)

    async def add_key(self, agency_id: str, spec: KeySpec, at: datetime) -> None:
        await self._changed()
        row = (
            await self._conn.execute(agency_keys.select().where(agency_keys.c.kid == spec.kid))
        ).one_or_none()
        if row is not None and row.agency_id != agency_id:
            raise ConflictError("this key id is registered to another agency")
        if row is not None and row.jwk != spec.jwk:
            raise ConflictError("this key id is already registered with another key")
        values = {
            "not_before": spec.not_before,
            "not_after": spec.not_after,
            "certificate": spec.certificate,
        }
        if row is not None:
            revoked = [t for t in (row.revoked_at, spec.revoked_at) if t is not None]
            await self._conn.execute(
                agency_keys.update()
                .where(agency_keys.c.kid == spec.kid)
                .values(**values, revoked_at=min(revoked) if revoked else None)
            )
            return
        try:
            await self._conn.execute(
                agency_keys.insert().values(
                    kid=spec.kid,
                    agency_id=agency_id,
                    jwk=spec.jwk,
                    sandbox=spec.sandbox,
                    revoked_at=spec.revoked_at,
                    created_at=at,
                    **values,
                )
            )
        except IntegrityError as exc:
            raise ConflictError("this key id was registered concurrently") from exc

    async def revoke(self, kid: str, at: datetime) -> bool:
        """Revoke a key from ``at`` on; False when no such key exists."""
        await self._changed()
        result = await self._conn.execute(
            agency_keys.update()
            .where(agency_keys.c.kid == kid)
            .values(revoked_at=sa.func.coalesce(agency_keys.c.revoked_at, at))
        )
        return result.rowcount == 1

    async def retire_others(self, agency_id: str, keep: str, until: datetime) -> int:
        """Rotation: every other open-ended or later-ending key of the agency ends at ``until``."""
        await self._changed()
        result = await self._conn.execute(
            agency_keys.update()
            .where(
                agency_keys.c.agency_id == agency_id,
                agency_keys.c.kid != keep,
                sa.or_(agency_keys.c.not_after.is_(None), agency_keys.c.not_after > until),
            )
            .values(not_after=until)
        )
        return result.rowcount
