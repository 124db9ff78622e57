"""The field transforms (gateway/mapping/transforms.py) on any text.

Every transform gives a value or a ``TransformError`` with a problem code, nothing else; what
``e164``, ``decimal`` and ``date_dmy`` give matches the pattern the canonical JSON Schema
demands of that field (read from ``mappings/schemas``), since a decoded native document
must say the same as a canonical one; and the reverse transforms the encoder uses give text
that decodes back to the same canonical value. ``tests/unit/mapping/test_transforms.py``
holds the examples.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from gateway.mapping.transforms import TransformError, build, build_inverse
from gateway.settings import REPO_ROOT
from tests.fuzz.conftest import examples

SCHEMA = json.loads(
    (REPO_ROOT / "mappings" / "schemas" / "canonical-application.schema.json").read_text("utf-8")
)
PERSON = SCHEMA["$defs"]["person"]["properties"]
# JSON Schema patterns are searched for (ECMA-262), which re.search does for these.
PATTERNS = {
    "e164": re.compile(PERSON["phone"]["pattern"]),
    "date_dmy": re.compile(PERSON["birth_date"]["pattern"]),
    "decimal": re.compile(SCHEMA["$defs"]["money"]["properties"]["amount"]["pattern"]),
}
ENUM = {"HKID": "HKID", "BIR": "MO_BIR", "RP": "RESIDENCE_PERMIT"}
TRANSFORMS = {
    "text": {},
    "upper": {},
    "date_dmy": {},
    "hk2s": {},
    "s2hk": {},
    "e164 HK": {"country": "HK"},
    "e164 MO": {"country": "MO"},
    "e164 GD": {"country": "GD"},
    "id_compact": {},
    "enum": {"map": ENUM},
    "decimal": {},
}
# Characters the transforms react to, and look-alikes of them from elsewhere in Unicode.
NATIVE = "0123456789+-()., /eE_\t\n\u3000\u00a0٨٥٢０１²HKIDBIR陳大文香港"
texts = st.text(max_size=30) | st.text(alphabet=NATIVE, max_size=30)


def _apply(transform: Any, value: str) -> tuple[Any, str | None]:
    """(value, None), or (None, the problem code): a TransformError is an answer too."""
    try:
        return transform(value), None
    except TransformError as exc:
        return None, exc.code


def _transform(label: str) -> Any:
    name = label.split()[0]
    return build(name, TRANSFORMS[label])


@pytest.mark.parametrize("label", list(TRANSFORMS))
@settings(max_examples=examples(200))
@given(value=texts)
@example(value="+٨٥٢٩١٢٣٤٥٦٧")  # Arabic-Indic digits are isdigit() (were accepted)
@example(value="+01234567")  # no country code starts with 0 (was accepted)
@example(value="00０１２３４５６７８")  # full-width digits (were accepted)
@example(value="-0")  # gave "-0.00", which the canonical schema refuses
@example(value="١٥/٠٣/١٩٨٨")
def test_a_transform_gives_a_schema_valid_value_or_a_problem_code(label: str, value: str) -> None:
    out, code = _apply(_transform(label), value)
    if code is not None:
        assert code in {"invalid_date", "invalid_phone", "unknown_code", "invalid_amount"}
        return
    assert isinstance(out, str)
    pattern = PATTERNS.get(label.split()[0])
    if pattern is not None:
        assert pattern.search(out), (value, out)


@pytest.mark.parametrize("label", ["text", "upper", "id_compact", "decimal", "e164 HK"])
@settings(max_examples=examples(150))
@given(value=texts)
def test_normalising_twice_changes_nothing(label: str, value: str) -> None:
    transform = _transform(label)
    try:
        once = transform(value)
    except TransformError:
        return
    assert transform(once) == once
    if label in ("text", "upper"):
        assert once == " ".join(once.split())


@pytest.mark.parametrize("label", ["e164 HK", "e164 MO", "e164 GD", "decimal", "id_compact"])
@settings(max_examples=examples(150))
@given(value=texts)
def test_what_the_encoder_writes_decodes_to_the_same_value(label: str, value: str) -> None:
    name = label.split()[0]
    transform = _transform(label)
    inverse = build_inverse(name, TRANSFORMS[label])
    assert inverse is not None
    try:
        canonical = transform(value)
    except TransformError:
        return
    for holder in ({"type": "HKID"}, {"type": "MO_BIR"}, {}):
        assert transform(inverse(canonical, holder)) == canonical


@pytest.mark.parametrize("label", ["e164 HK", "date_dmy"])
@settings(max_examples=examples(150))
@given(value=texts | st.from_regex(r"\A\+[0-9]{8,15}\Z") | st.from_regex(r"\A\d{4}-\d\d-\d\d\Z"))
@example(value="+٨٥٢٩١٢٣٤٥٦٧")
@example(value="２０２４-０１-０１")
@example(value="+85291234567\n")
def test_what_the_encoder_accepts_decodes_back_to_itself(label: str, value: str) -> None:
    name = label.split()[0]
    inverse = build_inverse(name, TRANSFORMS[label])
    assert inverse is not None
    try:
        native = inverse(value, {})
    except TransformError:
        return
    assert _transform(label)(native) == value


# --- regressions (each was accepted before) ---------------------------------------------


@pytest.mark.parametrize("value", ["+٨٥٢٩١٢٣٤٥٦٧", "9١٢٣٤٥٦٧", "+852²³⁴⁵⁶⁷⁸⁹", "+01234567"])
def test_e164_refuses_digits_that_are_not_ascii_and_a_country_code_starting_with_0(
    value: str,
) -> None:
    with pytest.raises(TransformError, match="invalid_phone"):
        build("e164", {"country": "HK"})(value)


@pytest.mark.parametrize("value", ["-0", "-0.00", "-0e3"])
def test_decimal_refuses_a_negative_zero(value: str) -> None:
    with pytest.raises(TransformError, match="invalid_amount"):
        build("decimal", {})(value)


@pytest.mark.parametrize(
    ("name", "value"), [("e164", "+٨٥٢٩١٢٣٤٥٦٧"), ("date_dmy", "２０２４-０１-０１")]
)
def test_the_encoder_refuses_canonical_values_in_other_digits(name: str, value: str) -> None:
    inverse = build_inverse(name, {"country": "HK"})
    assert inverse is not None
    with pytest.raises(TransformError):
        inverse(value, {})
