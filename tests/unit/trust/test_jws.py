"""The one JWS verifier's own rules: what a policy may declare, RSA, audience, issuer and age.

The attacks run against every caller in ``test_jws_every_caller.py``.
"""

from __future__ import annotations

import base64
import json
import os
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.trust.jws import JwsPolicy, JwsRefused, sign, unverified, verify
from gateway.trust.keys import KeyMisuseError, SigningKey, generate_private_key, public_jwk

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
AT = int(NOW.timestamp())
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_JWKS = {"keys": [{**public_jwk(RSA_KEY.public_key(), kid="r1"), "alg": None}]}
RSA_JWKS["keys"][0].pop("alg")
EC = SigningKey("e1", generate_private_key("ecdsa-p256-sha256"), "ecdsa-p256-sha256")
BASE = JwsPolicy(
    "test", frozenset({None, "JWT"}), frozenset({"ES256", "PS256", "RS256"}), key_alg_required=False
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def reason(token: str, jwks: dict[str, Any], policy: JwsPolicy = BASE) -> str:
    with pytest.raises(JwsRefused) as refused:
        verify(token, jwks, policy, now=NOW)
    assert refused.value.reason.replace("-", "").isalnum()  # a code, never token content
    return refused.value.reason


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"algs": frozenset()}, "algorithms"),
        ({"algs": frozenset({"HS256"})}, "algorithms"),
        ({"algs": frozenset({"none"})}, "algorithms"),
        ({"extra_header": frozenset({"crit"})}, "extra_header"),
        ({"extra_header": frozenset({"b64"})}, "extra_header"),
        ({"extra_header": frozenset({"jku"})}, "extra_header"),
        ({"extra_header": frozenset({"jwk"})}, "extra_header"),
        ({"extra_header": frozenset({"kid"})}, "extra_header"),
    ],
)
def test_a_policy_cannot_allow_what_no_caller_may(changes: dict[str, Any], message: str) -> None:
    fields = {"name": "bad", "typs": frozenset({"JWT"}), "algs": frozenset({"ES256"}), **changes}
    with pytest.raises(ValueError, match=message):
        JwsPolicy(**fields)


@pytest.mark.parametrize("alg", ["PS256", "RS256"])
def test_rsa_tokens_verify_under_their_algorithm_only(alg: str) -> None:
    token = jwt.encode({"sub": "u"}, RSA_KEY, algorithm=alg, headers={"kid": "r1"})
    assert verify(token, RSA_JWKS, BASE, now=NOW).claims == {"sub": "u"}
    other = "RS256" if alg == "PS256" else "PS256"
    _, payload, signature = token.split(".")
    relabelled = jwt.encode({"sub": "u"}, RSA_KEY, algorithm=other, headers={"kid": "r1"})
    assert reason(f"{relabelled.split('.')[0]}.{payload}.{signature}", RSA_JWKS) == "signature"
    only_ec = JwsPolicy("ec", BASE.typs, frozenset({"ES256"}))
    assert reason(token, RSA_JWKS, only_ec) == "alg"


def test_an_rsa_signature_of_the_wrong_length_is_refused() -> None:
    token = jwt.encode({"sub": "u"}, RSA_KEY, algorithm="PS256", headers={"kid": "r1"})
    header, payload, signature = token.split(".")
    shorter = b64(base64.urlsafe_b64decode(signature + "==")[:-3])
    assert reason(f"{header}.{payload}.{shorter}", RSA_JWKS) == "signature-length"


def test_a_short_rsa_key_is_refused() -> None:
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - on purpose
    jwks = {"keys": [{**public_jwk(short.public_key(), kid="r1"), "alg": "PS256"}]}
    header = b64(json.dumps({"alg": "PS256", "kid": "r1"}).encode())
    token = f"{header}.{b64(b'{}')}.{b64(os.urandom(128))}"
    assert reason(token, jwks) == "key-malformed"


def test_header_hints_are_tolerated_only_where_declared() -> None:
    token = jwt.encode(
        {"sub": "u"}, EC.private_key, algorithm="ES256", headers={"kid": "e1", "x5t": "AAAA"}
    )
    jwks = {"keys": [EC.jwk()]}
    assert reason(token, jwks) == "header-parameters"
    hinted = JwsPolicy("hinted", BASE.typs, BASE.algs, extra_header=frozenset({"x5t"}))
    assert verify(token, jwks, hinted, now=NOW).claims == {"sub": "u"}


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"iss": "https://a", "aud": "gw", "iat": AT}, None),
        ({"iss": "https://a", "aud": ["gw"], "iat": AT}, None),
        ({"iss": "https://b", "aud": "gw", "iat": AT}, "issuer"),
        ({"iss": "https://a", "aud": ["gw", "evil"], "iat": AT}, "audience"),
        ({"iss": "https://a", "aud": "evil", "iat": AT}, "audience"),
        ({"iss": "https://a", "aud": [1], "iat": AT}, "claim-type"),
        ({"iss": "https://a", "aud": "gw", "iat": AT - 601}, "iat-too-old"),
        ({"iss": "https://a", "aud": "gw", "iat": AT, "exp": AT - 61}, "expired"),
        ({"iss": "https://a", "aud": "gw", "iat": AT, "exp": AT - 59}, None),
    ],
)
def test_issuer_audience_and_age_when_the_policy_names_them(
    claims: dict[str, Any], expected: str | None
) -> None:
    policy = JwsPolicy(
        "strict", BASE.typs, BASE.algs, issuer="https://a", audience="gw", max_age=600
    )
    token = sign(EC, claims, typ="JWT")
    jwks = {"keys": [EC.jwk()]}
    if expected is None:
        assert verify(token, jwks, policy, now=NOW).claims == claims
    else:
        assert reason(token, jwks, policy) == expected


def test_sign_writes_exactly_alg_kid_typ_and_refuses_rsa_keys() -> None:
    token = sign(EC, {"sub": "u"}, typ="x+jwt")
    assert unverified(token).header == {"alg": "ES256", "kid": "e1", "typ": "x+jwt"}
    eddsa = SigningKey("d1", generate_private_key("ed25519"), "ed25519")
    assert unverified(sign(eddsa, {}, typ="x+jwt")).header["alg"] == "EdDSA"
    rsa_key = SigningKey("r", generate_private_key("rsa-pss-sha512"), "rsa-pss-sha512")
    with pytest.raises(KeyMisuseError):
        sign(rsa_key, {}, typ="x+jwt")
