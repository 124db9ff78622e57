"""``/metrics`` of one process, on each database: the outbox's depth read from the database
at each scrape, and the relay's batches, outcomes and accept-to-delivered latency."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.bootstrap import Overrides, create_app
from gateway.web.keys import RELAY, STORE
from tests.conftest import Database, RunningGateway, sandbox_settings
from tests.support import sample_xml, send


@pytest.fixture
async def paused(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> AsyncIterator[RunningGateway]:
    """A sandbox gateway whose relay runs only when the test says so."""
    settings = sandbox_settings(tmp_path, database, relay_enabled=False)
    app = create_app(settings, Overrides())
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    yield RunningGateway(settings, settings.base_url, app)
    await server.close()


async def scrape(gateway: RunningGateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with aiohttp.ClientSession() as session, session.get(gateway.url + "/metrics") as answer:
        assert answer.status == 200
        text = await answer.text()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_outbox_depth_and_relay_metrics(paused: RunningGateway) -> None:
    assert (await scrape(paused))[("gba_outbox_pending", ())] == 0
    answer = await send(
        paused.settings,
        "POST",
        "/v1/applications",
        body=sample_xml(),
        content_type="application/xml",
    )
    assert answer.status == 202
    async with paused.app[STORE]() as tx:  # type: ignore[index]
        forwards = len(await tx.outbox.listing(status="pending"))
    assert forwards >= 1

    values = await scrape(paused)
    assert values[("gba_outbox_pending", ())] == forwards  # read from the database
    assert values[("gba_relay_batch_size_count", ())] == 0

    claimed = await paused.app[RELAY].run_once()  # type: ignore[index]

    values = await scrape(paused)
    assert claimed == forwards
    assert values[("gba_outbox_pending", ())] == 0
    assert values[("gba_relay_batch_size_count", ())] == 1
    assert values[("gba_relay_batch_size_sum", ())] == forwards
    assert values[("gba_relay_deliveries_total", (("outcome", "delivered"),))] == forwards
    assert values[("gba_relay_delivery_seconds_count", ())] == forwards
    assert values[("gba_relay_in_flight", ())] == 0
