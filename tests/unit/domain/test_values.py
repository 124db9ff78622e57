"""Value objects: identity-document numbers with their check characters, USCCs, matter codes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.values import (
    DocumentType,
    IdentityDocument,
    Jurisdiction,
    MatterCode,
    hkid_check_digit,
    mod11_2_check,
    normalise_document_number,
    uscc_is_valid,
)

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
HQ_CSB = "11440400MB2C00081P"

# shared/reference/domain.md §7.3: the ten sample matters.
SAMPLE_MATTER_CODES = (
    "11440300MB2C00011B3440120001000",
    "11440400MB2C00081P4440120002000",
    "11440100MB2C0002124440700001000",
    "11440400MB2C00031J3442030001000",
    "11440100MB2C0004143440120003000",
    "11440700MB2C0005143440720004000",
    "11442000MB2C00071T3440720005000",
    "11440000MB2C0006112442030006000",
    "11440300MB2C00091K3440120007000",
    "12440100MB2C00121L3442030008000",
)


def _with_mod11_2(body17: str) -> str:
    return body17 + mod11_2_check(body17)


# --------------------------------------------------------------------------- HKID


@pytest.mark.parametrize(
    ("raw", "compact", "printed"),
    [
        ("A123456(3)", "A1234563", "A123456(3)"),
        ("C668668(9)", "C6686689", "C668668(9)"),
        ("XA000001(6)", "XA0000016", "XA000001(6)"),
        ("A1234563", "A1234563", "A123456(3)"),
        ("a123456(3)", "A1234563", "A123456(3)"),
        ("A 123456 (3)", "A1234563", "A123456(3)"),
        ("A100004(A)", "A100004A", "A100004(A)"),  # check value 10 is written "A"
    ],
)
def test_valid_hkid_is_normalised_and_printed(raw: str, compact: str, printed: str) -> None:
    doc = IdentityDocument.parse("HKID", raw)

    assert doc.type is DocumentType.HKID
    assert doc.number == compact
    assert doc.issuer == "HK"
    assert doc.display() == printed


@pytest.mark.parametrize(
    ("prefix", "digits", "check"),
    [("A", "123456", "3"), ("C", "668668", "9"), ("XA", "000001", "6"), ("A", "100004", "A")],
)
def test_hkid_check_digit_of_the_published_examples(prefix: str, digits: str, check: str) -> None:
    assert hkid_check_digit(prefix, digits) == check


@pytest.mark.parametrize(
    "raw",
    [
        "A123456(4)",  # wrong check digit
        "C668668(0)",
        "XA000001(7)",
        "A100004(0)",
        "A12345(3)",  # five digits
        "ABC123456(3)",  # three letters
        "1234567(8)",  # no letter
        "A123456(B)",  # only 0-9 or A can be a check character
        "",
    ],
)
def test_invalid_hkid_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="HKID"):
        IdentityDocument.parse("HKID", raw)


@given(
    prefix=st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=2),
    digits=st.text(alphabet="0123456789", min_size=6, max_size=6),
)
def test_hkid_with_its_check_digit_is_accepted_and_any_other_refused(
    prefix: str, digits: str
) -> None:
    check = hkid_check_digit(prefix, digits)

    assert check in "0123456789A"
    assert IdentityDocument.parse("HKID", prefix + digits + check).number == prefix + digits + check
    for other in "0123456789A".replace(check, ""):
        with pytest.raises(ValueError, match="HKID"):
            IdentityDocument.parse("HKID", prefix + digits + other)


# --------------------------------------------------------------------------- Macao BIR


@pytest.mark.parametrize(
    ("raw", "compact", "printed"),
    [
        ("1234567(8)", "12345678", "1234567(8)"),
        ("5215000(3)", "52150003", "5215000(3)"),
        ("7000000(1)", "70000001", "7000000(1)"),
        ("12345678", "12345678", "1234567(8)"),
    ],
)
def test_macau_bir_format_is_accepted(raw: str, compact: str, printed: str) -> None:
    doc = IdentityDocument.parse("MO_BIR", raw)

    assert (doc.number, doc.issuer, doc.display()) == (compact, "MO", printed)


@pytest.mark.parametrize(
    "raw",
    ["2234567(8)", "3234567(8)", "123456(7)", "12345678(9)", "1234567(A)", "A234567(8)"],
)
def test_macau_bir_of_another_format_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="BIR"):
        IdentityDocument.parse("MO_BIR", raw)


# --------------------------------------------------------------------------- Home Return Permit


@pytest.mark.parametrize("raw", ["H12345678", "M87654321", "H1234567801", "m87654321"])
def test_home_return_permit_is_h_or_m_and_8_or_10_digits(raw: str) -> None:
    doc = IdentityDocument.parse("HRP", raw)

    assert doc.number == raw.upper()
    assert doc.issuer == "CN"
    assert doc.display() == raw.upper()


@pytest.mark.parametrize(
    "raw", ["X12345678", "H1234567", "H123456789", "H123456789012", "HH12345678", "12345678"]
)
def test_home_return_permit_of_another_shape_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="travel permit"):
        IdentityDocument.parse("HRP", raw)


# --------------------------------------------------------------------------- 18-digit numbers


@pytest.mark.parametrize("raw", ["810000198803150123", "820000199207070465"])
def test_residence_permits_that_python_stdnum_rejects_are_valid(raw: str) -> None:
    # Regression: stdnum.cn.ric refuses both (its area table dates 810000/820000 by birth year).
    doc = IdentityDocument.parse("RESIDENCE_PERMIT", raw)

    assert (doc.type, doc.number, doc.issuer) == (DocumentType.RESIDENCE_PERMIT, raw, "CN")


def test_taiwan_residence_permit_prefix_830000_is_valid() -> None:
    number = _with_mod11_2("83000019900101001")

    assert IdentityDocument.parse("RESIDENCE_PERMIT", number).number == number


def test_mainland_ric_is_valid_as_ric_and_refused_as_residence_permit() -> None:
    assert IdentityDocument.parse("CN_RIC", "440304198506120035").number == "440304198506120035"
    with pytest.raises(ValueError, match="residence permits start"):
        IdentityDocument.parse("RESIDENCE_PERMIT", "440304198506120035")


@pytest.mark.parametrize("raw", ["810000198803150123", "820000199207070465"])
def test_residence_permit_is_refused_as_mainland_ric(raw: str) -> None:
    with pytest.raises(ValueError, match="residence permits start"):
        IdentityDocument.parse("CN_RIC", raw)


def test_lower_case_x_check_character_is_normalised() -> None:
    body = next(
        b for b in (f"440304198506120{n:02d}" for n in range(100)) if mod11_2_check(b) == "X"
    )

    assert IdentityDocument.parse("CN_RIC", body + "x").number == body + "X"


@pytest.mark.parametrize(
    "raw",
    [
        "440304198506120036",  # wrong check digit
        "810000198803150124",
        "44030419850612003",  # 17 characters
        "4403041985061200355",  # 19 characters
        "44030419850612003A",
    ],
)
def test_mod11_2_number_with_a_wrong_check_or_length_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="MOD 11-2"):
        IdentityDocument.parse("CN_RIC", raw)


@pytest.mark.parametrize(
    ("kind", "body17"),
    [
        ("CN_RIC", "44030419880230003"),  # 30 February
        ("CN_RIC", "44030419851301003"),  # month 13
        ("RESIDENCE_PERMIT", "81000019900229001"),  # 1990 is not a leap year
    ],
)
def test_impossible_birth_date_is_refused(kind: str, body17: str) -> None:
    with pytest.raises(ValueError, match="impossible birth date"):
        IdentityDocument.parse(kind, _with_mod11_2(body17))


def test_mod11_2_check_of_known_numbers() -> None:
    assert mod11_2_check("44030419850612003") == "5"
    assert mod11_2_check("81000019880315012") == "3"
    assert mod11_2_check("82000019920707046") == "5"


def test_mod11_2_number_in_full_width_digits_is_refused_or_normalised() -> None:
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "44030419850612003") + "5"
    try:
        doc = IdentityDocument.parse("CN_RIC", full_width)
    except ValueError:
        return
    assert doc.number == "440304198506120035"


# --------------------------------------------------------------------------- USCC


def test_uscc_with_its_check_character_is_valid() -> None:
    assert uscc_is_valid(HQ_CSB)
    assert IdentityDocument.parse("USCC", HQ_CSB.lower()).number == HQ_CSB


@pytest.mark.parametrize("position", range(18))
def test_uscc_with_any_one_character_changed_is_invalid(position: int) -> None:
    for other in USCC_ALPHABET.replace(HQ_CSB[position], ""):
        changed = HQ_CSB[:position] + other + HQ_CSB[position + 1 :]
        assert not uscc_is_valid(changed), changed


@pytest.mark.parametrize(
    "code",
    [
        "11440400MB2C00081Q",
        "11440400MB2C0008P",  # 17 characters
        "11440400MB2C00081PX",  # 19 characters
        "11440400MO2C00081P",  # O is not in the alphabet
        "11440400mb2c00081p",  # the check is on the upper-case form
    ],
)
def test_malformed_uscc_is_invalid(code: str) -> None:
    assert not uscc_is_valid(code)


# --------------------------------------------------------------------------- matter codes


@pytest.mark.parametrize("code", SAMPLE_MATTER_CODES)
def test_sample_matter_codes_are_valid(code: str) -> None:
    matter = MatterCode(code)

    assert str(matter) == code
    assert matter.agency_uscc == code[:18]
    assert uscc_is_valid(matter.agency_uscc)


def test_matter_code_parts() -> None:
    matter = MatterCode("11440400MB2C00081P4440120002000")

    assert (matter.agency_uscc, matter.level, matter.basic_code) == (HQ_CSB, 4, "440120002000")


def test_matter_code_with_a_business_item_suffix_is_valid() -> None:
    assert MatterCode("11440400MB2C00081P444012000200002").level == 4


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("11440400MB2C00081Q4440120002000", "valid USCC"),  # bad USCC check character
        ("11440400MB2C00082P4440120002000", "valid USCC"),  # changed USCC body
        ("11440400MB2C00081P7440120002000", "level digit"),
        ("11440400MB2C00081P0440120002000", "level digit"),
        ("11440400MB2C00081P444012000200", "31 to 36"),  # 30 characters
        ("11440400MB2C00081P4440120002000123456", "31 to 36"),  # 37 characters
        ("11440400MB2C00081P444012000200-", "31 to 36"),
        ("11440400MB2C00081P444012000200０", "31 to 36"),
        ("", "31 to 36"),
    ],
)
def test_malformed_matter_code_is_refused(code: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MatterCode(code)


# --------------------------------------------------------------------------- others


def test_jurisdiction_parse_is_case_insensitive_and_strict() -> None:
    assert Jurisdiction.parse("hk") is Jurisdiction.HK
    assert Jurisdiction.parse("GD") is Jurisdiction.GD
    with pytest.raises(ValueError, match="unknown jurisdiction"):
        Jurisdiction.parse("TW")


@pytest.mark.parametrize(
    ("kind", "raw", "compact"),
    [
        (DocumentType.HK_BRN, "1234 5678", "12345678"),
        (DocumentType.HK_BRN, "c0012345", "C0012345"),
        (DocumentType.HKID, "A-123456-3", "A1234563"),
    ],
)
def test_document_numbers_lose_spaces_and_dashes(
    kind: DocumentType, raw: str, compact: str
) -> None:
    assert normalise_document_number(kind, raw) == compact


def test_unknown_document_type_is_refused() -> None:
    with pytest.raises(ValueError, match="PASSPORT"):
        IdentityDocument.parse("PASSPORT", "K12345678")
