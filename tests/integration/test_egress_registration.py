"""An endpoint the egress policy refuses is refused when registered: in production, plain
http (unless the operator lists the host) and internal IP literals; in the sandbox, link-local
and cloud metadata addresses. Each refusal stores nothing. Last, the whole sandbox: a case
routed to a tester's endpoint that answers a redirect is never re-posted anywhere."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from gateway.domain.errors import ConfigurationError
from gateway.egress.policy import EgressPolicy
from gateway.sandbox.samples import INDIVIDUAL_BUSINESS
from gateway.trust.keys import SigningKey, generate_private_key
from gateway.trust.registry import load_registry_file, registration
from tests.conftest import RunningGateway
from tests.integration.test_egress_redirects import redirecting
from tests.support import sample_xml, send

NOW = datetime(2026, 3, 3, tzinfo=UTC)
KEY = SigningKey("tester-key-1", generate_private_key("ed25519"), "ed25519")


def _spec(endpoint: str, agency_id: str = "tester-gd") -> dict[str, object]:
    return {
        "agency_id": agency_id,
        "jurisdiction": "GD",
        "names": {"en": "Tester"},
        "endpoint": endpoint,
        "matters": ["*"],
        "keys": [{"jwk": KEY.jwk()}],
    }


def _refused(endpoint: str, **policy: object) -> bool:
    egress = EgressPolicy.parse(**policy) if policy else None  # type: ignore[arg-type]
    reg = registration(_spec(endpoint), now=NOW, sandbox=False, egress=egress)
    return any(p.pointer == "/endpoint" and p.code == "endpoint_refused" for p in reg.problems)


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://partner.example/inbox",
        "https://169.254.169.254/latest/meta-data",
        "https://127.0.0.1:8443/inbox",
        "https://10.0.0.5/inbox",
        "https://[fd00:ec2::254]/inbox",
        "https://[::ffff:127.0.0.1]/inbox",
    ],
)
def test_production_refuses_such_an_endpoint_at_registration(endpoint: str) -> None:
    assert _refused(endpoint)


def test_production_registers_https_and_the_operators_exceptions() -> None:
    assert not _refused("https://partner.example/inbox")
    assert not _refused(
        "http://legacy.partner.example/inbox", sandbox=False, allow_http=["legacy.partner.example"]
    )
    assert not _refused("https://10.20.0.5/inbox", sandbox=False, allow=["10.20.0.0/16"])
    assert _refused(
        "https://169.254.169.254/", sandbox=False, allow=["169.254.0.0/16", "0.0.0.0/0"]
    )


def test_a_production_registry_file_with_an_http_endpoint_refuses_to_start(
    tmp_path: Path,
) -> None:
    path = tmp_path / "agencies.yaml"
    spec = _spec("http://partner.example/inbox")
    entry = {**spec, "id": spec.pop("agency_id")}
    path.write_text(yaml.safe_dump({"agencies": [entry]}))
    with pytest.raises(ConfigurationError, match="/endpoint endpoint_refused"):
        load_registry_file(path, anchors=None, now=NOW, egress=EgressPolicy(sandbox=False))
    listed = EgressPolicy.parse(sandbox=False, allow_http=["partner.example"])
    (loaded,) = load_registry_file(path, anchors=None, now=NOW, egress=listed)
    assert loaded.agency.endpoint == "http://partner.example/inbox"


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/latest",
        "http://100.100.100.200/latest/meta-data",
        "http://[fe80::1]:8080/inbox",
        "http://169.254.10.10/inbox",
    ],
)
async def test_the_sandbox_refuses_a_tester_endpoint_on_metadata_or_link_local(
    gateway: RunningGateway, endpoint: str
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(gateway.url + "/sandbox/v1/agencies", json=_spec(endpoint)) as response,
    ):
        assert response.status == 422
        problem = await response.json(content_type=None)
        assert {"pointer": "/endpoint", "code": "endpoint_refused"}.items() <= problem["errors"][
            0
        ].items()
        stored = await session.get(gateway.url + "/sandbox/v1/agencies/tester-gd")
        assert stored.status == 404


async def test_the_sandbox_registers_a_tester_endpoint_on_loopback(
    gateway: RunningGateway,
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            gateway.url + "/sandbox/v1/agencies", json=_spec("http://127.0.0.1:9/inbox")
        ) as response,
    ):
        assert response.status == 201


@pytest.mark.parametrize("status", [307, 308])
async def test_the_sandbox_never_follows_a_tester_endpoints_redirect(
    gateway: RunningGateway, aiohttp_server: Any, status: int
) -> None:
    """Through the whole sandbox: the case goes to a tester's endpoint answering a redirect."""
    first, second = await redirecting(aiohttp_server, status)
    async with aiohttp.ClientSession() as session:
        registered = await session.post(
            gateway.url + "/sandbox/v1/agencies", json=_spec(first.url + "/inbox")
        )
        assert registered.status == 201
        routed = await session.put(
            f"{gateway.url}/sandbox/v1/routes/{INDIVIDUAL_BUSINESS}", json={"lead": "tester-gd"}
        )
        assert routed.status == 200
    answer = await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=sample_xml(),
        content_type="application/xml",
    )
    assert answer.status == 202
    path = f"/v1/applications/{answer.json()['application_id']}"

    failed: list[dict[str, Any]] = []
    for _ in range(300):
        view = (await send(gateway.settings, "GET", path)).json()
        failed = [e for e in view["timeline"] if e["type"] == "message.dead_lettered"]
        if failed:
            break
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.5)  # a re-post, to either server, would land in this time

    assert [e["error"] for e in failed] == [
        f"delivery failed (HTTP {status}): partners must not redirect"
    ]
    assert first.requests == [("POST", "/inbox")]
    assert second.requests == []
