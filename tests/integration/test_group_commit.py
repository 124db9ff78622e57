"""Group commit (:mod:`gateway.store.committer`) on SQLite and PostgreSQL: write sets of
concurrent requests committed in one transaction; a claim taken refuses its write set alone; a
database error fails the batch and every waiter gets 503; a cancelled waiter never leaves the
committer stuck; a revocation committed after a write set was checked refuses it in the batch.

To put several write sets in one batch, the committer is held in a first batch (``held``)
while the others queue behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from gateway.domain.agencies import Agency
from gateway.domain.errors import (
    ConflictError,
    NotReadyError,
    ReplayedRequestError,
    UnknownKeyError,
)
from gateway.services.ports import StoredResponse
from gateway.store.audit import verify_stored_chain
from gateway.store.database import create_engine, create_schema
from gateway.store.tables import audit_log, idempotency_keys, nonces
from gateway.store.unit_of_work import SqlUnitOfWorkFactory
from gateway.trust.keys import SigningKey, generate_private_key
from gateway.trust.registry import KeySpec, Registration
from tests.conftest import Database

T0 = datetime.now(UTC).replace(microsecond=0)
AGENCY = "hk-batch"


def _spec(kid: str) -> KeySpec:
    signing = SigningKey(kid, generate_private_key("ed25519"), "ed25519")
    return KeySpec(kid, signing.jwk())  # type: ignore[arg-type]


@pytest.fixture
async def store(database: Database) -> AsyncIterator[SqlUnitOfWorkFactory]:
    engine = create_engine(database.url, schema=database.schema or None)
    await create_schema(engine)
    factory = SqlUnitOfWorkFactory(engine)
    # The batches' time is the writes' own (as create_app gives it the app's clock): with the
    # wall clock, a nonce used at T0 was free again once the run was 10 minutes past import.
    factory.committer.clock = lambda: T0
    async with factory() as uow:
        agency = Agency(AGENCY, "HK", {"en": AGENCY}, None, ("*",))
        await uow.agencies.register(Registration(agency, (_spec("k1"), _spec("k2"))), T0)
        await uow.commit()
    try:
        yield factory
    finally:
        await factory.close()


async def _write(
    store: SqlUnitOfWorkFactory,
    nonce: str,
    *,
    kid: str = "k1",
    key: str | None = None,
    extra: tuple[sa.Table, dict[str, Any]] | None = None,
    before_commit: Awaitable[None] | None = None,
) -> None:
    """One request's write set: its key checked, its nonce, an audit entry, an
    Idempotency-Key with its answer (``key``), optionally a raw row (``extra``)."""
    async with store.batched() as uow:
        await uow.agencies.still_valid(kid, T0)
        if not await uow.nonces.use(kid, nonce, now=T0, expires_at=T0 + timedelta(minutes=10)):
            raise ReplayedRequestError("known to this process")
        uow.audit.record("message.accepted", AGENCY, kid, {"nonce": nonce}, T0)
        if key is not None:
            answer = StoredResponse("sha-256=:eA==:", 202, {"nonce": nonce}, None)
            await uow.idempotency.put(AGENCY, "test", key, answer, T0)
        if extra is not None:
            uow.write_set.rows.append((extra[0], [extra[1]]))  # type: ignore[attr-defined]
        if before_commit is not None:
            await before_commit
        await uow.commit()


@dataclasses.dataclass
class Hold:
    entered: asyncio.Event  # the held batch is under way
    release: asyncio.Event

    def set(self) -> None:
        self.release.set()


@contextlib.asynccontextmanager
async def held(store: SqlUnitOfWorkFactory) -> AsyncIterator[Hold]:
    """The committer stays in its next batch until released."""
    hold = Hold(asyncio.Event(), asyncio.Event())
    committer = store.committer
    original = committer._transaction
    calls = 0

    async def transaction(batch: list[Any]) -> Any:
        nonlocal calls
        calls += 1
        if calls == 1:
            hold.entered.set()
            await hold.release.wait()
        return await original(batch)

    committer._transaction = transaction  # type: ignore[method-assign]
    try:
        yield hold
    finally:
        hold.set()
        committer._transaction = original  # type: ignore[method-assign]


async def _queued(store: SqlUnitOfWorkFactory, count: int) -> None:
    """Until ``count`` write sets wait for the next batch."""
    async with asyncio.timeout(5):
        while len(store.committer._waiting) < count:  # noqa: ASYNC110 (the committer's queue)
            await asyncio.sleep(0.001)


async def _outcomes(*steps: Awaitable[None]) -> list[BaseException | None]:
    results = await asyncio.gather(*steps, return_exceptions=True)
    return [r if isinstance(r, BaseException) else None for r in results]


async def _count(store: SqlUnitOfWorkFactory, table: sa.Table, *where: Any) -> int:
    async with store.connect() as conn:
        query = sa.select(sa.func.count()).select_from(table)
        return int((await conn.execute(query.where(*where) if where else query)).scalar_one())


async def _audited(store: SqlUnitOfWorkFactory) -> list[str]:
    async with store.connect() as conn:
        rows = await conn.execute(sa.select(audit_log.c.entry).order_by(audit_log.c.seq))
        return [bytes(r.entry).decode() for r in rows]


async def test_concurrent_write_sets_share_one_transaction(store: SqlUnitOfWorkFactory) -> None:
    async with held(store) as release:
        first = asyncio.ensure_future(_write(store, "n-0", key="key-0000"))
        await release.entered.wait()
        rest = [
            asyncio.ensure_future(_write(store, f"n-{i}", key=f"key-{i:04}")) for i in (1, 2, 3)
        ]
        await _queued(store, 3)
        before = store.committer.batches
        release.set()
        assert await _outcomes(first, *rest) == [None] * 4

    assert store.committer.batches - before == 2  # the first alone, then the three together
    assert await _count(store, nonces) == 4
    assert await _count(store, idempotency_keys) == 4
    entries = await _audited(store)
    assert sum('"message.accepted"' in e for e in entries) == 4
    report = await verify_stored_chain(store, {})
    assert report.ok, report


async def test_a_taken_claim_refuses_its_write_set_alone(store: SqlUnitOfWorkFactory) -> None:
    await _write(store, "used-nonce")
    await _write(store, "n-key", key="taken-key-1")
    store.committer.memory.forget()  # as another process would: only the database knows
    async with held(store) as release:
        blocker = asyncio.ensure_future(_write(store, "n-blocker"))
        await release.entered.wait()
        steps = [
            _write(store, "n-ok", key="fresh-key-1"),
            _write(store, "used-nonce"),  # the database holds this nonce
            _write(store, "n-dup", key="same-in-batch"),
            _write(store, "n-dup"),  # the same nonce as the write set before it
            _write(store, "n-lost", key="taken-key-1"),  # an earlier request's key
            _write(store, "n-second", key="same-in-batch"),  # the key of a write set before
        ]
        tasks = [asyncio.ensure_future(s) for s in steps]
        await _queued(store, len(steps))
        release.set()
        await blocker
        outcomes = await _outcomes(*tasks)

    assert outcomes[0] is None
    assert outcomes[2] is None
    assert isinstance(outcomes[1], ReplayedRequestError)
    assert isinstance(outcomes[3], ReplayedRequestError)
    assert type(outcomes[4]) is ConflictError
    assert type(outcomes[5]) is ConflictError
    # what was refused left nothing: the losers' nonces were given back for their answer
    stored = {
        n
        for (n,) in (await _rows(store, sa.select(nonces.c.nonce)))
        if n.startswith("n-") or n == "used-nonce"
    }
    assert stored == {"used-nonce", "n-key", "n-blocker", "n-ok", "n-dup"}
    keys = {k for (k,) in await _rows(store, sa.select(idempotency_keys.c.key))}
    assert keys == {"taken-key-1", "fresh-key-1", "same-in-batch"}
    entries = await _audited(store)
    assert not any("n-lost" in e or "n-second" in e for e in entries)
    assert (await verify_stored_chain(store, {})).ok


async def _rows(store: SqlUnitOfWorkFactory, query: Any) -> list[Any]:
    async with store.connect() as conn:
        return list((await conn.execute(query)).all())


async def test_a_database_error_fails_the_batch_with_503_for_every_waiter(
    store: SqlUnitOfWorkFactory,
) -> None:
    clash = {"key_id": "raw", "nonce": "same-row", "expires_at": T0}
    async with held(store) as release:
        blocker = asyncio.ensure_future(_write(store, "n-blocker"))
        await release.entered.wait()
        tasks = [
            asyncio.ensure_future(_write(store, "n-a", key="key-a-0001")),
            asyncio.ensure_future(_write(store, "n-b", extra=(nonces, clash))),
            asyncio.ensure_future(_write(store, "n-c", extra=(nonces, clash))),  # same key
        ]
        await _queued(store, 3)
        release.set()
        await blocker
        outcomes = await _outcomes(*tasks)

    assert all(isinstance(o, NotReadyError) for o in outcomes), outcomes
    assert all(o.status == 503 for o in outcomes if isinstance(o, NotReadyError))
    names = {n for (n,) in await _rows(store, sa.select(nonces.c.nonce))}
    assert names == {"n-blocker"}  # nothing of the failed batch
    assert await _count(store, idempotency_keys) == 0
    await _write(store, "n-after", key="key-after-1")  # the committer goes on
    assert await _count(store, idempotency_keys) == 1
    assert (await verify_stored_chain(store, {})).ok


async def test_a_cancelled_waiter_never_leaves_the_committer_stuck(
    store: SqlUnitOfWorkFactory,
) -> None:
    async with held(store) as release:
        taken = asyncio.ensure_future(_write(store, "n-taken", key="key-taken-1"))
        await release.entered.wait()  # its batch is under way
        queued = asyncio.ensure_future(_write(store, "n-queued", key="key-queued-1"))
        await _queued(store, 1)  # waiting for the next batch
        queued.cancel()
        taken.cancel()
        await asyncio.sleep(0.01)
        release.set()
        outcomes = await _outcomes(taken, queued)
    assert all(isinstance(o, asyncio.CancelledError) for o in outcomes)

    await asyncio.wait_for(_write(store, "n-next", key="key-next-1"), timeout=5)
    names = {n for (n,) in await _rows(store, sa.select(nonces.c.nonce))}
    # a write set already in a batch is committed (its Idempotency-Key answers a retry);
    # one still queued is dropped
    assert names == {"n-taken", "n-next"}


async def test_a_revocation_after_the_check_refuses_the_write_set_in_the_batch(
    store: SqlUnitOfWorkFactory, database: Database
) -> None:
    await _write(store, "n-warm")  # the snapshot is loaded
    other = SqlUnitOfWorkFactory(create_engine(database.url, schema=database.schema or None))
    revoked = asyncio.Event()

    async def revoke() -> None:
        async with other() as uow:  # another process revokes k1 after the check passed
            specs = {s.kid: s for _, s in await uow.agencies.keys(AGENCY)}
            spec = dataclasses.replace(specs["k1"], revoked_at=T0 - timedelta(seconds=1))
            await uow.agencies.add_key(AGENCY, spec, T0)
            await uow.commit()
        revoked.set()

    try:
        outcomes = await _outcomes(
            _write(store, "n-revoked", kid="k1", before_commit=_after(revoke())),
            _write(store, "n-other", kid="k2", before_commit=revoked.wait()),
        )
    finally:
        await other.close()
    assert isinstance(outcomes[0], UnknownKeyError)
    assert outcomes[1] is None
    names = {n for (n,) in await _rows(store, sa.select(nonces.c.nonce))}
    assert names == {"n-warm", "n-other"}


async def _after(step: Awaitable[None]) -> None:
    await step
