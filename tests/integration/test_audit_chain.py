"""The stored audit chain: every accepted message and state change, and each tampering found.

The tampering is done the way an attacker with database access would: straight SQL on the
``audit_log`` rows, without the seal key.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import aiohttp
import pytest
import sqlalchemy as sa

from gateway.cli import main
from gateway.store.audit import verify_stored_chain, write_checkpoint
from gateway.store.tables import audit_checkpoints, audit_head, audit_log, evidence
from gateway.trust.audit import seal
from gateway.web.keys import KEYRING, STORE
from tests.conftest import RunningGateway
from tests.support import sample_xml, send


async def _submitted(gateway: RunningGateway, count: int = 2) -> None:
    """Submit and wait until every case is decided, so nothing appends while we tamper."""
    ids = []
    for _ in range(count):
        answer = await send(
            gateway.settings,
            "POST",
            "/v1/applications",
            body=sample_xml(),
            content_type="application/xml",
        )
        assert answer.status == 202
        ids.append(answer.json()["application_id"])
    for application_id in ids:
        for _ in range(200):
            view = await send(gateway.settings, "GET", f"/v1/applications/{application_id}")
            if view.json()["status"] == "approved":
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the sandbox agency never decided")


async def _verify(gateway: RunningGateway):
    return await verify_stored_chain(gateway.app[STORE], gateway.app[KEYRING].jwks())  # type: ignore[index]


async def _execute(gateway: RunningGateway, *statements: sa.Executable) -> None:
    """Run the tampering in one transaction, holding the chain head so no append interleaves."""
    async with gateway.app[STORE]() as uow:  # type: ignore[index]
        conn = uow.applications._conn
        await conn.execute(sa.select(audit_head.c.seq).with_for_update())
        for statement in statements:
            await conn.execute(statement)
        await uow.commit()


def _resealed_tail(rows: list[sa.Row]) -> list[sa.Executable]:
    """An attacker's rewrite: every entry after the first re-sealed, so the chain is whole."""
    prev, statements = rows[0].hash, []
    for row in rows[1:]:
        data = json.loads(row.entry)["data"]
        forged = seal(row.seq, row.at, row.kind, "forger", row.subject, data, prev)
        prev = forged.hash
        statements.append(
            audit_log.update()
            .where(audit_log.c.seq == row.seq)
            .values(entry=forged.entry, hash=forged.hash, actor="forger")
        )
    return statements


async def _rows(gateway: RunningGateway) -> list[sa.Row]:
    async with gateway.app[STORE]() as uow:  # type: ignore[index]
        result = await uow.applications._conn.execute(audit_log.select().order_by(audit_log.c.seq))
        return list(result)


async def test_accepted_messages_and_state_changes_are_chained(gateway: RunningGateway) -> None:
    await _submitted(gateway)
    report = await _verify(gateway)
    assert report.ok, report
    kinds = [row.kind for row in await _rows(gateway)]
    assert kinds[:3] == ["message.accepted", "application.received", "application.accepted"]
    accepted = json.loads((await _rows(gateway))[0].entry)
    assert accepted["actor"] == "hk-ird"
    assert accepted["data"]["content_digest"].startswith("sha-256=:")
    assert "陳大文" not in json.dumps(
        [json.loads(r.entry) for r in await _rows(gateway)], ensure_ascii=False
    )
    async with gateway.app[STORE]() as uow:  # type: ignore[index]
        kept = (await uow.applications._conn.execute(sa.select(evidence.c.body))).scalars().all()
    assert sample_xml() in kept  # the signed body itself is kept, whole


async def test_an_edited_entry_is_found(gateway: RunningGateway) -> None:
    await _submitted(gateway)
    row = (await _rows(gateway))[2]
    forged = row.entry.replace(b"application.accepted", b"application.rejected")
    await _execute(
        gateway, audit_log.update().where(audit_log.c.seq == row.seq).values(entry=forged)
    )
    report = await _verify(gateway)
    assert (report.ok, report.problem, report.seq) == (False, "modified", row.seq)


