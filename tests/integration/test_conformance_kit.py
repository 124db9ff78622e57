"""The conformance kit against the sandbox agencies' real inboxes on a loopback port: the
reference partner passes every check; switched to a fault, it fails exactly the checks that
the fault breaks, in the report, the JUnit XML and the exit code of the command."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from gateway.bootstrap import codecs
from gateway.cli import main
from gateway.conformance.checks import CHECK_IDS
from gateway.conformance.credentials import load_signing_key
from gateway.conformance.runner import Report, run_conformance
from gateway.sandbox.routes import PARTNERS
from tests.conftest import RunningGateway
from tests.support import send

SQLITE_ONLY = pytest.mark.parametrize("database", ["sqlite"], indirect=True)

# What the deliberately broken agency (faults {"lax": true}) must fail: it verifies no
# signature, digest or nonce, de-duplicates nothing and answers errors unsigned, as text.
LAX_FAILS = {
    "dedup-redelivery",
    "refuses-replay",
    "refuses-tampered-body",
    "refuses-bad-signature",
    "refuses-missing-signature",
    "refuses-unknown-key",
    "refuses-wrong-target",
    "refuses-stale",
    "refuses-idempotency-mismatch",
    "errors-are-problem-json",
    "refusals-signed",
}


EVIDENCE_CHECK = "answers-evidence-request"


def _inbox(gateway: RunningGateway, agency_id: str) -> str:
    return f"{gateway.url}/sandbox/partners/{agency_id}/messages"


def _key_dir(gateway: RunningGateway) -> Path:
    return gateway.settings.sandbox_dir / "keys" / "gateway"


async def _kit(
    gateway: RunningGateway,
    agency_id: str,
    lines: list[str] | None = None,
    receives: str | None = None,
    **evidence: Any,
) -> Report:
    return await run_conformance(
        _inbox(gateway, agency_id),
        load_signing_key(_key_dir(gateway)),
        schemas_dir=gateway.settings.mappings_dir / "schemas",
        request_timeout=5,
        say=(lines if lines is not None else []).append,
        formats=codecs(gateway.settings),
        receives=receives,
        **evidence,
    )


async def _faults(gateway: RunningGateway, agency_id: str, faults: dict[str, Any]) -> None:
    answer = await send(
        gateway.settings,
        "PUT",
        f"/sandbox/v1/agencies/{agency_id}/faults",
        body=json.dumps(faults).encode(),
        content_type="application/json",
        sign=False,
    )
    assert answer.status == 200, answer.body


def _reason(report: Report, check_id: str) -> str:
    return next(r.verdict.reason for r in report.results if r.check.id == check_id)


@pytest.mark.parametrize("agency_id", ["hk-ird", "mo-dsf", "gd-hq-csb"])
async def test_every_sandbox_agency_passes_every_check(
    gateway: RunningGateway, agency_id: str
) -> None:
    lines: list[str] = []
    report = await _kit(gateway, agency_id, lines)
    assert report.ids("fail") == [], "\n".join(lines)
    issuer = agency_id == "hk-ird"  # the only one of them that issues evidence
    assert report.ids("pass") == [c for c in CHECK_IDS if issuer or c != EVIDENCE_CHECK]
    assert report.ids("skip") == ([] if issuer else [EVIDENCE_CHECK])
    assert report.partner_keys.endswith(f"/sandbox/v1/agencies/{agency_id}")
    # accepts-own-format sent the agency its declared format (native XML to HK and Macau)
    own = {"hk-ird": "HK format (application/xml)", "mo-dsf": "MO format (application/xml)"}
    expected = own.get(agency_id, "GD format (application/json)")
    assert _reason(report, "accepts-own-format").startswith(f"a delivery in the {expected} was")
    inbox = gateway.app[PARTNERS].inboxes[agency_id]  # type: ignore[index]
    formats = {m.get("format") for m in inbox.messages.values()}
    assert formats == ({None} if agency_id == "gd-hq-csb" else {None, agency_id[:2].upper()})


async def test_an_evidence_issuer_answers_the_kits_evidence_request(
    gateway: RunningGateway,
) -> None:
    subject = {"document:RESIDENCE_PERMIT": "820000199207070465"}
    report = await _kit(gateway, "gz-psb", evidence_subject=subject)
    assert report.ids("fail") == []
    assert _reason(report, EVIDENCE_CHECK) == (
        "an evidence request for gd-residence-permit was answered, signed: evidence_document"
    )

    await _faults(gateway, "gz-psb", {"evidence": "silent"})  # acknowledges, never answers
    silent = await _kit(gateway, "gz-psb", evidence_subject=subject)
    assert silent.ids("fail") == [EVIDENCE_CHECK]
    assert _reason(silent, EVIDENCE_CHECK).endswith("the answer is not JSON naming our request_id")


@SQLITE_ONLY
async def test_a_partner_sent_a_format_it_does_not_read_fails_accepts_own_format(
    gateway: RunningGateway,
) -> None:
    report = await _kit(gateway, "hk-ird", receives="MO")  # a Macau message to an HK agency

    assert report.ids("fail") == ["accepts-own-format"]
    reason = _reason(report, "accepts-own-format")
    assert reason.startswith("a delivery in the MO format (application/xml): expected 2xx, got 422")


@SQLITE_ONLY
async def test_the_lax_agency_fails_exactly_the_checks_it_breaks(
    gateway: RunningGateway, tmp_path: Path
) -> None:
    from gateway.conformance.junit import write_junit

    await _faults(gateway, "hk-ird", {"lax": True})
    report = await _kit(gateway, "hk-ird")
    assert set(report.ids("fail")) == LAX_FAILS
    # Its only refusal (the malformed body) is unsigned text: nothing refused to redeliver.
    assert report.ids("skip") == ["refusals-keep-nothing"]
    assert _reason(report, "refuses-replay").startswith("expected 4xx, got 200 (application/json")
    assert _reason(report, "dedup-redelivery").endswith("the message was processed twice")
    assert "refuses-malformed-body: Content-Type text/plain" in _reason(
        report, "errors-are-problem-json"
    )
    junit = tmp_path / "conformance.xml"
    write_junit(report, junit)
    suite = etree.fromstring(junit.read_bytes()).find("testsuite")
    assert suite is not None
    failures = {
        case.get("name"): failure.get("message")
        for case in suite.iter("testcase")
        if (failure := case.find("failure")) is not None
    }
    assert set(failures) == LAX_FAILS
    assert failures["refuses-stale"] == _reason(report, "refuses-stale")
    assert suite.get("failures") == str(len(LAX_FAILS))

    await send(gateway.settings, "DELETE", "/sandbox/v1/agencies/hk-ird/faults", sign=False)
    assert (await _kit(gateway, "hk-ird")).passed


@SQLITE_ONLY
@pytest.mark.parametrize(
    "faults", [{"signature": "missing"}, {"signature": "wrong"}, {"clock_skew_s": 900}]
)
async def test_answers_signed_wrongly_fail_ack_signed(
    gateway: RunningGateway, faults: dict[str, Any]
) -> None:
    await _faults(gateway, "mo-dsf", faults)
    report = await _kit(gateway, "mo-dsf")
    assert set(report.ids("fail")) == {"accepts-own-format", "ack-signed", "refusals-signed"}
    expected = {
        "missing": "signature-missing",
        "wrong": "the signature does not verify",
        None: "signature created in the future",
    }[faults.get("signature")]
    assert expected in _reason(report, "ack-signed")


@SQLITE_ONLY
async def test_an_agency_that_is_down_fails_with_the_status_it_answers(
    gateway: RunningGateway,
) -> None:
    await _faults(gateway, "gd-hq-csb", {"down": True})
    report = await _kit(gateway, "gd-hq-csb")
    assert "accepts-valid-message" in report.ids("fail")
    assert _reason(report, "accepts-valid-message").startswith("expected 2xx, got 503 (text/plain")
    assert report.exit_code == 1


@SQLITE_ONLY
async def test_the_command_exits_0_when_all_pass_1_when_any_fails_2_on_usage_errors(
    gateway: RunningGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def run(*argv: str) -> int:
        return main(["conformance", "run", *argv])

    junit = tmp_path / "ok.xml"
    key = str(_key_dir(gateway))
    good = ("--target", _inbox(gateway, "hk-ird"), "--key", key, "--junit", str(junit))
    assert await asyncio.to_thread(run, *good) == 0
    out = capsys.readouterr().out
    assert f"[ 1/{len(CHECK_IDS)}] accepts-valid-message" in out
    assert f"{len(CHECK_IDS)} checks: {len(CHECK_IDS)} passed, 0 failed" in out
    suite = etree.fromstring(junit.read_bytes()).find("testsuite")
    assert suite is not None
    assert suite.get("failures") == "0"

    await _faults(gateway, "mo-dsf", {"lax": True})
    lax = ("--target", _inbox(gateway, "mo-dsf"), "--key", key, "--junit", str(tmp_path / "l.xml"))
    assert await asyncio.to_thread(run, *lax) == 1
    out = capsys.readouterr().out
    assert "FAIL  expected 401, got 200" in out
    assert "failed: dedup-redelivery, refuses-replay" in out

    elsewhere = ("--target", f"{gateway.url}/not-a-sandbox-inbox", "--key", key)
    assert await asyncio.to_thread(run, *elsewhere) == 2
    assert "--partner-jwks is required" in capsys.readouterr().err
    missing_key = ("--target", _inbox(gateway, "hk-ird"), "--key", str(tmp_path / "none.pem"))
    assert await asyncio.to_thread(run, *missing_key) == 2
    assert "cannot load the signing key" in capsys.readouterr().err
