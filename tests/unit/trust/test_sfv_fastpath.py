"""The structured-field fast path (gateway.trust.sfv) against http_sfv itself.

Parsing: on canonical inputs of the supported shapes the fast path must accept and give
exactly what http_sfv gives (types, values, order, attributes); on anything else, mutated
inputs and near misses included, it must either give that same result or decline, never
accept what http_sfv rejects. Serializing must give str() of the http_sfv object, or the
same exception.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from http_sfv import Dictionary, DisplayString, InnerList, Item, Token
from http_sfv.util import ser_key
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from gateway.domain.errors import SignatureInvalidError
from gateway.trust import httpsig, httpsig_components, sfv
from gateway.trust.digest import content_digest
from gateway.trust.httpsig import HttpMessage, SignatureParams, _params_text, components
from gateway.trust.httpsig_components import Component, ComponentError
from gateway.trust.keys import SigningKey, generate_private_key
from gateway.trust.profile import sign_request, sign_response, verify_request, verify_response

# --- what http_sfv does, and a structural view that sees every type and attribute ------


def _shape(value: object) -> object:
    """Type, attribute names and contents, recursively: equal only if truly identical."""
    kind = type(value).__name__
    if isinstance(value, Dictionary):
        return (kind, sorted(vars(value)), [(k, _shape(v)) for k, v in value.data.items()])
    if isinstance(value, InnerList):
        items = [_shape(item) for item in value.data]
        return (kind, sorted(vars(value)), items, _shape(value.params))
    if isinstance(value, Item):
        return (kind, sorted(vars(value)), _shape(value.value), _shape(value.params))
    if isinstance(value, dict):  # Parameters
        return (kind, [(k, _shape(v)) for k, v in value.items()])
    return (kind, value)


def _reference(text: str) -> object:
    """http_sfv's reading of ``text``: the shape, or the class of its error."""
    parsed = Dictionary()
    try:
        parsed.parse(text.encode("ascii"))
    except ValueError as exc:
        return type(exc)
    return _shape(parsed)


def _ours(text: str) -> object:
    try:
        return _shape(sfv.parse_dictionary(text))
    except ValueError as exc:
        return type(exc)


def _check_parse(text: str) -> Dictionary | None:
    """The fast path agrees with http_sfv on ``text`` or declines; returns its result."""
    fast = sfv.try_parse_dictionary(text)
    expected = _reference(text)
    if fast is not None:
        assert _shape(fast) == expected, text
        parsed, texts = sfv.parse_dictionary_texts(text)
        assert texts.keys() == parsed.data.keys()
        for key, member in parsed.data.items():
            assert texts[key] == str(member) == sfv.serialize(member)
        assert sfv.serialize(fast) == str(fast) == text  # canonical: text is its own form
    assert _ours(text) == expected, text
    return fast


# --- generators ---------------------------------------------------------------------

PLAIN_CHARS = "".join(chr(c) for c in range(0x20, 0x7F) if chr(c) not in '"\\')
LCALPHA = "abcdefghijklmnopqrstuvwxyz"
keys = st.builds(
    str.__add__, st.sampled_from(LCALPHA + "*"), st.text(LCALPHA + "0123456789_-.*", max_size=6)
)
plain_strings = st.text(alphabet=PLAIN_CHARS, max_size=12)
integers = st.integers(min_value=-999_999_999_999_999, max_value=999_999_999_999_999)
ALPHA = LCALPHA + LCALPHA.upper()
tokens = st.builds(
    lambda first, rest: Token(first + rest),
    st.sampled_from(ALPHA + "*"),
    st.text(ALPHA + "0123456789:/!#$%&'*+.^_`|~-", max_size=8),
)
param_values = st.one_of(plain_strings, integers, tokens, st.booleans())
params = st.lists(st.tuples(keys, param_values), max_size=4, unique_by=lambda kv: kv[0])


def _item(value: object, pairs: list[tuple[str, object]]) -> Item:
    item = Item(value)
    item.params.update(pairs)
    return item


def _inner(items: list[Item], pairs: list[tuple[str, object]]) -> InnerList:
    inner = InnerList(items)
    inner.params.update(pairs)
    return inner


string_items = st.builds(_item, plain_strings, params)
inner_lists = st.builds(_inner, st.lists(string_items, max_size=6), params)
byte_items = st.builds(_item, st.binary(max_size=70), params)
members = st.one_of(inner_lists, byte_items)