async def test_a_deleted_entry_is_found(gateway: RunningGateway) -> None:
    await _submitted(gateway)
    await _execute(gateway, audit_log.delete().where(audit_log.c.seq == 3))
    report = await _verify(gateway)
    assert (report.problem, report.seq) == ("deleted", 3)


async def test_an_inserted_entry_is_found(gateway: RunningGateway) -> None:
    await _submitted(gateway)
    rows = await _rows(gateway)
    renumber = [  # every later row moves up by one, as an attacker making room would do
        audit_log.update().where(audit_log.c.seq >= 4).values(seq=audit_log.c.seq + 1_000_000),
        audit_log.update()
        .where(audit_log.c.seq >= 1_000_000)
        .values(seq=audit_log.c.seq - 1_000_000 + 1),
    ]
    forged = seal(4, rows[3].at, "application.approved", "gd-hq-csb", "app_x", {}, rows[2].hash)
    insert = audit_log.insert().values(
        seq=4,
        at=forged.at,
        kind=forged.kind,
        actor=forged.actor,
        subject=forged.subject,
        entry=forged.entry,
        hash=forged.hash,
    )
    await _execute(gateway, *renumber, insert)
    report = await _verify(gateway)
    assert (report.problem, report.seq) == ("inserted", 4)


async def test_reordered_entries_are_found(gateway: RunningGateway) -> None:
    await _submitted(gateway)
    a, b = (await _rows(gateway))[2:4]
    await _execute(
        gateway,
        audit_log.update().where(audit_log.c.seq == a.seq).values(seq=-1),
        audit_log.update().where(audit_log.c.seq == b.seq).values(seq=a.seq),
        audit_log.update().where(audit_log.c.seq == -1).values(seq=b.seq),
    )
    report = await _verify(gateway)
    assert (report.problem, report.seq) == ("reordered", a.seq)


async def test_a_consistently_rewritten_tail_is_caught_by_a_signed_checkpoint(
    gateway: RunningGateway,
) -> None:
    await _submitted(gateway, count=1)
    signed = await write_checkpoint(
        gateway.app[STORE],
        gateway.app[KEYRING].current("seal"),  # type: ignore[index]
        (await _rows(gateway))[-1].at,
    )
    assert signed == len(await _rows(gateway))
    await _execute(gateway, *_resealed_tail(await _rows(gateway)))
    report = await _verify(gateway)
    assert (report.problem, report.seq) == ("checkpoint", signed)


async def test_the_audit_verify_command(
    gateway: RunningGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _submitted(gateway, count=1)
    settings = gateway.settings
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'mode = "sandbox"\ndatabase_url = "{settings.database_url}"\n'
        f'database_schema = "{settings.database_schema}"\n'
        f'sandbox_dir = "{settings.sandbox_dir}"\n'
    )

    assert await asyncio.to_thread(main, ["audit", "verify", "--config", str(config)]) == 0
    assert "audit chain intact" in capsys.readouterr().out

    await _execute(gateway, audit_log.delete().where(audit_log.c.seq == 2))
    assert await asyncio.to_thread(main, ["audit", "verify", "--config", str(config)]) == 1
    assert "BROKEN at seq 2: deleted" in capsys.readouterr().out


async def test_archived_checkpoints_catch_a_rewrite_that_replaced_the_stored_ones(
    gateway: RunningGateway,
) -> None:
    await _submitted(gateway, count=1)
    signed = await write_checkpoint(
        gateway.app[STORE],
        gateway.app[KEYRING].current("seal"),  # type: ignore[index]
        (await _rows(gateway))[-1].at,
    )
    assert signed is not None
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/v1/audit/checkpoints") as response,
    ):
        published = await response.json()
    assert published["items"][0]["seq"] == signed

    # The attacker re-seals the tail and drops the stored checkpoints too.
    await _execute(gateway, audit_checkpoints.delete(), *_resealed_tail(await _rows(gateway)))

    assert (await _verify(gateway)).ok  # the database alone can no longer tell
    report = await verify_stored_chain(
        gateway.app[STORE],
        gateway.app[KEYRING].jwks(),  # type: ignore[index]
        [item["token"] for item in published["items"]],
    )
    assert (report.problem, report.seq) == ("checkpoint", signed)
