"""The write bench's own parts: its pre-signed requests verify with the gateway's verifier
(each with its own nonce and Idempotency-Key), the generator targets only 127.0.0.1, and its
percentiles, targets and tables say what was measured. No timing is asserted."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.load import Run, drive, percentile, presign, sample_body
from bench.soak import growth
from bench.targets import TARGETS, Target, tables
from gateway.domain.errors import DigestMismatchError
from gateway.trust.httpsig import HttpMessage
from gateway.trust.keys import SigningKey, generate_private_key
from gateway.trust.profile import verify_request

URL = "http://127.0.0.1:8080/v1/applications"


def test_presigned_requests_verify_with_the_gateways_verifier_each_with_its_own_nonce() -> None:
    key = SigningKey("hk-ird-bench", generate_private_key("ed25519"), "ed25519")
    body = sample_body()
    pool = presign(URL, key, body, 50, "t")
    nonces, keys = set(), set()
    for prepared in pool:
        message = HttpMessage.request("POST", URL, list(prepared.headers.items()))
        verified = verify_request(
            message, body, resolve_key=lambda _kid: key.public, now=datetime.now(UTC)
        )
        assert verified.keyid == "hk-ird-bench"
        nonces.add(verified.nonce)
        keys.add(prepared.headers["Idempotency-Key"])
    assert len(nonces) == len(keys) == 50


def test_a_presigned_request_for_another_body_does_not_verify() -> None:
    key = SigningKey("k", generate_private_key("ed25519"), "ed25519")
    (prepared,) = presign(URL, key, sample_body(), 1, "t")
    message = HttpMessage.request("POST", URL, list(prepared.headers.items()))
    with pytest.raises(DigestMismatchError):
        verify_request(
            message, b"<other/>", resolve_key=lambda _: key.public, now=datetime.now(UTC)
        )


async def test_the_generator_targets_only_the_loopback_address() -> None:
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        await drive("http://example.org/v1/applications", b"", [], clients=1, warmup=0, seconds=0)


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]  # 1 .. 100
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 99) == 7.0
    assert percentile([1.0, 2.0], 50) == 1.0
    assert percentile([], 50) == 0.0


def test_a_run_counts_only_what_started_and_ended_inside_the_window() -> None:
    samples = [
        (0.5, 0.1, 202),  # warm-up: not counted
        (1.0, 0.2, 202),
        (1.5, 0.4, 202),
        (2.0, 0.1, 503),  # inside, but not accepted
        (2.8, 0.5, 202),  # ends after the window
    ]
    summary = Run(samples, (1.0, 3.0), (100.0, 102.0), exhausted=False).summary()
    assert summary["completed"] == 3
    assert summary["accepted"] == 2
    assert summary["accepted_per_s"] == pytest.approx(1.0)
    assert summary["p50_ms"] == pytest.approx(200.0)
    assert summary["p99_ms"] == pytest.approx(400.0)
    assert summary["statuses"] == {"202": 4, "503": 1}
    assert summary["sent"] == 5


def test_targets_pass_fail_and_say_na_when_a_figure_is_missing() -> None:
    results = {
        "postgres": {"accepted_per_s": 80.0},
        "postgres-2": {"accepted_per_s": 120.0, "p99_ms": 900.0},
    }
    assert (
        Target("postgres-2", "accepted_per_s", ">", "postgres.accepted_per_s").verdict(results)
        == "PASS"
    )
    assert Target("postgres-2", "p99_ms", "<=", 150).verdict(results) == "FAIL"
    assert Target("postgres", "ratio", ">=", 0.2).verdict(results) == "n/a"
    assert Target("relay", "accepted_per_s", ">=", 1000).verdict(results) == "n/a"


def test_the_tables_show_each_scenario_and_each_of_its_targets() -> None:
    results = {
        "bare": {"accepted_per_s": 5000.0, "p50_ms": 10.0, "p99_ms": 30.0},
        "sqlite": {"accepted_per_s": 75.0, "p50_ms": 750.0, "p99_ms": 845.0, "ratio": 0.015},
        "relay": {"error": "RuntimeError: no partner"},
    }
    text = tables(results)
    assert "| sqlite | 75.0 | 750.0 | 845.0 | 0.015 | - | - |" in text
    assert "| bare | 5,000.0 | 10.0 | 30.0 | - | - | - |" in text
    assert "| sqlite | accepted_per_s >= 1,500 | 75.000 | FAIL |" in text
    assert "| sqlite | ratio >= 0.2 | 0.015 | FAIL |" in text
    assert "| relay | accepted_per_s >= 1,000 | - | n/a |" in text
    assert "postgres" not in text  # not measured: no row, no verdict
    assert {t.scenario for t in TARGETS} == {
        "sqlite",
        "postgres",
        "postgres-2",
        "relay",
        "pipeline",
        "soak",
    }


def test_the_soak_reports_the_growth_after_the_warm_up_and_nothing_from_too_few_samples() -> None:
    flat = [(float(t), 100 * 1024 + (t % 2) * 512) for t in range(60)]  # 100-100.5 MB
    figures = growth(flat, 20.0, 60.0)
    assert abs(figures["rss_growth_pct"]) < 1
    assert abs(figures["rss_slope_mb_per_min"]) < 1
    assert figures["rss_samples"] == 40
    leaking = [(float(t), 100 * 1024 + t * 1024) for t in range(60)]  # 1 MB more each second
    figures = growth(leaking, 20.0, 60.0)
    assert figures["rss_after_warm_up_mb"] == 121.0  # samples 20-22 s, not the warm-up's
    assert figures["rss_end_mb"] == 158.0
    assert round(figures["rss_growth_pct"], 1) == 30.6
    assert round(figures["rss_slope_mb_per_min"]) == 60
    verdict = Target("soak", "rss_growth_pct", "<", 10).verdict({"soak": figures})
    assert verdict == "FAIL"
    assert growth(leaking[:25], 20.0, 60.0) == {"rss_samples": 5}
