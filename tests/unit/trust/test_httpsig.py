"""RFC 9421 HTTP Message Signatures: published vectors, round trips and every refusal."""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from http_sfv import Dictionary, InnerList, Item, Token

from gateway.domain.errors import (
    DigestMismatchError,
    SignatureInvalidError,
    SignatureMissingError,
    UnknownKeyError,
)
from gateway.trust.digest import content_digest, verify_content_digest
from gateway.trust.httpsig import (
    Component,
    HttpMessage,
    SignatureParams,
    VerifiedSignature,
    VerifyPolicy,
    components,
    sign,
    signature_base,
    verify,
)
from gateway.trust.httpsig_components import ComponentError, component_value
from gateway.trust.keys import (
    PublicKey,
    SigningKey,
    VerificationKey,
    alg_for_public_key,
    generate_private_key,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "rfc9421"
ALGS = ("ed25519", "ecdsa-p256-sha256", "rsa-pss-sha512")

# ---------------------------------------------------------------------------
# RFC 9421 Appendix B.2: the test request and response, and the published signatures
# ---------------------------------------------------------------------------

RFC_CREATED = 1618884473
RFC_NOW = datetime.fromtimestamp(RFC_CREATED, UTC)
REQUEST_DIGEST = (
    "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX"
    "+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
)
RESPONSE_DIGEST = (
    "sha-512=:mEWXIS7MaLRuGgxOBdODa3xqM1XdEvxoYhvlCFJ4"
    "1QJgJc4GTsPp29l5oGX69wWdXymyU0rjJuahq4l5aGgfLQ==:"
)
RFC_REQUEST = HttpMessage.request(
    "POST",
    "https://example.com/foo?param=Value&Pet=dog",
    [
        ("Host", "example.com"),
        ("Date", "Tue, 20 Apr 2021 02:07:55 GMT"),
        ("Content-Type", "application/json"),
        ("Content-Digest", REQUEST_DIGEST),
        ("Content-Length", "18"),
    ],
)
RFC_RESPONSE = HttpMessage.response(
    200,
    [
        ("Date", "Tue, 20 Apr 2021 02:07:56 GMT"),
        ("Content-Type", "application/json"),
        ("Content-Digest", RESPONSE_DIGEST),
        ("Content-Length", "23"),
    ],
)

B21_INPUT = '();created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd"'
B21_BASE = (
    '"@signature-params": ();created=1618884473;keyid="test-key-rsa-pss";'
    'nonce="b3k2pp5k7z-50gnwp.yemd"'
)
B21_SIGNATURE = (
    "d2pmTvmbncD3xQm8E9ZV2828BjQWGgiwAaw5bAkgibUopemLJcWDy/lkbbHAve4cRAtx31Iq786U7it++wgGxbtRxf8U"
    "dx7zFZsckzXaJMkA7ChG52eSkFxykJeNqsrWH5S+oxNFlD4dzVuwe8DhTSja8xxbR/Z2cOGdCbzR72rgFWhzx2VjBqJz"
    "sPLMIQKhO4DGezXehhWwE56YCE+O6c0mKZsfxVrogUvA4HELjVKWmAvtl6UnCh8jYzuVG5WSb/QEVPnP5TmcAnLH1g+s"
    "++v6d4s8m0gCw1fV5/SITLq9mhho8K3+7EPYTU8IU1bLhdxO5Nyt8C8ssinQ98Xw9Q=="
)
B22_INPUT = (
    '("@authority" "content-digest" "@query-param";name="Pet");created=1618884473;'
    'keyid="test-key-rsa-pss";tag="header-example"'
)
B22_BASE = "\n".join(
    [
        '"@authority": example.com',
        f'"content-digest": {REQUEST_DIGEST}',
        '"@query-param";name="Pet": dog',
        f'"@signature-params": {B22_INPUT}',
    ]
)
B22_SIGNATURE = (
    "LjbtqUbfmvjj5C5kr1Ugj4PmLYvx9wVjZvD9GsTT4F7GrcQEdJzgI9qHxICagShLRiLMlAJjtq6N4CDfKtjvuJyE5qH7"
    "KT8UCMkSowOB4+ECxCmT8rtAmj/0PIXxi0A0nxKyB09RNrCQibbUjsLS/2YyFYXEu4TRJQzRw1rLEuEfY17SARYhpTla"
    "qwZVtR8NV7+4UKkjqpcAoFqWFQh62s7Cl+H2fjBSpqfZUJcsIk4N6wiKYd4je2U/lankenQ99PZfB4jY3I5rSV2DSBVk"
    "SFsURIjYErOs0tFTQosMTAoxk//0RoKUqiYY8Bh0aaUEb0rQl3/XaVe4bXTugEjHSw=="
)
B23_INPUT = (
    '("date" "@method" "@path" "@query" "@authority" "content-type" "content-digest" '
    '"content-length");created=1618884473;keyid="test-key-rsa-pss"'
)
B23_BASE = "\n".join(
    [
        '"date": Tue, 20 Apr 2021 02:07:55 GMT',
        '"@method": POST',
        '"@path": /foo',
        '"@query": ?param=Value&Pet=dog',
        '"@authority": example.com',
        '"content-type": application/json',
        f'"content-digest": {REQUEST_DIGEST}',
        '"content-length": 18',
        f'"@signature-params": {B23_INPUT}',
    ]
)
B23_SIGNATURE = (
    "bbN8oArOxYoyylQQUU6QYwrTuaxLwjAC9fbY2F6SVWvh0yBiMIRGOnMYwZ/5MR6fb0Kh1rIRASVxFkeGt683+qRpRRU5"
    "p2voTp768ZrCUb38K0fUxN0O0iC59DzYx8DFll5GmydPxSmme9v6ULbMFkl+V5B1TP/yPViV7KsLNmvKiLJH1pFkh/aY"
    "A2HXXZzNBXmIkoQoLd7YfW91kE9o/CCoC1xMy7JA1ipwvKvfrs65ldmlu9bpG6A9BmzhuzF8Eim5f8ui9eH8LZH896+Q"
    "IF61ka39VBrohr9iyMUJpvRX2Zbhl5ZJzSRxpJyoEZAFL2FUo5fTIztsDZKEgM4cUA=="
)
B24_INPUT = (
    '("@status" "content-type" "content-digest" "content-length");created=1618884473;'
    'keyid="test-key-ecc-p256"'
)
B24_BASE = "\n".join(
    [
        '"@status": 200',
        '"content-type": application/json',
        f'"content-digest": {RESPONSE_DIGEST}',
        '"content-length": 23',
        f'"@signature-params": {B24_INPUT}',
    ]
)
B24_SIGNATURE = (
    "wNmSUAhwb5LxtOtOpNa6W5xj067m5hFrj0XQ4fvpaCLx0NKocgPquLgyahnzDnDAUy5eCdlYUEkLIj+32oiasw=="
)
B26_INPUT = (
    '("date" "@method" "@path" "@authority" "content-type" "content-length");'
    'created=1618884473;keyid="test-key-ed25519"'
)
B26_BASE = "\n".join(
    [
        '"date": Tue, 20 Apr 2021 02:07:55 GMT',
        '"@method": POST',
        '"@path": /foo',
        '"@authority": example.com',
        '"content-type": application/json',
        '"content-length": 18',
        f'"@signature-params": {B26_INPUT}',
    ]
)
B26_SIGNATURE = (
    "wqcAqbmYJ2ji2glfAMaRy4gruYYnx2nEFN2HN6jrnDnQCK1u02Gb04v9EDgwUPiu4A0w6vuQv5lIp5WPpBKRCw=="
)


def _rfc_public(name: str) -> VerificationKey:
    public = serialization.load_pem_public_key((FIXTURES / f"{name}.pub.pem").read_bytes())
    assert isinstance(public, PublicKey)
    return VerificationKey(
        kid=name, owner="rfc9421", public_key=public, alg=alg_for_public_key(public)
    )


RFC_KEYS = {
    name: _rfc_public(name)
    for name in ("test-key-ed25519", "test-key-ecc-p256", "test-key-rsa-pss")
}


def _resolver(keys: dict[str, VerificationKey]) -> Callable[[str], VerificationKey]:
    def resolve(keyid: str) -> VerificationKey:
        try:
            return keys[keyid]
        except KeyError:
            raise UnknownKeyError(f"unknown key {keyid!r}") from None

    return resolve


def _rfc_policy(label: str, tag: str | None = None) -> VerifyPolicy:
    return VerifyPolicy(required_components=(), label=label, tag=tag, require_nonce=False)


def _with_signature(
    message: HttpMessage, label: str, signature_input: str, signature: str
) -> HttpMessage:
    return message.with_headers(
        {"Signature-Input": f"{label}={signature_input}", "Signature": f"{label}=:{signature}:"}
    )


def _rfc_base(message: HttpMessage, signature_input: str) -> str:
    parsed = Dictionary()
    parsed.parse(f"x={signature_input}".encode())
    inner = parsed["x"]
    covered = tuple(Component.from_item(item) for item in inner)
    return signature_base(covered, inner, message)


@pytest.mark.parametrize(
    ("label", "message", "signature_input", "expected_base", "signature", "keyid", "tag"),
    [
        ("sig-b21", RFC_REQUEST, B21_INPUT, B21_BASE, B21_SIGNATURE, "test-key-rsa-pss", None),
        (
            "sig-b22",
            RFC_REQUEST,
            B22_INPUT,
            B22_BASE,
            B22_SIGNATURE,
            "test-key-rsa-pss",
            "header-example",
        ),
        ("sig-b23", RFC_REQUEST, B23_INPUT, B23_BASE, B23_SIGNATURE, "test-key-rsa-pss", None),
        ("sig-b24", RFC_RESPONSE, B24_INPUT, B24_BASE, B24_SIGNATURE, "test-key-ecc-p256", None),
        ("sig-b26", RFC_REQUEST, B26_INPUT, B26_BASE, B26_SIGNATURE, "test-key-ed25519", None),
    ],
)
def test_rfc9421_appendix_b_vectors(
    label: str,
    message: HttpMessage,
    signature_input: str,
    expected_base: str,
    signature: str,
    keyid: str,
    tag: str | None,
) -> None:
    assert _rfc_base(message, signature_input) == expected_base
    signed = _with_signature(message, label, signature_input, signature)
    result = verify(
        signed, resolve_key=_resolver(RFC_KEYS), policy=_rfc_policy(label, tag), now=RFC_NOW
    )
    assert result.label == label
    assert result.keyid == keyid
    assert result.key is RFC_KEYS[keyid]
    assert result.created == RFC_CREATED
    assert result.signature == base64.b64decode(signature)
    assert result.tag == tag


@pytest.mark.parametrize(
    ("label", "message", "signature_input", "signature"),
    [
        ("sig-b23", RFC_REQUEST, B23_INPUT, B23_SIGNATURE),
        ("sig-b24", RFC_RESPONSE, B24_INPUT, B24_SIGNATURE),
        ("sig-b26", RFC_REQUEST, B26_INPUT, B26_SIGNATURE),
    ],
)
def test_rfc9421_vectors_fail_once_a_covered_value_changes(
    label: str, message: HttpMessage, signature_input: str, signature: str
) -> None:
    tampered = message.with_headers({"Content-Type": "application/xml"})
    signed = _with_signature(tampered, label, signature_input, signature)
    with pytest.raises(SignatureInvalidError, match="does not verify"):
        verify(signed, resolve_key=_resolver(RFC_KEYS), policy=_rfc_policy(label), now=RFC_NOW)


# RFC 9421 Appendix B.1.4 publishes this Ed25519 test key so that implementations can
# reproduce B.2.6 exactly. It is a public test vector, not a secret; kept here as its raw
# 32 bytes rather than as a key file, because no private key file is ever committed.
RFC_TEST_ED25519 = bytes.fromhex("9f8362f87a484a954e6e740c5b4c0e84229139a20aa8ab56ff66586f6a7d29c5")


def test_rfc9421_b26_ed25519_signature_is_reproduced_byte_for_byte() -> None:
    private = ed25519.Ed25519PrivateKey.from_private_bytes(RFC_TEST_ED25519)
    published = serialization.load_pem_public_key(
        (FIXTURES / "test-key-ed25519.pub.pem").read_bytes()
    )
    assert isinstance(published, ed25519.Ed25519PublicKey)
    assert private.public_key().public_bytes_raw() == published.public_bytes_raw()
    key = SigningKey("test-key-ed25519", private, "ed25519")
    params = SignatureParams(
        components=components(
            "date", "@method", "@path", "@authority", "content-type", "content-length"
        ),
        created=RFC_CREATED,
        keyid="test-key-ed25519",
    )
    assert signature_base(params.components, params.inner_list(), RFC_REQUEST) == B26_BASE
    headers = sign(RFC_REQUEST, key, params, label="sig-b26")
    assert headers == {
        "Signature-Input": f"sig-b26={B26_INPUT}",
        "Signature": f"sig-b26=:{B26_SIGNATURE}:",
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            SignatureParams(
                (), created=RFC_CREATED, keyid="test-key-rsa-pss", nonce="b3k2pp5k7z-50gnwp.yemd"
            ),
            B21_INPUT,
        ),
        (
            SignatureParams(
                components("@authority", "content-digest", '"@query-param";name="Pet"'),
                created=RFC_CREATED,
                keyid="test-key-rsa-pss",
                tag="header-example",
            ),
            B22_INPUT,
        ),
    ],
)
def test_signature_params_serialize_like_the_rfc(params: SignatureParams, expected: str) -> None:
    assert str(params.inner_list()) == expected


