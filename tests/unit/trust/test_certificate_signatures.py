"""E-certificates through the one strict JWS verifier: both forms verify with the issuer's
registered key and nothing else; a detached signature covers exactly the document and its
media type; RSA keys (HTTP signatures only) are never in a certificate key set."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from gateway.trust.e_certificates import (
    CertificateRefused,
    agency_jwks,
    decode_document,
    key_id,
    sign_certificate,
    sign_document,
    verify_document,
    verify_token,
)
from gateway.trust.jws import sign
from gateway.trust.keys import SigningKey, generate_private_key

NOW = datetime(2026, 9, 22, 2, 0, tzinfo=UTC)
CLAIMS = {"iss": "gd-hq-csb", "sub": "HKID:A1234563", "iat": int(NOW.timestamp()), "jti": "c1"}
PDF = b"%PDF-1.7\n%%EOF\n"


@pytest.fixture(params=["ed25519", "ecdsa-p256-sha256"])
def key(request: pytest.FixtureRequest) -> SigningKey:
    return SigningKey("gd-hq-csb-1", generate_private_key(request.param), request.param)


def test_a_certificate_jws_verifies_with_its_issuers_key(key: SigningKey) -> None:
    token = sign_certificate(key, CLAIMS)
    verified = verify_token(token, agency_jwks([key.public]), now=NOW)
    assert (verified.kid, verified.issuer, verified.subject) == (
        "gd-hq-csb-1",
        "gd-hq-csb",
        "HKID:A1234563",
    )
    assert key_id(token) == "gd-hq-csb-1"


def test_another_key_with_the_same_kid_is_refused(key: SigningKey) -> None:
    impostor = SigningKey(key.kid, generate_private_key(key.alg), key.alg)
    with pytest.raises(CertificateRefused) as refused:
        verify_token(sign_certificate(impostor, CLAIMS), agency_jwks([key.public]), now=NOW)
    assert refused.value.reason == "signature"


def test_another_token_type_is_not_a_certificate(key: SigningKey) -> None:
    receipt = sign(key, CLAIMS, typ="gba-receipt+jwt")
    with pytest.raises(CertificateRefused) as refused:
        verify_token(receipt, agency_jwks([key.public]), now=NOW)
    assert refused.value.reason == "typ"


def test_a_detached_signature_covers_the_document_and_its_media_type(key: SigningKey) -> None:
    jwks = agency_jwks([key.public])
    signature = sign_document(key, PDF, "application/pdf")
    assert signature.split(".")[1] == ""  # RFC 7515 appendix F: the payload is detached
    assert key_id(signature) == key.kid

    verified = verify_document(PDF, signature, jwks, now=NOW, media_type="application/pdf")
    assert verified.kid == key.kid

    with pytest.raises(CertificateRefused) as changed:
        verify_document(PDF + b" ", signature, jwks, now=NOW)
    assert changed.value.reason == "signature"
    with pytest.raises(CertificateRefused) as retyped:
        verify_document(PDF, signature, jwks, now=NOW, media_type="image/png")
    assert retyped.value.reason == "cty"


def test_a_detached_signature_with_a_payload_is_refused(key: SigningKey) -> None:
    head, _, tail = sign_document(key, PDF, "application/pdf").split(".")
    with pytest.raises(CertificateRefused) as refused:
        verify_document(PDF, f"{head}.eyJ4IjoxfQ.{tail}", agency_jwks([key.public]), now=NOW)
    assert refused.value.reason == "not-detached"


def test_rsa_keys_sign_http_messages_only() -> None:
    rsa = SigningKey("rsa-1", generate_private_key("rsa-pss-sha512"), "rsa-pss-sha512")
    assert agency_jwks([rsa.public]) == {"keys": []}


@pytest.mark.parametrize("text", [None, "", "!!!", "===="])
def test_a_document_must_be_base64(text: object) -> None:
    with pytest.raises(ValueError, match=r"base64|empty"):
        decode_document(text)


def test_a_document_in_either_base64_alphabet_decodes() -> None:
    data = bytes(range(250, 256)) * 3
    assert decode_document(base64.b64encode(data).decode()) == data
    assert decode_document(base64.urlsafe_b64encode(data).decode().rstrip("=")) == data
