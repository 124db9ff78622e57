"""``gba-gateway sandbox scenario run``: the scripted scenarios against a sandbox on a real port.

The command runs in a thread with its own event loop, as a tester's terminal would, against
the sandbox gateway of ``tests/conftest.py`` (both databases). ``run all`` passes and reports
every step; a sandbox that misbehaves — a reviewer whose key the scenario does not hold, a
relay that never delivers — fails the scenario at the step that saw it, and the outage
scenario still heals the agency it took down.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway import cli
from gateway.bootstrap import Overrides, create_app
from gateway.sandbox.agencies import agency_key_path
from gateway.sandbox.scenarios.registry import SCENARIOS
from gateway.trust.keys import generate_private_key, private_key_pem
from gateway.trust.keystore import write_private
from tests.conftest import Database, RunningGateway, free_port, sandbox_settings

STEP = re.compile(r"^  (✓|✗) +\d+ ms  (.+)$")


async def scenario(gateway: RunningGateway, *args: str, data_dir: Path | None = None) -> int:
    data = data_dir or gateway.settings.sandbox_dir
    argv = ["sandbox", "scenario", "run", *args, "--url", gateway.url, "--data-dir", str(data)]
    return await asyncio.to_thread(cli.main, argv)


async def _faults(gateway: RunningGateway, agency_id: str) -> dict[str, Any]:
    url = f"{gateway.url}/sandbox/v1/agencies/{agency_id}/faults"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return dict(await response.json())


def steps(out: str) -> list[tuple[str, str]]:
    return [(m[1], m[2]) for line in out.splitlines() if (m := STEP.match(line))]


async def test_run_all_passes_and_reports_every_step(
    gateway: RunningGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await scenario(gateway, "all")

    out = capsys.readouterr().out
    assert code == 0, out
    n = len(SCENARIOS)
    assert out.splitlines()[-1] == f"{n} scenarios, {n} passed"
    for each in SCENARIOS:
        assert f"\n{each.name} — {each.description}\n" in out
    assert out.count("  passed: ") == n
    reported = steps(out)
    assert {mark for mark, _ in reported} == {"✓"}
    described = "\n".join(text for _, text in reported)
    assert len(reported) >= 60
    assert "GET /v1/matters serves the catalog of the local mappings/ — 10 matters" in described
    assert described.count("receipt verified") >= 10 + 2  # every matter, the joint, the outage
    assert "decided by gateway:automatic" in described  # the social-insurance matter (Art. 25)
    assert re.search(r"hk-mchk approved app_\w+, signed with its own key", described)
    assert re.search(r"hk-mchk rejected app_\w+, signed with its own key", described)
    assert "complaint by " in described
    assert "litigation by " in described
    assert "the relay retries: 2 message.retry_scheduled on the case" in described
    assert "acr urn:gba:loa:low" in described
    assert "gd-hq-csb revokes it; the public status reads revoked" in described
    assert re.search(r"examination restarted, last day \d{4}-\d{2}-\d{2}", described)
    assert "corrective decision voucher verified" in described
    assert "an e-mail is received in the SMTP sink, in Portuguese" in described
    assert "2 e-mails after 1 deferral" in described
    assert "the gateway gets IDENTITY_PROOF from gz-psb and the case is accepted" in described
    assert "its progress reads the same online and at the counter" in described


async def test_the_certificate_scenario_issues_delivers_verifies_offline_and_revokes(
    gateway: RunningGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await scenario(gateway, "certificate")

    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[-1] == "1 scenario, 1 passed"
    described = [text for _, text in steps(out)]
    assert "without an e_certificate consent it is not delivered: 403" in described
    assert any(
        re.fullmatch(r"with the consent .* verifies offline — kid \S+", d) for d in described
    )
    faults = await _faults(gateway, "gd-hq-csb")
    assert faults["e_certificate"] == "none"  # the switch is reset


async def test_the_materials_scenario_uploads_submits_and_fetches_as_the_handler(
    gateway: RunningGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await scenario(gateway, "materials")

    out = capsys.readouterr().out
    assert code == 0, out
    described = "\n".join(text for _, text in steps(out))
    assert re.search(r"hk-ird submits \S+ naming them — app_\w+: the receipt binds each", described)
    assert "sz-hc fetches each file with a signed GET; the digests match" in described
    assert "sz-hc's sandbox system fetched them on receipt, digests checked" in described
    assert "mo-dsat, not a handler, gets 404 as for an unknown id" in described


async def test_the_consent_withdrawn_scenario_withholds_the_waiting_forward_until_consented(
    gateway: RunningGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await scenario(gateway, "consent-withdrawn")

    out = capsys.readouterr().out
    assert code == 0, out
    described = "\n".join(text for _, text in steps(out))
    assert "the waiting forward is withheld: message.withheld on the case" in described
    assert "past the retry's time, mo-ipim was never sent the case" in described
    assert "chan-tai-man consents again for the case" in described
    assert "mo-ipim is sent the case under the new consent" in described
    assert (await _faults(gateway, "mo-ipim"))["down"] is False  # the switch is reset


@pytest.mark.parametrize(
    "name", ["supplement-rounds", "automatic-overturned", "counter-submission"]
)
async def test_the_branches_that_go_back_pass_on_their_own(
    gateway: RunningGateway, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code = await scenario(gateway, name)

    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[-1] == "1 scenario, 1 passed"
    assert {mark for mark, _ in steps(out)} == {"✓"}, out


async def test_a_reviewer_whose_key_is_not_the_registered_one_fails_at_its_decision(
    gateway: RunningGateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "tester"
    shutil.copytree(gateway.settings.sandbox_dir / "keys", copy / "keys")
    forged = agency_key_path(copy, "hk-mchk")
    forged.unlink()
    write_private(forged, private_key_pem(generate_private_key("ecdsa-p256-sha256")))

    code = await scenario(gateway, "joint-rejection", data_dir=copy)

    out = capsys.readouterr().out
    assert code == 1, out
    reported = steps(out)
    assert [mark for mark, _ in reported][-1] == "✗"
    assert re.fullmatch(r"hk-mchk rejected app_\w+, signed with its own key", reported[-1][1])
    assert re.search(r"expected: 200 from POST /v1/applications/app_\w+/decisions\n", out)
    assert re.search(r"seen:     401 [a-z-]+", out)
    assert f"failed at step {len(reported)} of {len(reported)}" in out
    assert out.splitlines()[-1] == "1 scenario, 0 passed, 1 failed: joint-rejection"


@pytest.fixture
async def relay_off(
    tmp_path: Path, database: Database, aiohttp_server: Any
) -> AsyncIterator[RunningGateway]:
    """A sandbox whose relay is switched off: it accepts cases and never delivers them."""
    settings = sandbox_settings(tmp_path, database, relay_enabled=False)
    app = create_app(settings, Overrides())
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)
    yield RunningGateway(settings, settings.base_url, app)
    await server.close()


async def test_an_outage_that_never_ends_fails_the_scenario_and_heals_the_agency(
    relay_off: RunningGateway, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await scenario(relay_off, "partner-outage", "--timeout", "2")

    out = capsys.readouterr().out
    assert code == 1, out
    assert steps(out)[-2:] == [
        ("✗", "the relay retries: 2 message.retry_scheduled on the case"),
        ("✓", "reset gd-hq-csb's faults (cleanup)"),
    ]
    assert "expected: 2 retries for gd-hq-csb on the timeline\n" in out
    assert "seen:     after 2 s: 0 retries, accepted (gd-hq-csb pending)\n" in out
    assert "failed at step 3 of 4" in out
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{relay_off.url}/sandbox/v1/agencies/gd-hq-csb/faults") as response,
    ):
        assert (await response.json())["healthy"] is True


async def test_no_sandbox_at_the_url_is_one_line_and_every_scenario_failed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    argv = ["sandbox", "scenario", "run", "all", "--url", url, "--data-dir", str(tmp_path)]

    code = await asyncio.to_thread(cli.main, argv)

    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[0].startswith("✗ ")
    assert out[0].endswith(f"a sandbox gateway answers at {url}")
    assert out[1].strip() == "expected: 200 from GET /readyz and GET /sandbox/v1/personas"
    assert out[2].strip().startswith("seen:     ClientConnectorError")
    n = len(SCENARIOS)
    assert out[-1].startswith(f"{n} scenarios, 0 passed, {n} failed: every-matter, supplement")