# ---------------------------------------------------------------------------
# Component derivation (RFC 9421 §2.1, §2.2)
# ---------------------------------------------------------------------------


def _value(spec: str, message: HttpMessage, request: HttpMessage | None = None) -> str:
    return component_value(Component.parse(spec), message, request)


@pytest.mark.parametrize(
    ("uri", "spec", "expected"),
    [
        (
            "https://www.example.com/path?param=value",
            "@target-uri",
            "https://www.example.com/path?param=value",
        ),
        ("https://WWW.Example.com/path", "@authority", "www.example.com"),
        ("https://example.com:443/path", "@authority", "example.com"),
        ("http://example.com:80/path", "@authority", "example.com"),
        ("http://example.com:8080/path", "@authority", "example.com:8080"),
        ("https://example.com:80/path", "@authority", "example.com:80"),
        ("https://user@example.com/", "@authority", "example.com"),
        ("https://[2001:DB8::1]:443/", "@authority", "[2001:db8::1]"),
        ("https://[2001:db8::1]:8443/", "@authority", "[2001:db8::1]:8443"),
        ("HTTPS://example.com/", "@scheme", "https"),
        ("http://example.com/", "@scheme", "http"),
        ("https://example.com/path?param=value", "@request-target", "/path?param=value"),
        ("https://example.com/path", "@request-target", "/path"),
        ("https://example.com", "@request-target", "/"),
        ("https://example.com/a/b%2Fc", "@path", "/a/b%2Fc"),
        ("https://example.com", "@path", "/"),
        (
            "https://example.com/p?param=value&foo=bar&baz=bat%2Dman",
            "@query",
            "?param=value&foo=bar&baz=bat%2Dman",
        ),
        ("https://example.com/p?queryString", "@query", "?queryString"),
        ("https://example.com/p", "@query", "?"),
        ("https://example.com/p?", "@query", "?"),
        ("https://example.com/p?param=value&foo=bar", '"@query-param";name="foo"', "bar"),
        (
            "https://example.com/parameters?var=this%20is%20a%20big%0Amultiline%20value"
            "&bar=with+plus+whitespace&fa%C3%A7ade%22%3A%20=something",
            '"@query-param";name="var"',
            "this%20is%20a%20big%0Amultiline%20value",
        ),
        (
            "https://example.com/parameters?bar=with+plus+whitespace",
            '"@query-param";name="bar"',
            "with%20plus%20whitespace",
        ),
        (
            "https://example.com/parameters?fa%C3%A7ade%22%3A%20=something",
            '"@query-param";name="fa%C3%A7ade%22%3A%20"',
            "something",
        ),
        ("https://example.com/p?empty=&x=1", '"@query-param";name="empty"', ""),
    ],
)
def test_derived_components(uri: str, spec: str, expected: str) -> None:
    assert _value(spec, HttpMessage.request("GET", uri)) == expected


