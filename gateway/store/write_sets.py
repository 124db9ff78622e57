"""Write sets: what a write-only use case records instead of executing, and the batched unit
of work that records them.

A use case that needs no database read to decide (a partner's submission, the acceptance of a
signed read) runs in a :class:`BatchedUnitOfWork`. Its repositories read from memory (the
registry snapshot, the Idempotency-Keys and nonces this process has committed lately) and
*record* every write in a :class:`WriteSet`. Its ``commit`` hands the write set to the
process's committer (:mod:`gateway.store.committer`) and returns when the transaction holding
it has committed: durability is unchanged, a 202 still follows the commit.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import (
    Awaitable,
    Callable,
    Mapping,
)
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import sqlalchemy as sa

from gateway.domain.agencies import Agency
from gateway.domain.application import Application
from gateway.domain.errors import (
    UnknownKeyError,
)
from gateway.domain.materials import StoredMaterial
from gateway.services.ports import Notification, OutboxMessage, StoredResponse
from gateway.store.applications import new_rows
from gateway.store.audit import Pending, evidence_row
from gateway.store.delivery import idempotency_row, outbox_row
from gateway.store.materials import material_row
from gateway.store.notifications import notification_row
from gateway.store.registry_cache import RegistrySnapshot
from gateway.store.tables import (
    materials,
    notifications,
    outbox,
)
from gateway.trust.keys import VerificationKey

if TYPE_CHECKING:
    from gateway.store.committer import Committer

# Idempotency-Keys (with their answers, ~2 KB each) and nonces this process keeps in memory:
# a retry usually comes within seconds; an older one is answered from the database
_REMEMBERED = 4096


@dataclass(eq=False)
class WriteSet:
    """Everything one request writes, as rows; nothing is executed until the batch."""

    snapshot_version: int
    nonces: list[dict[str, Any]] = field(default_factory=list)
    claims: list[dict[str, Any]] = field(default_factory=list)  # idempotency_keys rows
    responses: list[StoredResponse] = field(default_factory=list)  # kept under the claims
    rows: list[tuple[sa.Table, list[dict[str, Any]]]] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    audit: list[Pending] = field(default_factory=list)
    signers: list[tuple[str, datetime]] = field(default_factory=list)  # key id, used at
    # A work item instead of rows: run inside the batch, in a savepoint of its own.
    work: Callable[[Any], Awaitable[Any]] | None = None
    result: Any = None
    future: asyncio.Future[Any] | None = None


class RecentClaims:
    """What this process committed lately: answers and used nonces, bounded (oldest go).
    A miss proves nothing (another process, an older request): the batch's unique
    constraints decide. A hit answers without a database round trip."""

    def __init__(self, size: int = _REMEMBERED) -> None:
        self._size = size
        self.responses: collections.OrderedDict[tuple[str, str, str], StoredResponse] = (
            collections.OrderedDict()
        )
        self.nonces: collections.OrderedDict[tuple[str, str], datetime] = collections.OrderedDict()

    def remember(self, write_set: WriteSet) -> None:
        for row, response in zip(write_set.claims, write_set.responses, strict=True):
            self._keep(self.responses, (row["agency_id"], row["scope"], row["key"]), response)
        for row in write_set.nonces:
            self._keep(self.nonces, (row["key_id"], row["nonce"]), row["expires_at"])

    def _keep(self, store: collections.OrderedDict[Any, Any], key: Any, value: Any) -> None:
        store[key] = value
        store.move_to_end(key)
        while len(store) > self._size:
            store.popitem(last=False)

    def forget(self) -> None:
        self.responses.clear()
        self.nonces.clear()


# ---- the batched unit of work: repositories that record ----------------------------------


class _Audit:
    def __init__(self, write_set: WriteSet) -> None:
        self._ws = write_set

    def record(
        self, kind: str, actor: str, subject: str, data: Mapping[str, Any], at: datetime
    ) -> None:
        self._ws.audit.append((at, kind, actor, subject, dict(data)))

    async def keep_evidence(self, digest: str, media_type: str, body: bytes, at: datetime) -> None:
        self._ws.evidence.append(evidence_row(digest, media_type, body, at))


class _Applications:
    def __init__(self, write_set: WriteSet, audit: _Audit) -> None:
        self._ws = write_set
        self._audit = audit

    async def add(self, app: Application) -> None:
        self._ws.rows.extend(new_rows(app, self._audit))


class _Outbox:
    def __init__(self, write_set: WriteSet) -> None:
        self._ws = write_set

    async def add(self, message: OutboxMessage) -> None:
        self._ws.rows.append((outbox, [outbox_row(message)]))


class _Notifications:
    def __init__(self, write_set: WriteSet) -> None:
        self._ws = write_set

    async def add(self, notification: Notification) -> None:
        self._ws.rows.append((notifications, [notification_row(notification)]))


class _Materials:
    """Adds only: binding and every read need a unit of work of their own."""

    def __init__(self, write_set: WriteSet) -> None:
        self._ws = write_set

    async def add(self, material: StoredMaterial) -> None:
        self._ws.rows.append((materials, [material_row(material)]))

    def __getattr__(self, attribute: str) -> Any:
        return getattr(_Unavailable("materials"), attribute)


class _Idempotency:
    def __init__(self, write_set: WriteSet, memory: RecentClaims) -> None:
        self._ws = write_set
        self._memory = memory

    async def get(self, agency_id: str, scope: str, key: str) -> StoredResponse | None:
        """From memory only: a miss is settled by the claim in the batch."""
        return self._memory.responses.get((agency_id, scope, key))

    async def put(
        self, agency_id: str, scope: str, key: str, response: StoredResponse, at: datetime
    ) -> None:
        self._ws.claims.append(idempotency_row(agency_id, scope, key, response, at))
        self._ws.responses.append(response)


class _Nonces:
    def __init__(self, write_set: WriteSet, memory: RecentClaims) -> None:
        self._ws = write_set
        self._memory = memory

    async def use(self, key_id: str, nonce: str, *, now: datetime, expires_at: datetime) -> bool:
        """False when this process committed the nonce and its window is still open; else
        claimed in the batch (which refuses the write set if the database holds it)."""
        known = self._memory.nonces.get((key_id, nonce))
        if known is not None and known >= now:
            return False
        self._ws.nonces.append({"key_id": key_id, "nonce": nonce, "expires_at": expires_at})
        return True


class _Agencies:
    """The registry from the process's snapshot; the batch checks its version."""

    def __init__(self, write_set: WriteSet, snapshot: RegistrySnapshot) -> None:
        self._ws = write_set
        self._snapshot = snapshot

    async def get(self, agency_id: str) -> Agency | None:
        return self._snapshot.agency(agency_id)

    async def signer(self, kid: str) -> tuple[VerificationKey, Agency | None]:
        key = self._snapshot.key(kid)
        return key, self._snapshot.agency(key.owner)

    async def issuer_of(self, evidence_type: str) -> Agency | None:
        found = [a for a in self._snapshot.agencies.values() if a.issues(evidence_type)]
        return min(found, key=lambda a: a.id, default=None)

    async def still_valid(self, kid: str, at: datetime) -> None:
        """Checked against the snapshot now, and again in the batch should the registry have
        moved since (a revocation committed meanwhile refuses the write set)."""
        key, agency = await self.signer(kid)
        if agency is None or not key.valid_at(at):
            raise UnknownKeyError("the signing key was revoked or is not valid now")
        self._ws.signers.append((kid, at))


