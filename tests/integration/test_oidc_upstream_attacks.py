"""The gateway as relying party refuses every attack of identity_security.md §3.2–3.3.

Each refused callback must store nothing: no person, no login, no session, no code.
The sandbox providers' ``tamper`` seam spoils what they send.
"""

from __future__ import annotations

import copy
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp
import pytest

from gateway.domain.errors import LoginFailedError, NotReadyError
from gateway.egress.policy import EgressPolicy
from gateway.identity.discovery import ProviderConfig, Upstreams
from gateway.identity.ports import AuthorizationRequest
from gateway.sandbox.idp import IDENTITY_PROVIDERS
from gateway.sandbox.portal import SandboxPortal
from gateway.web.bearer import BROKER
from tests.conftest import RunningGateway
from tests.integration.test_oidc_flow import broker, get, table_counts, to_callback

__all__ = ["broker"]  # the fixture, shared with test_oidc_flow


def provider(gateway: RunningGateway, name: str) -> Any:
    return gateway.app[IDENTITY_PROVIDERS].provider(name)  # type: ignore[index]


def rewrite(url: str, *, path: str | None = None, **params: str | None) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    for name, value in params.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return urlunsplit(parts._replace(path=path or parts.path, query=urlencode(query)))


async def refused(
    gateway: RunningGateway,
    url: str,
    slug: str = "login-failed",
    cookies: dict[str, str] | None = None,
) -> str:
    """The callback at ``url`` (from the browser holding ``cookies``) refused, nothing stored."""
    before = await table_counts(gateway.settings)
    status, headers, body = await get(url, cookies=cookies)
    assert "Location" not in headers
    assert body["type"].endswith("/problems/" + slug), body
    assert status == (403 if slug == "insufficient-assurance" else 401)
    assert await table_counts(gateway.settings) == before
    return str(body["detail"])


@pytest.fixture
async def portal(broker: RunningGateway) -> SandboxPortal:
    portal = await SandboxPortal.register(broker.url)
    await portal.login("hk", "chan-tai-man")  # warm: metadata fetched, one login on record
    return portal


