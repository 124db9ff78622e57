"""kill -9 after a 202: every accepted case is there, every unanswered request at most once.

``gba-gateway sandbox`` runs as a child process (bench/drills/harness.py) on SQLite and on
PostgreSQL (its own schema), its relay paused so the outbox rows stay as the submission wrote
them. A burst of concurrent signed submissions, each with its own Idempotency-Key, is sent at
once; as soon as the first few 202 answers arrive the gateway is SIGKILLed with the rest in
flight, then started again. Then:

- every application id answered 202 is stored, with its timeline and its outbox rows;
- every request without an answer was stored exactly once (its Idempotency-Key names the one
  case) or not at all: no case is stored without the key that a retry would find; one answered
  503 (a failed batch) was not stored;
- retrying each of them with the same Idempotency-Key gives one case (the stored one, if any);
- ``gba-gateway audit verify`` passes.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import sqlalchemy as sa

from bench.drills.harness import SUBMITTER, Gateway, Records, sample_body, submitter_key
from gateway.sandbox.samples import legal_basis_headers
from gateway.store.tables import applications, idempotency_keys, outbox, timeline
from gateway.trust.keys import SigningKey
from gateway.trust.profile import sign_request
from tests.conftest import Database, free_port

BURST = 256  # submissions sent at once: more than a fast batch answers before the kill lands
KILL_AFTER = 6  # 202 answers seen before the SIGKILL
ANSWER_SECONDS = 20.0

Outcome = tuple[int | None, str | None]  # (status, application id); None: no answer


async def _submit(
    session: aiohttp.ClientSession, url: str, key: SigningKey, idempotency_key: str
) -> Outcome:
    """One signed submission, never retried: its status and application id, or no answer."""
    body = sample_body()
    headers = sign_request(
        method="POST",
        url=url,
        key=key,
        now=datetime.now(UTC),
        body=body,
        content_type="application/xml",
        idempotency_key=idempotency_key,
        extra_headers=legal_basis_headers(),  # every agency submission declares its basis
    )
    try:
        async with session.post(
            url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=ANSWER_SECONDS)
        ) as response:
            raw = await response.read()
            if response.status == 202:
                return 202, str(json.loads(raw)["application_id"])
            return response.status, None
    except (aiohttp.ClientError, TimeoutError):
        return None, None


async def _burst_then_kill(gateway: Gateway, key: SigningKey, keys: list[str]) -> list[Outcome]:
    """Every submission at once; SIGKILL as soon as ``KILL_AFTER`` of them were answered 202."""
    url = f"{gateway.url}/v1/applications"
    enough = asyncio.Event()
    accepted = 0

    async def one(session: aiohttp.ClientSession, idempotency_key: str) -> Outcome:
        nonlocal accepted
        outcome = await _submit(session, url, key, idempotency_key)
        if outcome[0] == 202:
            accepted += 1
            if accepted >= KILL_AFTER:
                enough.set()
        return outcome

    connector = aiohttp.TCPConnector(limit=BURST)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(one(session, k)) for k in keys]
        async with asyncio.timeout(ANSWER_SECONDS):
            await enough.wait()
        await gateway.kill()
        return list(await asyncio.gather(*tasks))


async def _stored(records: Records, prefix: str) -> tuple[dict[str, str], set[str]]:
    """The stored Idempotency-Keys of this run (key -> application id), and the ids of every
    stored application of the submitter."""
    async with records.engine.connect() as conn:
        keyed = (
            await conn.execute(
                sa.select(idempotency_keys.c.key, idempotency_keys.c.resource).where(
                    idempotency_keys.c.agency_id == SUBMITTER,
                    idempotency_keys.c.key.startswith(prefix),
                )
            )
        ).all()
        ids = (
            await conn.execute(
                sa.select(applications.c.id).where(applications.c.submitted_by == SUBMITTER)
            )
        ).scalars()
        return {k: str(r) for k, r in keyed}, set(ids)


async def _rows_per_case(records: Records, table: sa.Table) -> Counter[str]:
    async with records.engine.connect() as conn:
        rows = await conn.execute(sa.select(table.c.application_id))
        return Counter(rows.scalars())


async def test_a_sigkill_after_202s_keeps_every_accepted_case_and_stores_the_rest_at_most_once(
    tmp_path: Path, database: Database
) -> None:
    env = {
        "GBA_DATABASE_URL": database.url,
        "GBA_DATABASE_SCHEMA": database.schema,
        "GBA_RELAY_ENABLED": "false",  # the outbox rows stay as the submissions wrote them
    }
    gateway = Gateway(tmp_path / "gateway", free_port(), env=env)
    records = Records(database.url, database.schema or None)
    prefix = f"kill-{secrets.token_hex(4)}-"
    keys = [f"{prefix}{i:03d}" for i in range(BURST)]
    try:
        await gateway.start()
        key = submitter_key(gateway)
        outcomes = dict(zip(keys, await _burst_then_kill(gateway, key, keys), strict=True))
        log = (gateway.data_dir / "gateway.log").read_text(errors="replace")[-3000:]
        assert {status for status, _ in outcomes.values()} <= {202, 503, None}, (outcomes, log)
        accepted = {k: i for k, (status, i) in outcomes.items() if status == 202}
        unanswered = [k for k, (status, _) in outcomes.items() if status is None]
        unavailable = [k for k, (status, _) in outcomes.items() if status == 503]
        assert len(accepted) >= KILL_AFTER
        assert unanswered, "the kill came after every answer: nothing was in flight"
        assert gateway.kills == 1

        await gateway.start()
        stored, cases = await _stored(records, prefix)
        assert cases == set(stored.values())  # no case without the key a retry finds
        assert len(set(stored.values())) == len(stored)  # one case per key
        for idempotency_key, application_id in accepted.items():
            assert stored.get(idempotency_key) == application_id  # every 202 is there
        assert not set(unavailable) & set(stored)  # a 503 stored nothing
        timelines = await _rows_per_case(records, timeline)
        forwards = await _rows_per_case(records, outbox)
        assert all(timelines[i] >= 1 for i in accepted.values()), "a 202 without its timeline"
        assert all(forwards[i] >= 1 for i in accepted.values()), "a 202 without its outbox rows"
        assert set(timelines) <= cases
        assert set(forwards) <= cases

        url = f"{gateway.url}/v1/applications"
        room = asyncio.Semaphore(16)

        async def retry(session: aiohttp.ClientSession, idempotency_key: str) -> Outcome:
            async with room:
                return await _submit(session, url, key, idempotency_key)

        async with aiohttp.ClientSession() as session:
            again = unanswered + unavailable
            answers = await asyncio.gather(*(retry(session, k) for k in again))
        retried = dict(zip(again, answers, strict=True))
        for idempotency_key, (status, application_id) in retried.items():
            assert status == 202, (idempotency_key, status)
            if idempotency_key in stored:
                assert application_id == stored[idempotency_key]  # the stored case, again
        after, cases_after = await _stored(records, prefix)
        assert set(after) == set(keys)
        assert cases_after == set(after.values())
        assert len(cases_after) == BURST  # one case per submission, whatever the kill did

        await gateway.stop()
        intact, line = await gateway.audit_verify()
        assert intact, line
    finally:
        await gateway.stop()
        await records.close()
