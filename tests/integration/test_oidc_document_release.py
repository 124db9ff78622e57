"""Issue 13 item 8a: the gateway's OpenID Provider releases identity document numbers (in the
ID token and at userinfo) only under the ``identity_documents`` scope AND to a client
registered as allowed to receive them — over the real flow: portal, broker, sandbox IdP."""

from __future__ import annotations

import json

import pytest

from gateway.sandbox.portal import SandboxPortal
from tests.conftest import RunningGateway
from tests.integration.test_oidc_flow import gateway_jwks, get, verify

ASKED = "openid identity_documents"


async def test_discovery_advertises_the_documents_scope(gateway: RunningGateway) -> None:
    status, _, meta = await get(gateway.url + "/.well-known/openid-configuration")
    assert status == 200
    assert meta["scopes_supported"] == ["openid", "identity_documents"]


@pytest.mark.parametrize(
    ("allowed", "scope", "released"),
    [
        (False, ASKED, False),  # asked for, but the client may not have them
        (True, "openid", False),  # allowed, but not asked for
        (True, ASKED, True),
    ],
    ids=["scope-without-permission", "permission-without-scope", "both"],
)
async def test_document_numbers_need_the_scope_and_the_permission(
    gateway: RunningGateway, allowed: bool, scope: str, released: bool
) -> None:
    portal = await SandboxPortal.register(gateway.url, identity_documents=allowed)
    portal.scope = scope
    tokens = await portal.login("hk", "chan-tai-man")

    id_claims = verify(
        tokens.id_token, await gateway_jwks(gateway.url), typ="JWT", audience=portal.client_id
    )
    status, _, info = await get(
        gateway.url + "/oauth2/userinfo", {"Authorization": f"Bearer {tokens.access_token}"}
    )
    assert status == 200
    assert tokens.scope == (ASKED if released else "openid")
    assert info["birthdate"] == id_claims["birthdate"] == "1988-03-15"
    for claims in (id_claims, info):
        assert ("A123456" in json.dumps(claims)) is released
    if released:
        assert id_claims["gba_documents"] == info["gba_documents"]
        assert {"type": "HKID", "number": "A123456(3)", "issuer": "HK"} in info["gba_documents"]
