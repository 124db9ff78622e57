"""Prometheus metrics, one registry per application (so tests and processes never collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
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
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
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
