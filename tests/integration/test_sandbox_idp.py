"""The sandbox identity providers over real HTTP: discovery, the code flow, PAR, refusals,
and the tamper seam the relying party's negative tests rely on."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gateway.sandbox.idp import IDENTITY_PROVIDERS, SandboxIdentityProviders, SandboxProvider
from tests.conftest import Database, RunningGateway

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
REDIRECT_URI = "https://rp.example/callback"
ALGS = {"hk": "ES256", "macau": "PS256", "guangdong": "ES256"}


@pytest.fixture
def database(tmp_path: Path) -> Database:
    """The providers keep nothing in the database: one backend is enough here."""
    return Database("sqlite", f"sqlite:///{tmp_path / 'gateway.db'}")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Flow:
    """A browserless relying party: its own EC key, PKCE S256, private_key_jwt."""

    provider: SandboxProvider
    client_id: str = field(default_factory=lambda: "rp-" + secrets.token_hex(4))
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    state: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    nonce: str = field(default_factory=lambda: secrets.token_urlsafe(12))

    def register(self) -> Flow:
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        self.provider.register_client(
            self.client_id, jwks={"keys": [{**jwk, "kid": "rp-1"}]}, redirect_uris=[REDIRECT_URI]
        )
        return self

    @property
    def challenge(self) -> str:
        return _b64(hashlib.sha256(self.verifier.encode()).digest())

    def params(self, **changes: Any) -> dict[str, str]:
        out = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": REDIRECT_URI,
            "scope": "openid",
            "state": self.state,
            "nonce": self.nonce,
            "code_challenge": self.challenge,
            "code_challenge_method": "S256",
        }
        out.update(changes)
        return {k: v for k, v in out.items() if v is not None}

    def assertion(self, **changes: Any) -> str:
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.provider.issuer,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(16),
        }
        claims.update(changes)
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"kid": "rp-1"})

    def client_auth(self, assertion: str | None = None) -> dict[str, str]:
        return {
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion or self.assertion(),
        }

    async def authorize(
        self, session: aiohttp.ClientSession, **params: Any
    ) -> aiohttp.ClientResponse:
        url = self.provider.issuer + "/authorize"
        async with session.get(url, params=params, allow_redirects=False) as response:
            await response.read()
            return response

    async def code(self, session: aiohttp.ClientSession, persona: str) -> str:
        response = await self.authorize(session, **self.params(login_hint=persona))
        assert response.status == 302, await response.text()
        query = redirect_query(response)
        assert query["state"] == [self.state]
        assert query["iss"] == [self.provider.issuer]
        return query["code"][0]

    async def token(
        self,
        session: aiohttp.ClientSession,
        code: str,
        *,
        assertion: str | None = None,
        **changes: Any,
    ) -> tuple[int, dict[str, Any]]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": self.verifier,
            **self.client_auth(assertion),
        }
        form.update(changes)
        form = {k: v for k, v in form.items() if v is not None}
        async with session.post(self.provider.issuer + "/token", data=form) as response:
            return response.status, await response.json()

    async def login(self, session: aiohttp.ClientSession, persona: str) -> dict[str, Any]:
        status, body = await self.token(session, await self.code(session, persona))
        assert status == 200, body
        return body


def redirect_query(response: aiohttp.ClientResponse) -> dict[str, list[str]]:
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    return parse_qs(urlsplit(location).query)


def providers(gateway: RunningGateway) -> SandboxIdentityProviders:
    return gateway.app[IDENTITY_PROVIDERS]  # type: ignore[index]


def flow(gateway: RunningGateway, name: str) -> Flow:
    return Flow(providers(gateway).provider(name)).register()


async def verified(session: aiohttp.ClientSession, f: Flow, id_token: str) -> dict[str, Any]:
    async with session.get(f.provider.issuer + "/jwks") as response:
        jwks = await response.json()
    header = jwt.get_unverified_header(id_token)
    assert header["typ"] == "JWT"
    key = next(k for k in jwks["keys"] if k["kid"] == header["kid"])
    alg = ALGS[f.provider.name]
    return jwt.decode(
        id_token,
        jwt.PyJWK(key, algorithm=alg),
        algorithms=[alg],
        audience=f.client_id,
        issuer=f.provider.issuer,
    )


# -- discovery ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hk", "macau", "guangdong"])
async def test_discovery_lists_what_the_relying_party_relies_on(
    gateway: RunningGateway, name: str
) -> None:
    issuer = f"{gateway.url}/sandbox/idp/{name}"
    async with aiohttp.ClientSession() as session:
        async with session.get(issuer + "/.well-known/openid-configuration") as response:
            assert response.status == 200
            meta = await response.json()
        async with session.get(meta["jwks_uri"]) as response:
            keys = (await response.json())["keys"]
    assert meta["issuer"] == issuer == providers(gateway).provider(name).issuer
    for endpoint in ("authorize", "token", "jwks", "userinfo"):
        assert f"{issuer}/{endpoint}" in meta.values()
    assert meta["response_types_supported"] == ["code"]
    assert meta["grant_types_supported"] == ["authorization_code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert meta["token_endpoint_auth_signing_alg_values_supported"] == ["ES256", "EdDSA", "PS256"]
    assert meta["id_token_signing_alg_values_supported"] == [ALGS[name]]
    assert meta["subject_types_supported"] == ["pairwise" if name == "hk" else "public"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert {"acr_values_supported", "claims_supported", "scopes_supported"} <= set(meta)
    assert ("pushed_authorization_request_endpoint" in meta) is (name == "hk")
    assert [k["kty"] for k in keys] == ["RSA" if name == "macau" else "EC"]
    assert keys[0]["kid"]
    assert "d" not in keys[0]


async def test_an_unknown_provider_is_404(gateway: RunningGateway) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(gateway.url + "/sandbox/idp/nowhere/jwks") as response:
            assert response.status == 404
        async with session.post(gateway.url + "/sandbox/idp/macau/par", data={}) as response:
            assert response.status == 404


# -- the code flow, per provider ------------------------------------------------------------


async def test_hk_code_flow_gives_the_iam_smart_profile(gateway: RunningGateway) -> None:
    f = flow(gateway, "hk")
    async with aiohttp.ClientSession() as session:
        tokens = await f.login(session, "chan-tai-man")
        claims = await verified(session, f, tokens["id_token"])
        async with session.get(
            f.provider.issuer + "/userinfo",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        ) as response:
            userinfo = await response.json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] > 0
    assert tokens["scope"] == "openid"
    digest = hashlib.sha256(f"{f.client_id}|chan-tai-man".encode()).digest()
    assert claims["sub"] == "TA" + base64.b32encode(digest).decode()[:24]
    assert claims["nonce"] == f.nonce
    assert claims["exp"] == claims["iat"] + 300
    assert claims["acr"] == "iamsmart"
    assert isinstance(claims["amr"], list)
    assert isinstance(claims["auth_time"], int)
    assert claims["idNo"] == {"Identification": "A123456", "CheckDigit": "3"}
    assert claims["enName"] == {"UnstructuredName": "CHAN, Tai Man"}
    assert claims["chName"] == {"ChineseName": "陳大文"}
    assert claims["birthDate"] == "19880315"
    assert claims["gender"] == "M"
    assert "orgProfile" not in claims
    assert userinfo == {k: claims[k] for k in userinfo}
    assert set(userinfo) == {"sub", "idNo", "enName", "chName", "birthDate", "gender"}


async def test_hk_subject_is_pairwise_and_company_reps_get_org_profile(
    gateway: RunningGateway,
) -> None:
    first, second = flow(gateway, "hk"), flow(gateway, "hk")
    async with aiohttp.ClientSession() as session:
        a = await verified(session, first, (await first.login(session, "ho-ka-yan"))["id_token"])
        b = await verified(session, second, (await second.login(session, "ho-ka-yan"))["id_token"])
        low = await verified(
            session, first, (await first.login(session, "wong-siu-ming"))["id_token"]
        )
    assert a["sub"] != b["sub"]
    assert a["sub"].startswith("TA")
    assert len(a["sub"]) == 26
    assert a["acr"] == "iamsmart+"
    assert low["acr"] == "iamsmart:basic"
    assert a["idNo"] == {"Identification": "XA000001", "CheckDigit": "6"}
    assert a["gender"] == "F"
    assert a["orgProfile"] == {
        "brNo": "12345678",
        "enName": "Sample Trading Limited",
        "chName": "樣本貿易有限公司",
    }


async def test_macau_code_flow_gives_the_one_account_profile(gateway: RunningGateway) -> None:
    f = flow(gateway, "macau")
    async with aiohttp.ClientSession() as session:
        claims = await verified(session, f, (await f.login(session, "lei-sio-meng"))["id_token"])
        again = await verified(session, f, (await f.login(session, "lei-sio-meng"))["id_token"])
    assert claims["sub"].startswith("MO-")
    assert claims["sub"][3:].isdigit()
    assert claims["sub"] == again["sub"]
    assert claims["acr"] == "mo:loa:2"
    assert claims["bir_no"] == "1234567(8)"
    assert claims["name_zh"] == "李小明"
    assert claims["name_pt"] == "LEI SIO MENG"
    assert claims["birthdate"] == "1992-07-07"
    assert claims["hrp_no"] == "M87654321"
    assert claims["rp_no"] == "820000199207070465"


async def test_guangdong_code_flow_for_mainland_and_hk_residents(gateway: RunningGateway) -> None:
    f = flow(gateway, "guangdong")
    async with aiohttp.ClientSession() as session:
        li = await verified(session, f, (await f.login(session, "li-na"))["id_token"])
        chan = await verified(session, f, (await f.login(session, "chan-tai-man"))["id_token"])
        lei = await verified(session, f, (await f.login(session, "lei-sio-meng"))["id_token"])
    assert li["cert_type"] == "ID_CARD"
    assert li["cert_no"] == "440106199002140047"
    assert li["name"] == "李娜"
    assert li["birthdate"] == "1990-02-14"
    assert li["acr"] == "gd:loa:3"
    assert li["org"] == {"uscc": "91440300MA5GBA001A", "name": "深圳示例科技有限公司"}
    assert "bound_ids" not in li
    assert "hrp_no" not in li
    assert chan["cert_type"] == "HK_MO_RESIDENCE_PERMIT"
    assert chan["cert_no"] == "810000198803150123"
    assert chan["name"] == "陈大文"  # Traditional 陳大文 converted with OpenCC hk2s
    assert chan["hrp_no"] == "H12345678"
    assert chan["acr"] == "gd:loa:2"
    assert chan["bound_ids"] == [{"idp": "iamsmart", "id_type": "HKID", "id_no": "A123456(3)"}]
    assert lei["bound_ids"] == [{"idp": "one-account", "id_type": "MO_BIR", "id_no": "1234567(8)"}]
    assert chan["sub"] != li["sub"]
    assert chan["sub"] != lei["sub"]


async def test_a_persona_without_a_login_here_gets_the_picker(gateway: RunningGateway) -> None:
    f = flow(gateway, "guangdong")
    async with aiohttp.ClientSession() as session:
        response = await f.authorize(session, **f.params(login_hint="wong-siu-ming"))
    assert response.status == 200
    assert response.content_type == "text/html"


async def test_the_persona_picker_renders_and_its_post_logs_in(gateway: RunningGateway) -> None:
    f = flow(gateway, "macau")
    async with aiohttp.ClientSession() as session:
        async with session.get(f.provider.issuer + "/authorize", params=f.params()) as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            page = await response.text()
        handle = page.split('name="interaction" value="')[1].split('"')[0]
        form = {"interaction": handle, "persona": "lei-sio-meng"}
        url = f.provider.issuer + "/authorize"
        async with session.post(url, data=form, allow_redirects=False) as response:
            assert response.status == 302
            query = redirect_query(response)
        async with session.post(url, data=form, allow_redirects=False) as again:
            assert again.status == 400  # the page is single use
        status, tokens = await f.token(session, query["code"][0])
    assert '<html lang="en">' in page
    for lang in ("zh-Hant", "zh-Hans", "en"):
        assert f'lang="{lang}"' in page
    assert '<label for="persona-0">' in page
    assert "<legend>" in page
    assert "lei-sio-meng" in page
    assert "chan-tai-man" not in page
    assert query["state"] == [f.state]
    assert query["iss"] == [f.provider.issuer]
    assert status == 200
    claims = await _claims(gateway, f, tokens["id_token"])
    assert claims["bir_no"] == "1234567(8)"


async def _claims(gateway: RunningGateway, f: Flow, id_token: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        return await verified(session, f, id_token)


async def test_hk_pushed_authorization_request(gateway: RunningGateway) -> None:
    f = flow(gateway, "hk")
    async with aiohttp.ClientSession() as session:
        pushed = {**f.params(login_hint="leung-mei-ling"), **f.client_auth()}
        async with session.post(f.provider.issuer + "/par", data=pushed) as response:
            assert response.status == 201
            body = await response.json()
        assert body["expires_in"] == 60
        assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
        ref = {"client_id": f.client_id, "request_uri": body["request_uri"]}
        response = await f.authorize(session, **ref)
        assert response.status == 302
        query = redirect_query(response)
        assert query["iss"] == [f.provider.issuer]
        assert query["state"] == [f.state]
        replay = await f.authorize(session, **ref)
        assert replay.status == 400  # single use
        status, tokens = await f.token(session, query["code"][0])
        assert status == 200
        claims = await verified(session, f, tokens["id_token"])
    assert claims["idNo"] == {"Identification": "K246810", "CheckDigit": "7"}


async def test_par_needs_client_authentication(gateway: RunningGateway) -> None:
    f = flow(gateway, "hk")
    async with aiohttp.ClientSession() as session:
        async with session.post(f.provider.issuer + "/par", data=f.params()) as response:
            assert response.status == 401
            assert (await response.json())["error"] == "invalid_client"
        bad = {**f.params(code_challenge_method="plain"), **f.client_auth()}
        async with session.post(f.provider.issuer + "/par", data=bad) as response:
            assert response.status == 400
            assert (await response.json())["error"] == "invalid_request"


# -- refusals at the authorization endpoint -------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"nonce": None}, "invalid_request"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
async def test_bad_authorization_requests_redirect_back_with_error_state_and_iss(
    gateway: RunningGateway, changes: dict[str, Any], error: str
) -> None:
    f = flow(gateway, "hk")
    async with aiohttp.ClientSession() as session:
        response = await f.authorize(session, **f.params(login_hint="chan-tai-man", **changes))
    assert response.status == 302
    query = redirect_query(response)
    assert query["error"] == [error]
    assert query["state"] == [f.state]
    assert query["iss"] == [f.provider.issuer]
    assert "code" not in query


async def test_a_missing_state_is_refused(gateway: RunningGateway) -> None:
    f = flow(gateway, "macau")
    async with aiohttp.ClientSession() as session:
        response = await f.authorize(session, **f.params(login_hint="lei-sio-meng", state=None))
    query = redirect_query(response)
    assert query["error"] == ["invalid_request"]
    assert "code" not in query


@pytest.mark.parametrize(
    "redirect_uri",
    [
        REDIRECT_URI + "/",
        REDIRECT_URI + "?extra=1",
        REDIRECT_URI.replace("callback", "Callback"),
        REDIRECT_URI.upper(),
        "https://attacker.example/callback",
        None,
    ],
)
async def test_a_redirect_uri_not_exactly_registered_is_never_redirected_to(
    gateway: RunningGateway, redirect_uri: str | None
) -> None:
    f = flow(gateway, "hk")
    async with aiohttp.ClientSession() as session:
        response = await f.authorize(
            session, **f.params(login_hint="chan-tai-man", redirect_uri=redirect_uri)
        )
    assert response.status == 400
    assert "Location" not in response.headers
    assert response.content_type == "application/problem+json"


async def test_an_unknown_client_is_never_redirected_to(gateway: RunningGateway) -> None:
    f = Flow(providers(gateway).provider("guangdong"))  # not registered
    async with aiohttp.ClientSession() as session:
        response = await f.authorize(session, **f.params(login_hint="zhang-wei"))
    assert response.status == 400
    assert "Location" not in response.headers


# -- refusals at the token endpoint ---------------------------------------------------------


async def test_a_code_is_single_use(gateway: RunningGateway) -> None:
    f = flow(gateway, "guangdong")
    async with aiohttp.ClientSession() as session:
        code = await f.code(session, "zhang-wei")
        first, _ = await f.token(session, code)
        status, body = await f.token(session, code)
    assert first == 200
    assert (status, body["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(
    "changes",
    [
        {"code_verifier": secrets.token_urlsafe(48)},
        {"code_verifier": None},
        {"redirect_uri": REDIRECT_URI + "/"},
        {"code": "not-a-code"},
    ],
)
async def test_a_code_with_the_wrong_verifier_or_redirect_uri_is_refused(
    gateway: RunningGateway, changes: dict[str, Any]
) -> None:
    f = flow(gateway, "hk")
    async with aiohttp.ClientSession() as session:
        code = await f.code(session, "chan-tai-man")
        status, body = await f.token(session, **{"code": code, **changes})
        retry, _ = await f.token(session, code)
    assert status == 400
    assert body["error"] in ("invalid_grant", "invalid_request")
    assert "id_token" not in body
    assert retry == (200 if "code" in changes else 400)  # presenting a code burns it


async def test_a_code_is_bound_to_its_client(gateway: RunningGateway) -> None:
    f, other = flow(gateway, "hk"), flow(gateway, "hk")
    async with aiohttp.ClientSession() as session:
        code = await f.code(session, "chan-tai-man")
        other.verifier = f.verifier
        status, body = await other.token(session, code)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_client_assertions_that_must_be_refused(gateway: RunningGateway) -> None:
    f = flow(gateway, "macau")
    now = int(time.time())
    reused = f.assertion()
    hs256 = jwt.encode(
        {
            "iss": f.client_id,
            "sub": f.client_id,
            "aud": f.provider.issuer,
            "exp": now + 60,
            "jti": secrets.token_hex(8),
        },
        b"a-shared-secret-long-enough-for-hs256",
        algorithm="HS256",
        headers={"kid": "rp-1"},
    )
    stranger = Flow(f.provider, client_id=f.client_id)  # same id, a key never registered
    cases = {
        "wrong aud": f.assertion(aud="https://elsewhere.example"),
        "another provider": f.assertion(aud=providers(gateway).provider("hk").issuer),
        "too long-lived": f.assertion(exp=now + 600),
        "expired": f.assertion(exp=now - 60),
        "no exp": f.assertion(exp=None),
        "no jti": f.assertion(jti=None),
        "iss differs": f.assertion(iss="someone-else"),
        "HS256": hs256,
        "foreign key": stranger.assertion(),
    }
    async with aiohttp.ClientSession() as session:
        first, _ = await f.token(session, await f.code(session, "lei-sio-meng"), assertion=reused)
        results = {"reused jti": await f.token(session, "x", assertion=reused)}
        for name, assertion in cases.items():
            code = await f.code(session, "lei-sio-meng")
            results[name] = await f.token(session, code, assertion=assertion)
        token_url = await f.token(
            session,
            await f.code(session, "lei-sio-meng"),
            assertion=f.assertion(aud=f.provider.issuer + "/token"),
        )
    assert first == 200
    assert token_url[0] == 200  # the token endpoint URL is an accepted audience too
    refused = {name: result for name, result in results.items() if result[0] != 401}
    assert refused == {}
    assert {body["error"] for _, body in results.values()} == {"invalid_client"}


# -- the tamper seam ------------------------------------------------------------------------


async def _tampered_token(gateway: RunningGateway, name: str, persona: str, **faults: Any):
    f = flow(gateway, name)
    f.provider.tamper(**faults)
    async with aiohttp.ClientSession() as session:
        tokens = await f.login(session, persona)
        async with session.get(f.provider.issuer + "/jwks") as response:
            published = (await response.json())["keys"][0]
    return f, tokens["id_token"], published


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    header, payload, signature = token.split(".")
    pad = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))  # noqa: E731
    return (
        json.loads(pad(header)),
        json.loads(pad(payload)),
        pad(signature),
        (f"{header}.{payload}".encode()),
    )


async def test_signing_none_gives_an_unsigned_token(gateway: RunningGateway) -> None:
    f, token, _ = await _tampered_token(gateway, "hk", "chan-tai-man", signing="none")
    header, claims, signature, _ = _parts(token)
    assert header["alg"] == "none"
    assert signature == b""
    assert token.endswith(".")
    assert claims["nonce"] == f.nonce
    assert claims["idNo"]["Identification"] == "A123456"
    with pytest.raises(jwt.PyJWTError):
        async with aiohttp.ClientSession() as session:
            await verified(session, f, token)


@pytest.mark.parametrize("name", ["hk", "macau"])
async def test_hs256_keyed_with_the_public_key_pem(gateway: RunningGateway, name: str) -> None:
    persona = "chan-tai-man" if name == "hk" else "lei-sio-meng"
    _, token, published = await _tampered_token(gateway, name, persona, signing="hs256-public-key")
    header, _, signature, signing_input = _parts(token)
    pem = jwt.PyJWK(published, algorithm=ALGS[name]).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert header["alg"] == "HS256"
    assert header["kid"] == published["kid"]
    assert signature == hmac.new(pem, signing_input, hashlib.sha256).digest()


async def test_foreign_key_keeps_the_kid_but_does_not_verify(gateway: RunningGateway) -> None:
    f, token, published = await _tampered_token(
        gateway, "macau", "lei-sio-meng", signing="foreign-key"
    )
    header, claims, signature, _ = _parts(token)
    assert header == {"alg": "PS256", "kid": published["kid"], "typ": "JWT"}
    assert len(signature) == 256
    assert claims["bir_no"] == "1234567(8)"
    with pytest.raises(jwt.InvalidSignatureError):
        async with aiohttp.ClientSession() as session:
            await verified(session, f, token)


async def test_claim_and_header_overrides_are_signed_normally(gateway: RunningGateway) -> None:
    _f, token, published = await _tampered_token(
        gateway,
        "guangdong",
        "zhang-wei",
        id_token_claims={"aud": "someone-else", "nonce": None, "acr": "gd:loa:9"},
        id_token_header={"typ": None, "cty": "JWT"},
    )
    header, claims, _, _ = _parts(token)
    assert header == {"alg": "ES256", "kid": published["kid"], "cty": "JWT"}
    assert claims["aud"] == "someone-else"
    assert claims["acr"] == "gd:loa:9"
    assert "nonce" not in claims
    verified_claims = jwt.decode(
        token,
        jwt.PyJWK(published, algorithm="ES256"),
        algorithms=["ES256"],
        audience="someone-else",
    )
    assert verified_claims["cert_no"] == "440304198506120035"


async def test_authorization_response_faults_and_reset(gateway: RunningGateway) -> None:
    all_providers = providers(gateway)
    f = flow(gateway, "hk")
    all_providers.tamper(authorization_response={"iss": None, "state": "forged"})
    async with aiohttp.ClientSession() as session:
        spoilt = redirect_query(await f.authorize(session, **f.params(login_hint="chan-tai-man")))
        f.provider.tamper(authorization_response={"iss": "https://evil.example", "code": None})
        other = redirect_query(await f.authorize(session, **f.params(login_hint="chan-tai-man")))
        all_providers.tamper()
        clean = redirect_query(await f.authorize(session, **f.params(login_hint="chan-tai-man")))
    assert "iss" not in spoilt
    assert spoilt["state"] == ["forged"]
    assert spoilt["code"]
    assert other["iss"] == ["https://evil.example"]
    assert "code" not in other
    assert clean["iss"] == [f.provider.issuer]
    assert clean["state"] == [f.state]
    assert providers(gateway).provider("macau").faults.authorization_response == {}


def test_tamper_refuses_unknown_faults(gateway: RunningGateway) -> None:
    provider = providers(gateway).provider("hk")
    with pytest.raises(TypeError):
        provider.tamper(signature="none")
    with pytest.raises(ValueError, match="signing"):
        provider.tamper(signing="rot13")
    provider.tamper(signing="none")
    provider.tamper(id_token_claims={"acr": "x"})
    assert (provider.faults.signing, provider.faults.id_token_claims) == ("none", {"acr": "x"})
    provider.tamper()
    assert provider.faults.signing == "normal"
    assert provider.faults.id_token_claims == {}


async def test_userinfo_needs_a_valid_bearer_token(gateway: RunningGateway) -> None:
    url = providers(gateway).provider("hk").issuer + "/userinfo"
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic eDp5"}):
            async with session.get(url, headers=headers) as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_the_personas_route_names_the_providers(gateway: RunningGateway) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + "/sandbox/v1/personas") as response,
    ):
        items = {p["id"]: p for p in (await response.json())["items"]}
    assert items["chan-tai-man"]["providers"] == ["hk", "guangdong"]
    assert items["lei-sio-meng"]["providers"] == ["macau", "guangdong"]
    assert items["li-na"]["providers"] == ["guangdong"]
    assert items["ho-ka-yan"]["providers"] == ["hk"]
    assert items["leung-mei-ling"]["acts_for"] == ["chan-tai-man"]
    assert {"id", "jurisdiction", "names", "assurance"} <= set(items["zhang-wei"])
