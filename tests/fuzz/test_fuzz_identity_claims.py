"""Identity providers' claims (adapters/*/identity.py, gateway/mapping/identity.py) of any shape.

Each jurisdiction's profile turns its provider's claims into a canonical identity, or refuses
the login with ``LoginFailedError`` (claims it cannot use, every one named) or
``InsufficientAssuranceError`` (a missing or unknown ``acr``), nothing else. Claims are drawn
from genuine ones with members replaced by any JSON value. A birth date is the whole claim in
``YYYYMMDD`` or ``YYYY-MM-DD`` (trailing text and ISO week dates used to be read as dates).
``tests/unit/mapping/test_identity_profiles.py`` holds the examples.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from adapters.guangdong.identity import PROFILE as GUANGDONG
from adapters.hk.identity import PROFILE as HK
from adapters.macau.identity import PROFILE as MACAU
from gateway.domain.errors import InsufficientAssuranceError, LoginFailedError
from gateway.domain.identity import CanonicalIdentity
from gateway.mapping.identity import ClaimReader, IdentityProfile
from tests.fuzz.conftest import examples

ISSUER = "https://idp.example"
GENUINE: dict[str, dict[str, Any]] = {
    "hk": {
        "sub": "TA0000",
        "acr": "iamsmart",
        "idNo": {"Identification": "A123456", "CheckDigit": "3"},
        "enName": {"UnstructuredName": "CHAN, Tai Man"},
        "chName": {"ChineseName": "陳大文"},
        "birthDate": "19880315",
        "orgProfile": {"brNo": "12345678", "enName": "Sample Ltd"},
    },
    "macau": {
        "sub": "MO-1",
        "acr": "mo:loa:2",
        "bir_no": "1234567(8)",
        "name_zh": "李小明",
        "name_pt": "LEI SIO MENG",
        "birthdate": "1992-07-07",
        "hrp_no": "M87654321",
        "rp_no": "820000199207070465",
    },
    "guangdong": {
        "sub": "GD-1",
        "acr": "gd:loa:2",
        "cert_type": "HK_MO_RESIDENCE_PERMIT",
        "cert_no": "810000198803150123",
        "name": "陈大文",
        "birthdate": "1988-03-15",
        "hrp_no": "H12345678",
        "bound_ids": [{"idp": "iamsmart", "id_type": "HKID", "id_no": "A123456(3)"}],
        "org": {"uscc": "91440300MA5GBA001A", "name": "深圳示例科技有限公司"},
    },
}
PROFILES: dict[str, IdentityProfile] = {"hk": HK, "macau": MACAU, "guangdong": GUANGDONG}

# Hashable scalars only where a profile looks a value up in a table: a list there is the
# known bug below (adapters/guangdong/identity.py), kept out of the fuzzing until it is fixed.
scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
plausible = st.sampled_from(
    [
        "",
        " ",
        "1988-03-15",
        "19880315",
        "19880315x",
        "1988-W11-2",
        "1988-0315",
        "A123456",
        "3",
        "HKID",
        "MO_BIR",
        "ID_CARD",
        "iamsmart+",
        "gd:loa:3",
        "mo:loa:1",
    ]
)


@st.composite
def claims_of(draw: st.DrawFn, provider: str) -> dict[str, Any]:
    claims = dict(GENUINE[provider])
    for name in draw(st.lists(st.sampled_from([*claims, "extra"]), max_size=4)):
        choice = draw(st.integers(min_value=0, max_value=3))
        if choice == 0:
            claims.pop(name, None)
        elif choice == 1:
            claims[name] = draw(plausible)
        elif name == "bound_ids":
            claims[name] = draw(
                st.lists(
                    st.fixed_dictionaries(
                        {},
                        optional={"id_type": scalars | plausible, "id_no": json_values | plausible},
                    )
                    | scalars,
                    max_size=3,
                )
                | scalars
            )
        else:
            claims[name] = draw(json_values)
    return claims


@pytest.mark.parametrize("provider", list(PROFILES))
@settings(max_examples=examples(200))
@given(data=st.data())
def test_any_claims_are_an_identity_or_a_refused_login(provider: str, data: st.DataObject) -> None:
    claims = data.draw(claims_of(provider))
    try:
        identity = PROFILES[provider].identity(claims, issuer=ISSUER)
    except (LoginFailedError, InsufficientAssuranceError):
        return
    assert isinstance(identity, CanonicalIdentity)
    assert identity.provider == provider
    assert identity.documents
    assert identity.names.original.strip()


@settings(max_examples=examples(200))
@given(value=st.text(max_size=12) | plausible | st.dates().map(date.isoformat))
@example(value="19880315x")  # the trailing "x" was dropped: read as 1988-03-15
@example(value="1988-W11-2")  # an ISO week date: date.fromisoformat reads it
@example(value="1988-0315")
@example(value="١٩٨٨٠٣١٥")  # digits that are not ASCII
def test_a_birth_date_is_the_whole_claim_in_one_of_two_forms(value: str) -> None:
    reader = ClaimReader("hk", {})
    born = reader.birth_date(value, "birthDate")
    if born is None:
        assert reader.problems == ["claim birthDate is not a date"]
    else:
        assert value in (born.strftime("%Y%m%d"), born.isoformat())
        assert reader.problems == []


def test_a_guangdong_bound_id_whose_type_is_not_text_is_refused() -> None:
    claims = {**GENUINE["guangdong"], "bound_ids": [{"id_type": ["HKID"], "id_no": "A123456(3)"}]}
    with pytest.raises(LoginFailedError, match="bound_ids"):
        GUANGDONG.identity(claims, issuer=ISSUER)
