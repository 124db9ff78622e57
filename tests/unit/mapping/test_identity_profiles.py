"""Each jurisdiction's identity profile: its provider's claims -> the canonical identity."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from adapters.guangdong.identity import PROFILE as GUANGDONG
from adapters.hk.identity import PROFILE as HK
from adapters.macau.identity import PROFILE as MACAU
from gateway.domain.errors import InsufficientAssuranceError, LoginFailedError
from gateway.domain.matters import Assurance
from gateway.domain.values import DocumentType

ISSUER = "https://idp.example"


def hk_claims(**changes: Any) -> dict[str, Any]:
    claims = {
        "sub": "TA0000",
        "acr": "iamsmart",
        "idNo": {"Identification": "A123456", "CheckDigit": "3"},
        "enName": {"UnstructuredName": "CHAN, Tai Man"},
        "chName": {"ChineseName": "陳大文"},
        "birthDate": "19880315",
        "gender": "M",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def test_iam_smart_claims_become_a_canonical_identity_in_both_scripts() -> None:
    identity = HK.identity(hk_claims(), issuer=ISSUER)

    assert identity.provider == "hk"
    assert identity.subject == "TA0000"
    assert identity.assurance is Assurance.SUBSTANTIAL
    assert identity.birth_date == date(1988, 3, 15)
    assert [(d.type, d.number, d.issuer) for d in identity.documents] == [
        (DocumentType.HKID, "A1234563", "HK")
    ]
    names = identity.names
    assert (names.original, names.zh_hant, names.zh_hans) == ("陳大文", "陳大文", "陈大文")
    assert (names.family_name_latin, names.given_names_latin) == ("CHAN", "Tai Man")


def test_an_iam_smart_plus_company_representative_carries_the_business() -> None:
    identity = HK.identity(
        hk_claims(acr="iamsmart+", orgProfile={"brNo": "12345678", "enName": "Sample Ltd"}),
        issuer=ISSUER,
    )

    assert identity.assurance is Assurance.HIGH
    assert identity.organisation is not None
    assert identity.organisation.document.type is DocumentType.HK_BRN
    assert identity.applicant()["documents"] == [
        {"type": "HKID", "number": "A123456(3)", "issuer": "HK"}
    ]


@pytest.mark.parametrize("acr", [None, "", "iamsmart-premium"])
def test_a_missing_or_unknown_acr_is_refused(acr: str | None) -> None:
    with pytest.raises(InsufficientAssuranceError):
        HK.identity(hk_claims(acr=acr), issuer=ISSUER)


def test_every_unreadable_claim_is_named_in_one_refusal() -> None:
    with pytest.raises(LoginFailedError) as caught:
        HK.identity(
            hk_claims(idNo={"Identification": "A123456", "CheckDigit": "4"}, birthDate="1988"),
            issuer=ISSUER,
        )

    assert "idNo" in caught.value.detail
    assert "birthDate" in caught.value.detail


def test_one_account_claims_carry_the_bir_and_the_mainland_documents() -> None:
    identity = MACAU.identity(
        {
            "sub": "MO-1",
            "acr": "mo:loa:2",
            "bir_no": "1234567(8)",
            "name_zh": "李小明",
            "name_pt": "LEI SIO MENG",
            "birthdate": "1992-07-07",
            "hrp_no": "M87654321",
            "rp_no": "820000199207070465",
        },
        issuer=ISSUER,
    )

    assert [d.type.value for d in identity.documents] == ["MO_BIR", "HRP", "RESIDENCE_PERMIT"]
    assert identity.names.latin == "LEI SIO MENG"
    assert identity.assurance is Assurance.SUBSTANTIAL


def test_a_guangdong_login_of_a_hk_resident_brings_the_bound_hkid() -> None:
    identity = GUANGDONG.identity(
        {
            "sub": "GD-1",
            "acr": "gd:loa:2",
            "cert_type": "HK_MO_RESIDENCE_PERMIT",
            "cert_no": "810000198803150123",
            "name": "陈大文",
            "birthdate": "1988-03-15",
            "hrp_no": "H12345678",
            "bound_ids": [{"idp": "iamsmart", "id_type": "HKID", "id_no": "A123456(3)"}],
        },
        issuer=ISSUER,
    )

    assert [d.type.value for d in identity.documents] == ["RESIDENCE_PERMIT", "HRP"]
    assert [d.type.value for d in identity.bound_documents] == ["HKID"]
    assert (identity.names.zh_hans, identity.names.zh_hant) == ("陈大文", "陳大文")


def test_a_guangdong_company_representative_carries_the_uscc() -> None:
    identity = GUANGDONG.identity(
        {
            "sub": "GD-2",
            "acr": "gd:loa:3",
            "cert_type": "ID_CARD",
            "cert_no": "440106199002140047",
            "name": "李娜",
            "birthdate": "1990-02-14",
            "org": {"uscc": "91440300MA5GBA001A", "name": "深圳示例科技有限公司"},
        },
        issuer=ISSUER,
    )

    assert identity.organisation is not None
    assert identity.organisation.document.type is DocumentType.USCC
    assert identity.assurance is Assurance.HIGH


@pytest.mark.parametrize(
    "changes",
    [
        {"cert_type": "PASSPORT"},
        {"cert_no": "440106199002140048"},  # wrong MOD 11-2 check
        {"bound_ids": [{"id_type": "HKID", "id_no": "A123456(4)"}]},
        {"bound_ids": "A123456(3)"},
    ],
)
def test_bad_guangdong_claims_are_refused(changes: dict[str, Any]) -> None:
    claims = {
        "sub": "GD-2",
        "acr": "gd:loa:3",
        "cert_type": "ID_CARD",
        "cert_no": "440106199002140047",
        "name": "李娜",
        "birthdate": "1990-02-14",
        **changes,
    }
    with pytest.raises(LoginFailedError):
        GUANGDONG.identity(claims, issuer=ISSUER)