async def test_a_wrong_iss_in_the_authorization_response_is_refused(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    provider(broker, "hk").tamper(authorization_response={"iss": "https://evil.example"})
    url, cookies = await to_callback(portal, "hk", "chan-tai-man")
    assert "another issuer" in await refused(broker, url, cookies=cookies)


async def test_a_missing_iss_is_refused(broker: RunningGateway, portal: SandboxPortal) -> None:
    provider(broker, "macau").tamper(authorization_response={"iss": None})
    url, cookies = await to_callback(portal, "macau", "lei-sio-meng")
    assert "no iss" in await refused(broker, url, cookies=cookies)


async def test_a_response_of_one_provider_at_anothers_callback_is_refused(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    url, cookies = await to_callback(portal, "guangdong", "chan-tai-man")
    at_hk = rewrite(url, path="/auth/hk/callback")
    assert "another issuer" in await refused(broker, at_hk, cookies=cookies)
    # even with the iss rewritten to match, the state belongs to another provider
    forged = rewrite(at_hk, iss=provider(broker, "hk").issuer)
    assert "state" in await refused(broker, forged, cookies=cookies)
    # and the genuine response still completes where it belongs
    status, headers, _ = await get(url, cookies=cookies)
    assert status == 302
    assert "code=" in headers["Location"]


async def test_reused_and_unknown_states_are_refused(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    url, cookies = await to_callback(portal, "hk", "wong-siu-ming")
    status, _, _ = await get(url, cookies=cookies)
    assert status == 302
    assert "state" in await refused(broker, url, cookies=cookies)
    assert "state" in await refused(broker, rewrite(url, state="made-up-state"), cookies=cookies)
    assert "state" in await refused(broker, rewrite(url, state=None), cookies=cookies)


async def test_an_error_response_is_refused_and_the_state_is_spent(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    url, cookies = await to_callback(portal, "hk", "chan-tai-man")
    denied = rewrite(url, code=None, error="access_denied", error_description="<script>")
    detail = await refused(broker, denied, cookies=cookies)
    assert "access_denied" in detail
    assert "script" not in detail
    assert "state" in await refused(broker, url, cookies=cookies)


@pytest.mark.parametrize(
    ("idp", "persona", "faults", "reason"),
    [
        ("hk", "chan-tai-man", {"id_token_claims": {"nonce": "another"}}, "nonce"),
        ("hk", "chan-tai-man", {"signing": "none"}, "not a signed JWT"),
        ("hk", "chan-tai-man", {"signing": "hs256-public-key"}, "algorithm"),
        ("macau", "lei-sio-meng", {"signing": "hs256-public-key"}, "algorithm"),
        ("guangdong", "zhang-wei", {"signing": "foreign-key"}, "signature"),
        ("macau", "lei-sio-meng", {"signing": "foreign-key"}, "signature"),
        (
            "hk",
            "chan-tai-man",
            {"id_token_claims": {"exp": int(time.time()) - 600, "iat": int(time.time()) - 700}},
            "expired",
        ),
        ("hk", "chan-tai-man", {"id_token_claims": {"aud": "another-client"}}, "aud"),
        ("hk", "chan-tai-man", {"id_token_claims": {"aud": ["gba-gateway", "evil"]}}, "aud"),
        ("guangdong", "li-na", {"id_token_claims": {"iss": "https://evil.example"}}, "issuer"),
        ("hk", "chan-tai-man", {"id_token_header": {"typ": "at+jwt"}}, "typ"),
        ("hk", "chan-tai-man", {"id_token_header": {"jku": "https://evil.example/k"}}, "never"),
        ("hk", "chan-tai-man", {"id_token_header": {"kid": "../../dev/null"}}, "kid"),
    ],
)
async def test_a_spoiled_id_token_is_refused_and_nothing_is_stored(
    broker: RunningGateway,
    portal: SandboxPortal,
    idp: str,
    persona: str,
    faults: dict[str, Any],
    reason: str,
) -> None:
    provider(broker, idp).tamper(**faults)
    url, cookies = await to_callback(portal, idp, persona)
    assert reason in await refused(broker, url, cookies=cookies)


@pytest.mark.parametrize("acr", [None, "iamsmart:unknown"])
async def test_a_missing_or_unknown_acr_is_refused(
    broker: RunningGateway, portal: SandboxPortal, acr: str | None
) -> None:
    provider(broker, "hk").tamper(id_token_claims={"acr": acr})
    url, cookies = await to_callback(portal, "hk", "chan-tai-man")
    await refused(broker, url, "insufficient-assurance", cookies=cookies)


async def test_hk_pushes_its_authorization_request(
    broker: RunningGateway, portal: SandboxPortal
) -> None:
    url, _ = portal.authorization_url("hk", "chan-tai-man")
    status, headers, _ = await get(url)
    assert status == 302
    query = dict(parse_qsl(urlsplit(headers["Location"]).query))
    assert set(query) == {"client_id", "request_uri"}  # PAR: nothing else on the front channel
    status, headers, _ = await get(portal.authorization_url("macau", "lei-sio-meng")[0])
    query = dict(parse_qsl(urlsplit(headers["Location"]).query))
    assert query["code_challenge_method"] == "S256"
    assert query["login_hint"] == "lei-sio-meng"
    assert query["redirect_uri"] == broker.url + "/auth/macau/callback"


# -- a sandbox provider is never trusted in production (issue 13 item 8b) ----------------


async def test_a_production_relying_party_refuses_metadata_of_a_sandbox_provider(
    broker: RunningGateway,
) -> None:
    sandbox_idp = broker.url + "/sandbox/idp/macau/.well-known/openid-configuration"
    config = ProviderConfig("macau", sandbox_idp, "gba-gateway", ("PS256",))

    egress = EgressPolicy(sandbox=True)  # loopback reachable: the mark alone is refused
    assert (
        await Upstreams((config,), egress=egress, timeout=5, sandbox=True).metadata("macau")
    ).issuer
    with pytest.raises(NotReadyError):
        await Upstreams((config,), egress=egress, timeout=5, sandbox=False).metadata("macau")


async def test_a_production_relying_party_refuses_a_token_of_a_sandbox_provider(
    broker: RunningGateway,
) -> None:
    """A sandbox provider's genuine, valid ID token reaching a relying party that is not in
    sandbox mode (as if its configuration had let one through) is refused, storing nothing."""
    production = copy.copy(broker.app[BROKER].relying_party)  # type: ignore[index]
    production._sandbox = False  # the same providers and store, production rules
    request = AuthorizationRequest("c", "https://portal.example/cb", "st", "no", "x" * 43, "openid")
    url = rewrite(
        await production.begin("macau", request, login_hint=None, browser_hash="b" * 64),
        login_hint="lei-sio-meng",
    )
    async with aiohttp.ClientSession() as session:
        for _ in range(6):
            async with session.get(url, allow_redirects=False) as response:
                assert response.status == 302, await response.text()
                url = response.headers["Location"]
            if urlsplit(url).path == "/auth/macau/callback":
                break
    before = await table_counts(broker.settings)

    with pytest.raises(LoginFailedError, match="sandbox identity provider"):
        await production.complete(
            "macau", dict(parse_qsl(urlsplit(url).query)), browser_hash="b" * 64
        )

    assert await table_counts(broker.settings) == before
