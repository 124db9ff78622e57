"""RFC 8941 structured fields (gateway/trust/sfv.py) and RFC 9530 Content-Digest, on any text.

``tests/unit/trust/test_sfv_fastpath.py`` compares the fast path with ``http_sfv`` on
canonical, mutated and near-miss dictionaries. Here: on *any* text, ASCII or not, the
gateway's parser gives exactly what ``http_sfv`` gives (the same structure, or a
``ValueError``), and for every valid dictionary of every item type parsing its serialization
gives it back, whose serialization is the text again. ``verify_content_digest`` refuses any
header that does not carry a matching sha-256 or sha-512 digest, with its own two errors only.
"""

from __future__ import annotations

import base64
import hashlib
import string
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from http_sfv import Dictionary, InnerList, Item, Token
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.domain.errors import DigestMismatchError, MissingHeaderError
from gateway.trust import sfv
from gateway.trust.digest import content_digest, verify_content_digest
from tests.fuzz.conftest import examples


def _shape(value: object) -> object:
    """Type and contents, recursively (a Token is not a str, a Dictionary keeps its order)."""
    if isinstance(value, Dictionary):
        return ("Dictionary", [(k, _shape(v)) for k, v in value.data.items()])
    if isinstance(value, InnerList):
        return ("InnerList", [_shape(item) for item in value.data], _shape(value.params))
    if isinstance(value, Item):
        return ("Item", _shape(value.value), _shape(value.params))
    if isinstance(value, dict):  # Parameters
        return ("Parameters", [(k, _shape(v)) for k, v in value.items()])
    return (type(value).__name__, value)


def _outcome(parse: Any, text: str) -> object:
    try:
        return _shape(parse(text))
    except ValueError as exc:  # UnicodeEncodeError included: http_sfv reads ASCII bytes
        return type(exc)


def _reference(text: str) -> Dictionary:
    parsed = Dictionary()
    parsed.parse(text.encode("ascii"))
    return parsed


SF_CHARS = string.ascii_letters + string.digits + " \"\\;=(),:*-_.%@?/+!#$&'^`|~\t"
any_text = st.text(max_size=60) | st.text(alphabet=SF_CHARS, max_size=60)


@settings(max_examples=examples(500))
@given(text=any_text)
@example(text="a=@-999999999999999")  # a date no datetime holds
@example(text='a=%"%c3%a9", b=%"%ff"')  # display strings, the second not UTF-8
@example(text="a=?1;b, c")
def test_any_text_parses_as_http_sfv_parses_it(text: str) -> None:
    assert _outcome(sfv.parse_dictionary, text) == _outcome(_reference, text)
    fast = sfv.try_parse_dictionary(text)
    if fast is not None:  # the fast path takes only canonical text: its own serialization
        assert sfv.serialize(fast) == text


# --- valid dictionaries of every item type --------------------------------------------------

LCALPHA = string.ascii_lowercase
KEY_CHARS = LCALPHA + string.digits + "_-.*"
keys = st.builds(str.__add__, st.sampled_from(LCALPHA + "*"), st.text(KEY_CHARS, max_size=5))
bare_items = st.one_of(
    st.integers(min_value=-999_999_999_999_999, max_value=999_999_999_999_999),
    st.decimals(
        min_value=Decimal("-999999999999.999"),
        max_value=Decimal("999999999999.999"),
        places=3,
        allow_nan=False,
        allow_infinity=False,
    ),
    st.text(alphabet="".join(chr(c) for c in range(0x20, 0x7F)), max_size=12),
    st.builds(
        lambda first, rest: Token(first + rest),
        st.sampled_from(string.ascii_letters + "*"),
        st.text(alphabet=string.ascii_letters + string.digits + ":/!#$%&'*+.^_`|~-", max_size=8),
    ),
    st.binary(max_size=16),
    st.booleans(),
    st.integers(min_value=0, max_value=4_000_000_000).map(datetime.fromtimestamp),
    # Display strings are left out: http_sfv 0.9.9 writes some that its own parser refuses
    # (control characters are dropped, "%" escapes of them misread). The gateway writes none.
)
parameters = st.lists(st.tuples(keys, bare_items), max_size=3)


