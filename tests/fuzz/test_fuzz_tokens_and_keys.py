"""JWS receipts (gateway/trust/receipts.py), the broker's JOSE (gateway/identity/jose.py), JWKs
and agency registrations (gateway/trust/keys.py, registry.py) on any input.

A receipt or token that is not exactly what the gateway issues is refused with the one
documented error (``SignatureInvalidError``, ``JoseError``), never another exception; what
the gateway signs, with any claims, verifies back to those claims. A JWK is a usable public
key or a ``KeyMisuseError``; a registration of any shape is an agency with its problems
listed, never an exception (``keys`` that was not a list used to escape as a TypeError, a
500 at ``POST /sandbox/v1/agencies``). ``tests/unit/trust/test_receipt_attacks.py`` holds the
JWT attack checklist.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.domain.errors import SignatureInvalidError
from gateway.identity.jose import JoseError, sign_jwt, verify_jws
from gateway.trust.jws import JwsPolicy
from gateway.trust.keys import KeyMisuseError, SigningKey, generate_private_key, public_key_from_jwk
from gateway.trust.receipts import RECEIPT_TYP, JwsReceiptIssuer, verify_receipt
from gateway.trust.registry import registration
from tests.fuzz.conftest import examples

SEAL = SigningKey("seal-1", generate_private_key("ecdsa-p256-sha256"), "ecdsa-p256-sha256")
JWKS = {"keys": [SEAL.jwk()]}
ISSUER = JwsReceiptIssuer(SEAL)
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
ID_TOKEN = JwsPolicy("fuzz ID token", frozenset({None, "JWT"}), frozenset({"ES256"}))
ACCESS = JwsPolicy("fuzz access token", frozenset({"at+jwt"}), frozenset({"ES256"}))

json_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)
finite_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=10,
)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segment(value: Any) -> str:
    return b64(value if isinstance(value, bytes) else json.dumps(value).encode())


@st.composite
def compact_tokens(draw: st.DrawFn) -> str:
    """Three base64url segments: JSON (or any bytes) header and claims, any signature."""
    header = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "alg": st.sampled_from(["ES256", "EdDSA", "none", "HS256"]) | json_values,
                "kid": st.sampled_from([SEAL.kid, "other"]) | json_values,
                "typ": st.sampled_from([RECEIPT_TYP, "JWT", "at+jwt"]) | json_values,
                "crit": json_values,
                "jku": st.just("http://127.0.0.1/jwks"),
            },
        )
        | json_values
        | st.binary(max_size=20)
    )
    claims = draw(json_values | st.binary(max_size=20))
    signature = draw(st.binary(min_size=0, max_size=70))
    return f"{_segment(header)}.{_segment(claims)}.{b64(signature)}"


tokens = st.text(max_size=120) | compact_tokens()


@settings(max_examples=examples(300))
@given(token=tokens)
@example(token="a.b.c.d.e")  # a JWE shape
@example(token=f"{b64(b'[' * 900)}.e30.{b64(bytes(64))}")
def test_any_token_is_refused_as_a_receipt_with_the_one_error(token: str) -> None:
    with pytest.raises(SignatureInvalidError, match="the receipt does not verify"):
        verify_receipt(token, JWKS)


RESERVED = {"iss", "sub", "iat", "jti", "exp", "nbf", "aud"}


@settings(max_examples=examples(100))
@given(
    extra=st.dictionaries(
        st.text(min_size=1, max_size=8).filter(lambda name: name not in RESERVED),
        finite_json,
        max_size=4,
    ),
    sub=st.text(min_size=1, max_size=30),
)
def test_a_receipt_with_any_claims_verifies_back_to_them(extra: dict[str, Any], sub: str) -> None:
    claims = {"iss": "https://gateway.test", "sub": sub, "iat": int(time.time()), "jti": "r-1"}
    claims.update(extra)
    assert verify_receipt(ISSUER.issue(claims), JWKS) == claims


@settings(max_examples=examples(300))
@given(token=tokens | st.text(alphabet="abcXYZ019-_.=", max_size=60))
@example(token=f"{b64(b'[' * 9000)}.e30.c2ln")  # nested too deeply (was a RecursionError)
def test_any_token_is_refused_by_the_broker_with_a_jose_error(token: str) -> None:
    with pytest.raises(JoseError):
        verify_jws(token, JWKS, ID_TOKEN, now=NOW)


@settings(max_examples=examples(100))
@given(
    claims=st.dictionaries(
        st.text(max_size=8).filter(lambda name: name not in RESERVED), finite_json, max_size=5
    )
)
def test_what_the_broker_signs_verifies_with_its_claims(claims: dict[str, Any]) -> None:
    token = sign_jwt(SEAL, claims, typ="at+jwt")
    verified = verify_jws(token, JWKS, ACCESS, now=NOW)
    assert verified.claims == claims
    assert verified.header == {"alg": "ES256", "kid": SEAL.kid, "typ": "at+jwt"}


# --- JWKs and registrations ------------------------------------------------------------------

GENUINE = [
    SEAL.jwk(),
    SigningKey("ed-1", generate_private_key("ed25519"), "ed25519").jwk(),
]
B64URL = st.binary(max_size=40).map(b64) | st.text(max_size=12)
jwks = st.fixed_dictionaries(
    {},
    optional={
        "kty": st.sampled_from(["EC", "OKP", "RSA", "oct"]) | json_values,
        "crv": st.sampled_from(["P-256", "P-384", "Ed25519", "X25519"]) | json_values,
        "x": B64URL | json_values,
        "y": B64URL | json_values,
        "n": B64URL,
        "e": st.sampled_from(["AQAB", "Aw", ""]) | B64URL,
        "d": B64URL,
        "k": B64URL,
        "kid": st.text(max_size=10) | json_values,
    },
) | st.builds(
    lambda genuine, changes: {**genuine, **changes},
    st.sampled_from(GENUINE),
    st.dictionaries(st.sampled_from(["x", "y", "crv", "kty", "d"]), B64URL, max_size=2),
)


@settings(max_examples=examples(300))
@given(jwk=jwks)
def test_any_jwk_is_a_public_key_or_a_key_misuse_error(jwk: dict[str, Any]) -> None:
    try:
        public_key_from_jwk(jwk)
    except KeyMisuseError:
        return
    assert jwk.get("kty") in ("EC", "OKP", "RSA")
    assert not {"d", "k"} & set(jwk)


registration_values = st.fixed_dictionaries(
    {},
    optional={
        "agency_id": st.sampled_from(["tester-1", "Bad Id", ""]) | json_values,
        "jurisdiction": st.sampled_from(["HK", "mo", "GD", "TW"]) | json_values,
        "names": st.dictionaries(st.text(max_size=5), st.text(max_size=5)) | json_values,
        "matters": st.lists(st.text(max_size=5), max_size=2) | json_values,
        "endpoint": st.sampled_from(["https://example.test/in", "ftp://x"]) | json_values,
        "keys": st.lists(
            jwks.map(lambda jwk: {"jwk": jwk})
            | st.fixed_dictionaries(
                {"jwk": jwks},
                optional={
                    "kid": json_values,
                    "not_before": st.sampled_from(["2026-01-01T00:00:00+00:00", "2026-01-01"])
                    | json_values,
                    "not_after": json_values,
                    "revoked_at": json_values,
                },
            )
            | json_values,
            max_size=3,
        )
        | json_values,
    },
)


@settings(max_examples=examples(200))
@given(spec=registration_values)
@example(spec={"agency_id": "tester-1", "jurisdiction": "HK", "keys": 5})  # was a TypeError
@example(spec={"agency_id": "tester-1", "jurisdiction": "HK", "keys": True})
@example(spec={"agency_id": "tester-1", "jurisdiction": "HK", "keys": "abc"})
def test_any_registration_is_an_agency_with_its_problems_listed(spec: dict[str, Any]) -> None:
    found = registration(spec, now=NOW, sandbox=True)
    codes = {p.code for p in found.problems}
    assert codes <= {"wrong_type", "invalid_key", "untrusted_certificate"}
    if "keys" in spec and not isinstance(spec["keys"], list) and spec["keys"]:
        assert ("/keys", "wrong_type") in {(p.pointer, p.code) for p in found.problems}
    for key in found.keys:
        public_key_from_jwk(key.jwk)  # every key kept is usable
