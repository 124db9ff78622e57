"""What each sandbox identity provider says about each persona (the claim contract)."""

from __future__ import annotations

import pytest

from gateway.domain.values import DocumentType, normalise_document_number
from gateway.sandbox.idp.profiles import profiles
from gateway.sandbox.personas import PERSONAS, persona

PROFILES = profiles()


def test_every_persona_document_number_is_valid() -> None:
    for p in PERSONAS:
        for doc_type, number in p.documents:
            assert normalise_document_number(DocumentType(doc_type), number)
        if p.organisation is not None:
            org = p.organisation
            assert normalise_document_number(DocumentType(org.id_type), org.number)


@pytest.mark.parametrize(
    ("persona_id", "expected"),
    [
        ("chan-tai-man", ("hk", "guangdong")),
        ("lei-sio-meng", ("macau", "guangdong")),
        ("zhang-wei", ("guangdong",)),
        ("wong-siu-ming", ("hk",)),
        ("ho-ka-yan", ("hk",)),
        ("li-na", ("guangdong",)),
        ("leung-mei-ling", ("hk",)),
    ],
)
def test_where_each_persona_logs_in(persona_id: str, expected: tuple[str, ...]) -> None:
    assert persona(persona_id).providers() == expected
    assert persona(persona_id).summary()["providers"] == list(expected)


def test_acr_follows_the_personas_own_assurance_at_every_provider() -> None:
    assert PROFILES["hk"].acr_for(persona("wong-siu-ming")) == "iamsmart:basic"
    assert PROFILES["hk"].acr_for(persona("chan-tai-man")) == "iamsmart"
    assert PROFILES["hk"].acr_for(persona("ho-ka-yan")) == "iamsmart+"
    assert PROFILES["macau"].acr_for(persona("lei-sio-meng")) == "mo:loa:2"
    assert PROFILES["guangdong"].acr_for(persona("lei-sio-meng")) == "gd:loa:2"
    assert PROFILES["guangdong"].acr_for(persona("zhang-wei")) == "gd:loa:3"


def test_hk_subject_is_pairwise_and_the_others_are_stable() -> None:
    hk, chan = PROFILES["hk"], persona("chan-tai-man")
    assert hk.subject(chan, "rp-a") != hk.subject(chan, "rp-b")
    assert hk.subject(chan, "rp-a") == hk.subject(chan, "rp-a")
    assert len(hk.subject(chan, "rp-a")) == 26
    macau = PROFILES["macau"].subject(persona("lei-sio-meng"), "rp-a")
    assert macau == PROFILES["macau"].subject(persona("lei-sio-meng"), "rp-b")
    assert macau.startswith("MO-")
    assert len(macau) == 11
    gd = {PROFILES["guangdong"].subject(p, "rp") for p in PERSONAS}
    assert len(gd) == len(PERSONAS)


def test_macau_profile_omits_permits_not_held() -> None:
    claims = PROFILES["macau"].profile(persona("lei-sio-meng"))
    assert claims == {
        "bir_no": "1234567(8)",
        "name_zh": "李小明",
        "name_pt": "LEI SIO MENG",
        "birthdate": "1992-07-07",
        "hrp_no": "M87654321",
        "rp_no": "820000199207070465",
    }


def test_guangdong_names_are_simplified_with_opencc_hk2s() -> None:
    assert PROFILES["guangdong"].profile(persona("wong-siu-ming"))["name"] == "黄小明"
    assert PROFILES["guangdong"].profile(persona("chan-tai-man"))["name"] == "陈大文"
    assert PROFILES["guangdong"].profile(persona("zhang-wei"))["name"] == "张伟"


def test_only_a_company_representative_gets_an_organisation() -> None:
    assert "orgProfile" not in PROFILES["hk"].profile(persona("leung-mei-ling"))
    assert PROFILES["hk"].profile(persona("ho-ka-yan"))["orgProfile"]["brNo"] == "12345678"
    assert "org" not in PROFILES["guangdong"].profile(persona("zhang-wei"))
    assert PROFILES["guangdong"].profile(persona("li-na"))["org"]["uscc"] == ("91440300MA5GBA001A")
