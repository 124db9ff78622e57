"""The closed set of field transforms a mapping file may name."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.mapping.transforms import TransformError, build


def _fails_with(code: str, transform_name: str, value: str, **options: object) -> None:
    transform = build(transform_name, options)
    with pytest.raises(TransformError) as info:
        transform(value)
    assert info.value.code == code


# --- text, upper ----------------------------------------------------------------------------


def test_text_trims_and_collapses_inner_whitespace() -> None:
    assert build("text", {})("  香港灣仔\n  軒尼詩道\t123 號  ") == "香港灣仔 軒尼詩道 123 號"


def test_upper_trims_and_upper_cases() -> None:
    assert build("upper", {})("  chan \n tai ") == "CHAN TAI"


def test_unknown_transform_name_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown transform 'lower'"):
        build("lower", {})


# --- date_dmy -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("15/03/1988", "1988-03-15"),
        ("07/07/1992", "1992-07-07"),
        ("7/7/1992", "1992-07-07"),
        (" 29/02/2024 ", "2024-02-29"),
        ("31/12/2099", "2099-12-31"),
    ],
)
def test_date_dmy_gives_the_iso_date(value: str, expected: str) -> None:
    assert build("date_dmy", {})(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "31/02/1990",  # no such day
        "29/02/2023",  # not a leap year
        "15/13/1988",  # no such month
        "00/01/2000",
        "1988-03-15",  # ISO is not the native form
        "03/15/88",
        "15.03.1988",
        "15/03/1988/1",
        "",
    ],
)
def test_date_dmy_refuses_impossible_or_foreign_dates(value: str) -> None:
    _fails_with("invalid_date", "date_dmy", value)


@settings(database=None)
@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)))
def test_date_dmy_round_trips_every_date(day: date) -> None:
    assert build("date_dmy", {})(format(day, "%d/%m/%Y")) == day.isoformat()


# --- hk2s, s2hk -----------------------------------------------------------------------------


def test_hk2s_converts_traditional_to_simplified() -> None:
    assert build("hk2s", {})("陳大文") == "陈大文"
    assert build("hk2s", {})("大文茶餐廳") == "大文茶餐厅"


def test_s2hk_converts_simplified_to_hong_kong_traditional() -> None:
    assert build("s2hk", {})("陈大文") == "陳大文"


def test_script_conversion_leaves_unchanged_characters_and_collapses_spaces() -> None:
    assert build("hk2s", {})(" 李小明 ") == "李小明"
    assert build("s2hk", {})("李  小明") == "李 小明"


# --- e164 -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("country", "value", "expected"),
    [
        ("HK", "9123 4567", "+85291234567"),
        ("HK", "9123-4567", "+85291234567"),
        ("HK", "+852 9123 4567", "+85291234567"),
        ("HK", "00852 9123 4567", "+85291234567"),
        ("MO", "6612 3456", "+85366123456"),
        ("MO", "2888-1234", "+85328881234"),
        ("MO", "+853 6612 3456", "+85366123456"),
        ("GD", "138 1234 5678", "+8613812345678"),
        ("GD", "(020) 8888-1234", "+862088881234"),
        ("GD", "0756-888 1234", "+867568881234"),
        ("GD", "+86 138 1234 5678", "+8613812345678"),
        # an international number is kept whatever the default country
        ("MO", "+852 9123 4567", "+85291234567"),
    ],
)
def test_e164_normalises_local_and_international_numbers(
    country: str, value: str, expected: str
) -> None:
    assert build("e164", {"country": country})(value) == expected


@pytest.mark.parametrize(
    ("country", "value"),
    [
        ("HK", "9123 ABCD"),
        ("MO", "6612-ABCD"),
        ("GD", "138-1234-567x"),
        ("HK", "12"),  # too short even with the country code
        ("HK", "+1234567890123456"),  # longer than E.164 allows
        ("MO", ""),
    ],
)
def test_e164_refuses_what_is_not_a_phone_number(country: str, value: str) -> None:
    _fails_with("invalid_phone", "e164", value, country=country)


# --- id_compact -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("A123456(3)", "A1234563"),
        ("a123 456 (3)", "A1234563"),
        ("1234567(8)", "12345678"),
        ("820000 19920707 0465", "820000199207070465"),
        ("h-1234-5678", "H12345678"),
    ],
)
def test_id_compact_drops_spaces_dashes_and_parentheses(value: str, expected: str) -> None:
    assert build("id_compact", {})(value) == expected


# --- enum -----------------------------------------------------------------------------------


DOCUMENT_TYPES = {"BIR": "MO_BIR", "HRP": "HRP", "RP": "RESIDENCE_PERMIT", "HKID": "HKID"}


def test_enum_maps_a_known_code() -> None:
    transform = build("enum", {"map": DOCUMENT_TYPES})
    assert transform("BIR") == "MO_BIR"
    assert transform(" RP ") == "RESIDENCE_PERMIT"


@pytest.mark.parametrize("value", ["PASSPORT", "bir", ""])
def test_enum_refuses_an_unknown_code(value: str) -> None:
    _fails_with("unknown_code", "enum", value, map=DOCUMENT_TYPES)


# --- decimal --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("50000", "50000.00"),
        ("50,000", "50000.00"),
        (" 80000.5 ", "80000.50"),
        ("0.01", "0.01"),
        ("0", "0.00"),
        ("1e3", "1000.00"),
    ],
)
def test_decimal_gives_two_decimals(value: str, expected: str) -> None:
    assert build("decimal", {})(value) == expected


@pytest.mark.parametrize("value", ["12.345", "-1", "-0.01", "abc", "", "1.2.3"])
def test_decimal_refuses_negative_over_precise_or_non_numeric_amounts(value: str) -> None:
    _fails_with("invalid_amount", "decimal", value)


@pytest.mark.parametrize("value", ["NaN", "Infinity", "sNaN"])
def test_decimal_refuses_non_finite_amounts(value: str) -> None:
    _fails_with("invalid_amount", "decimal", value)
