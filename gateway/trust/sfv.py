"""RFC 8941 structured fields for the trust layer: a strict fast path in front of ``http_sfv``.

``http_sfv`` reads and writes byte by byte in pure Python: about 90 µs per
``Signature-Input``, ``Signature`` or ``Content-Digest`` header, the bulk of verifying a
request. This module gives the same answers faster for what the gateway's profile writes,
and hands everything else to ``http_sfv`` itself.

Parsing (:func:`parse_dictionary`). The fast path accepts a Dictionary only when it is
written exactly in RFC 8941 canonical form and each member is one of

* ``key=("s1" "s2";p ...);p ...``: an inner list (possibly empty) of sf-strings, each item
  and the list followed by parameters;
* ``key=:base64:;p ...``: a byte sequence, in canonical base64, followed by parameters;

where a key is ``[a-z*][a-z0-9_.*-]*``; a parameter is ``;key`` (boolean true) or ``;key=``
and an sf-string, an integer (``0`` or ``-?[1-9]`` and at most 15 digits), a token or
``?0``; an sf-string holds only ``%x20-21 / %x23-5B / %x5D-7E`` (no escapes); members are
separated by exactly ``", "`` and list items by exactly one space, and nothing surrounds
the whole. No key may repeat, in the dictionary or in one parameter list. Anything else
(whitespace variants, escapes, other item types, ``?1`` values, leading zeros, 16-digit
integers, invalid or non-canonical base64, upper-case or repeated keys ...) declines and is
parsed by ``http_sfv``, which accepts or rejects it exactly as before.

Why it is safe. The grammar above is a subset of RFC 8941 in which no value can end where
its next character would still extend it in ``http_sfv``'s greedy reading (a digit after
an integer, a token character after a token ...): after every value only ``;``, a space,
``)``, ``", "`` or the end may follow, and none of them extends any value. The expressions
below use possessive quantifiers, so they never give back a character either; they split
an accepted text exactly as ``http_sfv`` does, and the values are the same: the characters
between the quotes (no escapes allowed), ``int()`` of canonical digits, ``Token`` of the
token, and the base64 decoded by the very function ``http_sfv`` uses (the fast path also
declines unless it re-encodes to the same text). The result is made of the same
``http_sfv`` classes with the same attributes (built without their ``__init__``, which sets
only those). Since an accepted text is canonical, each member's text is also its
serialization: :func:`parse_dictionary_texts` returns it, so that a verifier need not
serialize the signature parameters again. ``tests/unit/trust/test_sfv_fastpath.py`` checks
all this against ``http_sfv`` with Hypothesis, on canonical, mutated and near-miss inputs.

Serializing (:func:`serialize` and the ``serialize_*`` helpers) equals ``str()`` of the
``http_sfv`` object: plain strings, in-range integers and valid keys are written directly;
any other value goes to ``http_sfv``'s own serializer, in the same order, so the output or
the exception is the same.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

from http_sfv import Dictionary, InnerList, Item, Token
from http_sfv.item import Parameters, ser_bare_item
from http_sfv.util import ser_key

__all__ = [
    "parse_dictionary",
    "parse_dictionary_texts",
    "serialize",
    "serialize_inner_list_parts",
    "serialize_item_parts",
    "serialize_key",
    "try_parse_dictionary",
]

# Possessive quantifiers (``*+``, ``?+``): what has been read as far as it goes is never
# given back, as http_sfv's greedy reader never gives a character back.
_KEY = r"[a-z*][a-z0-9_.*-]*+"
_STRING_CHARS = r"[\x20\x21\x23-\x5b\x5d-\x7e]*+"
_STRING = rf'"{_STRING_CHARS}"'
_VALUE = rf"{_STRING}|-?[1-9][0-9]{{0,14}}+|0|[A-Za-z*][A-Za-z0-9:/!#$%&'*+.^_`|~-]*+|\?0"
_PARAMS = rf"(?:;{_KEY}(?:=(?:{_VALUE}))?+)*+"
_ITEM = rf"{_STRING}{_PARAMS}"
_NUMBER_START = frozenset("-0123456789")
_MAX_INTEGER = 999_999_999_999_999

# One member at its key: group 1 the key; then an inner list of bare strings (2, their
# text) or of strings with parameters (3), or a byte sequence (4, its base64); then the
# member's parameters (5).
_MEMBER = re.compile(
    rf"({_KEY})="
    rf"(?:\((?:({_STRING}(?: {_STRING})*+)|({_ITEM}(?: {_ITEM})*+))?\)|:([A-Za-z0-9+/=]*+):)"
    rf"({_PARAMS})"
)
_ITEMS = re.compile(rf'"({_STRING_CHARS})"({_PARAMS})')
_PARAM = re.compile(rf";({_KEY})(?:=({_VALUE}))?+")
_KEY_ONLY = re.compile(_KEY)
_KNOWN_KEYS = frozenset(  # valid keys the gateway writes on every message (checked in tests)
    {"sig1", "created", "expires", "keyid", "nonce", "alg", "tag", "req", "sf", "key", "name"}
)
_new = object.__new__


class _Decline(Exception):
    """Not in the fast path's canonical subset: ``http_sfv`` decides."""


def _parse_params(text: str) -> Parameters:
    """Parameters from text matched by ``_PARAMS`` (so ``findall`` covers all of it)."""
    params = Parameters()
    if not text:
        return params
    pairs = _PARAM.findall(text)
    for key, raw in pairs:
        if not raw:
            params[key] = True
        elif raw[0] == '"':
            params[key] = raw[1:-1]
        elif raw[0] == "?":
            params[key] = False
        elif raw[0] in _NUMBER_START:
            params[key] = int(raw)
        else:
            params[key] = Token(raw)
    if len(params) != len(pairs):
        raise _Decline  # a repeated key: http_sfv keeps the last value at the first place
    return params


