"""Identity numbers, USCCs and matter codes (gateway/domain/values.py) under Hypothesis.

The check characters are recomputed here independently, from the algorithms as
``shared/reference/domain.md`` §3 gives them, written differently from the gateway's code:
HKID with the missing second letter folded into a constant (koblas/stdnum-js), ISO 7064
MOD 11-2 by its recursive definition, the USCC weights as powers of 3 modulo 31. Any text
is either a valid number in its compact form or a ``ValueError``; a valid number survives
its printed form; the gateway's check characters agree with the independent ones.
``tests/unit/domain/test_values.py`` holds the published examples.
"""

from __future__ import annotations

import string
from datetime import date

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.domain.values import (
    DocumentType,
    IdentityDocument,
    MatterCode,
    hkid_check_digit,
    mod11_2_check,
    normalise_document_number,
    uscc_is_valid,
)
from tests.fuzz.conftest import examples

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # GB 32100: no I, O, S, V, Z
PERMIT_AREAS = ("810000", "820000", "830000")
DIGITS = string.digits
UPPER = string.ascii_uppercase


# --- the independent algorithms ---------------------------------------------------------


def hkid_check(prefix: str, digits: str) -> str:
    """stdnum-js ``hk/hkid``: the space of a one-letter prefix is 36 x 9 = 324 = 5 (mod 11)."""
    values = [ord(ch) - ord("A") + 10 for ch in prefix] + [int(d) for d in digits]
    if len(prefix) == 1:
        total = 5 + sum(v * w for v, w in zip(values, range(8, 1, -1), strict=True))
    else:
        total = sum(v * w for v, w in zip(values, range(9, 1, -1), strict=True))
    remainder = (11 - total % 11) % 11
    return "A" if remainder == 10 else str(remainder)


def iso7064_mod11_2(body: str) -> str:
    """ISO/IEC 7064 MOD 11-2, recursively: p = 2 (p + d) mod 11, check = (12 - p) mod 11."""
    p = 0
    for digit in body:
        p = (p + int(digit)) * 2 % 11
    check = (12 - p) % 11
    return "X" if check == 10 else str(check)


def uscc_check(body17: str) -> str:
    """GB 32100-2015: weights 3^i mod 31, check = (31 - sum mod 31) mod 31."""
    total = sum(USCC_ALPHABET.index(ch) * pow(3, i, 31) for i, ch in enumerate(body17))
    return USCC_ALPHABET[(31 - total % 31) % 31]


# --- generators ---------------------------------------------------------------------------


def fixed_digits(n: int) -> st.SearchStrategy[str]:
    return st.text(alphabet=DIGITS, min_size=n, max_size=n)


@st.composite
def hkids(draw: st.DrawFn) -> str:
    prefix = draw(st.text(alphabet=UPPER, min_size=1, max_size=2))
    body = draw(fixed_digits(6))
    return prefix + body + hkid_check(prefix, body)


@st.composite
def eighteen_digit_numbers(draw: st.DrawFn, *, permit: bool) -> str:
    if permit:
        area = draw(st.sampled_from(PERMIT_AREAS))
    else:
        area = draw(fixed_digits(6).filter(lambda a: a not in PERMIT_AREAS))
    born = draw(st.dates(min_value=date(1900, 1, 1), max_value=date(2099, 12, 31)))
    body = area + born.strftime("%Y%m%d") + draw(fixed_digits(3))
    return body + iso7064_mod11_2(body)


@st.composite
def usccs(draw: st.DrawFn) -> str:
    body = draw(st.text(alphabet=USCC_ALPHABET, min_size=17, max_size=17))
    return body + uscc_check(body)


VALID = {
    DocumentType.HKID: hkids(),
    DocumentType.MO_BIR: st.builds(
        lambda first, rest: first + rest, st.sampled_from("157"), fixed_digits(7)
    ),
    DocumentType.HRP: st.builds(
        lambda letter, body, count: letter + body + count,
        st.sampled_from("HM"),
        fixed_digits(8),
        st.sampled_from(["", *[f"{n:02d}" for n in range(100)]]),
    ),
    DocumentType.RESIDENCE_PERMIT: eighteen_digit_numbers(permit=True),
    DocumentType.CN_RIC: eighteen_digit_numbers(permit=False),
    DocumentType.USCC: usccs(),
    DocumentType.HK_BRN: fixed_digits(8)
    | st.builds(str.__add__, st.sampled_from("CF"), fixed_digits(7)),
}

# Text that looks like a number more often than not: the characters numbers are made of,
# their punctuation, and what upper() or \s could turn into them.
NUMBERISH = DIGITS + UPPER + "xa()- \t\u3000\u00a0ſıﬀ０１Ａ٣²"
anything = st.text(max_size=24) | st.text(alphabet=NUMBERISH, max_size=24)