def test_method_and_status() -> None:
    assert _value("@method", HttpMessage.request("POST", "https://example.com/")) == "POST"
    assert _value("@status", HttpMessage.response(204)) == "204"


def test_field_values_are_trimmed_unfolded_and_combined() -> None:
    message = HttpMessage.request(
        "GET",
        "https://example.com/",
        [
            ("X-OWS-Header", "   Leading and trailing whitespace.   "),
            ("X-Obs-Fold-Header", "Obsolete\r\n    line folding."),
            ("Cache-Control", "max-age=60"),
            ("Cache-Control", "   must-revalidate"),
            ("X-Empty-Header", ""),
        ],
    )
    assert _value("x-ows-header", message) == "Leading and trailing whitespace."
    assert _value("x-obs-fold-header", message) == "Obsolete line folding."
    assert _value("cache-control", message) == "max-age=60, must-revalidate"
    assert _value("x-empty-header", message) == ""
    assert message.header("CACHE-CONTROL") == "max-age=60, must-revalidate"
    assert message.header("absent") is None


def test_headers_from_a_mapping() -> None:
    message = HttpMessage.request("GET", "https://example.com/", {"Content-Type": "text/plain"})
    assert message.headers == (("content-type", "text/plain"),)


def test_dictionary_member_and_structured_serialization() -> None:
    message = HttpMessage.request(
        "GET",
        "https://example.com/",
        [
            ("Priority", "u=1,    i"),
            ("Priority", "x=(a   b   c);p=1"),
            (
                "Content-Digest",
                f"{REQUEST_DIGEST},sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:",
            ),
        ],
    )
    assert _value('"priority";sf', message) == "u=1, i, x=(a b c);p=1"
    assert _value('"priority";key="u"', message) == "1"
    assert _value('"priority";key="i"', message) == "?1"
    assert _value('"priority";key="x"', message) == "(a b c);p=1"
    assert _value('"content-digest";key="sha-512"', message) == REQUEST_DIGEST.split("=", 1)[1]
    assert _value('"content-digest";sf', message) == (
        f"{REQUEST_DIGEST}, sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    )


def test_req_takes_the_component_from_the_request() -> None:
    request = HttpMessage.request("POST", "https://example.com/foo?x=1", {"Idempotency-Key": "k-1"})
    response = HttpMessage.response(201, {"Content-Type": "application/json"})
    assert _value('"@method";req', response, request) == "POST"
    assert _value('"@target-uri";req', response, request) == "https://example.com/foo?x=1"
    assert _value('"idempotency-key";req', response, request) == "k-1"
    assert Component.of("@method", req=True).identifier == '"@method";req'


@pytest.mark.parametrize(
    ("spec", "message", "match"),
    [
        ('"@method";req', RFC_REQUEST, "only valid in a response"),
        ('"@method";req', RFC_RESPONSE, "needs the request"),
        ("@method", RFC_RESPONSE, "only available in a request"),
        ("@target-uri", RFC_RESPONSE, "only available in a request"),
        ("@status", RFC_REQUEST, "only available in a response"),
        ("x-absent", RFC_REQUEST, "is absent"),
        ('"@query-param";name="nope"', RFC_REQUEST, "is absent"),
        ('"date";sf', RFC_REQUEST, "not supported"),
        ('"date";key="a"', RFC_REQUEST, "not a valid structured field"),
        ('"content-digest";key="sha-256"', RFC_REQUEST, "no such dictionary member"),
    ],
)
def test_component_errors(spec: str, message: HttpMessage, match: str) -> None:
    with pytest.raises(ComponentError, match=match):
        _value(spec, message)


@pytest.mark.parametrize(
    "spec",
    [
        "@signature-params",
        "@unknown",
        "Content-Type",
        '"content-type";bs',
        '"content-type";tr',
        '"content-type";req=?0',
        '"content-type";name="x"',
        '"@method";sf',
        '"@method";key="a"',
        '"@query-param"',
        '"@query-param";name=token',
        '"content-type";unknown',
        "@method;req",
        '"content-type',
    ],
)
def test_unsupported_or_malformed_components_are_refused(spec: str) -> None:
    with pytest.raises(ComponentError):
        Component.parse(spec)


def test_repeated_query_parameter_is_refused() -> None:
    message = HttpMessage.request("GET", "https://example.com/?a=1&a=2")
    with pytest.raises(ComponentError, match="more than once"):
        _value('"@query-param";name="a"', message)


def test_values_that_could_forge_base_lines_are_refused() -> None:
    message = HttpMessage.request(
        "GET", "https://example.com/", {"X-Evil": 'a\n"@method": GET', "X-Latin": "café"}
    )
    with pytest.raises(ComponentError, match="cannot be signed"):
        _value("x-evil", message)
    with pytest.raises(ComponentError, match="cannot be signed"):
        _value("x-latin", message)


def test_relative_or_non_ascii_target_uris_are_refused() -> None:
    with pytest.raises(ComponentError, match="absolute"):
        _value("@path", HttpMessage.request("GET", "/foo"))
    with pytest.raises(ComponentError, match="ASCII"):
        _value("@path", HttpMessage.request("GET", "https://example.com/café"))


# ---------------------------------------------------------------------------
# Round trips with fresh keys, under the gateway's profile
# ---------------------------------------------------------------------------

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
CREATED = int(NOW.timestamp())
BODY = b'{"matter": "HK-0001", "applicant": "CHAN Tai Man"}'
URI = "https://gateway.example.gov.hk/v1/applications?matter=HK-0001"
REQUEST_COMPONENTS = components("@method", "@target-uri", "content-digest", "content-type")
RESPONSE_COMPONENTS = components(
    "@status",
    "content-digest",
    "content-type",
    '"@method";req',
    '"@target-uri";req',
    '"signature";req;key="sig1"',
)


@pytest.fixture(scope="module")
def signing_keys() -> dict[str, SigningKey]:
    return {alg: SigningKey(f"partner-{alg}", generate_private_key(alg), alg) for alg in ALGS}


@pytest.fixture
def key(signing_keys: dict[str, SigningKey]) -> SigningKey:
    return signing_keys["ed25519"]


def _request(body: bytes = BODY, uri: str = URI, **extra: str) -> HttpMessage:
    headers = {"Content-Type": "application/json", "Content-Digest": content_digest(body), **extra}
    return HttpMessage.request("POST", uri, headers)


def _params(keyid: str, **overrides: Any) -> SignatureParams:
    values: dict[str, Any] = {
        "components": REQUEST_COMPONENTS,
        "created": CREATED,
        "keyid": keyid,
        "nonce": "nonce-0001",
        "tag": "gba-gateway",
    }
    values.update(overrides)
    return SignatureParams(**values)


def _signed(
    message: HttpMessage,
    key: SigningKey,
    *,
    label: str = "sig1",
    request: HttpMessage | None = None,
    **overrides: Any,
) -> HttpMessage:
    headers = sign(message, key, _params(key.kid, **overrides), label=label, request=request)
    return message.with_headers(headers)


def _verify(
    message: HttpMessage,
    key: SigningKey | VerificationKey,
    policy: VerifyPolicy | None = None,
    *,
    now: datetime = NOW,
    request: HttpMessage | None = None,
) -> VerifiedSignature:
    public = key.public if isinstance(key, SigningKey) else key
    return verify(
        message,
        resolve_key=_resolver({public.kid: public}),
        policy=policy or VerifyPolicy.for_request(has_body=True),
        now=now,
        request=request,
    )


@pytest.mark.parametrize("alg", ALGS)
def test_request_round_trip(alg: str, signing_keys: dict[str, SigningKey]) -> None:
    key = signing_keys[alg]
    message = _signed(_request(), key, alg=alg)
    result = _verify(message, key)
    assert result.keyid == key.kid
    assert result.alg == alg
    assert result.nonce == "nonce-0001"
    assert result.tag == "gba-gateway"
    assert result.created == CREATED
    assert result.expires is None
    assert result.components == REQUEST_COMPONENTS
    verify_content_digest(message.header("content-digest"), BODY)


@pytest.mark.parametrize("alg", ALGS)
def test_response_round_trip(alg: str, signing_keys: dict[str, SigningKey]) -> None:
    key = signing_keys[alg]
    request = _signed(_request(), key)
    response_body = b'{"status": "received"}'
    response = HttpMessage.response(
        202, {"Content-Type": "application/json", "Content-Digest": content_digest(response_body)}
    )
    signed = _signed(response, key, components=RESPONSE_COMPONENTS, request=request)
    result = _verify(signed, key, VerifyPolicy.for_response(), request=request)
    assert result.components == RESPONSE_COMPONENTS
    other_uri = "https://gateway.example.gov.hk/v1/applications?matter=HK-0002"
    other_request = _signed(_request(uri=other_uri), key)
    with pytest.raises(SignatureInvalidError, match="does not verify"):
        _verify(signed, key, VerifyPolicy.for_response(), request=other_request)


def test_a_response_answers_one_signed_request_only(key: SigningKey) -> None:
    """Two requests to the same target: the answer to one does not verify for the other."""
    first, second = _signed(_request(), key), _signed(_request(), key, nonce="nonce-0002")
    assert first.header("signature-input") != second.header("signature-input")
    response = HttpMessage.response(
        200, {"Content-Type": "application/json", "Content-Digest": content_digest(b"{}")}
    )
    answer = _signed(response, key, components=RESPONSE_COMPONENTS, request=first)
    assert _verify(answer, key, VerifyPolicy.for_response(), request=first).keyid == key.kid
    with pytest.raises(SignatureInvalidError, match="does not verify"):
        _verify(answer, key, VerifyPolicy.for_response(), request=second)


def test_a_response_not_bound_to_the_request_signature_is_refused(key: SigningKey) -> None:
    request = _signed(_request(), key)
    response = HttpMessage.response(
        200, {"Content-Type": "application/json", "Content-Digest": content_digest(b"{}")}
    )
    unbound = _signed(response, key, components=RESPONSE_COMPONENTS[:-1], request=request)
    with pytest.raises(SignatureInvalidError, match=r'"signature";req;key="sig1"'):
        _verify(unbound, key, VerifyPolicy.for_response(), request=request)


def test_an_unsigned_request_gets_no_signed_response(key: SigningKey) -> None:
    response = HttpMessage.response(
        200, {"Content-Type": "application/json", "Content-Digest": content_digest(b"{}")}
    )
    with pytest.raises(ComponentError, match="'signature' is absent"):
        _signed(response, key, components=RESPONSE_COMPONENTS, request=_request())


def test_request_without_body_profile(key: SigningKey) -> None:
    message = HttpMessage.request("GET", URI)
    signed = _signed(message, key, components=components("@method", "@target-uri"))
    assert _verify(signed, key, VerifyPolicy.for_request(has_body=False)).nonce == "nonce-0001"
    with pytest.raises(SignatureInvalidError, match="content-digest"):
        _verify(signed, key, VerifyPolicy.for_request(has_body=True))


def test_expires_in_the_future_is_accepted(key: SigningKey) -> None:
    signed = _signed(_request(), key, expires=CREATED + 60)
    assert _verify(signed, key).expires == CREATED + 60


def test_other_labels_are_ignored(key: SigningKey, signing_keys: dict[str, SigningKey]) -> None:
    signed = _signed(_request(), key)
    attacker = signing_keys["ecdsa-p256-sha256"]
    extra = sign(signed, attacker, _params(attacker.kid), label="sig2")
    both = signed.with_headers(
        {
            "Signature-Input": f"{signed.header('signature-input')}, {extra['Signature-Input']}",
            "Signature": f"{signed.header('signature')}, {extra['Signature']}",
        }
    )
    assert _verify(both, key).label == "sig1"


def test_several_field_lines_of_the_signature_headers_combine(key: SigningKey) -> None:
    headers = sign(_request(), key, _params(key.kid))
    message = HttpMessage.request(
        "POST",
        URI,
        [
            ("Content-Type", "application/json"),
            ("Content-Digest", content_digest(BODY)),
            ("Signature-Input", 'sig0=("@method");created=1;keyid="x"'),
            ("Signature-Input", headers["Signature-Input"]),
            ("Signature", "sig0=:AAAA:"),
            ("Signature", headers["Signature"]),
        ],
    )
    assert _verify(message, key).label == "sig1"


def test_idempotency_key_must_be_covered_when_present(key: SigningKey) -> None:
    policy = VerifyPolicy.for_request(has_body=True)
    uncovered = _signed(_request(**{"Idempotency-Key": "idem-1"}), key)
    with pytest.raises(SignatureInvalidError, match="idempotency-key"):
        _verify(uncovered, key, policy)
    covered = _signed(
        _request(**{"Idempotency-Key": "idem-1"}),
        key,
        components=(*REQUEST_COMPONENTS, Component("idempotency-key")),
    )
    assert _verify(covered, key, policy).components[-1] == Component("idempotency-key")


# ---------------------------------------------------------------------------
# Refusals: each names its error class
# ---------------------------------------------------------------------------


def test_tampered_body_fails_the_digest_check(key: SigningKey) -> None:
    signed = _signed(_request(), key)
    _verify(signed, key)  # the headers are intact ...
    with pytest.raises(DigestMismatchError):  # ... but the body is not
        verify_content_digest(signed.header("content-digest"), BODY.replace(b"0001", b"0002"))


def test_tampered_digest_header_fails_the_signature(key: SigningKey) -> None:
    signed = _signed(_request(), key)
    forged = signed.with_headers({"Content-Digest": content_digest(b'{"matter": "HK-0002"}')})
    with pytest.raises(SignatureInvalidError, match="does not verify"):
        _verify(forged, key)


def test_tampered_covered_header_fails(key: SigningKey) -> None:
    signed = _signed(_request(), key)
    with pytest.raises(SignatureInvalidError, match="does not verify"):
        _verify(signed.with_headers({"Content-Type": "text/plain"}), key)


def test_removed_covered_header_fails(key: SigningKey) -> None:
    signed = _signed(_request(), key)
    without = HttpMessage(
        signed.method,
        signed.target_uri,
        None,
        tuple((name, value) for name, value in signed.headers if name != "content-type"),
    )
    with pytest.raises(SignatureInvalidError, match="absent"):
        _verify(without, key, VerifyPolicy(required_components=()))


def test_content_digest_must_be_covered_when_the_policy_requires_it(key: SigningKey) -> None:
    signed = _signed(
        _request(), key, components=components("@method", "@target-uri", "content-type")
    )
    with pytest.raises(SignatureInvalidError, match="content-digest"):
        _verify(signed, key)


@pytest.mark.parametrize(
    "uri",
    [
        "https://gateway.example.gov.hk/v1/applications?matter=HK-0002",  # query
        "https://gateway.example.gov.hk/v1/other?matter=HK-0001",  # path
        "https://attacker.example/v1/applications?matter=HK-0001",  # authority
        "http://gateway.example.gov.hk/v1/applications?matter=HK-0001",  # scheme
    ],
)
def test_changed_target_uri_fails(key: SigningKey, uri: str) -> None:
    signed = _signed(_request(), key)
    moved = HttpMessage("POST", uri, None, signed.headers)
    with pytest.raises(SignatureInvalidError, match="does not verify"):
        _verify(moved, key)


def test_changed_authority_fails_when_authority_is_covered(key: SigningKey) -> None:
    covered = components(
        "@method", "@authority", "@path", "@query", "content-digest", "content-type"
    )
    signed = _signed(_request(), key, components=covered)
    policy = VerifyPolicy(required_components=components("@method", "@authority"))
    assert _verify(signed, key, policy).components == covered
    moved = HttpMessage(
        "POST", URI.replace("gateway.example", "evil.example"), None, signed.headers
    )
    with pytest.raises(SignatureInvalidError, match="does not verify"):
        _verify(moved, key, policy)


def test_changed_method_fails(key: SigningKey) -> None:
    signed = _signed(_request(), key)
    with pytest.raises(SignatureInvalidError, match="does not verify"):
        _verify(HttpMessage("PUT", URI, None, signed.headers), key)


@pytest.mark.parametrize(
    ("offset", "match"),
    [(-301, "too long ago"), (-3600, "too long ago"), (301, "in the future")],
)
def test_created_outside_the_skew_fails(key: SigningKey, offset: int, match: str) -> None:
    signed = _signed(_request(), key, created=CREATED + offset)
    with pytest.raises(SignatureInvalidError, match=match):
        _verify(signed, key)


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_created_inside_the_skew_passes(key: SigningKey, offset: int) -> None:
    assert (
        _verify(_signed(_request(), key, created=CREATED + offset), key).created == CREATED + offset
    )


def test_max_age(key: SigningKey) -> None:
    signed = _signed(_request(), key, created=CREATED - 120)
    with pytest.raises(SignatureInvalidError, match="maximum age"):
        _verify(signed, key, VerifyPolicy(max_age=60, require_nonce=False, tag=None))


def test_expired_signature_fails(key: SigningKey) -> None:
    signed = _signed(_request(), key, created=CREATED - 100, expires=CREATED - 1)
    with pytest.raises(SignatureInvalidError) as caught:
        _verify(signed, key)
    assert caught.value.detail == "signature expired"
    at_expiry = _signed(_request(), key, expires=CREATED)
    with pytest.raises(SignatureInvalidError, match="signature expired"):
        _verify(at_expiry, key)


def test_missing_nonce_fails(key: SigningKey) -> None:
    signed = _signed(_request(), key, nonce=None)
    with pytest.raises(SignatureInvalidError, match="nonce"):
        _verify(signed, key)
    relaxed = replace(VerifyPolicy.for_request(has_body=True), require_nonce=False)
    assert _verify(signed, key, relaxed).nonce is None


@pytest.mark.parametrize("tag", ["other-app", None])
def test_wrong_or_missing_tag_fails(key: SigningKey, tag: str | None) -> None:
    signed = _signed(_request(), key, tag=tag)
    with pytest.raises(SignatureInvalidError, match="tag"):
        _verify(signed, key)


def _forge(
    message: HttpMessage,
    key: SigningKey,
    params: dict[str, object],
    *,
    label: str = "sig1",
    covered: tuple[Component, ...] = REQUEST_COMPONENTS,
) -> HttpMessage:
    """Sign exactly what an attacker chooses: any parameters, with the key's raw signer."""
    inner = InnerList([c.to_item() for c in covered])
    inner.params.update(params)
    base = signature_base(covered, inner, message)
    signature_input, signature = Dictionary(), Dictionary()
    signature_input[label] = inner
    signature[label] = Item(key.sign(base.encode()))
    return message.with_headers(
        {"Signature-Input": str(signature_input), "Signature": str(signature)}
    )


def _good_params(key: SigningKey, **overrides: object) -> dict[str, object]:
    params: dict[str, object] = {
        "created": CREATED,
        "keyid": key.kid,
        "nonce": "n-1",
        "tag": "gba-gateway",
    }
    params.update(overrides)
    return {name: value for name, value in params.items() if value is not None}


def test_forge_helper_produces_a_valid_signature(key: SigningKey) -> None:
    assert _verify(_forge(_request(), key, _good_params(key)), key).nonce == "n-1"


@pytest.mark.parametrize("alg", ["ecdsa-p256-sha256", "rsa-pss-sha512", "rsa-v1_5-sha256"])
def test_alg_parameter_must_match_the_key(key: SigningKey, alg: str) -> None:
    forged = _forge(_request(), key, _good_params(key, alg=alg))
    with pytest.raises(SignatureInvalidError, match="alg"):
        _verify(forged, key)


def test_hmac_is_always_refused(key: SigningKey) -> None:
    forged = _forge(_request(), key, _good_params(key, alg="hmac-sha256"))
    with pytest.raises(SignatureInvalidError, match="shared-secret"):
        _verify(forged, key)


def test_key_with_a_non_allowed_algorithm_is_refused(key: SigningKey) -> None:
    hmac_key = VerificationKey(
        kid=key.kid, owner="x", public_key=key.public.public_key, alg="hmac-sha256"
    )
    with pytest.raises(SignatureInvalidError, match="no allowed signature algorithm"):
        _verify(_signed(_request(), key), hmac_key)


def test_sign_refuses_a_mismatched_alg_or_keyid(key: SigningKey) -> None:
    with pytest.raises(ValueError, match="alg"):
        sign(_request(), key, _params(key.kid, alg="rsa-pss-sha512"))
    with pytest.raises(ValueError, match="keyid"):
        sign(_request(), key, _params("someone-else"))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"created": None}, "created"),
        ({"created": "1700000000"}, "created"),
        ({"created": True}, "created"),
        ({"keyid": None}, "keyid"),
        ({"nonce": 12}, "nonce"),
        ({"expires": "soon"}, "expires"),
        ({"extra": "x"}, "unsupported parameters"),
    ],
)
def test_malformed_parameters_are_refused(
    key: SigningKey, overrides: dict[str, object], match: str
) -> None:
    forged = _forge(_request(), key, _good_params(key, **overrides))
    with pytest.raises(SignatureInvalidError, match=match):
        _verify(forged, key)


