"""The conformance kit's material checks against a running sandbox gateway (both databases):
a tester's registered agency uploads, fetches the file of a case forwarded to it, and sees
an unrelated fetch refused; a key the gateway does not know fails every check."""

from __future__ import annotations

import aiohttp

from gateway.conformance.materials import CHECK_IDS, run_material_checks
from gateway.sandbox.samples import INDIVIDUAL_BUSINESS
from gateway.trust.keys import SigningKey, generate_private_key
from tests.conftest import RunningGateway

TESTER = "gd-kit-tester"


async def _register(gateway: RunningGateway, key: SigningKey) -> None:
    registration = {
        "agency_id": TESTER,
        "jurisdiction": "GD",
        "names": {"en": "Kit tester"},
        "keys": [key.jwk()],
        "matters": ["*"],
    }
    async with (
        aiohttp.ClientSession() as session,
        session.post(gateway.url + "/sandbox/v1/agencies", json=registration) as response,
    ):
        assert response.status == 201, await response.text()


async def _route(gateway: RunningGateway) -> dict[str, object]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/sandbox/v1/routes") as response,
    ):
        items = (await response.json())["items"]
    return next(r for r in items if r["matter"] == INDIVIDUAL_BUSINESS)


async def test_the_material_checks_pass_for_a_registered_tester(gateway: RunningGateway) -> None:
    key = SigningKey(f"{TESTER}-key-1", generate_private_key("ed25519"), "ed25519")
    await _register(gateway, key)
    before = await _route(gateway)
    said: list[str] = []

    results = await run_material_checks(gateway.url, TESTER, key, say=said.append)

    assert [(r.check_id, r.verdict.outcome) for r in results] == [
        (check_id, "pass") for check_id in CHECK_IDS
    ], said
    after = await _route(gateway)
    assert (after["lead"], after["reviewers"]) == (before["lead"], before["reviewers"])


async def test_a_key_the_gateway_does_not_know_fails_every_check(gateway: RunningGateway) -> None:
    stranger = SigningKey("nobody-key-1", generate_private_key("ed25519"), "ed25519")

    results = await run_material_checks(gateway.url, TESTER, stranger)

    assert [(r.check_id, r.verdict.outcome) for r in results] == [
        (check_id, "fail") for check_id in CHECK_IDS
    ]
    assert "401" in results[0].verdict.reason
