"""The legal basis an agency declares: its members checked, its header written and read."""

from __future__ import annotations

import http_sfv
import pytest

from gateway.domain.legal_basis import LegalBasis, LegalBasisProblems, declared

PIPL = LegalBasis(
    "《中华人民共和国个人信息保护法》", "第十三条第一款第三项", "为履行法定职责所必需"
)


@pytest.mark.parametrize(
    "basis",
    [
        PIPL,
        LegalBasis("Personal Data (Privacy) Ordinance (Cap. 486)", 's. 58(1)(d) "x" \\ %'),
        LegalBasis("Lei n.º 8/2005", "artigo 6.º", "Execução de uma obrigação legal"),
    ],
)
def test_the_header_reads_back_as_the_basis_it_declares(basis: LegalBasis) -> None:
    header = basis.header()
    assert header.isascii()
    parsed = http_sfv.Dictionary()
    parsed.parse(header.encode("ascii"))

    members = {name: str(item.value) for name, item in parsed.items()}

    assert LegalBasis.of(members, "/h") == basis


@pytest.mark.parametrize(
    ("members", "problems"),
    [
        ({"law": "PIPL"}, [("/h/article", "required")]),
        ({"law": " ", "article": "13"}, [("/h/law", "wrong_type")]),
        ({"law": "x" * 201, "article": "13"}, [("/h/law", "wrong_type")]),
        ({"law": "PIPL", "article": 13}, [("/h/article", "wrong_type")]),
        (
            {"law": "PIPL", "article": "13", "purpose": "x"},
            [("/h/purpose", "unexpected_field")],
        ),
        ({}, [("/h/law", "required"), ("/h/article", "required")]),
        ("PIPL 13", [("/h", "wrong_type")]),
    ],
)
def test_every_problem_of_a_basis_is_listed(
    members: object, problems: list[tuple[str, str]]
) -> None:
    with pytest.raises(LegalBasisProblems) as refused:
        LegalBasis.of(members, "/h")

    assert [(p.pointer, p.code) for p in refused.value.problems] == problems


def test_the_document_member_and_the_header_must_agree() -> None:
    member = {"legal_basis": PIPL.record()}

    assert declared(None, member) == (PIPL, [])
    assert declared(PIPL, member) == (PIPL, [])
    assert declared(PIPL, {}) == (PIPL, [])
    assert declared(None, {}) == (None, [])
    other = LegalBasis("PDPO", "s. 58")
    basis, problems = declared(other, member)
    assert basis is None
    assert [(p.pointer, p.code) for p in problems] == [("/legal_basis", "legal_basis_twice")]


def test_text_is_trimmed_to_one_line() -> None:
    basis = LegalBasis.of({"law": "  PIPL\n", "article": "13\t(1)"}, "/h")

    assert basis.record() == {"law": "PIPL", "article": "13 (1)"}