class _Unavailable:
    """A repository a batched unit of work does not offer: its use case needs reads."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attribute: str) -> Any:
        raise RuntimeError(
            f"{self._name}.{attribute} is not available in a batched unit of work: "
            "run this use case in a unit of work of its own"
        )


class BatchedUnitOfWork:
    """The UnitOfWork port for write-only use cases: writes recorded, committed in a batch."""

    def __init__(self, committer: Committer) -> None:
        self._committer = committer

    async def __aenter__(self) -> Self:
        snapshot = await self._committer.snapshot()
        self.write_set = ws = WriteSet(snapshot.version)
        memory = self._committer.memory
        self.audit = _Audit(ws)
        self.applications = _Applications(ws, self.audit)
        self.outbox = _Outbox(ws)
        self.notifications = _Notifications(ws)
        self.idempotency = _Idempotency(ws, memory)
        self.nonces = _Nonces(ws, memory)
        self.agencies = _Agencies(ws, snapshot)
        self.identities = _Unavailable("identities")
        self.complaints = _Unavailable("complaints")
        self.certificates = _Unavailable("certificates")
        self.contacts = _Unavailable("contacts")
        self.jobs = _Unavailable("jobs")
        self.materials = _Materials(ws)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None  # a write set not committed is simply dropped

    async def commit(self) -> None:
        await self._committer.commit(self.write_set)