def test_keyid_token_is_refused(key: SigningKey) -> None:
    forged = _forge(_request(), key, _good_params(key, keyid=Token("partner-ed25519")))
    with pytest.raises(SignatureInvalidError, match="keyid"):
        _verify(forged, key)


def test_unknown_keyid_is_an_unknown_key(key: SigningKey) -> None:
    forged = _forge(_request(), key, _good_params(key, keyid="nobody"))
    with pytest.raises(UnknownKeyError):
        _verify(forged, key)


@pytest.mark.parametrize(
    "validity",
    [
        {"not_before": NOW + timedelta(seconds=1)},
        {"not_after": NOW},
        {"revoked_at": NOW - timedelta(days=1)},
    ],
)
def test_key_not_valid_now_is_an_unknown_key(
    key: SigningKey, validity: dict[str, datetime]
) -> None:
    public = VerificationKey(
        kid=key.kid, owner="partner", public_key=key.public.public_key, alg=key.alg, **validity
    )
    with pytest.raises(UnknownKeyError, match=key.kid):
        _verify(_signed(_request(), key), public)


def test_signature_under_another_label_only_is_missing(
    key: SigningKey, signing_keys: dict[str, SigningKey]
) -> None:
    attacker = signing_keys["ecdsa-p256-sha256"]
    only_sig2 = _signed(_request(), attacker, label="sig2")
    with pytest.raises(SignatureMissingError, match="sig1"):
        verify(
            only_sig2,
            resolve_key=_resolver({key.kid: key.public, attacker.kid: attacker.public}),
            policy=VerifyPolicy.for_request(has_body=True),
            now=NOW,
        )


