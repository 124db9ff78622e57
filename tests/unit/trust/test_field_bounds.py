"""The bounds on signature and digest fields, checked before anything parses them."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from http_sfv import Dictionary
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.errors import DigestMismatchError, SignatureInvalidError
from gateway.trust.digest import content_digest, verify_content_digest
from gateway.trust.field_bounds import SIGNATURE_FIELDS, FieldBounds, check_field, count_members
from gateway.trust.httpsig import (
    HttpMessage,
    SignatureParams,
    VerifyPolicy,
    sign,
    signature_keyid,
    verify,
)
from gateway.trust.keys import SigningKey, generate_private_key
from gateway.trust.profile import sign_request, sign_response, verify_response

URL = "https://gateway.example/v1/applications"
NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
MEGABYTE = 1024 * 1024


def _key(kid: str = "hk-ird-1") -> SigningKey:
    return SigningKey(kid, generate_private_key("ed25519"), "ed25519")


def _signed(key: SigningKey) -> dict[str, str]:
    return sign_request(method="GET", url=URL, key=key, now=NOW)


def _no_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object) -> None:
        raise AssertionError("the field was parsed")

    monkeypatch.setattr("gateway.trust.httpsig.parse_dictionary_texts", refuse)
    monkeypatch.setattr("gateway.trust.digest.parse_dictionary", refuse)


def _parsed_members(text: str) -> int:
    parsed = Dictionary()
    parsed.parse(text.encode())
    return len(parsed)


@pytest.mark.parametrize(
    "text",
    [
        'sig1=("@method" "@target-uri");created=1;keyid="a, b";nonce="x,y"',
        'a="\\"", b="\\\\", c=("x,", "y");p="q,r"',
        "a=1, b=2, c, d=?0, e=:AAAA:",
        'a="unterminated, b=1',
        'a="\\\\\\"", b',
    ],
)
def test_members_are_counted_outside_strings(text: str) -> None:
    try:
        expected = _parsed_members(text)
    except ValueError:
        return  # not a dictionary: any count is fine, the parser refuses it
    assert count_members(text) == expected


@given(
    st.dictionaries(
        st.from_regex(r"[a-z][a-z0-9]{0,4}", fullmatch=True),
        st.text(alphabet=st.sampled_from([*"ab,;= ()", '"', "\\"]), max_size=12),
        min_size=1,
        max_size=10,
    )
)
def test_members_count_matches_the_parser(members: dict[str, str]) -> None:
    parsed = Dictionary()
    for name, value in members.items():
        parsed[name] = value
    text = str(parsed)
    assert count_members(text) == _parsed_members(text)


def test_the_gateway_own_signatures_are_well_within_the_bounds() -> None:
    key = SigningKey("hk-ird-rsa", generate_private_key("rsa-pss-sha512"), "rsa-pss-sha512")
    headers = sign_request(
        method="POST", url=URL, key=key, now=NOW, body=b"{}", idempotency_key="k" * 200
    )
    for name in ("Signature-Input", "Signature", "Content-Digest"):
        check_field(name, headers[name])
        assert len(headers[name]) < SIGNATURE_FIELDS.max_bytes // 4


@pytest.mark.parametrize(
    ("value", "lines", "reason"),
    [
        ("a=" + "1" * 5000, 1, "longer than 4096 bytes"),
        ("sig1=()", 5, "more than 4 field lines"),
        (", ".join(f"k{i}=1" for i in range(9)), 1, "more than 8 members"),
    ],
)
def test_each_bound_refuses(value: str, lines: int, reason: str) -> None:
    with pytest.raises(SignatureInvalidError, match=reason) as refused:
        check_field("Signature-Input", value, lines=lines)
    assert value not in refused.value.detail
    check_field("Signature-Input", value, lines=lines, bounds=FieldBounds(10**6, 10, 10))


def test_the_bounds_on_the_edge_are_accepted() -> None:
    check_field("Signature", "a=" + "1" * (SIGNATURE_FIELDS.max_bytes - 2), lines=4)
    check_field("Signature", ", ".join(f"k{i}=1" for i in range(8)))


@pytest.mark.parametrize(
    "bomb",
    [
        ("a=1," * (MEGABYTE // 4)).rstrip(","),
        "sig1=(" + " ".join(['"@method"'] * (MEGABYTE // 11)) + ")",
        'sig1=();keyid="' + "k" * MEGABYTE + '"',
    ],
    ids=["members", "items", "one-long-string"],
)
def test_a_megabyte_signature_input_is_refused_before_parsing(
    bomb: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: ``signature_keyid`` handed all of it to ``http_sfv`` (seconds of CPU)."""
    headers = {**_signed(_key()), "Signature-Input": bomb}
    message = HttpMessage.request("GET", URL, headers)
    _no_parsing(monkeypatch)
    started = time.process_time()
    with pytest.raises(SignatureInvalidError, match="Signature-Input is longer than"):
        signature_keyid(message)
    assert time.process_time() - started < 0.05


