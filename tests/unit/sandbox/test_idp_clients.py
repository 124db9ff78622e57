"""Registering a relying party with a sandbox provider, and the keys the provider signs with."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from gateway.sandbox.idp import SandboxIdentityProviders
from gateway.sandbox.idp.keys import ProviderKey, sign_compact

REDIRECT = ["https://rp.example/callback"]


class FixedClock:
    def now(self) -> datetime:
        return datetime(2025, 1, 1, tzinfo=UTC)


def _providers() -> SandboxIdentityProviders:
    return SandboxIdentityProviders("http://127.0.0.1:8080", FixedClock())


def _jwk(private: Any, alg: str) -> dict[str, Any]:
    return {**jwt.get_algorithm_by_name(alg).to_jwk(private.public_key(), as_dict=True), "kid": "k"}


def _weak_rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(65537, 1024)  # noqa: S505 (a key the provider must refuse)


def test_names_and_issuers() -> None:
    idps = _providers()
    assert idps.names == ("hk", "macau", "guangdong")  # each registered jurisdiction's
    assert idps.provider("macau").issuer == "http://127.0.0.1:8080/sandbox/idp/macau"
    with pytest.raises(KeyError):
        idps.provider("taiwan")


@pytest.mark.parametrize(
    ("private", "alg"),
    [
        (ec.generate_private_key(ec.SECP256R1()), "ES256"),
        (ed25519.Ed25519PrivateKey.generate(), "EdDSA"),
        (rsa.generate_private_key(public_exponent=65537, key_size=2048), "PS256"),
    ],
)
def test_public_keys_of_the_three_algorithms_are_accepted(private: Any, alg: str) -> None:
    provider = _providers().provider("hk")
    provider.register_client("rp", jwks={"keys": [_jwk(private, alg)]}, redirect_uris=REDIRECT)
    assert provider.clients["rp"].redirect_uris == tuple(REDIRECT)


@pytest.mark.parametrize(
    ("jwks", "redirect_uris"),
    [
        ({"keys": []}, REDIRECT),
        (
            {"keys": [{**_jwk(ec.generate_private_key(ec.SECP256R1()), "ES256"), "d": "x"}]},
            REDIRECT,
        ),
        ({"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "k"}]}, REDIRECT),
        ({"keys": [_jwk(ec.generate_private_key(ec.SECP384R1()), "ES384")]}, REDIRECT),
        ({"keys": [_jwk(_weak_rsa(), "PS256")]}, REDIRECT),
        (
            {"keys": [{**_jwk(ec.generate_private_key(ec.SECP256R1()), "ES256"), "alg": "HS256"}]},
            REDIRECT,
        ),
        ({"keys": [_jwk(ec.generate_private_key(ec.SECP256R1()), "ES256")]}, []),
        ({"keys": [_jwk(ec.generate_private_key(ec.SECP256R1()), "ES256")]}, ["/relative"]),
        ({"keys": [_jwk(ec.generate_private_key(ec.SECP256R1()), "ES256")]}, ["https://a/#f"]),
    ],
)
def test_bad_registrations_are_refused(jwks: dict[str, Any], redirect_uris: list[str]) -> None:
    provider = _providers().provider("macau")
    with pytest.raises(ValueError, match=r"jwks|key|redirect_uris"):
        provider.register_client("rp", jwks=jwks, redirect_uris=redirect_uris)
    assert provider.clients == {}


@pytest.mark.parametrize("alg", ["ES256", "PS256"])
def test_provider_keys_sign_verifiable_tokens_and_publish_only_public_parts(alg: str) -> None:
    key = ProviderKey.generate(alg, "test")
    jwk = key.public_jwk()
    assert jwk["kid"] == key.kid
    assert jwk["alg"] == alg
    assert jwk["use"] == "sig"
    assert not {"d", "p", "q"} & set(jwk)
    token = sign_compact(key, {"sub": "x"})
    assert jwt.get_unverified_header(token) == {"alg": alg, "kid": key.kid, "typ": "JWT"}
    assert jwt.decode(token, jwt.PyJWK(jwk), algorithms=[alg]) == {"sub": "x"}