@st.composite
def canonical_dictionaries(draw: st.DrawFn) -> str:
    """The http_sfv serialization of a dictionary of the supported shapes."""
    pairs = draw(
        st.lists(st.tuples(keys, members), min_size=1, max_size=4, unique_by=lambda p: p[0])
    )
    dictionary = Dictionary()
    for key, member in pairs:
        dictionary[key] = member
    return str(dictionary)


NEAR_MISS = [" ", "\t", ",", ";", "=", '"', "\\", "(", ")", ":", "?", "0", "1", "9", ".", "-"]
NEAR_MISS += ["A", "a", "*", "/", "+", "%", "@", "_", "é", "\x7f", "\n", "Z", "z", ", "]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A canonical dictionary with a few characters inserted, deleted, replaced or copied."""
    text = draw(canonical_dictionaries())
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(text)))
        how = draw(st.sampled_from(["insert", "delete", "replace", "copy"]))
        if how == "insert":
            text = text[:at] + draw(st.sampled_from(NEAR_MISS)) + text[at:]
        elif how == "delete":
            text = text[:at] + text[at + 1 :]
        elif how == "replace":
            text = text[:at] + draw(st.sampled_from(NEAR_MISS)) + text[at + 1 :]
        else:
            end = draw(st.integers(min_value=at, max_value=len(text)))
            text = text[:at] + text[at:end] + text[at:end] + text[end:]
    return text


# --- parsing ------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(canonical_dictionaries())
@example('sig1=("@method" "@target-uri");created=1;keyid="k";nonce="n";tag="gba-gateway"')
@example('sig1=("a)b" "c;d=e, f" "" " ");k=tok:en/x;f=?0;t;n=-999999999999999')
@example('sig1=("@method";req "@target-uri";req;key="a");created=999999999999999')
@example("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, a=:AA==:;x=1")
@example("a=(), *b.c_d-9=:AQ==:")
def test_canonical_dictionaries_take_the_fast_path_and_agree(text: str) -> None:
    assert _check_parse(text) is not None, text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_dictionaries_agree_or_decline(text: str) -> None:
    _check_parse(text)


# A grammar-driven near-miss generator: each slot is canonical nine times in ten.
SOUP = {
    "key": (["sig1", "a", "*x", "sha-256", "created", "req"], ["Sig1", "", "1a", "a b", "sIg"]),
    "value": (
        ["", "=1", "=-7", '="v"', '="a;b=c, d"', "=tok", "=tok:x/y", "=?0", "=123456789012345"],
        ["=01", "=-0", "=?1", '="a\\"b"', "=1.5", "=:AA==:", "=1234567890123456", "=@1", "="],
    ),
    "item": (
        ['"x"', '"@method"', '"a b"', '""', '"a)"', '"a;b=c, d"'],
        ['"a\\"b"', '"a\\\\"', "tok", "1", ":AA==:", '"é"', '"x', "?1", '%"a"'],
    ),
    "bytes": ([":AA==:", ":AQ==:", ":YQ==:", "::"], [":AB==:", ":AAA:", ":*A==:", ":YQ=:", "1"]),
    "member_sep": ([", "], [",", " , ", ",\t", ",  ", " ", ""]),
    "item_sep": ([" "], ["  ", "", "\t"]),
    "param_sep": ([";"], ["; ", ";;"]),
    "equals": (["="], ["", " =", "=="]),
    "pad": ([""], [" ", "\t"]),
}


def _slot(draw: st.DrawFn, name: str) -> str:
    good, bad = SOUP[name]
    return draw(st.sampled_from(good if draw(st.integers(0, 9)) else bad))


def _soup_params(draw: st.DrawFn) -> str:
    count = draw(st.integers(min_value=0, max_value=3))
    return "".join(
        _slot(draw, "param_sep") + _slot(draw, "key") + _slot(draw, "value") for _ in range(count)
    )


@st.composite
def soup(draw: st.DrawFn) -> str:
    text = _slot(draw, "pad")
    for index in range(draw(st.integers(min_value=1, max_value=3))):
        text += (_slot(draw, "member_sep") if index else "") + _slot(draw, "key")
        text += _slot(draw, "equals")
        if draw(st.booleans()):
            count = draw(st.integers(min_value=0, max_value=3))
            items = [_slot(draw, "item") + _soup_params(draw) for _ in range(count)]
            inner = _slot(draw, "item_sep").join(items)
            text += "(" + _slot(draw, "pad") + inner + _slot(draw, "pad") + ")"
        else:
            text += _slot(draw, "bytes")
        text += _soup_params(draw)
    return text + _slot(draw, "pad")


@settings(max_examples=500, deadline=None)
@given(soup())
def test_near_miss_soup_agrees_or_declines(text: str) -> None:
    _check_parse(text)


@pytest.mark.parametrize(
    "text",
    [
        'sig1=("a\\"b")',  # escaped quote
        'sig1=("a\\\\b")',  # escaped backslash
        'sig1=("a";k="x\\"y")',  # escape in a parameter
        'sig1=( "a")',  # non-canonical spacing, each accepted by http_sfv
        'sig1=("a"  "b")',
        'sig1=("a" )',
        'sig1=("a");  created=1',
        "a=:AA==:,b=:AA==:",
        "a=:AA==:,  b=:AA==:",
        "a=:AA==:\t, b=:AA==:",
        " a=:AA==:",
        "a=:AA==: ",
        "a=:AA==:, a=:AQ==:",  # duplicate keys: the last value wins, at the first place
        "a=:AA==:, b=(), a=:AQ==:",
        'sig1=("a");created=1;created=2',  # duplicate parameter
        'sig1=("a";req;req)',
        "sig1=();created=1234567890123456",  # 16 digits: an error
        "sig1=();created=-1234567890123456",
        "sig1=();created=01",  # leading zero, minus zero
        "sig1=();created=-0",
        "sig1=();x=?1",  # an explicit true
        "sig1=();x=1.5",  # a decimal
        "sig1=();x=@1",  # a date
        'sig1=();x=%"a"',  # a display string
        "sig1=();x=:AA==:",  # a byte sequence parameter
        "a=:A:",  # invalid base64
        "a=:AAA:",
        "a=:AB=C:",
        "a=:*AA=:",
        "a=:AB==:",  # non-zero padding bits: http_sfv decodes them leniently
        "a=:AA==",
        'Sig1=("a")',  # upper-case keys
        'sIg1=("a")',
        'sig1=("a");Created=1',
        "sig1=()",  # empty inner list
        'sig1=("@method";req "@target-uri";req)',  # parameters on the items
        "a",  # other member types
        "a;x",
        "a=tok",
        "a=1",
        'a="x"',
        "a=?0",
        'a=("x" tok)',
        'a=(1 "x")',
        'sig1=("é")',  # not ASCII
        "",
        ", ",
        "a=:AA==:,",
        "a=:AA==:, ",
        'sig1=("a"\n)',
    ],
)
def test_edge_cases_agree_with_http_sfv(text: str) -> None:
    _check_parse(text)


@pytest.mark.parametrize(
    "text",
    [
        'sig1=("a\\"b")',
        'sig1=("a" )',
        "a=:AA==:, a=:AQ==:",
        'sig1=("a");created=1;created=2',
        "sig1=();created=1234567890123456",
        "sig1=();created=01",
        "sig1=();x=?1",
        "a=:AAA:",
        'Sig1=("a")',
        "a",
        'sig1=("é")',
    ],
)
def test_the_fast_path_declines_what_is_not_canonical(text: str) -> None:
    assert sfv.try_parse_dictionary(text) is None
    if _reference(text) is not ValueError and _reference(text) is not UnicodeEncodeError:
        assert sfv.parse_dictionary_texts(text)[1] == {}  # http_sfv parsed it


def test_duplicate_keys_keep_the_last_value_at_the_first_place() -> None:
    parsed = sfv.parse_dictionary("a=:AA==:, b=(), a=:AQ==:")
    assert list(parsed.data) == ["a", "b"]
    assert parsed["a"].value == b"\x01"


def test_invalid_input_raises_value_error() -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - http_sfv's bare ValueError
        sfv.parse_dictionary("sig1=();created=1234567890123456")
    with pytest.raises(UnicodeEncodeError):
        sfv.parse_dictionary('sig1=("é")')


# --- serializing ----------------------------------------------------------------------

any_strings = st.text(max_size=10) | st.text(alphabet='ab"\\ ~\x7f', max_size=6)
any_keys = st.one_of(keys, st.text(max_size=5), st.sampled_from(["", "A", "a b", "1a"]))
any_values = st.one_of(
    any_strings,
    st.integers(min_value=-(10**16), max_value=10**16),
    tokens,
    st.text(max_size=5).map(Token),
    st.booleans(),
    st.binary(max_size=12),
    st.decimals(
        allow_nan=False, allow_infinity=False, places=3, max_value=10**6, min_value=-(10**6)
    ),
    st.text(max_size=5).map(DisplayString),
    st.just(datetime(2024, 1, 1, tzinfo=UTC)),
)
any_params = st.lists(st.tuples(any_keys, any_values), max_size=3)
any_items = st.builds(_item, any_values, any_params)
any_inner = st.builds(_inner, st.lists(any_items, max_size=3), any_params)


def _outcome(function: object, value: object) -> object:
    try:
        return function(value)  # type: ignore[operator]
    except Exception as exc:  # the same exception class is the contract
        return type(exc)


@st.composite
def any_dictionaries(draw: st.DrawFn) -> Dictionary:
    dictionary = Dictionary()
    for key, member in draw(st.lists(st.tuples(any_keys, any_items | any_inner), max_size=3)):
        dictionary[key] = member
    return dictionary


@settings(max_examples=300, deadline=None)
@given(st.one_of(any_items, any_inner, any_dictionaries()))
def test_serialize_equals_str(value: object) -> None:
    assert _outcome(sfv.serialize, value) == _outcome(str, value)


@settings(max_examples=300, deadline=None)
@given(any_values, any_params)
def test_serialize_item_parts_equals_str_of_the_item(value: object, pairs: list) -> None:
    expected = _outcome(str, _item(value, pairs))
    assert _outcome(lambda v: sfv.serialize_item_parts(v, pairs), value) == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(any_items, max_size=3), any_params)
def test_serialize_inner_list_parts_equals_str(items: list[Item], pairs: list) -> None:
    expected = _outcome(str, _inner(items, pairs))
    texts = [_outcome(str, item) for item in items]
    assume(all(isinstance(text, str) for text in texts))
    got = _outcome(lambda p: sfv.serialize_inner_list_parts(texts, p), pairs)
    assert got == expected


@given(any_keys)
def test_serialize_key_equals_http_sfv(key: str) -> None:
    assert _outcome(sfv.serialize_key, key) == _outcome(ser_key, key)


def test_known_keys_are_valid_keys() -> None:
    assert all(re.fullmatch(r"[a-z*][a-z0-9_.*-]*", key) for key in sfv._KNOWN_KEYS)


# --- the trust layer's own uses ---------------------------------------------------------

component_specs = st.sampled_from(
    [
        "@method",
        "@target-uri",
        "@status",
        "content-digest",
        "content-type",
        '"@method";req',
        '"@target-uri";req',
        '"@query-param";name="a b"',
        '"signature";key="sig1"',
        '"content-digest";sf',
        '"@query-param";name="a\\"b"',  # an escape in a parameter
    ]
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(component_specs, unique=True, max_size=6),
    st.integers(min_value=0, max_value=2**40),
    st.text(alphabet=PLAIN_CHARS + '"\\', min_size=1, max_size=10),
    st.none() | st.text(max_size=8),
    st.none() | st.sampled_from(["ecdsa-p256-sha256", "ed25519"]),
)
def test_signature_params_text_equals_str_of_the_inner_list(
    specs: list[str], created: int, keyid: str, nonce: str | None, alg: str | None
) -> None:
    try:
        covered = components(*specs)
    except ValueError:
        assume(False)
    params = SignatureParams(covered, created=created, keyid=keyid, nonce=nonce, alg=alg)
    assert _outcome(_params_text, params) == _outcome(str, params.inner_list())
    for component in covered:
        assert component.identifier == str(component.to_item())


def test_interned_components_are_the_same_as_built_ones() -> None:
    plain = Component.from_item(Item("@method"))  # interned from now on
    assert plain == Component("@method")
    assert plain.identifier == '"@method"'
    flagged = Item("@method")
    flagged.params["req"] = True
    assert Component.from_item(flagged) == Component("@method", (("req", True),))
    display = Component.from_item(Item(DisplayString("@method")))  # equal as a str only
    assert display is not plain
    assert display.identifier == '%"@method"'
    assert Component.from_item(Item("@method")).identifier == '"@method"'


def test_component_caches_stay_bounded_and_keep_only_valid_lists() -> None:
    for index in range(2 * httpsig_components._INTERN_LIMIT):
        assert httpsig._covered([Item(f"x-{index}")]) == (Component(f"x-{index}"),)
    assert len(httpsig._COVERED) <= httpsig._COVERED_LIMIT
    assert len(httpsig_components._INTERNED) <= httpsig_components._INTERN_LIMIT
    for _ in range(2):  # a refused list is never remembered as valid
        with pytest.raises(ComponentError):
            httpsig._covered([Item("@method"), Item("@method")])
        with pytest.raises(ComponentError):
            httpsig._covered([Item("@nonsense")])
    assert ("@method", "@method") not in httpsig._COVERED


@given(st.binary(max_size=200), st.sampled_from(["sha-256", "sha-512"]))
def test_content_digest_equals_http_sfv(body: bytes, algorithm: str) -> None:
    dictionary = Dictionary()
    dictionary[algorithm] = Item(hashlib.new(algorithm.replace("-", ""), body).digest())
    assert content_digest(body, algorithm) == str(dictionary)


def test_decimals_are_left_to_http_sfv() -> None:
    item = _item(Decimal("1.5"), [("a", Decimal("-0.25"))])
    assert sfv.serialize(item) == str(item) == "1.5;a=-0.25"


# --- end to end: what the fast path declines still verifies exactly as before -----------

URL = "https://gateway.example/v1/applications"
NOW = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)
BODY = b'{"matter": "HK-0001"}'


@pytest.fixture(scope="module")
def key() -> SigningKey:
    return SigningKey("agency-1", generate_private_key("ecdsa-p256-sha256"), "ecdsa-p256-sha256")


def _signed(key: SigningKey, **replace: str) -> HttpMessage:
    headers = sign_request(
        method="POST", url=URL, key=key, now=NOW, body=BODY, idempotency_key="idem-0001"
    )
    return HttpMessage.request("POST", URL, {**headers, **replace})


@pytest.mark.parametrize(
    "rewrite",
    [
        lambda si, sig: (si, sig),  # canonical: the fast path
        lambda si, sig: (si.replace("sig1=(", "sig1=( ").replace('" "', '"  "'), sig),
        lambda si, sig: (si.replace(";", "; "), sig),
        lambda si, sig: ('sig1=("@method");created=1, ' + si, "sig1=:AA==:, " + sig),  # last wins
        lambda si, sig: (si + ', sig2=("@status")', "other=:AQ==:,\t" + sig),
    ],
)
def test_requests_verify_whatever_the_path(
    key: SigningKey, rewrite: Callable[[str, str], tuple[str, str]]
) -> None:
    message = _signed(key)
    si, sig = rewrite(str(message.header("signature-input")), str(message.header("signature")))
    rewritten = message.with_headers({"Signature-Input": si, "Signature": sig})
    verified = verify_request(rewritten, BODY, resolve_key=lambda _: key.public, now=NOW)
    assert verified.keyid == "agency-1"
    assert verified.components == components(
        "@method", "@target-uri", "content-digest", "content-type", "idempotency-key"
    )


def test_a_duplicate_label_whose_last_value_is_forged_is_refused(key: SigningKey) -> None:
    message = _signed(key)
    si = message.header("signature-input")
    assert si is not None
    forged = f"{si}, {si.replace('created=', 'created=1')}"
    with pytest.raises(SignatureInvalidError):
        verify_request(
            message.with_headers({"Signature-Input": forged}),
            BODY,
            resolve_key=lambda _: key.public,
            now=NOW,
        )


def test_responses_sign_and_verify(key: SigningKey) -> None:
    request = _signed(key)
    headers = sign_response(
        status=201,
        body=BODY,
        content_type="application/json",
        request=request,
        key=key,
        now=NOW,
    )
    assert headers["Signature-Input"].startswith(
        'sig1=("@status" "content-digest" "content-type" "@method";req "@target-uri";req'
        ' "signature";req;key="sig1")'
    )
    response = HttpMessage.response(201, headers)
    verified = verify_response(
        response, BODY, request=request, resolve_key=lambda _: key.public, now=NOW
    )
    assert verified.tag == "gba-gateway"
