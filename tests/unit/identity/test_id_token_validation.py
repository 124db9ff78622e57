"""Upstream ID tokens: every check of identity_security.md §3.3 refuses its attack."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from gateway.domain.errors import LoginFailedError
from gateway.identity.discovery import ProviderConfig, ProviderMetadata
from gateway.identity.id_tokens import UnknownKeyError, verify_id_token

ISSUER = "https://idp.example/hk"
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
AT = int(NOW.timestamp())
KEY = ec.generate_private_key(ec.SECP256R1())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: Any, alg: str, kid: str) -> dict[str, Any]:
    algorithm = jwt.get_algorithm_by_name(alg)
    return {**algorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid, "alg": alg}


METADATA = ProviderMetadata(
    issuer=ISSUER,
    authorization_endpoint=ISSUER + "/authorize",
    token_endpoint=ISSUER + "/token",
    jwks={"keys": [_jwk(KEY, "ES256", "k1"), _jwk(RSA_KEY, "PS256", "r1")]},
)
CONFIG = ProviderConfig("hk", ISSUER + "/.well-known/openid-configuration", "gw", ("ES256",))


def claims(**changes: Any) -> dict[str, Any]:
    out = {
        "iss": ISSUER,
        "sub": "u1",
        "aud": "gw",
        "exp": AT + 300,
        "iat": AT,
        "nonce": "n-1",
        "acr": "iamsmart",
    }
    out.update(changes)
    return {k: v for k, v in out.items() if v is not None}


def sign(body: dict[str, Any], *, key: Any = KEY, alg: str = "ES256", **header: Any) -> str:
    return jwt.encode(body, key, algorithm=alg, headers={"kid": "k1", **header})


def check(token: str, config: ProviderConfig = CONFIG) -> dict[str, Any]:
    return verify_id_token(token, config=config, metadata=METADATA, nonce="n-1", now=NOW)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_good_id_token_passes() -> None:
    assert check(sign(claims()))["sub"] == "u1"
    assert check(sign(claims(aud=["gw"])))["sub"] == "u1"


@pytest.mark.parametrize("alg", ["none", "None", "nOnE"])
def test_unsigned_tokens_are_refused(alg: str) -> None:
    header = b64(json.dumps({"alg": alg, "kid": "k1", "typ": "JWT"}).encode())
    token = f"{header}.{b64(json.dumps(claims()).encode())}."
    with pytest.raises(LoginFailedError):
        check(token)


@pytest.mark.parametrize(
    "encoding",
    [
        serialization.Encoding.PEM,
        serialization.Encoding.DER,
        serialization.Encoding.OpenSSH,
    ],
)
def test_hs256_keyed_with_the_public_key_is_refused(encoding: serialization.Encoding) -> None:
    fmt = (
        serialization.PublicFormat.OpenSSH
        if encoding is serialization.Encoding.OpenSSH
        else serialization.PublicFormat.SubjectPublicKeyInfo
    )
    secret = KEY.public_key().public_bytes(encoding, fmt)
    header = b64(json.dumps({"alg": "HS256", "kid": "k1"}).encode())
    payload = b64(json.dumps(claims()).encode())
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    with pytest.raises(LoginFailedError, match="algorithm"):
        check(f"{header}.{payload}.{b64(mac)}")


def test_an_algorithm_off_the_providers_list_is_refused_even_with_a_good_key() -> None:
    token = jwt.encode(claims(), RSA_KEY, algorithm="PS256", headers={"kid": "r1"})
    with pytest.raises(LoginFailedError, match="algorithm"):
        check(token)
    both = ProviderConfig(CONFIG.name, CONFIG.discovery_url, "gw", ("ES256", "PS256"))
    assert check(token, both)["sub"] == "u1"


def test_a_key_of_another_type_under_an_allowed_algorithm_is_refused() -> None:
    both = ProviderConfig(CONFIG.name, CONFIG.discovery_url, "gw", ("ES256", "PS256"))
    token = jwt.encode(claims(), RSA_KEY, algorithm="PS256", headers={"kid": "k1"})
    with pytest.raises(LoginFailedError):
        check(token, both)


@pytest.mark.parametrize("kid", ["nope", "../../dev/null", "' OR 1=1 --", "*"])
def test_unknown_or_injected_kids_are_refused(kid: str) -> None:
    # the relying party refetches the key set once on this signal, then refuses the login
    with pytest.raises(UnknownKeyError, match="kid"):
        check(jwt.encode(claims(), KEY, algorithm="ES256", headers={"kid": kid}))


def test_a_token_without_kid_is_refused() -> None:
    with pytest.raises(LoginFailedError, match="kid"):
        check(jwt.encode(claims(), KEY, algorithm="ES256"))


def test_a_foreign_key_with_the_right_kid_does_not_verify() -> None:
    foreign = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(LoginFailedError, match="signature"):
        check(sign(claims(), key=foreign))


@pytest.mark.parametrize(
    "header",
    [
        {"jku": "https://attacker.example/jwks"},
        {"x5u": "http://169.254.169.254/"},
        {"jwk": {"kty": "EC"}},
        {"crit": ["x-unknown"], "x-unknown": 1},
        {"typ": "at+jwt"},
        {"typ": "dpop+jwt"},
    ],
)
def test_header_parameters_the_gateway_never_follows_are_refused(header: dict[str, Any]) -> None:
    with pytest.raises(LoginFailedError):
        check(sign(claims(), **header))


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"iss": "https://idp.example/macau"}, "issuer"),
        ({"aud": "someone-else"}, "aud"),
        ({"aud": ["gw", "attacker"]}, "aud"),
        ({"azp": "attacker"}, "azp"),
        ({"exp": AT - 120}, "expired"),
        ({"exp": None}, "exp"),
        ({"iat": AT + 600}, "iat"),
        ({"iat": AT - 3600}, "iat"),
        ({"nonce": "n-2"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"sub": None}, "sub"),
        ({"sub": ""}, "subject"),
        ({"nbf": AT + 600}, "nbf"),
    ],
)
def test_each_claim_check_refuses(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(LoginFailedError, match=reason):
        check(sign(claims(**change)))


def test_duplicate_claim_names_are_refused() -> None:
    header = b64(json.dumps({"alg": "ES256", "kid": "k1"}).encode())
    body = json.dumps(claims(sub="u2"))
    payload = b64(('{"sub":"u1",' + body[1:]).encode())  # the signed claims name sub twice
    signature = KEY.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
    r, s = decode_dss_signature(signature)
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    with pytest.raises(LoginFailedError, match="repeats a member name"):
        check(f"{header}.{payload}.{b64(raw)}")


def test_an_oversized_token_is_refused_before_parsing() -> None:
    with pytest.raises(LoginFailedError, match="too large"):
        check("a" * 20000 + ".b.c")
