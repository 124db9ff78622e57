"""Portal clients: exact redirect URIs, public keys only, private_key_jwt done strictly."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.domain.errors import ConfigurationError, ValidationFailedError
from gateway.identity.clients import authenticate_client, client_from_metadata, load_clients
from gateway.identity.errors import OAuthError
from gateway.identity.ports import Client
from gateway.identity.tokens import granted_scope, released

ISSUER = "https://gw.example"
KEY = ec.generate_private_key(ec.SECP256R1())
JWK = {
    **jwt.get_algorithm_by_name("ES256").to_jwk(KEY.public_key(), as_dict=True),
    "kid": "p1",
}
CLIENT = Client("portal-1", ("https://portal.example/cb",), {"keys": [JWK]}, "gd-hq-csb")


def metadata(**changes: Any) -> dict[str, Any]:
    out = {"redirect_uris": ["https://portal.example/cb"], "jwks": {"keys": [JWK]}}
    out.update(changes)
    return out


def test_good_metadata_makes_a_client() -> None:
    client = client_from_metadata(
        metadata(channel="kiosk"), client_id="c-1", sandbox=False, default_agency="gd-hq-csb"
    )
    assert (client.agency_id, client.channel, client.redirect_uris) == (
        "gd-hq-csb",
        "kiosk",
        ("https://portal.example/cb",),
    )


def test_only_a_client_registered_for_them_is_granted_document_numbers() -> None:
    allowed = client_from_metadata(
        metadata(identity_documents=True), client_id="c-1", sandbox=False, default_agency="a"
    )
    plain = client_from_metadata(metadata(), client_id="c-2", sandbox=False, default_agency="a")
    asked = "openid identity_documents"

    assert (allowed.identity_documents, plain.identity_documents) == (True, False)
    assert allowed.metadata()["identity_documents"] is True
    assert granted_scope(asked, allowed) == asked
    assert granted_scope("openid", allowed) == "openid"
    assert granted_scope(asked, plain) == "openid"
    claims = {"name": "陳大文", "gba_documents": [{"type": "HKID"}]}
    assert released(claims, "openid") == {"name": "陳大文"}
    assert released(claims, asked) == claims


@pytest.mark.parametrize(
    ("changes", "pointer"),
    [
        ({"redirect_uris": ["https://portal.example/*"]}, "/redirect_uris/0"),
        ({"redirect_uris": ["https://portal.example/cb#frag"]}, "/redirect_uris/0"),
        ({"redirect_uris": ["https://user@portal.example/cb"]}, "/redirect_uris/0"),
        ({"redirect_uris": ["http://portal.example/cb"]}, "/redirect_uris/0"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "/redirect_uris/0"),
        ({"redirect_uris": []}, "/redirect_uris"),
        ({"jwks": {"keys": [{**JWK, "d": "secret"}]}}, "/jwks/keys/0"),
        ({"jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}]}}, "/jwks/keys/0"),
        ({"jwks": {"keys": [{**JWK, "alg": "HS256"}]}}, "/jwks/keys/0"),
        ({"token_endpoint_auth_method": "client_secret_basic"}, "/token_endpoint_auth_method"),
        ({"grant_types": ["authorization_code", "password"]}, "/grant_types"),
        ({"response_types": ["token"]}, "/response_types"),
        ({"channel": "fax"}, "/channel"),
        ({"identity_documents": "yes"}, "/identity_documents"),
    ],
)
def test_bad_metadata_is_refused_with_a_pointer(changes: dict[str, Any], pointer: str) -> None:
    with pytest.raises(ValidationFailedError) as refused:
        client_from_metadata(
            metadata(**changes), client_id="c-1", sandbox=False, default_agency="a"
        )
    assert pointer in [p.pointer for p in refused.value.errors]


def test_loopback_http_redirects_only_in_sandbox() -> None:
    loopback = metadata(redirect_uris=["http://127.0.0.1:9000/cb"])
    assert client_from_metadata(loopback, client_id="c-1", sandbox=True, default_agency="a")
    with pytest.raises(ValidationFailedError):
        client_from_metadata(loopback, client_id="c-1", sandbox=False, default_agency="a")


def test_the_clients_file_needs_an_agency_per_client(tmp_path: Path) -> None:
    path = tmp_path / "clients.yaml"
    path.write_text(
        "clients:\n"
        "  - client_id: kiosk-1\n"
        "    agency_id: gd-hq-csb\n"
        "    channel: kiosk\n"
        "    redirect_uris: [https://kiosk.example/cb]\n"
        f"    jwks: {{keys: [{{kty: EC, crv: P-256, x: {JWK['x']}, y: {JWK['y']}, kid: k}}]}}\n"
    )
    (client,) = load_clients(path)
    assert (client.client_id, client.channel) == ("kiosk-1", "kiosk")
    path.write_text("clients:\n  - client_id: kiosk-1\n    redirect_uris: [https://k.example/cb]\n")
    with pytest.raises(ConfigurationError, match="agency_id"):
        load_clients(path)


class Records:
    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()

    async def client(self, client_id: str) -> Client | None:
        return CLIENT if client_id == CLIENT.client_id else None

    async def use_jti(self, issuer: str, jti: str, now: datetime, expires_at: datetime) -> bool:
        if (issuer, jti) in self.seen:
            return False
        self.seen.add((issuer, jti))
        return True


def assertion(key: Any = KEY, header: dict[str, Any] | None = None, **changes: Any) -> str:
    now = int(time.time())
    claims = {
        "iss": "portal-1",
        "sub": "portal-1",
        "aud": ISSUER,
        "iat": now,
        "exp": now + 60,
        "jti": "jti-0001-abc",
    }
    claims.update(changes)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": "p1", **(header or {})})


async def authenticate(token: str, records: Records | None = None, **form: str) -> Client:
    body = {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": token,
        **form,
    }
    return await authenticate_client(
        body,
        records or Records(),
        issuer=ISSUER,
        now=datetime.now(UTC),  # type: ignore[arg-type]
    )


async def test_a_good_assertion_authenticates_the_client() -> None:
    assert (await authenticate(assertion())).client_id == "portal-1"


@pytest.mark.parametrize(
    "changes",
    [
        {"aud": ISSUER + "/oauth2/token"},
        {"aud": [ISSUER]},
        {"aud": [ISSUER, "https://other.example"]},
        {"sub": "someone-else"},
        {"exp": int(time.time()) + 3600},
        {"exp": int(time.time()) - 60},
        {"exp": None},
        {"jti": None},
    ],
)
async def test_assertion_claim_attacks_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(OAuthError) as refused:
        await authenticate(assertion(**changes))
    assert (refused.value.error, refused.value.status) == ("invalid_client", 401)


async def test_a_reused_jti_is_refused() -> None:
    records = Records()
    await authenticate(assertion(), records)
    with pytest.raises(OAuthError, match="jti"):
        await authenticate(assertion(), records)


@pytest.mark.parametrize("typ", ["dpop+jwt", "at+jwt"])
async def test_other_token_types_are_not_client_assertions(typ: str) -> None:
    with pytest.raises(OAuthError):
        await authenticate(assertion(header={"typ": typ}))


async def test_other_keys_and_other_methods_are_refused() -> None:
    with pytest.raises(OAuthError, match="signature"):
        await authenticate(assertion(key=ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(OAuthError, match="private_key_jwt"):
        await authenticate_client(
            {"client_id": "portal-1", "client_secret": "x"},
            Records(),  # type: ignore[arg-type]
            issuer=ISSUER,
            now=datetime.now(UTC),
        )
    with pytest.raises(OAuthError, match="client_id"):
        await authenticate(assertion(), client_id="portal-2")


async def test_a_sandbox_client_is_unknown_outside_sandbox_mode() -> None:
    from dataclasses import replace

    records = Records()
    sandbox_client = replace(CLIENT, sandbox=True)

    async def client(client_id: str) -> Client | None:
        return sandbox_client

    records.client = client  # type: ignore[method-assign]
    form = {
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": assertion(),
    }
    with pytest.raises(OAuthError, match="unknown client"):
        await authenticate_client(
            form,
            records,  # type: ignore[arg-type]
            issuer=ISSUER,
            now=datetime.now(UTC),
            accept_sandbox=False,
        )
    assert await authenticate_client(form, Records(), issuer=ISSUER, now=datetime.now(UTC))  # type: ignore[arg-type]


def test_post_logout_redirect_uris_follow_the_redirect_uri_rules() -> None:
    after = "https://portal.example/bye"
    client = client_from_metadata(
        metadata(
            post_logout_redirect_uris=[after], grant_types=["authorization_code", "refresh_token"]
        ),
        client_id="c-1",
        sandbox=False,
        default_agency="a",
    )
    assert client.post_logout_redirect_uris == (after,)
    assert client.metadata()["post_logout_redirect_uris"] == [after]
    assert client.metadata()["grant_types"] == ["authorization_code", "refresh_token"]
    with pytest.raises(ValidationFailedError) as refused:
        client_from_metadata(
            metadata(post_logout_redirect_uris=["http://portal.example/bye", "https://x/*"]),
            client_id="c-2",
            sandbox=False,
            default_agency="a",
        )
    assert [p.pointer for p in refused.value.errors] == [
        "/post_logout_redirect_uris/0",
        "/post_logout_redirect_uris/1",
    ]


@pytest.mark.parametrize(
    "grant_types", [["refresh_token"], ["authorization_code", "client_credentials"], "x"]
)
def test_only_code_and_refresh_grants_may_be_registered(grant_types: Any) -> None:
    with pytest.raises(ValidationFailedError) as refused:
        client_from_metadata(
            metadata(grant_types=grant_types), client_id="c-1", sandbox=False, default_agency="a"
        )
    assert [p.pointer for p in refused.value.errors] == ["/grant_types"]
