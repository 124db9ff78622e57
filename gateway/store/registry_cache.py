"""The registry as the signed-request edge needs it, kept in memory per process.

A snapshot of every agency and key is labelled with the registry version it was loaded at
(the ``registry_version`` row, which every registry write moves in its own transaction, see
:class:`gateway.store.registry.SqlAgencies`). The edge reads that version, one statement, on
every signed request and is served from the snapshot while it is unchanged; when it moved,
in this process or any other on the same database, the registry is loaded again before the
signature is verified. A revocation committed anywhere is therefore seen at the very next
request. A key's validity window (``not_before``, ``not_after``, ``revoked_at``) is kept as
data and judged against the clock at each request, never at load time.

The version is read before the rows, so a snapshot may hold changes newer than its label
(it is then reloaded once more at the next request), never older ones.

On PostgreSQL every process is also told at once (``LISTEN/NOTIFY``, see
:mod:`gateway.store.pg_listener`): a registry write notifies its new version at commit, and
each process's listener calls :meth:`RegistryCache.invalidate`, so no snapshot older than that
version is served again, even before the next version read. The version read stays: it is the
safety net for a notification lost while a listener was disconnected.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.domain.agencies import Agency
from gateway.domain.errors import UnknownKeyError
from gateway.trust.keys import VerificationKey
from gateway.trust.registry import KeySpec


@dataclass(slots=True)
class RegistrySnapshot:
    """Every agency and key as loaded at ``version``."""

    version: int
    agencies: dict[str, Agency]
    specs: dict[str, tuple[str, KeySpec]]  # kid -> (owner, spec)
    _keys: dict[str, VerificationKey] = field(default_factory=dict)

    def key(self, kid: str) -> VerificationKey:
        """The registered key with exactly this id, or UnknownKeyError. Built on first use,
        so one malformed stored key refuses only the requests that name it."""
        known = self._keys.get(kid)
        if known is not None:
            return known
        entry = self.specs.get(kid)
        if entry is None:
            raise UnknownKeyError("the key id is not registered")
        owner, spec = entry
        built = self._keys[kid] = spec.verification_key(owner)
        return built

    def agency(self, agency_id: str) -> Agency | None:
        return self.agencies.get(agency_id)


class RegistryCache:
    """One process's registry snapshot (one per unit-of-work factory, i.e. per engine)."""

    def __init__(self) -> None:
        self._snapshot: RegistrySnapshot | None = None
        self._floor = 0  # the newest version a notification told of
        self.loads = 0  # how many times the registry was read in full (for tests, metrics)
        self.invalidations = 0  # how many times this process was told the registry moved

    @property
    def version(self) -> int | None:
        """The version of the snapshot that would be served, or None (the next read loads)."""
        snapshot = self._snapshot
        return (
            snapshot.version if snapshot is not None and snapshot.version >= self._floor else None
        )

    def at(self, version: int) -> RegistrySnapshot | None:
        """The snapshot if it was loaded at exactly ``version`` and no newer version was told
        of since, else None (reload)."""
        return self._snapshot if self.version == version else None

    def invalidate(self, version: int | None = None) -> None:
        """Told that the registry moved to ``version``: no snapshot older than it is served
        again. None (a notification may have been missed): drop the snapshot."""
        self.invalidations += 1
        if version is None:
            self._snapshot = None
            return
        self._floor = max(self._floor, version)
        if self._snapshot is not None and self._snapshot.version < version:
            self._snapshot = None

    def told(self, detail: str | None) -> None:
        """A registry notification's payload detail (its version), or None after the
        listener (re)connected."""
        try:
            self.invalidate(None if detail is None else int(detail))
        except ValueError:
            self.invalidate(None)

    def current(self) -> RegistrySnapshot | None:
        """The snapshot kept last unless a notification told of a newer version (then None:
        load again); its own version is checked where the writes commit."""
        return self._snapshot if self.version is not None else None

    def keep(self, snapshot: RegistrySnapshot) -> None:
        """Keep a freshly loaded snapshot unless a newer one was kept meanwhile."""
        self.loads += 1
        if self._snapshot is None or snapshot.version >= self._snapshot.version:
            self._snapshot = snapshot

    def clear(self) -> None:
        self._snapshot = None
