"""Public routes: health, readiness, metrics, keys, the catalog, the API's own docs."""

from __future__ import annotations

import aiohttp
import pytest

from gateway.web.keys import DEPENDENCIES
from tests.conftest import RunningGateway
from tests.support import sample_xml, send


async def _get(gateway: RunningGateway, path: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as session, session.get(gateway.url + path) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.text()


async def test_health_and_readiness(gateway: RunningGateway) -> None:
    status, _, body = await _get(gateway, "/healthz")
    assert status == 200
    assert '"status": "ok"' in body
    status, _, body = await _get(gateway, "/readyz")
    assert status == 200
    assert '"database": true' in body


async def test_readiness_fails_when_the_database_does_not_answer(
    gateway: RunningGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    uow = gateway.app[DEPENDENCIES].uow  # type: ignore[index]

    async def down() -> None:
        raise ConnectionRefusedError("database down")

    monkeypatch.setattr(uow, "ping", down)
    status, content_type, body = await _get(gateway, "/readyz")
    assert status == 503
    assert content_type == "application/problem+json"
    assert "database" in body


async def test_metrics_count_requests_by_route(gateway: RunningGateway) -> None:
    await send(
        gateway.settings,
        "POST",
        "/v1/applications",
        body=sample_xml(),
        content_type="application/xml",
    )
    status, content_type, body = await _get(gateway, "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain")
    assert (
        'gba_http_requests_total{method="POST",route="/v1/applications",status="202"} 1.0' in body
    )


async def test_the_catalog_answers_in_three_scripts(gateway: RunningGateway) -> None:
    for query in ("個體工商戶", "个体工商户", "individual%20business"):
        status, _, body = await _get(gateway, f"/v1/matters?q={query}")
        assert status == 200
        assert "11440400MB2C00081P4440120002000" in body
    status, _, body = await _get(
        gateway, "/v1/matters/11440400MB2C00081P4440120002000?jurisdiction=MO"
    )
    assert status == 200
    assert '"DSF M/1"' in body
    assert '"IRD BRO' not in body
    status, content_type, _ = await _get(
        gateway, "/v1/matters/11440400MB2C00081P4440120002000?at=2023-01-01"
    )
    assert status == 404
    assert content_type == "application/problem+json"


async def test_problem_types_are_documented_where_they_point(gateway: RunningGateway) -> None:
    status, content_type, body = await _get(gateway, "/problems/validation-failed")
    assert status == 200
    assert content_type.startswith("text/markdown")
    assert "422" in body
    status, _, _ = await _get(gateway, "/problems/..%2F..%2Fpyproject")
    assert status == 404


async def test_the_catalog_filters_by_type_and_channel(gateway: RunningGateway) -> None:
    import json

    _, _, body = await _get(gateway, "/v1/matters")
    everything = json.loads(body)["items"]
    assert len(everything) == 10
    assert all({"zh-Hans", "zh-Hant", "en"} <= set(m["names"]) for m in everything)
    _, _, body = await _get(gateway, "/v1/matters?type=20")
    public_services = json.loads(body)["items"]
    assert public_services
    assert {m["type"] for m in public_services} == {"20"}
    assert len(public_services) < len(everything)
    _, _, body = await _get(gateway, "/v1/matters?channel=kiosk")
    assert all("kiosk" in m["channels"] for m in json.loads(body)["items"])
