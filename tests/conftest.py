"""Shared fixtures: the two database backends, a sandbox gateway on a real loopback port.

PostgreSQL tests use ``GBA_TEST_POSTGRES_DSN`` (``.ci/run`` exports it). Without it, or when
the server does not answer, they skip with the reason shown by ``-ra``; under ``CI=true`` an
unreachable PostgreSQL fails the run instead, so CI can never pass without them.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import structlog
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from gateway.bootstrap import Overrides, create_app
from gateway.settings import Settings, load_settings

# No per-example deadline: this machine is shared, and a slow example is not a wrong one.
# No example database: runs leave nothing behind in the work tree.
hypothesis_settings.register_profile(
    "gba", deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("gba")

POSTGRES_DSN_ENV = "GBA_TEST_POSTGRES_DSN"


@dataclass(frozen=True)
class Database:
    backend: str
    url: str
    schema: str = ""


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"PostgreSQL is required in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason}")


async def _postgres() -> AsyncIterator[Database]:
    import asyncpg

    dsn = os.environ.get(POSTGRES_DSN_ENV)
    if not dsn:
        _unavailable(f"{POSTGRES_DSN_ENV} is not set")
    try:
        conn = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as exc:
        _unavailable(f"cannot connect ({type(exc).__name__}: {exc})")
    schema = "gba_test_" + secrets.token_hex(6)
    await conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield Database("postgres", dsn, schema)
    finally:
        await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """Each test that asks for it runs twice: on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        yield Database("sqlite", f"sqlite:///{tmp_path / 'gateway.db'}")
        return
    async for db in _postgres():
        yield db


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sandbox_settings(tmp_path: Path, database: Database, **changes: object) -> Settings:
    port = free_port()
    return load_settings(
        environ={},
        mode="sandbox",
        port=port,
        sandbox_dir=tmp_path / "sandbox",
        database_url=database.url,
        database_schema=database.schema,
        log_format="json",
        **changes,
    )


@dataclass
class RunningGateway:
    settings: Settings
    url: str
    app: object


@pytest.fixture
async def gateway(
    tmp_path: Path, database: Database, aiohttp_server: object
) -> AsyncIterator[RunningGateway]:
    """A sandbox gateway serving on a real loopback port, on each database backend."""
    settings = sandbox_settings(tmp_path, database)
    app = create_app(settings, Overrides())
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)  # type: ignore[operator]
    yield RunningGateway(settings, settings.base_url, app)
    await server.close()


@pytest.fixture
async def lead_examined_gateway(
    tmp_path: Path, database: Database, aiohttp_server: object
) -> AsyncIterator[RunningGateway]:
    """A sandbox gateway whose social-insurance matter is examined by its lead agency
    (``tests.support.examined_by_its_lead``): the lead's own answers count."""
    import shutil

    from tests.support import examined_by_its_lead

    mappings = tmp_path / "mappings"
    shutil.copytree(Path(__file__).parents[1] / "mappings", mappings)
    examined_by_its_lead(mappings)
    settings = sandbox_settings(tmp_path, database, mappings_dir=mappings)
    app = create_app(settings, Overrides())
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)  # type: ignore[operator]
    yield RunningGateway(settings, settings.base_url, app)
    await server.close()


@pytest.fixture(autouse=True)
def _quiet_logs() -> None:
    """Tests assert on log events with structlog.testing.capture_logs; keep stdout clean."""
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()],
        logger_factory=structlog.ReturnLoggerFactory(),
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say plainly whether the PostgreSQL half of the suite ran (CI must show that it did)."""
    reports = [  # the [postgres] half of ``database`` and the tests marked postgres alone;
        # under pytest-xdist these are the workers' reports, keywords included
        report
        for outcome in ("passed", "failed", "error", "skipped")
        for report in terminalreporter.stats.get(outcome, [])
        if "postgres" in getattr(report, "keywords", {})
    ]
    ran = sum(1 for r in reports if r.when == "call")
    skipped = sum(1 for r in reports if r.skipped)
    dsn = os.environ.get(POSTGRES_DSN_ENV, "")
    target = dsn.split("@")[-1] if dsn else "no DSN"
    terminalreporter.write_line(
        f"PostgreSQL backend: {ran} tests ran, {skipped} skipped ({target})"
    )