def test_substituted_signature_keeping_the_keyid_is_invalid(
    key: SigningKey, signing_keys: dict[str, SigningKey]
) -> None:
    attacker_private = generate_private_key("ed25519")
    impostor = SigningKey(key.kid, attacker_private, "ed25519")  # claims the victim's keyid
    forged = _signed(_request(), impostor)
    with pytest.raises(SignatureInvalidError, match="does not verify"):
        _verify(forged, key)


def test_signature_bytes_from_another_message_are_invalid(key: SigningKey) -> None:
    original = _signed(_request(), key)
    other = _signed(_request(body=b"{}"), key)
    spliced = other.with_headers({"Signature": original.header("signature") or ""})
    with pytest.raises(SignatureInvalidError, match="does not verify"):
        _verify(spliced, key)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Signature-Input": 'sig1=("@method");created=1;keyid="k"'},
        {"Signature": "sig1=:AAAA:"},
    ],
)
def test_no_signature_headers_is_missing(key: SigningKey, headers: dict[str, str]) -> None:
    with pytest.raises(SignatureMissingError):
        _verify(_request().with_headers(headers), key)


@pytest.mark.parametrize("alg", ["ecdsa-p256-sha256", "ed25519", "rsa-pss-sha512"])
@pytest.mark.parametrize("size", [0, 64, 256])
def test_zero_and_empty_signatures_are_invalid(
    signing_keys: dict[str, SigningKey], alg: str, size: int
) -> None:
    key = signing_keys[alg]
    signed = _signed(_request(), key)
    zeroed = signed.with_headers({"Signature": f"sig1=:{base64.b64encode(bytes(size)).decode()}:"})
    with pytest.raises(SignatureInvalidError, match="does not verify"):
        _verify(zeroed, key)


