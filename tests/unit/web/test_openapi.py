"""The OpenAPI document covers every route and is a valid OpenAPI 3.1 document."""

from __future__ import annotations

from pathlib import Path

from openapi_spec_validator import validate

from gateway.bootstrap import create_app
from gateway.web.openapi import build_document, documented_routes
from gateway.web.rate_limits import address_limited
from tests.conftest import Database, sandbox_settings


def _app(tmp_path: Path):
    return create_app(sandbox_settings(tmp_path, Database("sqlite", f"sqlite:///{tmp_path}/g.db")))


def test_every_route_is_declared_and_listed(tmp_path: Path) -> None:
    app = _app(tmp_path)
    document = build_document(app, "http://127.0.0.1:8080")
    routes = documented_routes(app)
    assert len(routes) >= 15
    undeclared = [(m, p) for m, p, handler in routes if not hasattr(handler, "__openapi__")]
    assert undeclared == []
    missing = [(m, p) for m, p, _ in routes if m not in document["paths"].get(p, {})]
    assert missing == []


def test_the_document_validates_as_openapi_3_1(tmp_path: Path) -> None:
    document = build_document(_app(tmp_path), "http://127.0.0.1:8080")
    validate(document)
    assert document["openapi"] == "3.1.0"
    submit = document["paths"]["/v1/applications"]["post"]
    assert {p["name"] for p in submit["parameters"]} >= {
        "Signature-Input",
        "Signature",
        "Idempotency-Key",
    }
    assert set(submit["requestBody"]["content"]) == {"application/json", "application/xml"}
    assert "application/problem+json" in submit["responses"]["422"]["content"]


def test_a_route_without_a_declaration_is_noticed(tmp_path: Path) -> None:
    from aiohttp import web

    app = _app(tmp_path)

    async def secret(request: web.Request) -> web.Response:
        return web.Response()

    app.router.add_get("/v1/undocumented", secret)
    routes = documented_routes(app)
    assert ("get", "/v1/undocumented") in [
        (m, p) for m, p, h in routes if not hasattr(h, "__openapi__")
    ]


def test_the_shared_edge_answers_are_documented_on_every_operation_they_apply_to(
    tmp_path: Path,
) -> None:
    document = build_document(_app(tmp_path), "http://127.0.0.1:8080")
    for path, operations in document["paths"].items():
        for method, op in operations.items():
            statuses = set(op["responses"])
            body = op.get("requestBody", {}).get("content", {})
            headers = {p["name"] for p in op["parameters"] if p["in"] == "header"}
            where = f"{method.upper()} {path}"
            if op.get("security"):
                assert "401" in statuses, where
            if "Idempotency-Key" in headers:
                assert "400" in statuses, where
            if body:
                assert {"408", "413"} <= statuses, where
            if "application/json" in body:
                assert {"400", "415"} <= statuses, where
            if op.get("security") or address_limited(path):
                assert "429" in statuses, where


def test_oauth_errors_are_documented_as_rfc_6749_json(tmp_path: Path) -> None:
    paths = build_document(_app(tmp_path), "http://127.0.0.1:8080")["paths"]
    for path in ("/oauth2/token", "/sandbox/idp/{provider}/token", "/sandbox/idp/{provider}/par"):
        for status in ("400", "401"):
            content = paths[path]["post"]["responses"][status]["content"]
            assert set(content) == {"application/json"}, (path, status)
            assert content["application/json"]["schema"]["required"] == ["error"]


def test_a_declared_path_parameter_replaces_the_plain_string(tmp_path: Path) -> None:
    paths = build_document(_app(tmp_path), "http://127.0.0.1:8080")["paths"]
    action = paths["/v1/me/delegations/{delegation_id}/{action}"]["post"]["parameters"]
    assert [p["schema"] for p in action if p["name"] == "action"] == [
        {"enum": ["confirm", "revoke"]}
    ]
    login = paths["/auth/{provider}/login"]["get"]["parameters"]
    assert [p["schema"] for p in login if p["name"] == "provider"] == [
        {"enum": ["hk", "macau", "guangdong"]}
    ]


def test_the_residents_state_changing_posts_declare_their_idempotency_key(
    tmp_path: Path,
) -> None:
    paths = build_document(_app(tmp_path), "http://127.0.0.1:8080")["paths"]
    for path in (
        "/v1/me/applications",
        "/v1/me/applications/{application_id}/complaints",
        "/v1/me/applications/{application_id}/supplements",
        "/v1/me/applications/{application_id}/withdrawal",
    ):
        headers = [p for p in paths[path]["post"]["parameters"] if p["in"] == "header"]
        assert [p["name"] for p in headers] == ["Idempotency-Key"], path
        assert headers[0]["required"] is True


def test_the_rate_limited_routes_are_documented_with_429(tmp_path: Path) -> None:
    paths = build_document(_app(tmp_path), "http://127.0.0.1:8080")["paths"]
    for path, method in [
        ("/oauth2/authorize", "get"),
        ("/oauth2/register", "post"),
        ("/sandbox/v1/agencies", "post"),
        ("/v1/applications", "post"),
    ]:
        assert "429" in paths[path][method]["responses"], path
    assert "429" not in paths["/healthz"]["get"]["responses"]


def test_an_agencys_examination_decision_and_supplement_may_be_its_own_xml(
    tmp_path: Path,
) -> None:
    paths = build_document(_app(tmp_path), "http://127.0.0.1:8080")["paths"]
    for action, element in (
        ("acceptance", "Exame"),
        ("decisions", "Decisao"),
        ("supplements", "Suplemento"),
    ):
        operation = paths[f"/v1/applications/{{application_id}}/{action}"]["post"]
        content = operation["requestBody"]["content"]
        assert set(content) == {"application/json", "application/xml"}
        assert element in content["application/xml"]["schema"]["description"]
        assert "415" in operation["responses"]
    resident = paths["/v1/me/applications/{application_id}/supplements"]["post"]
    assert set(resident["requestBody"]["content"]) == {"application/json"}