# --- properties ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(DocumentType))
@settings(max_examples=examples(200))
@given(raw=anything)
@example(raw="ſ1234562")  # "ſ".upper() is "S": S123456(2) was accepted
@example(raw="ı1234565")  # "ı".upper() is "I"
@example(raw="a123456(3")
def test_any_text_is_a_compact_number_or_a_value_error(kind: DocumentType, raw: str) -> None:
    try:
        number = normalise_document_number(kind, raw)
    except ValueError:
        return
    assert number.isascii()
    assert number.isalnum()
    assert number == number.upper()
    assert "".join(ch for ch in raw if not ch.isspace() and ch != "-").isascii()
    assert normalise_document_number(kind, number) == number  # idempotent


@pytest.mark.parametrize("kind", list(DocumentType))
@settings(max_examples=examples(100))
@given(data=st.data())
def test_valid_numbers_survive_their_printed_and_spaced_forms(
    kind: DocumentType, data: st.DataObject
) -> None:
    number = data.draw(VALID[kind])
    document = IdentityDocument.parse(kind.value, number)
    assert document.number == number
    assert IdentityDocument.parse(kind.value, document.display()) == document
    at = data.draw(st.integers(min_value=0, max_value=len(number)))
    spaced = number[:at] + data.draw(st.sampled_from([" ", "-", " - ", "\u3000"])) + number[at:]
    assert IdentityDocument.parse(kind.value, spaced.lower()) == document


@settings(max_examples=examples(300))
@given(prefix=st.text(alphabet=UPPER, min_size=1, max_size=2), body=fixed_digits(6))
def test_the_hkid_check_digit_agrees_with_stdnum_js(prefix: str, body: str) -> None:
    assert hkid_check_digit(prefix, body) == hkid_check(prefix, body)


@settings(max_examples=examples(300))
@given(body=fixed_digits(17))
@example(body="44030419850612003")  # domain.md §7.2: 440304198506120035
def test_mod11_2_agrees_with_the_recursive_iso7064_definition(body: str) -> None:
    assert mod11_2_check(body) == iso7064_mod11_2(body)


@settings(max_examples=examples(300))
@given(
    code=st.text(alphabet=USCC_ALPHABET, min_size=18, max_size=18)
    | usccs()
    | st.text(alphabet=USCC_ALPHABET + "IOSVZa", max_size=20)
)
@example(code="11440400MB2C00081P")  # domain.md §7.1: HQ_CSB
def test_uscc_validity_agrees_with_gb_32100(code: str) -> None:
    expected = (
        len(code) == 18
        and all(ch in USCC_ALPHABET for ch in code)
        and uscc_check(code[:17]) == code[17]
    )
    assert uscc_is_valid(code) is expected


@pytest.mark.parametrize("kind", [DocumentType.CN_RIC, DocumentType.RESIDENCE_PERMIT])
@settings(max_examples=examples(100))
@given(data=st.data())
def test_an_18_digit_number_with_any_other_check_character_is_refused(
    kind: DocumentType, data: st.DataObject
) -> None:
    number = data.draw(VALID[kind])
    other = data.draw(st.sampled_from("0123456789X").filter(lambda ch: ch != number[-1]))
    with pytest.raises(ValueError, match="MOD 11-2"):
        normalise_document_number(kind, number[:-1] + other)


@settings(max_examples=examples(300))
@given(
    code=st.text(max_size=40)
    | st.builds(
        lambda uscc, level, rest: uscc + level + rest,
        usccs(),
        st.text(alphabet=DIGITS, min_size=1, max_size=1),
        st.text(alphabet=DIGITS + UPPER + "a-", min_size=10, max_size=19),
    )
)
def test_a_matter_code_is_valid_exactly_when_its_parts_are(code: str) -> None:
    expected = (
        31 <= len(code) <= 36
        and code.isascii()
        and code.isalnum()
        and uscc_is_valid(code[:18])
        and code[18] in "123456"
    )
    try:
        matter = MatterCode(code)
    except ValueError:
        assert not expected
        return
    assert expected
    assert (matter.agency_uscc, matter.level, matter.basic_code) == (
        code[:18],
        int(code[18]),
        code[19:31],
    )


@pytest.mark.parametrize(
    ("raw", "looks_like"),
    [("ſ123456(2)", "S1234562"), ("ı123456(5)", "I1234565"), ("ﬀ123456(9)", "FF1234569")],
)
def test_a_letter_that_upper_cases_to_ascii_is_not_an_hkid(raw: str, looks_like: str) -> None:
    assert normalise_document_number(DocumentType.HKID, looks_like) == looks_like
    with pytest.raises(ValueError, match="ASCII"):
        normalise_document_number(DocumentType.HKID, raw)