def test_many_signature_lines_are_refused_before_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    headers = list(_signed(_key()).items())
    headers += [("Signature-Input", f"sig{i}=()") for i in range(2, 7)]
    _no_parsing(monkeypatch)
    with pytest.raises(SignatureInvalidError, match="more than 4 field lines"):
        signature_keyid(HttpMessage.request("GET", URL, headers))


def test_an_oversized_signature_is_refused_on_a_partner_response(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The relay verifies acknowledgements with the same code: the same bound holds."""
    key = _key()
    request = HttpMessage.request("POST", URL, _signed(key))
    headers = sign_response(
        status=201, body=b"{}", content_type="application/json", request=request, key=key, now=NOW
    )
    headers["Signature"] = ", ".join(f"s{i}=:AAAA:" for i in range(MEGABYTE // 12))
    answer = HttpMessage.response(201, headers)
    _no_parsing(monkeypatch)
    with pytest.raises(SignatureInvalidError, match="Signature is longer than"):
        verify_response(answer, b"{}", request=request, resolve_key=lambda _: key.public, now=NOW)
    with pytest.raises(SignatureInvalidError, match="Signature is longer than"):
        signature_keyid(answer)


def test_an_oversized_content_digest_is_refused_before_parsing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bomb = ", ".join([content_digest(b"{}")] * 2000)
    _no_parsing(monkeypatch)
    with pytest.raises(DigestMismatchError, match="Content-Digest is longer than"):
        verify_content_digest(bomb, b"{}")


def test_a_signature_within_the_bounds_still_verifies() -> None:
    key = _key()
    lines = [*_signed(key).items(), ("Signature-Input", "sig2=()"), ("Signature", "sig2=:AA==:")]
    message = HttpMessage.request("GET", URL, lines)
    assert message.field_lines("signature-input") == 2
    verified = verify(message, resolve_key=lambda _: key.public, policy=VerifyPolicy(), now=NOW)
    assert verified.keyid == key.kid


def test_a_content_digest_in_too_many_lines_is_refused_on_a_signed_response() -> None:
    """Signed over the very lines it came in, so that only the bound refuses it."""
    key = _key()
    request = HttpMessage.request("POST", URL, _signed(key))
    digest = content_digest(b"{}")
    lines = [("Content-Type", "application/json"), *[("Content-Digest", digest)] * 5]
    params = SignatureParams(
        components=VerifyPolicy.for_response().required_components,  # the profile's own
        created=int(NOW.timestamp()),
        keyid=key.kid,
        nonce="n-1",
        tag="gba-gateway",
    )
    unsigned = HttpMessage.response(201, lines)
    answer = HttpMessage.response(
        201, [*lines, *sign(unsigned, key, params, request=request).items()]
    )
    with pytest.raises(DigestMismatchError, match="more than 4 field lines"):
        verify_response(answer, b"{}", request=request, resolve_key=lambda _: key.public, now=NOW)