def _item(value: object, params: Parameters) -> Item:
    item = _new(Item)  # Item.__init__ sets exactly these two attributes
    item.value = value
    item.params = params
    return item


def _member(match: re.Match[str]) -> Item | InnerList:
    plain, with_params, b64, params = match.group(2, 3, 4, 5)
    if b64 is not None:
        try:
            value = base64.standard_b64decode(b64)  # the very decoder http_sfv uses
        except binascii.Error:
            raise _Decline from None
        if base64.standard_b64encode(value) != b64.encode("ascii"):
            raise _Decline  # decodable leniently (extra "=", stray bits): not canonical
        return _item(value, _parse_params(params))
    inner = _new(InnerList)  # InnerList.__init__ sets exactly ``data`` and ``params``
    if plain is not None:  # a string holds no '"', so '" "' occurs only between items
        inner.data = [_item(text, Parameters()) for text in plain[1:-1].split('" "')]
    elif with_params is not None:
        inner.data = [
            _item(text, _parse_params(item_params))
            for text, item_params in _ITEMS.findall(with_params)
        ]
    else:
        inner.data = []
    inner.params = _parse_params(params)
    return inner


def _fast(text: str) -> tuple[Dictionary, dict[str, str]] | None:
    result = _new(Dictionary)  # UserDict.__init__ with no argument sets only ``data``
    members: dict[str, Item | InnerList] = {}
    result.data = members
    texts: dict[str, str] = {}
    end = len(text)
    pos = 0
    try:
        while True:
            match = _MEMBER.match(text, pos)
            if match is None:
                return None
            key = match[1]
            if key in members:
                return None  # repeated key: http_sfv keeps the last value at the first place
            members[key] = _member(match)
            pos = match.end()
            texts[key] = text[match.end(1) + 1 : pos]
            if pos == end:
                return result, texts
            if not text.startswith(", ", pos):
                return None
            pos += 2
    except _Decline:
        return None


def try_parse_dictionary(text: str) -> Dictionary | None:
    """The Dictionary ``http_sfv`` parses from ``text``, or None when it is not canonical."""
    fast = _fast(text)
    return None if fast is None else fast[0]


def parse_dictionary_texts(text: str) -> tuple[Dictionary, dict[str, str]]:
    """:func:`parse_dictionary`, and each member's serialization when the fast path took it.

    The second element maps a key to ``str(dictionary[key])``, which for a canonical input
    is the member's own text; it is empty when ``http_sfv`` parsed the dictionary.
    """
    fast = _fast(text)
    if fast is not None:
        return fast
    parsed = Dictionary()
    parsed.parse(text.encode("ascii"))
    return parsed, {}


def parse_dictionary(text: str) -> Dictionary:
    """``text`` as a Dictionary, exactly as ``http_sfv`` parses its ASCII bytes.

    :raises ValueError: not a valid Dictionary (``UnicodeEncodeError`` when not ASCII).
    """
    return parse_dictionary_texts(text)[0]


def _bare(value: object) -> str:
    kind = type(value)
    if kind is str:
        text: str = value  # type: ignore[assignment]
        if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
            return f'"{text}"'
    elif kind is int and -_MAX_INTEGER <= value <= _MAX_INTEGER:  # type: ignore[operator]
        return str(value)
    return ser_bare_item(value)  # type: ignore[arg-type]


def serialize_key(key: object) -> str:
    """``key`` as a dictionary or parameter key, as ``http_sfv``'s ``ser_key`` writes it."""
    if type(key) is str and (key in _KNOWN_KEYS or _KEY_ONLY.fullmatch(key)):
        return key
    return ser_key(key)  # type: ignore[arg-type]


def _params(pairs: Iterable[tuple[object, object]]) -> str:
    return "".join(
        [
            f";{serialize_key(name)}" if value is True else f";{serialize_key(name)}={_bare(value)}"
            for name, value in pairs
        ]
    )


def _serialize_params(params: object) -> str:
    if type(params) is not Parameters:
        return str(params)
    return _params(params.items()) if params else ""  # type: ignore[attr-defined]


def serialize(value: object) -> str:
    """``str(value)`` for an ``http_sfv`` Dictionary, InnerList or Item, computed faster."""
    kind = type(value)
    if kind is Item:
        return _bare(value.value) + _serialize_params(value.params)  # type: ignore[attr-defined]
    if kind is InnerList:
        items = " ".join([serialize(item) for item in value.data])  # type: ignore[attr-defined]
        return f"({items}){_serialize_params(value.params)}"  # type: ignore[attr-defined]
    if kind is Dictionary:
        members = value.data  # type: ignore[attr-defined]
        if not members:
            raise ValueError("No contents; field should not be emitted")
        parts = []
        for name, member in members.items():
            if isinstance(member, Item) and member.value is True:
                parts.append(serialize_key(name) + _serialize_params(member.params))
            else:
                parts.append(f"{serialize_key(name)}={serialize(member)}")
        return ", ".join(parts)
    return str(value)


def serialize_item_parts(value: object, params: Iterable[tuple[object, object]] = ()) -> str:
    """``str()`` of ``Item(value)`` whose parameters were then ``update()``-d with ``params``."""
    return _bare(value) + _params(dict(params).items())


def serialize_inner_list_parts(
    item_texts: Iterable[str], params: Iterable[tuple[object, object]] = ()
) -> str:
    """``str()`` of an InnerList of items serialized as ``item_texts``, with ``params``."""
    return f"({' '.join(item_texts)}){_params(dict(params).items())}"
