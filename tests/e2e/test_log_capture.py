"""The log capture of tests/log_leaks.py sees the gateway's log lines and catches leaks.

Without this, a capture that saw nothing would pass every test: each path (structlog before
redaction, standard-library records, SQLAlchemy's statement log) is shown to catch a
deliberately leaked value.
"""

from __future__ import annotations

import logging

import pytest
import sqlalchemy as sa
import structlog

from gateway.sandbox.personas import persona
from gateway.store.database import create_engine
from tests.conftest import Database, RunningGateway
from tests.log_leaks import LogCapture, leaks_in
from tests.support import send

CHAN = persona("chan-tai-man")


async def test_the_gateways_own_request_lines_are_captured(
    gateway: RunningGateway, log_capture: LogCapture
) -> None:
    answer = await send(gateway.settings, "GET", "/v1/applications")

    assert answer.status == 200
    assert '"event": "http.request"' in log_capture.text()
    assert log_capture.leaks() == []


def test_a_structlog_leak_is_caught_even_where_redaction_would_hide_it(
    log_capture: LogCapture,
) -> None:
    structlog.get_logger("gateway.test").info("leak.name", name=CHAN.name_original)
    structlog.get_logger("gateway.test").info("leak.hkid", number=CHAN.document("HKID"))

    leaks = log_capture.leaks()
    log_capture.forget()  # deliberate: keep this test's own teardown check green

    assert len(leaks) == 2
    assert leaks[0].startswith("personal data (chan-tai-man name)")
    assert leaks[1].startswith("personal data (chan-tai-man HKID)")


def test_a_standard_library_leak_is_caught(log_capture: LogCapture) -> None:
    logging.getLogger("some.library").warning("Authorization: Bearer abcdefgh12345678")
    try:
        raise ValueError("-----BEGIN EC " + "PRIVATE KEY-----")
    except ValueError:
        logging.getLogger("some.library").exception("failed")

    leaks = log_capture.leaks()
    log_capture.forget()

    assert [leak.split(":")[0] for leak in leaks] == ["bearer token", "private key"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f"signed by {CHAN.email}", ["personal data (chan-tai-man e-mail)"]),
        (f"born {CHAN.birth_date}", ["personal data (chan-tai-man birth date)"]),
        ("RIC 440304198506120035", ["personal data (zhang-wei CN_RIC)"]),
        ("BIR 12345678 and MO_BIR 1234567(8)", ["personal data (lei-sio-meng MO_BIR)"]),
        ("token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", ["JWS or JWT"]),
        ("sig1=:" + "A" * 86 + "==:", ["signature value"]),
        ('{"client_secret": "s3cr3t-value-123"}', ["secret member"]),
        (
            "[generated in 0.0001s] ('陳大文',)",
            ["personal data (chan-tai-man name)", "SQL parameters"],
        ),
        ("[cached since 1.2s ago] [SQL parameters hidden due to hide_parameters=True]", []),
        ('{"event": "http.request", "content_digest": "sha-256=:' + "A" * 43 + '=:"}', []),
    ],
)
def test_what_counts_as_a_leak(line: str, expected: list[str]) -> None:
    assert leaks_in(line) == expected


async def test_sql_parameters_never_reach_the_log(
    database: Database, log_capture: LogCapture
) -> None:
    engine = create_engine(database.url, schema=database.schema or None)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT :name AS name"), {"name": CHAN.name_original})
            with pytest.raises(sa.exc.DBAPIError) as failed:
                await conn.execute(sa.text("SELECT no_such_column WHERE 1 = :n"), {"n": "A1234563"})
    finally:
        await engine.dispose()

    assert "SELECT" in log_capture.text()  # the statement log is on, and captured
    assert CHAN.name_original not in str(failed.value)
    assert "A1234563" not in str(failed.value)
    assert log_capture.leaks() == []