@pytest.mark.parametrize(
    ("signature_input", "signature", "error"),
    [
        ("!garbage{}", "sig1=:AAAA:", SignatureInvalidError),
        ("sig1=:AAAA:", 'sig1=("@method")', SignatureInvalidError),
        ("garbage", "sig1=:AAAA:", SignatureMissingError),  # a valid dictionary, no sig1
        ("sig1=(", "sig1=:AAAA:", SignatureInvalidError),
        ('sig1=("@method");created=1;keyid="k"', "sig1=AAAA", SignatureInvalidError),
        ('sig1="@method";created=1', "sig1=:AAAA:", SignatureInvalidError),
        ('sig1=("@méthod")', "sig1=:AAAA:", SignatureInvalidError),
        ('sig1=("@method")', "sig2=:AAAA:", SignatureMissingError),
    ],
)
def test_malformed_signature_headers(
    key: SigningKey, signature_input: str, signature: str, error: type[Exception]
) -> None:
    message = _request().with_headers({"Signature-Input": signature_input, "Signature": signature})
    with pytest.raises(error):
        _verify(message, key)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ('"@method"', "more than once"),
        ('"@method";req', "only valid in a response"),
        ('"@signature-params"', "unsupported derived component"),
        ('"X-Upper"', "invalid field name"),
        ('"content-type";bs', "unsupported parameter"),
        ("content-type", "must be a string"),  # a token, not a string
    ],
)
def test_bad_covered_component_lists_are_invalid(key: SigningKey, extra: str, match: str) -> None:
    covered = '("@method" "@target-uri" "content-digest" "content-type" ' + extra + ")"
    signature_input = (
        f'sig1={covered};created={CREATED};keyid="{key.kid}";nonce="n";tag="gba-gateway"'
    )
    message = _request().with_headers(
        {"Signature-Input": signature_input, "Signature": "sig1=:AAAA:"}
    )
    with pytest.raises(SignatureInvalidError, match=match):
        _verify(message, key)


