"""RFC 9421 signatures (gateway/trust/httpsig.py, httpsig_components.py, profile.py) on any input.

Verification is the first thing the partner edge does with a request, so it must refuse
anything with the trust layer's own errors (401 or 400 at the edge) and nothing else:
arbitrary and mutated ``Signature-Input`` and ``Signature`` headers, covered components
and target URIs. What ``sign_request`` signs for any method, URL, body and
``Idempotency-Key`` verifies, with the nonce and components it wrote; a changed body then
fails its digest. ``tests/unit/trust/test_httpsig.py`` holds the RFC 9421 vectors.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.domain.errors import (
    DigestMismatchError,
    GatewayError,
    SignatureInvalidError,
    SignatureMissingError,
    UnknownKeyError,
)
from gateway.trust.httpsig import Component, HttpMessage, components, signature_keyid
from gateway.trust.httpsig_components import ComponentError, component_value
from gateway.trust.keys import SigningKey, VerificationKey, generate_private_key
from gateway.trust.profile import sign_request, verify_request
from tests.fuzz.conftest import examples

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
URL = "https://gateway.example/v1/applications?lang=en"
BODY = b'{"matter": "11440400MB2C00081P4440120002000"}'
KEY = SigningKey("agency-1", generate_private_key("ed25519"), "ed25519")
REFUSALS = (SignatureInvalidError, SignatureMissingError, UnknownKeyError, DigestMismatchError)


def resolve(keyid: str) -> VerificationKey:
    if keyid != KEY.kid:
        raise UnknownKeyError("no such key")
    return KEY.public


SIGNED = sign_request(
    method="POST", url=URL, key=KEY, now=NOW, body=BODY, idempotency_key="idem-00000001"
)
SF_CHARS = string.ascii_letters + string.digits + " \"\\;=(),:*-_.%@?/+!#$&'^`|~"
any_text = st.text(max_size=80) | st.text(alphabet=SF_CHARS, max_size=80)


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    """``text`` with a few characters inserted, deleted or replaced."""
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        new = draw(st.sampled_from(SF_CHARS) | st.characters())
        how = draw(st.sampled_from(["insert", "delete", "replace"]))
        if how == "insert":
            text = text[:at] + new + text[at:]
        elif how == "delete":
            text = text[:at] + text[at + 1 :]
        else:
            text = text[:at] + new + text[at + 1 :]
    return text


def _verify(headers: dict[str, str], body: bytes = BODY) -> object:
    message = HttpMessage.request("POST", URL, headers)
    try:
        return verify_request(message, body, resolve_key=resolve, now=NOW)
    except REFUSALS as exc:
        return type(exc)


@settings(max_examples=examples(300))
@given(
    signature_input=any_text | mutated(SIGNED["Signature-Input"]),
    signature=any_text | mutated(SIGNED["Signature"]),
    replace=st.sampled_from(["both", "Signature-Input", "Signature"]),
)
@example(signature_input='sig1=("@method");keyid=agency-1', signature="sig1=:AA==:", replace="both")
@example(signature_input="sig1=();created=@1", signature="sig1=:AA==:", replace="both")
@example(
    signature_input='sig1=(%"@method");created=1;keyid="agency-1"', signature="", replace="both"
)
def test_any_signature_headers_verify_or_are_refused_by_the_trust_layer(
    signature_input: str, signature: str, replace: str
) -> None:
    headers = dict(SIGNED)
    if replace != "Signature":
        headers["Signature-Input"] = signature_input
    if replace != "Signature-Input":
        headers["Signature"] = signature
    outcome = _verify(headers)
    if not isinstance(outcome, type):  # verified: then it is the genuine signature
        assert headers["Signature"] == SIGNED["Signature"]


@settings(max_examples=examples(200))
@given(
    name=st.sampled_from(["Content-Digest", "Content-Type", "Idempotency-Key", "Extra"]),
    value=any_text,
)
def test_a_changed_covered_header_is_refused(name: str, value: str) -> None:
    headers = {**SIGNED, name: value}
    outcome = _verify(headers)
    if name == "Extra" or value.strip(" \t") == SIGNED.get(name):
        assert not isinstance(outcome, type)
    else:
        assert outcome in REFUSALS


@settings(max_examples=examples(300))
@given(text=any_text)
@example(text='"@query-param";name="a";name="b"')
@example(text='"@method";req;sf')
def test_any_component_identifier_parses_or_is_a_component_error(text: str) -> None:
    try:
        (component,) = components(text)
    except ComponentError:
        return
    assert isinstance(component, Component)
    assert Component.parse(component.identifier) == component


URI_CHARS = string.ascii_letters + string.digits + ":/?#[]@!$&'()*+,;=%-._~ "
component_names = st.sampled_from(
    [
        "@method",
        "@target-uri",
        "@authority",
        "@scheme",
        "@request-target",
        "@path",
        "@query",
        '"@query-param";name="a"',
        "content-type",
        '"content-digest";sf',
        '"signature";key="sig1"',
    ]
)


@settings(max_examples=examples(300))
@given(
    spec=component_names,
    method=st.text(alphabet=string.ascii_uppercase, min_size=1, max_size=7),
    uri=st.text(max_size=40) | st.text(alphabet=URI_CHARS, max_size=40).map("https://h".__add__),
    header=any_text,
)
def test_a_component_value_is_signable_text_or_a_component_error(
    spec: str, method: str, uri: str, header: str
) -> None:
    (component,) = components(spec)
    headers = {"Content-Type": header, "Content-Digest": header, "Signature": header}
    try:
        value = component_value(component, HttpMessage.request(method, uri, headers))
    except ComponentError:
        return
    assert value.isascii()
    assert "\r" not in value
    assert "\n" not in value


TOKEN_CHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
PATH_CHARS = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@%/"


@settings(max_examples=examples(150))
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    path=st.text(alphabet=PATH_CHARS, max_size=30),
    query=st.none() | st.text(alphabet=PATH_CHARS + "?", max_size=20),
    body=st.none() | st.binary(max_size=200),
    content_type=st.sampled_from(["application/json", "application/xml; charset=utf-8"]),
    idempotency_key=st.none()
    | st.text(alphabet="".join(chr(c) for c in range(0x21, 0x7F)), min_size=8, max_size=60),
)
def test_what_sign_request_signs_verifies_and_a_changed_body_does_not(
    method: str,
    path: str,
    query: str | None,
    body: bytes | None,
    content_type: str,
    idempotency_key: str | None,
) -> None:
    url = "https://gateway.example/" + path + ("" if query is None else "?" + query)
    headers = sign_request(
        method=method,
        url=url,
        key=KEY,
        now=NOW,
        body=body,
        content_type=content_type,
        idempotency_key=idempotency_key,
    )
    message = HttpMessage.request(method, url, headers)
    assert signature_keyid(message) == KEY.kid
    verified = verify_request(message, body or b"", resolve_key=resolve, now=NOW)
    assert verified.keyid == KEY.kid
    assert verified.nonce
    covered = {c.name for c in verified.components}
    assert {"@method", "@target-uri"} <= covered
    assert ("idempotency-key" in covered) is (idempotency_key is not None)
    if body:
        changed = bytes([body[0] ^ 1]) + body[1:]
        with pytest.raises(DigestMismatchError):
            verify_request(message, changed, resolve_key=resolve, now=NOW)


def test_refusals_are_gateway_errors() -> None:
    assert all(issubclass(error, GatewayError) for error in REFUSALS)


@pytest.mark.parametrize("uri", ["https://[gateway.example/v1", "https://gateway.example]/v1"])
def test_a_target_uri_with_an_unbalanced_bracket_is_a_refused_signature(uri: str) -> None:
    # urlsplit raises a bare ValueError ("Invalid IPv6 URL"); it escaped verify() as a 500.
    headers = sign_request(method="GET", url=URL, key=KEY, now=NOW)
    message = HttpMessage.request("GET", uri, headers)
    with pytest.raises(SignatureInvalidError, match="cannot be parsed"):
        verify_request(message, b"", resolve_key=resolve, now=NOW)
