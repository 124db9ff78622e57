"""The gateway as OpenID Provider refuses every attack of identity_security.md §3.1–3.3."""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest
import sqlalchemy as sa

from gateway.identity.jose import sign_jwt, unverified
from gateway.sandbox.portal import DEFAULT_REDIRECT_URI, SandboxPortal
from gateway.store.database import create_engine
from gateway.store.tables import audit_log, evidence
from gateway.trust.keystore import KeyRing
from gateway.web.keys import KEYRING
from tests.conftest import RunningGateway
from tests.integration.test_oidc_flow import broker, get, table_counts
from tests.support import send

__all__ = ["broker"]  # the fixture, shared with test_oidc_flow
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
async def portal(broker: RunningGateway) -> SandboxPortal:
    return await SandboxPortal.register(broker.url)


async def introspect(gateway: RunningGateway, token: str, agency: str = "gd-hq-csb") -> Any:
    answer = await send(
        gateway.settings,
        "POST",
        "/oauth2/introspect",
        body=f"token={token}".encode(),
        content_type=FORM,
        agency=agency,
    )
    assert answer.status == 200
    return answer.json()


async def bearer(gateway: RunningGateway, path: str, token: str) -> tuple[int, dict[str, str]]:
    status, headers, _ = await get(gateway.url + path, {"Authorization": f"Bearer {token}"})
    return status, headers


async def test_a_replayed_code_is_refused_and_revokes_its_tokens(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    returned = await portal.authorize("guangdong", "zhang-wei")
    tokens = await portal.exchange(returned)
    assert (await introspect(broker, tokens.access_token))["active"] is True
    status, body = await portal.token_request(
        {
            "grant_type": "authorization_code",
            "code": returned.code,
            "redirect_uri": portal.redirect_uri,
            "code_verifier": returned.pending.verifier,
        }
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    assert await introspect(broker, tokens.access_token) == {"active": False}
    assert (await bearer(broker, "/oauth2/userinfo", tokens.access_token))[0] == 401
    assert (await bearer(broker, "/test/me", tokens.access_token))[0] == 401


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"response_type": "id_token"}, "unsupported_response_type"),
        ({"response_type": "code token"}, "unsupported_response_type"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"nonce": None}, "invalid_request"),
        ({"request_uri": "urn:x"}, "request_not_supported"),
    ],
)
async def test_bad_authorization_requests_go_back_with_an_error_and_no_code(
    broker: RunningGateway, portal: SandboxPortal, overrides: dict[str, Any], error: str
) -> None:
    before = await table_counts(broker.settings)
    url, pending = portal.authorization_url("hk", "chan-tai-man", **overrides)
    status, headers, _ = await get(url)
    assert status == 302
    location = headers["Location"]
    assert location.startswith(DEFAULT_REDIRECT_URI + "?")
    params = dict(parse_qsl(urlsplit(location).query))
    assert params["error"] == error
    assert params["state"] == pending.state
    assert params["iss"] == broker.url
    assert "code" not in params
    assert "access_token" not in location
    assert await table_counts(broker.settings) == before


@pytest.mark.parametrize(
    "redirect_uri",
    [
        DEFAULT_REDIRECT_URI + "/",
        DEFAULT_REDIRECT_URI + "?next=https://evil.example",
        DEFAULT_REDIRECT_URI + "/../evil",
        DEFAULT_REDIRECT_URI.replace("portal", "PORTAL"),
        DEFAULT_REDIRECT_URI.replace("callback", "Callback"),
        DEFAULT_REDIRECT_URI.replace("https://", "https://user@"),
        DEFAULT_REDIRECT_URI.replace("https://", "https://evil.example@"),
        DEFAULT_REDIRECT_URI.replace("https://", "http://"),
        "https://evil.example/callback",
        None,
    ],
)
async def test_a_redirect_uri_that_is_not_exactly_registered_is_never_redirected_to(
    broker: RunningGateway, portal: SandboxPortal, redirect_uri: str | None
) -> None:
    url, _ = portal.authorization_url("hk", "chan-tai-man", redirect_uri=redirect_uri)
    status, headers, body = await get(url)
    assert status == 400
    assert "Location" not in headers
    assert body["type"].endswith("/problems/bad-request")


