"""Metrics in one process: each app its own registry; the relay's reports; the committer's
metrics declared, fed by nothing yet. (Several workers: tests/integration/test_serve_workers.py.)"""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.domain.errors import PermanentDeliveryError
from gateway.services.relay import Relay
from gateway.web.metrics import MULTIPROCESS_ENV, Metrics
from tests.fakes import FakeTransport, FakeUnitOfWorkFactory, FixedClock
from tests.unit.services.test_relay import AGENCIES, LEAD, NOW, REVIEWER, _case


def samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_each_app_counts_in_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.requests.labels("GET", "/healthz", "200").inc()
    first.requests.labels("GET", "/healthz", "200").inc()
    second.requests.labels("GET", "/healthz", "200").inc()
    key = ("gba_http_requests_total", (("method", "GET"), ("route", "/healthz"), ("status", "200")))
    assert samples(first)[key] == 2
    assert samples(second)[key] == 1


def test_a_multiprocess_directory_set_after_start_up_is_not_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    # prometheus-client chose per-process values when imported; a directory set later would
    # be read but never written: the app keeps its own registry.
    monkeypatch.setenv(MULTIPROCESS_ENV, str(tmp_path))
    metrics = Metrics()
    metrics.requests.labels("GET", "/metrics", "200").inc()
    assert metrics.multiprocess_dir is None
    key = ("gba_http_requests_total", (("method", "GET"), ("route", "/metrics"), ("status", "200")))
    assert samples(metrics)[key] == 1


def test_the_committer_metrics_are_declared_with_help_and_fed_by_nothing() -> None:
    text = Metrics().exposition().decode()
    assert "# HELP gba_commit_batch_size Write sets committed in one group-commit" in text
    assert "# HELP gba_commit_seconds Time of one group-commit transaction" in text
    assert "# HELP gba_commit_queue_depth Write sets waiting for the committer" in text
    values = samples(Metrics())
    assert values[("gba_commit_batch_size_count", ())] == 0
    assert values[("gba_commit_seconds_count", ())] == 0
    assert values[("gba_commit_queue_depth", ())] == 0


async def test_the_relay_reports_its_batches_outcomes_and_accept_to_delivered_latency() -> None:
    uow, clock = FakeUnitOfWorkFactory(), FixedClock(NOW)
    uow.agencies = AGENCIES
    await _case(uow, "app_01", (LEAD, REVIEWER))
    await _case(uow, "app_02", (LEAD,))
    transport = FakeTransport()
    transport.fail_next(1, PermanentDeliveryError)  # the first one sent becomes a dead letter
    clock.advance(seconds=3)  # accepted 3 s before the relay delivers
    metrics = Metrics()
    relay = Relay(uow, transport, clock, observer=metrics.relay_observer())

    assert await relay.run_once() == 3

    values = samples(metrics)
    assert values[("gba_relay_batch_size_count", ())] == 1
    assert values[("gba_relay_batch_size_sum", ())] == 3
    assert values[("gba_relay_deliveries_total", (("outcome", "dead"),))] == 1
    assert values[("gba_relay_deliveries_total", (("outcome", "delivered"),))] == 2
    assert values[("gba_relay_delivery_seconds_count", ())] == 2
    assert values[("gba_relay_delivery_seconds_sum", ())] == pytest.approx(6.0)
    assert values[("gba_relay_in_flight", ())] == 0  # every claimed message finished


async def test_a_retry_is_counted_and_nothing_is_claimed_when_nothing_is_due() -> None:
    uow, clock = FakeUnitOfWorkFactory(), FixedClock(NOW)
    uow.agencies = AGENCIES
    await _case(uow)
    transport = FakeTransport()
    transport.fail_next(1)  # transient
    metrics = Metrics()
    relay = Relay(uow, transport, clock, observer=metrics.relay_observer())
    await relay.run_once()
    assert await relay.run_once() == 0  # backing off: an empty claim is no batch

    values = samples(metrics)
    assert values[("gba_relay_deliveries_total", (("outcome", "retry"),))] == 1
    assert values[("gba_relay_batch_size_count", ())] == 1
    assert values[("gba_relay_delivery_seconds_count", ())] == 0