def _item(value: object, params: list[tuple[str, object]]) -> Item:
    item = Item(value)
    item.params.update(params)
    return item


items = st.builds(_item, bare_items, parameters)
inner_lists = st.builds(
    lambda members, params: _inner(members, params), st.lists(items, max_size=3), parameters
)


def _inner(members: list[Item], params: list[tuple[str, object]]) -> InnerList:
    inner = InnerList(members)
    inner.params.update(params)
    return inner


@st.composite
def dictionaries(draw: st.DrawFn) -> Dictionary:
    dictionary = Dictionary()
    for key, member in draw(st.lists(st.tuples(keys, items | inner_lists), min_size=1, max_size=4)):
        dictionary[key] = member
    return dictionary


@settings(max_examples=examples(200))
@given(dictionary=dictionaries())
def test_parse_after_serialize_gives_the_dictionary_back(dictionary: Dictionary) -> None:
    text = sfv.serialize(dictionary)
    assert text == str(dictionary)
    parsed = sfv.parse_dictionary(text)
    assert _shape(parsed) == _shape(_reference(text))
    assert sfv.serialize(parsed) == text
    assert _shape(parsed) == _shape(_canonical(dictionary))


def _canonical(value: object) -> object:
    """What a valid value reads back as: booleans true are bare keys, decimals are rounded."""
    if isinstance(value, Dictionary):
        out = Dictionary()
        for key, member in value.data.items():
            out[key] = _canonical(member)
        return out
    if isinstance(value, InnerList):
        inner = InnerList([_canonical(item) for item in value.data])
        inner.params.update({k: _bare(v) for k, v in value.params.items()})
        return inner
    assert isinstance(value, Item)
    return _item(_bare(value.value), [(k, _bare(v)) for k, v in value.params.items()])


def _bare(value: object) -> object:
    if isinstance(value, Decimal):
        return round(value, 3)
    return value


# --- Content-Digest ---------------------------------------------------------------------------

ALGORITHMS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}


@settings(max_examples=examples(300))
@given(header=any_text, body=st.binary(max_size=32))
@example(header="sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:", body=b"")
@example(header="sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:, md5=1", body=b"")
@example(header="sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:, sha-512=:AA==:", body=b"")
def test_a_digest_header_verifies_only_when_every_known_digest_matches(
    header: str, body: bytes
) -> None:
    try:
        verify_content_digest(header, body)
    except DigestMismatchError:
        return
    members = sfv.parse_dictionary(header).data
    known = [name for name in ALGORITHMS if name in members]
    assert known
    for name in known:
        assert members[name].value == ALGORITHMS[name](body).digest()


@settings(max_examples=examples(200))
@given(
    body=st.binary(max_size=200),
    algorithms=st.lists(st.sampled_from(list(ALGORITHMS)), min_size=1, max_size=2, unique=True),
    others=st.lists(st.tuples(keys, st.binary(max_size=8)), max_size=2),
    flip=st.integers(min_value=0, max_value=10_000),
)
def test_what_content_digest_writes_verifies_and_a_changed_body_does_not(
    body: bytes, algorithms: list[str], others: list[tuple[str, bytes]], flip: int
) -> None:
    members = [content_digest(body, name) for name in algorithms]
    members += [f"{k}=:{base64.b64encode(v).decode()}:" for k, v in others if k not in ALGORITHMS]
    header = ", ".join(members)
    verify_content_digest(header, body)
    if body:
        at = flip % len(body)
        changed = body[:at] + bytes([body[at] ^ 1]) + body[at + 1 :]
        with pytest.raises(DigestMismatchError):
            verify_content_digest(header, changed)


def test_no_header_is_a_missing_header() -> None:
    with pytest.raises(MissingHeaderError):
        verify_content_digest(None, b"")