async def test_an_unknown_client_or_provider_is_an_error_page(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    status, headers, _ = await get(portal.authorization_url("hk", client_id="nobody")[0])
    assert (status, "Location" in headers) == (400, False)
    # without idp_hint the request is checked before any chooser is shown
    status, headers, _ = await get(portal.authorization_url(None, client_id="nobody")[0])
    assert (status, "Location" in headers) == (400, False)
    evil = portal.authorization_url(None, redirect_uri="https://evil.example/callback")[0]
    status, headers, body = await get(evil)
    assert (status, "Location" in headers) == (400, False)
    assert "evil.example" not in str(body)
    status, _, _ = await get(portal.authorization_url("taipei")[0])
    assert status == 400
    twice = portal.authorization_url("hk")[0] + "&state=second"
    assert (await get(twice))[0] == 400


@pytest.mark.parametrize(
    "form",
    [
        {"code_verifier": None},
        {"code_verifier": "x" * 43},
        {"code_verifier": "short"},
        {"redirect_uri": DEFAULT_REDIRECT_URI + "/"},
        {"redirect_uri": None},
        {"code": "not-a-code"},
    ],
)
async def test_the_code_exchange_checks_pkce_and_the_redirect_uri(
    broker: RunningGateway, portal: SandboxPortal, form: dict[str, Any]
) -> None:
    returned = await portal.authorize("macau", "lei-sio-meng")
    base = {
        "grant_type": "authorization_code",
        "code": returned.code,
        "redirect_uri": portal.redirect_uri,
        "code_verifier": returned.pending.verifier,
    }
    status, body = await portal.token_request({**base, **form})
    assert (status, body["error"]) == (400, "invalid_grant")
    assert "access_token" not in body
    if "code" not in form:  # the failed try spent the code
        status, body = await portal.token_request(base)
        assert (status, body["error"]) == (400, "invalid_grant")


async def test_a_code_is_bound_to_its_client(broker: RunningGateway, portal: SandboxPortal) -> None:
    other = await SandboxPortal.register(broker.url)
    returned = await portal.authorize("hk", "chan-tai-man")
    status, body = await other.token_request(
        {
            "grant_type": "authorization_code",
            "code": returned.code,
            "redirect_uri": portal.redirect_uri,
            "code_verifier": returned.pending.verifier,
        }
    )
    assert (status, body["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize("grant_type", ["password", "implicit", "client_credentials", None])
async def test_only_the_authorization_code_grant_exists(
    portal: SandboxPortal, grant_type: str | None
) -> None:
    status, body = await portal.token_request(
        {"grant_type": grant_type, "username": "chan", "password": "pw"}
    )
    assert status == 400
    assert body["error"] == ("invalid_request" if grant_type is None else "unsupported_grant_type")


@pytest.mark.parametrize(
    "assertion",
    [
        {"aud": "token-endpoint"},
        {"aud": "another-issuer"},
        {"lifetime": 3600},
        {"lifetime": -30},
    ],
)
async def test_client_assertions_are_checked(
    broker: RunningGateway, portal: SandboxPortal, assertion: dict[str, Any]
) -> None:
    returned = await portal.authorize("hk", "chan-tai-man")
    aud = {
        "token-endpoint": broker.url + "/oauth2/token",
        "another-issuer": "https://other.example",
    }
    if "aud" in assertion:
        assertion = {"aud": aud[assertion["aud"]]}
    status, body = await portal.token_request(
        {
            "grant_type": "authorization_code",
            "code": returned.code,
            "redirect_uri": portal.redirect_uri,
            "code_verifier": returned.pending.verifier,
            "client_assertion": portal.assertion(**assertion),
        }
    )
    assert (status, body["error"]) == (401, "invalid_client")
    assert (await portal.exchange(returned)).access_token  # the code was not spent


async def test_a_reused_client_assertion_is_refused(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    assertion = portal.assertion(jti="jti-used-once-0001")
    first = await portal.authorize("hk", "chan-tai-man")
    second = await portal.authorize("hk", "chan-tai-man")
    for returned, expected in ((first, 200), (second, 401)):
        status, _ = await portal.token_request(
            {
                "grant_type": "authorization_code",
                "code": returned.code,
                "redirect_uri": portal.redirect_uri,
                "code_verifier": returned.pending.verifier,
                "client_assertion": assertion,
            }
        )
        assert status == expected


async def test_a_client_secret_is_no_authentication(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            broker.url + "/oauth2/token",
            data={"grant_type": "authorization_code", "code": "x", "client_secret": "secret"},
            headers={"Authorization": "Basic " + base64.b64encode(b"c:secret").decode()},
        ) as response,
    ):
        assert response.status == 401
        assert (await response.json())["error"] == "invalid_client"


async def test_an_id_token_is_never_an_access_token(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    tokens = await portal.login("hk", "chan-tai-man")
    for path in ("/oauth2/userinfo", "/test/me"):
        status, headers = await bearer(broker, path, tokens.id_token)
        assert status == 401
        assert headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert await introspect(broker, tokens.id_token) == {"active": False}
    for path in ("/oauth2/userinfo", "/test/me"):
        assert (await bearer(broker, path, tokens.access_token))[0] == 200


def _resigned(ring: KeyRing, token: str, **changes: Any) -> str:
    claims = {**unverified(token).claims, **changes}
    return sign_jwt(ring.current("oidc"), claims, typ="at+jwt")


async def test_expired_forged_and_foreign_tokens_are_inactive(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    ring = broker.app[KEYRING]  # type: ignore[index]
    tokens = await portal.login("guangdong", "li-na")
    assert (await introspect(broker, tokens.access_token))["active"] is True
    assert await introspect(broker, tokens.access_token, "hk-ird") == {"active": False}
    expired = _resigned(ring, tokens.access_token, exp=int(time.time()) - 60)
    assert await introspect(broker, expired) == {"active": False}
    assert (await bearer(broker, "/test/me", expired))[0] == 401
    unrecorded = _resigned(ring, tokens.access_token, jti="never-issued")
    assert await introspect(broker, unrecorded) == {"active": False}
    other_audience = _resigned(ring, tokens.access_token, aud="hk-ird")
    assert await introspect(broker, other_audience, "hk-ird") == {"active": False}
    header, _payload, signature = tokens.access_token.split(".")
    forged_claims = {**unverified(tokens.access_token).claims, "sub": "someone-else"}
    forged = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    assert await introspect(broker, f"{header}.{forged}.{signature}") == {"active": False}


async def test_userinfo_needs_a_bearer_token(broker: RunningGateway) -> None:
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"}):
        status, answered, _ = await get(broker.url + "/oauth2/userinfo", headers)
        assert status == 401
        assert answered["WWW-Authenticate"] == 'Bearer error="invalid_token"'


async def test_an_introspected_token_is_not_kept_as_evidence(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    tokens = await portal.login("hk", "chan-tai-man")
    assert (await introspect(broker, tokens.access_token))["active"] is True

    settings = broker.settings
    engine = create_engine(settings.database_url, schema=settings.database_schema or None)
    try:
        async with engine.connect() as conn:
            bodies = (await conn.execute(sa.select(evidence.c.body))).scalars().all()
            entries = (await conn.execute(sa.select(audit_log.c.entry))).scalars().all()
    finally:
        await engine.dispose()
    secret = tokens.access_token.encode()
    assert not any(secret in body for body in bodies)
    assert not any(secret in entry for entry in entries)
    assert any(b"/oauth2/introspect" in entry for entry in entries)  # the call is audited
