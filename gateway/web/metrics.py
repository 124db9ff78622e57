"""Prometheus metrics: one registry per application, or every worker's values together.

A single-process gateway, and every test (which creates many apps in one process), keeps its
values in its own :class:`Metrics` registry, so apps never collide. ``serve --workers N``
runs each worker with ``PROMETHEUS_MULTIPROC_DIR`` set to a fresh directory of the run
(:mod:`gateway.workers`): prometheus-client then writes every value to a file of the worker's
own, and ``/metrics``, whichever worker answers it, reads all the files (the workers alive
and those that died: their counts stay in the totals). Gauges say how workers combine
(``multiprocess_mode``). One app per worker process: two in one process would write the same
file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
DELIVERY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0)


def multiprocess_dir() -> str | None:
    """The shared directory when this process writes its values there, else None.

    prometheus-client chooses when it is imported, from the environment; a directory set
    later would be read but never written, so it counts only when both agree.
    """
    path = os.environ.get(MULTIPROCESS_ENV)
    if path and prometheus_values.ValueClass is not prometheus_values.MutexValue:
        return path
    return None


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = multiprocess_dir()
        self.requests = Counter(
            "gba_http_requests",
            "HTTP requests answered",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gba_http_request_seconds",
            "Time to answer an HTTP request",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.applications = Counter(
            "gba_applications_received",
            "Applications stored, by matter and first status",
            ["matter", "status"],
            registry=self.registry,
        )
        self.refusals = Counter(
            "gba_requests_refused",
            "Requests answered with a problem, by problem type",
            ["type"],
            registry=self.registry,
        )
        self.deemed_acceptances = Counter(
            "gba_deemed_acceptances_total",
            "Cases deemed accepted: no notice within 5 working days of receipt (Art. 19(3))",
            registry=self.registry,
        )
        self.overdue = Counter(
            "gba_deadlines_overdue_total",
            "Open cases found past their promised deadline",
            registry=self.registry,
        )
        self._relay()
        self._committer()
        self._help = {family.name: family.documentation for family in self.registry.collect()}

    def _relay(self) -> None:
        self.relay_batch = Histogram(
            "gba_relay_batch_size",
            "Outbox messages taken by one relay claim (claims that took none are not counted)",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.relay_in_flight = Gauge(
            "gba_relay_in_flight",
            "Outbox messages claimed by the relay and not yet finished",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.relay_outcomes = Counter(
            "gba_relay_deliveries",
            "Claimed outbox messages finished, by outcome (delivered, retry, dead)",
            ["outcome"],
            registry=self.registry,
        )
        self.relay_delivery = Histogram(
            "gba_relay_delivery_seconds",
            "From the commit of a forward (accepted) to its delivery recorded, retries included",
            buckets=DELIVERY_BUCKETS,
            registry=self.registry,
        )
        self.relay_record_batch = Histogram(
            "gba_relay_record_batch_size",
            "Delivery outcomes (acknowledged, retried, dead) recorded by one relay transaction",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.relay_record_latency = Histogram(
            "gba_relay_record_seconds",
            "Time of one relay transaction recording outcomes, waiting for the database included",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.outbox_pending = Gauge(
            "gba_outbox_pending",
            "Outbox messages waiting for delivery (pending or in flight), read at each scrape",
            multiprocess_mode="livemostrecent",
            registry=self.registry,
        )

    def _committer(self) -> None:
        """The group committer's (:mod:`gateway.store.committer`), fed after each batch."""
        self.commit_batch = Histogram(
            "gba_commit_batch_size",
            "Write sets committed in one group-commit transaction",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.commit_latency = Histogram(
            "gba_commit_seconds",
            "Time of one group-commit transaction, from taking the batch to its commit",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.commit_queue = Gauge(
            "gba_commit_queue_depth",
            "Write sets waiting for the committer, read after each batch",
            multiprocess_mode="livesum",
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """The Prometheus text of this app, or of every worker of the run."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        registry.register(_Documented(self.multiprocess_dir, self._help))
        return generate_latest(registry)

    def relay_observer(self) -> RelayMetrics:
        return RelayMetrics(self)

    def commit_observer(self) -> CommitMetrics:
        return CommitMetrics(self)


class CommitMetrics:
    """The group committer's reports (:class:`gateway.store.committer.CommitObserver`)."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def committed(self, size: int, seconds: float, waiting: int) -> None:
        self._metrics.commit_batch.observe(size)
        self._metrics.commit_latency.observe(seconds)
        self._metrics.commit_queue.set(waiting)


class RelayMetrics:
    """The relay's reports (:class:`gateway.services.ports.RelayObserver`) as metrics."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def claimed(self, count: int) -> None:
        self._metrics.relay_batch.observe(count)

    def in_flight(self, count: int) -> None:
        self._metrics.relay_in_flight.set(count)

    def finished(self, outcome: str, accepted_seconds: float | None) -> None:
        self._metrics.relay_outcomes.labels(outcome).inc()
        if accepted_seconds is not None:
            self._metrics.relay_delivery.observe(max(accepted_seconds, 0.0))

    def recorded(self, count: int, seconds: float) -> None:
        self._metrics.relay_record_batch.observe(count)
        self._metrics.relay_record_latency.observe(seconds)


class _Documented:
    """Every worker's values, with their help text (the files keep only names and values)."""

    def __init__(self, path: str, help_text: dict[str, str]) -> None:
        self._collector = MultiProcessCollector(None, path=path)
        self._help = help_text

    def collect(self) -> Iterator[Metric]:
        for metric in self._collector.collect():
            metric.documentation = self._help.get(metric.name, metric.documentation)
            yield metric