@pytest.mark.parametrize(
    "duplicate",
    [
        Component("content-type"),
        Component("content-digest", (("key", "sha-256"), ("sf", True))),
    ],
)
def test_duplicate_components_are_refused_even_when_correctly_signed(
    key: SigningKey, duplicate: Component
) -> None:
    # The same component twice, the second time with its parameters in another order.
    twice = Component(duplicate.name, tuple(reversed(duplicate.params)))
    duplicated = (*REQUEST_COMPONENTS, duplicate, twice)
    forged = _forge(_request(), key, _good_params(key), covered=duplicated)
    with pytest.raises(SignatureInvalidError, match="more than once"):
        _verify(forged, key)


def test_injected_newline_in_a_covered_field_is_refused(key: SigningKey) -> None:
    message = _request(**{"Content-Type": 'application/json\n"@method": GET'})
    with pytest.raises(ComponentError):
        sign(message, key, _params(key.kid))
    signed = _signed(_request(), key).with_headers(
        {"Content-Type": 'application/json\n"@method": GET'}
    )
    with pytest.raises(SignatureInvalidError):
        _verify(signed, key)


def test_duplicate_components_cannot_be_signed() -> None:
    with pytest.raises(ComponentError, match="more than once"):
        SignatureParams(components('"@method";req', "@method", '"@method";req'), CREATED, "k")


def test_naive_now_is_refused(key: SigningKey) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        _verify(_signed(_request(), key), key, now=datetime(2025, 3, 1, 8, 0))


def test_error_details_carry_no_header_values(
    key: SigningKey, signing_keys: dict[str, SigningKey]
) -> None:
    secret = "HKID-A1234567"
    message = _request(**{"X-Applicant-Id": secret})
    signed = _signed(message, key, components=(*REQUEST_COMPONENTS, Component("x-applicant-id")))
    attempts = [
        signed.with_headers({"X-Applicant-Id": secret + "8"}),
        HttpMessage(
            "POST",
            URI,
            None,
            tuple((n, v) for n, v in signed.headers if n != "x-applicant-id"),
        ),
        signed.with_headers({"X-Applicant-Id": secret + "\nx"}),
        signed.with_headers({"Signature-Input": f"sig1=({secret}"}),
    ]
    for attempt in attempts:
        with pytest.raises(SignatureInvalidError) as caught:
            _verify(attempt, key)
        assert secret not in caught.value.detail
        assert "CHAN" not in caught.value.detail


# ---------------------------------------------------------------------------
# Cross-implementation: the http-message-signatures package signs, we verify, and back
# ---------------------------------------------------------------------------


class _PeerRequest:
    def __init__(self, method: str, url: str, headers: dict[str, str]) -> None:
        self.method = method
        self.url = url
        self.headers = headers


class _PeerResponse:
    def __init__(self, status_code: int, headers: dict[str, str], request: _PeerRequest) -> None:
        self.status_code = status_code
        self.headers = headers
        self.request = request


