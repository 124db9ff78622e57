"""While PostgreSQL is away the gateway says so: 503 not-ready problems, never a 500, and it
resumes by itself when the database is back (found by the db-restart drill).

The database is taken away by cutting a TCP proxy between the gateway and PostgreSQL: the
shared server itself is never restarted by the test suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from gateway.bootstrap import Overrides, create_app
from gateway.domain.errors import NotReadyError
from gateway.store.database import create_engine
from gateway.store.unit_of_work import SqlUnitOfWorkFactory
from tests.conftest import Database, free_port, sandbox_settings
from tests.support import sample_xml, send

ON_POSTGRES = pytest.mark.parametrize("database", ["postgres"], indirect=True)


class CuttableProxy:
    """A TCP proxy to PostgreSQL that can refuse and drop every connection at will."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self.open = True
        self._pipes: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.open:
            writer.close()
            return
        up_reader, up_writer = await asyncio.open_connection(*self.target)
        self._pipes |= {writer, up_writer}

        async def pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

    def cut(self) -> None:
        self.open = False
        for writer in self._pipes:
            writer.close()
        self._pipes.clear()

    async def close(self) -> None:
        self.cut()
        if self._server is not None:
            self._server.close()


@pytest.fixture
async def proxy(database: Database) -> AsyncIterator[tuple[CuttableProxy, str]]:
    parts = urlsplit(database.url)
    target = (parts.hostname or "127.0.0.1", parts.port or 5432)
    running = CuttableProxy(target)
    await running.start()
    netloc = f"{parts.username}@127.0.0.1:{running.port}" if parts.username else None
    yield running, urlunsplit(parts._replace(netloc=netloc or f"127.0.0.1:{running.port}"))
    await running.close()


async def test_a_unit_of_work_on_an_unreachable_database_is_not_ready() -> None:
    engine = create_engine(f"postgresql://postgres@127.0.0.1:{free_port()}/test")
    try:
        with pytest.raises(NotReadyError) as refused:
            async with SqlUnitOfWorkFactory(engine)():
                pass
        assert refused.value.status == 503
        assert refused.value.headers == {"Retry-After": "5"}
    finally:
        await engine.dispose()


@ON_POSTGRES
async def test_submissions_get_503_while_the_database_is_away_and_202_after(
    tmp_path: Path, database: Database, proxy: tuple[CuttableProxy, str], aiohttp_server: Any
) -> None:
    cuttable, url = proxy
    settings = sandbox_settings(tmp_path, dataclasses.replace(database, url=url))
    app = create_app(settings, Overrides())
    await aiohttp_server(app, host="127.0.0.1", port=settings.port)

    async def submit() -> Any:
        return await send(
            settings, "POST", "/v1/applications", body=sample_xml(), content_type="application/xml"
        )

    assert (await submit()).status == 202
    cuttable.cut()
    answers = [await submit() for _ in range(3)]
    assert [a.status for a in answers] == [503, 503, 503]
    for answer in answers:
        assert answer.headers["Content-Type"].startswith("application/problem+json")
        assert json.loads(answer.body)["type"].endswith("/problems/not-ready")
    assert (await send(settings, "GET", "/readyz", sign=False)).status == 503

    cuttable.open = True
    for _ in range(50):  # the pool drops its dead connections as it meets them
        answer = await submit()
        if answer.status == 202:
            break
        assert answer.status == 503
        await asyncio.sleep(0.1)
    assert answer.status == 202
    assert (await send(settings, "GET", "/readyz", sign=False)).status == 200
