"""The claims of a group-commit batch: what one write set may hold that another may hold too.

A signing key relied on (checked again when the registry moved), a signature nonce and an
Idempotency-Key. Each is decided for the whole batch in one statement; a write set that loses
one is refused alone (``refused[i]``) and gives back what it won.
"""

from __future__ import annotations

from collections.abc import (
    Sequence,
)
from datetime import datetime

import sqlalchemy as sa

from gateway.domain.errors import (
    ConflictError,
    GatewayError,
    ReplayedRequestError,
    UnknownKeyError,
)
from gateway.store.database import dialect_insert
from gateway.store.registry import load_snapshot, registry_version_of
from gateway.store.registry_cache import RegistryCache
from gateway.store.tables import (
    idempotency_keys,
    nonces,
)
from gateway.store.write_sets import WriteSet


def check_signers(
    conn: sa.Connection,
    batch: Sequence[WriteSet],
    refused: list[GatewayError | None],
    registry: RegistryCache,
    now: datetime,
) -> None:
    """One read of the registry version; when it moved past a write set's snapshot, the keys
    the write set relied on are checked again against the registry as it is now."""
    version = registry_version_of(conn)
    stale = [i for i, ws in enumerate(batch) if ws.signers and ws.snapshot_version != version]
    if not stale or version is None:
        return
    snapshot = registry.at(version)
    if snapshot is None:
        snapshot = load_snapshot(conn, version)
        registry.keep(snapshot)
    for i in stale:
        for kid, at in batch[i].signers:
            try:
                key = snapshot.key(kid)
            except UnknownKeyError as error:
                refused[i] = error
                break
            if snapshot.agency(key.owner) is None or not (
                key.valid_at(at) and key.valid_at(max(at, now))
            ):
                refused[i] = UnknownKeyError("the signing key was revoked or is not valid now")
                break


def claim_nonces(
    conn: sa.Connection,
    batch: Sequence[WriteSet],
    refused: list[GatewayError | None],
    now: datetime,
) -> None:
    """Insert every nonce of the batch at once; a write set whose nonce was taken (and whose
    earlier use has not expired) is refused as a replay."""
    owner: dict[tuple[str, str], int] = {}
    for i, ws in enumerate(batch):
        if refused[i] is not None:
            continue
        for row in ws.nonces:
            key = (row["key_id"], row["nonce"])
            if key in owner:
                refused[i] = ReplayedRequestError("this signature nonce was already used")
                break
            owner[key] = i
    rows = [
        row
        for i, ws in enumerate(batch)
        if refused[i] is None
        for row in ws.nonces
        if owner.get((row["key_id"], row["nonce"])) == i
    ]
    taken: set[tuple[str, str]] = set()
    if rows:  # executemany with RETURNING: batched into multi-row statements, compiled once
        result = conn.execute(
            dialect_insert(conn, nonces)
            .on_conflict_do_nothing()
            .returning(nonces.c.key_id, nonces.c.nonce),
            rows,
        )
        taken.update((r.key_id, r.nonce) for r in result)
    for row in rows:
        key = (row["key_id"], row["nonce"])
        if key in taken:
            continue
        revived = conn.execute(  # used before, but its window has passed: use again
            nonces.update()
            .where(nonces.c.key_id == key[0], nonces.c.nonce == key[1], nonces.c.expires_at < now)
            .values(expires_at=row["expires_at"])
        )
        if revived.rowcount != 1:
            refused[owner[key]] = ReplayedRequestError("this signature nonce was already used")


def claim_keys(
    conn: sa.Connection, batch: Sequence[WriteSet], refused: list[GatewayError | None]
) -> None:
    """Insert every Idempotency-Key row of the batch at once; a write set whose key is taken
    is refused with ConflictError (the use case then answers as the first request did) and
    the nonces it claimed are given back, for that answer to record."""
    owner: dict[tuple[str, str, str], int] = {}
    losers: set[int] = set()
    for i, ws in enumerate(batch):
        if refused[i] is not None:
            continue
        for row in ws.claims:
            key = (row["agency_id"], row["scope"], row["key"])
            if key in owner:  # an earlier write set of this batch holds it
                losers.add(i)
                break
            owner[key] = i
    rows = [
        row
        for i, ws in enumerate(batch)
        if refused[i] is None and i not in losers
        for row in ws.claims
        if owner.get((row["agency_id"], row["scope"], row["key"])) == i
    ]
    taken: set[tuple[str, str, str]] = set()
    c = idempotency_keys.c
    if rows:
        legacy = conn.execute(  # keys kept before scopes existed (scope "") are taken
            sa.select(c.agency_id, c.key).where(
                c.agency_id.in_({r["agency_id"] for r in rows}),
                c.scope == "",
                c.key.in_({r["key"] for r in rows}),
            )
        )
        old = {(r.agency_id, r.key) for r in legacy}
        fresh = [r for r in rows if (r["agency_id"], r["key"]) not in old]
        if fresh:
            result = conn.execute(
                dialect_insert(conn, idempotency_keys)
                .on_conflict_do_nothing()
                .returning(c.agency_id, c.scope, c.key),
                fresh,
            )
            taken.update((r.agency_id, r.scope, r.key) for r in result)
    losers.update(
        owner[(r["agency_id"], r["scope"], r["key"])]
        for r in rows
        if (r["agency_id"], r["scope"], r["key"]) not in taken
    )
    for i in sorted(losers):
        refused[i] = _key_taken()
        for agency_id, scope, key in [k for k, holder in owner.items() if holder == i]:
            if (agency_id, scope, key) in taken:  # the keys it did win are not its to keep
                conn.execute(
                    idempotency_keys.delete().where(
                        c.agency_id == agency_id, c.scope == scope, c.key == key
                    )
                )
        for row in batch[i].nonces:  # given back: the answer to the conflict records it
            conn.execute(
                nonces.delete().where(
                    nonces.c.key_id == row["key_id"], nonces.c.nonce == row["nonce"]
                )
            )


def _key_taken() -> ConflictError:
    return ConflictError("the Idempotency-Key is being used by another request")