def _peer_algorithm(alg: str) -> type:
    from http_message_signatures import algorithms

    return {
        "ed25519": algorithms.ED25519,
        "ecdsa-p256-sha256": algorithms.ECDSA_P256_SHA256,
        "rsa-pss-sha512": algorithms.RSA_PSS_SHA512,
    }[alg]


PEER_URI = "https://Gateway.Example.gov.hk:8443/v1/apps/%E6%B8%AF?matter=HK%2D0001&q=a+b&e="
PEER_COMPONENTS = (
    "@method",
    "@target-uri",
    "@authority",
    "@scheme",
    "@request-target",
    "@path",
    "@query",
    '"@query-param";name="matter"',
    '"@query-param";name="q"',
    '"@query-param";name="e"',
    "content-digest",
    '"content-digest";sf',
    '"content-digest";key="sha-256"',
    "content-type",
)


@pytest.mark.parametrize("alg", ALGS)
def test_peer_implementation_signs_and_we_verify(
    alg: str, signing_keys: dict[str, SigningKey]
) -> None:
    import http_message_signatures as peer

    key = signing_keys[alg]
    now = datetime.now(UTC)
    request = _PeerRequest(
        "POST",
        PEER_URI,
        {"Content-Type": "application/json  ", "Content-Digest": content_digest(BODY)},
    )
    signer = peer.HTTPMessageSigner(
        signature_algorithm=_peer_algorithm(alg),
        key_resolver=peer.MappingKeyResolver(
            public_keys={}, private_keys={key.kid: key.private_key}
        ),
    )
    signer.sign(
        request,
        key_id=key.kid,
        created=now,
        nonce="peer-nonce",
        label="sig1",
        tag="gba-gateway",
        covered_component_ids=PEER_COMPONENTS,
        body=BODY,
        use_existing_digest=True,
    )
    message = HttpMessage.request(request.method, request.url, request.headers)
    result = _verify(message, key, now=now)
    assert result.alg == alg
    assert result.nonce == "peer-nonce"
    assert result.components == components(*PEER_COMPONENTS)


@pytest.mark.parametrize("alg", ALGS)
def test_we_sign_and_the_peer_implementation_verifies(
    alg: str, signing_keys: dict[str, SigningKey]
) -> None:
    import http_message_signatures as peer

    key = signing_keys[alg]
    now = datetime.now(UTC)
    headers = {"Content-Type": "application/json", "Content-Digest": content_digest(BODY)}
    message = HttpMessage.request("POST", PEER_URI, headers)
    signature_headers = sign(
        message,
        key,
        _params(
            key.kid, components=components(*PEER_COMPONENTS), created=int(now.timestamp()), alg=alg
        ),
    )
    verifier = peer.HTTPMessageVerifier(
        signature_algorithm=_peer_algorithm(alg),
        key_resolver=peer.MappingKeyResolver(
            public_keys={key.kid: key.private_key.public_key()}, private_keys={}
        ),
    )
    results = verifier.verify(
        _PeerRequest("POST", PEER_URI, {**headers, **signature_headers}),
        expect_tag="gba-gateway",
        require_components=PEER_COMPONENTS,
        body=BODY,
    )
    assert [r.label for r in results] == ["sig1"]
    assert results[0].nonce == "nonce-0001"


@pytest.mark.parametrize("direction", ["peer-signs", "we-sign"])
def test_response_with_req_components_across_implementations(
    direction: str, signing_keys: dict[str, SigningKey]
) -> None:
    import http_message_signatures as peer

    key = signing_keys["ed25519"]
    now = datetime.now(UTC)
    response_body = b'{"status": "received"}'
    request_headers = {"Content-Type": "application/json", "Content-Digest": content_digest(BODY)}
    request_headers.update(
        sign(HttpMessage.request("POST", URI, request_headers), key, _params(key.kid))
    )
    response_headers = {
        "Content-Type": "application/json",
        "Content-Digest": content_digest(response_body),
    }
    spec = tuple(c.identifier for c in RESPONSE_COMPONENTS)
    peer_request = _PeerRequest("POST", URI, dict(request_headers))
    peer_response = _PeerResponse(202, dict(response_headers), peer_request)
    request = HttpMessage.request("POST", URI, request_headers)
    if direction == "peer-signs":
        peer.HTTPMessageSigner(
            signature_algorithm=peer.algorithms.ED25519,
            key_resolver=peer.MappingKeyResolver(
                public_keys={}, private_keys={key.kid: key.private_key}
            ),
        ).sign(
            peer_response,
            key_id=key.kid,
            created=now,
            nonce="peer-nonce",
            label="sig1",
            tag="gba-gateway",
            covered_component_ids=spec,
            body=response_body,
            use_existing_digest=True,
        )
        response = HttpMessage.response(202, peer_response.headers)
        result = _verify(response, key, VerifyPolicy.for_response(), now=now, request=request)
        assert result.components == RESPONSE_COMPONENTS
    else:
        response = HttpMessage.response(202, response_headers)
        params = _params(key.kid, components=RESPONSE_COMPONENTS, created=int(now.timestamp()))
        peer_response.headers.update(sign(response, key, params, request=request))
        results = peer.HTTPMessageVerifier(
            signature_algorithm=peer.algorithms.ED25519,
            key_resolver=peer.MappingKeyResolver(
                public_keys={key.kid: key.private_key.public_key()}, private_keys={}
            ),
        ).verify(
            peer_response, expect_tag="gba-gateway", require_components=spec, body=response_body
        )
        assert [r.label for r in results] == ["sig1"]


@pytest.mark.parametrize("name", ["keyid", "nonce", "tag"])
def test_string_parameters_longer_than_the_store_holds_are_refused(
    name: str, key: SigningKey
) -> None:
    """Before any key lookup or nonce store (a 201-character nonce answered 500 on PostgreSQL)."""
    long = "x" * 201
    overrides: dict[str, Any] = {} if name == "keyid" else {name: long}
    signer = SigningKey(long, key.private_key, key.alg) if name == "keyid" else key
    policy = VerifyPolicy.for_request(has_body=True)
    if name == "tag":
        policy = replace(policy, tag=long)  # even the expected tag is bounded
    signed = _signed(_request(), signer, **overrides)
    resolver = _resolver({signer.kid: signer.public})
    with pytest.raises(SignatureInvalidError, match=f"the {name} parameter is longer than 200"):
        verify(signed, resolve_key=resolver, policy=policy, now=NOW)
    ok = replace(policy, max_param_chars=201)
    assert verify(signed, resolve_key=resolver, policy=ok, now=NOW).keyid == signer.kid
