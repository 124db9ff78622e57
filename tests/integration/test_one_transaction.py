"""One transaction per signed write, on SQLite and on PostgreSQL: the nonce, the evidence,
the ``message.accepted`` entry, the Idempotency-Key and the use case's writes commit
together. A refused request still burns its nonce, so a copy of it is refused as a replay."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy import event
from structlog.testing import capture_logs

from gateway.bootstrap import create_app
from gateway.store.tables import nonces
from gateway.trust.profile import sign_request
from gateway.web.auth import signed_write
from gateway.web.keys import STORE
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.integration.test_partner_api import _accepted_and_delivered
from tests.support import agency_key, row_counts, sample_xml, send

XML = "application/xml"
JSON = "application/json"
_INSERT = re.compile(r"^\s*INSERT INTO\s+(?:\w+\.)?\"?(\w+)\"?", re.IGNORECASE)
_WRITTEN_BY_A_REQUEST = {"nonces", "applications", "idempotency_keys"}


@contextmanager
def _commits(gateway: RunningGateway) -> Iterator[list[set[str]]]:
    """The tables each committed transaction inserted into, in commit order: the units of
    work's on the engine, and the group committer's (on SQLite, its writer's connection,
    whose transactions are explicit ``BEGIN IMMEDIATE`` ... ``COMMIT`` statements)."""
    store = gateway.app[STORE]  # type: ignore[index]
    engine = store.engine.sync_engine
    writer = store.sqlite_writer.engine if store.sqlite_writer is not None else None
    pending: dict[int, set[str]] = {}
    savepoints: dict[int, list[set[str]]] = {}  # what was inserted before each savepoint
    committed: list[set[str]] = []

    def execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        match = _INSERT.match(statement)
        if match:
            pending.setdefault(id(conn), set()).add(match.group(1))
        elif statement == "COMMIT":
            commit(conn)
        elif statement == "ROLLBACK":
            rollback(conn)
        elif statement.startswith("SAVEPOINT "):  # a work item of a group-commit batch
            savepoints.setdefault(id(conn), []).append(set(pending.get(id(conn), set())))
        elif statement.startswith("ROLLBACK TO SAVEPOINT "):
            pending[id(conn)] = set(savepoints[id(conn)][-1])
        elif statement.startswith("RELEASE SAVEPOINT "):
            savepoints[id(conn)].pop()

    def commit(conn: Any) -> None:
        committed.append(pending.pop(id(conn), set()))

    def rollback(conn: Any) -> None:
        pending.pop(id(conn), None)

    event.listen(engine, "before_cursor_execute", execute)
    event.listen(engine, "commit", commit)
    event.listen(engine, "rollback", rollback)
    if writer is not None:
        event.listen(writer, "before_cursor_execute", execute)
    try:
        yield committed
    finally:
        if writer is not None:
            event.remove(writer, "before_cursor_execute", execute)
        event.remove(engine, "before_cursor_execute", execute)
        event.remove(engine, "commit", commit)
        event.remove(engine, "rollback", rollback)


def _of_requests(committed: list[set[str]]) -> list[set[str]]:
    """The commits that wrote what a partner request writes (the relay commits beside)."""
    return [tables for tables in committed if tables & _WRITTEN_BY_A_REQUEST]


async def _nonce_count(gateway: RunningGateway) -> int:
    async with gateway.app[STORE]() as uow:  # type: ignore[index]
        conn = uow.applications._conn
        return (await conn.execute(sa.select(sa.func.count()).select_from(nonces))).scalar_one()


async def test_a_signed_submission_commits_once(gateway: RunningGateway) -> None:
    with _commits(gateway) as committed:
        answer = await send(
            gateway.settings, "POST", "/v1/applications", body=sample_xml(), content_type=XML
        )
    assert answer.status == 202
    [written] = _of_requests(committed)
    assert {"nonces", "applications", "idempotency_keys", "outbox"} <= written


async def test_a_signed_decision_commits_once(gateway: RunningGateway) -> None:
    application_id = await _accepted_and_delivered(gateway)
    with _commits(gateway) as committed:
        answer = await send(
            gateway.settings,
            "POST",
            f"/v1/applications/{application_id}/decisions",
            agency="gd-hq-csb",
            body=b'{"decision": "approved"}',
            content_type=JSON,
        )
    assert answer.status == 200
    [written] = _of_requests(committed)
    assert {"nonces", "idempotency_keys"} <= written


async def test_a_read_records_its_nonce_in_a_transaction_of_its_own(
    gateway: RunningGateway,
) -> None:
    with _commits(gateway) as committed:
        answer = await send(gateway.settings, "GET", "/v1/applications", agency="gd-hq-csb")
    assert answer.status == 200
    assert [t & _WRITTEN_BY_A_REQUEST for t in _of_requests(committed)] == [{"nonces"}]


async def test_a_copy_of_a_refused_request_is_refused_as_a_replay(
    gateway: RunningGateway,
) -> None:
    application_id = await _accepted_and_delivered(gateway)
    path = f"/v1/applications/{application_id}/decisions"
    rejected = await send(
        gateway.settings,
        "POST",
        path,
        agency="gd-hq-csb",
        body=b'{"decision": "rejected", "reasons": ["out of scope"]}',
        content_type=JSON,
    )
    assert rejected.status == 200
    body = b'{"decision": "approved"}'
    headers = sign_request(
        method="POST",
        url=gateway.settings.base_url + path,
        key=agency_key(gateway.settings, "gd-hq-csb"),
        now=datetime.now(UTC),
        body=body,
        content_type=JSON,
        idempotency_key="refused-then-replayed",
    )
    refused = await send(gateway.settings, "POST", path, body=body, headers=headers, sign=False)
    assert refused.status == 409, refused.json()
    nonces_after_refusal = await _nonce_count(gateway)
    counts = await row_counts(gateway.settings)

    with _commits(gateway) as committed:
        copy = await send(gateway.settings, "POST", path, body=body, headers=headers, sign=False)

    assert copy.status == 401
    assert copy.json()["type"].endswith("/problems/replayed-request")
    assert _of_requests(committed) == []
    assert await _nonce_count(gateway) == nonces_after_refusal
    assert await row_counts(gateway.settings) == counts
    view = (await send(gateway.settings, "GET", f"/v1/applications/{application_id}")).json()
    assert view["status"] == "rejected"


async def test_a_request_refused_at_the_edge_burns_its_nonce(gateway: RunningGateway) -> None:
    application_id = await _accepted_and_delivered(gateway)
    path = f"/v1/applications/{application_id}/decisions"
    body = b'{"decision": "rejected"}'  # no reasons: 422 before the use case runs
    headers = sign_request(
        method="POST",
        url=gateway.settings.base_url + path,
        key=agency_key(gateway.settings, "gd-hq-csb"),
        now=datetime.now(UTC),
        body=body,
        content_type=JSON,
        idempotency_key="refused-at-the-edge",
    )
    before = await _nonce_count(gateway)
    refused = await send(gateway.settings, "POST", path, body=body, headers=headers, sign=False)
    assert refused.status == 422
    assert await _nonce_count(gateway) == before + 1
    copy = await send(gateway.settings, "POST", path, body=body, headers=headers, sign=False)
    assert copy.status == 401
    assert copy.json()["type"].endswith("/problems/replayed-request")


async def test_a_route_that_forgets_its_acceptance_still_burns_the_nonce(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> None:
    """A signed write route whose use case never records the acceptance fails closed: the
    edge records it on its own (and logs the mistake), so the copy is still a replay."""

    async def forgetful(request: web.Request) -> web.Response:
        async with signed_write(request):
            return web.json_response({"done": True}, status=202)

    settings = sandbox_settings(tmp_path, database, relay_enabled=False)
    app = create_app(settings)
    app.router.add_post("/v1/forgetful", forgetful)
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    gateway = RunningGateway(settings, settings.base_url, app)
    try:
        body = b'{"anything": true}'
        headers = sign_request(
            method="POST",
            url=settings.base_url + "/v1/forgetful",
            key=agency_key(settings, "gd-hq-csb"),
            now=datetime.now(UTC),
            body=body,
            content_type=JSON,
            idempotency_key="forgetful-route-1",
        )
        before = await _nonce_count(gateway)
        with capture_logs() as logs:
            first = await send(
                settings, "POST", "/v1/forgetful", body=body, headers=headers, sign=False
            )
        assert first.status == 202
        assert await _nonce_count(gateway) == before + 1
        assert [e for e in logs if e["event"] == "acceptance.not_recorded"]
        copy = await send(settings, "POST", "/v1/forgetful", body=body, headers=headers, sign=False)
        assert copy.status == 401
        assert copy.json()["type"].endswith("/problems/replayed-request")
        assert await _nonce_count(gateway) == before + 1
    finally:
        await server.close()
