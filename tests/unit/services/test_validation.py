"""assess(): every structural problem in one pass, and the materials still missing."""

from __future__ import annotations

import copy
import dataclasses
import json
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gateway.domain.documents import MESSAGES
from gateway.domain.matters import Material, MaterialRule, Matter, Names
from gateway.mapping.catalog import Catalog
from gateway.services.validation import assess

ROOT = Path(__file__).parents[3]
GOLDEN = ROOT / "tests" / "fixtures" / "documents" / "hk-individual-business.canonical.json"
MATTER = "11440400MB2C00081P4440120002000"
DIGEST = "sha-256=:R7qqQA6Z5bl826qGIRqaGz8YwH2fkweCuH6MyFfwdIs=:"


@pytest.fixture(scope="module")
def matter() -> Matter:
    return Catalog.load(ROOT / "mappings" / "matters").get(MATTER, date(2026, 3, 3))


@pytest.fixture
def document() -> dict[str, Any]:
    return json.loads(GOLDEN.read_text("utf-8"))


def _found(document: dict[str, Any], matter: Matter) -> list[tuple[str | None, str]]:
    return [(p.pointer, p.code) for p in assess(document, matter).problems]


def test_golden_document_has_no_problems_and_nothing_missing(
    document: dict[str, Any], matter: Matter
) -> None:
    assessment = assess(document, matter)

    assert assessment.problems == ()
    assert assessment.missing == ()


def test_assess_does_not_change_the_document(document: dict[str, Any], matter: Matter) -> None:
    before = copy.deepcopy(document)

    assess(document, matter)

    assert document == before


def test_without_the_commitment_premises_proof_is_missing(
    document: dict[str, Any], matter: Matter
) -> None:
    del document["commitments"]

    assessment = assess(document, matter)

    assert assessment.problems == ()
    assert assessment.missing == ("PREMISES_PROOF",)


def test_a_commitment_for_another_material_does_not_replace_premises_proof(
    document: dict[str, Any], matter: Matter
) -> None:
    document["commitments"] = [{"material": "APPLICATION_FORM"}]

    assert assess(document, matter).missing == ("PREMISES_PROOF",)


def test_provided_premises_proof_needs_no_commitment(
    document: dict[str, Any], matter: Matter
) -> None:
    del document["commitments"]
    document["materials"].append({"code": "PREMISES_PROOF", "digest": DIGEST})

    assessment = assess(document, matter)

    assert (assessment.problems, assessment.missing) == ((), ())


def test_without_the_application_form_it_is_missing(
    document: dict[str, Any], matter: Matter
) -> None:
    document["materials"] = [m for m in document["materials"] if m["code"] != "APPLICATION_FORM"]

    assessment = assess(document, matter)

    assert assessment.problems == ()
    assert assessment.missing == ("APPLICATION_FORM",)


def test_everything_missing_is_listed_at_once_in_catalog_order(
    document: dict[str, Any], matter: Matter
) -> None:
    del document["materials"]
    del document["commitments"]

    assessment = assess(document, matter)

    assert assessment.problems == ()
    assert assessment.missing == ("APPLICATION_FORM", "PREMISES_PROOF")


def test_material_obtained_by_data_sharing_is_never_missing(
    document: dict[str, Any], matter: Matter
) -> None:
    rules = {m.code: m.rule for m in matter.materials}
    assert rules["IDENTITY_PROOF"] is MaterialRule.BY_DATA_SHARING
    del document["materials"]
    del document["commitments"]

    assert assess(document, matter).missing == ("APPLICATION_FORM", "PREMISES_PROOF")


def test_golden_document_is_complete_without_the_shared_material(
    document: dict[str, Any], matter: Matter
) -> None:
    assert "IDENTITY_PROOF" not in [m["code"] for m in document["materials"]]
    assert "IDENTITY_PROOF" not in assess(document, matter).missing


def test_material_that_may_be_missing_is_not_reported_missing(
    document: dict[str, Any], matter: Matter
) -> None:
    later = Material("TENANCY", Names("租约", "租約", "Tenancy"), MaterialRule.MAY_BE_MISSING)
    lenient = dataclasses.replace(matter, materials=(*matter.materials, later))

    assessment = assess(document, lenient)

    assert assessment.missing == ()
    assert assessment.problems == ()


def test_every_structural_problem_is_reported_at_once(
    document: dict[str, Any], matter: Matter
) -> None:
    applicant = document["applicant"]
    del applicant["names"]
    applicant["birth_date"] = "1988-02-30"
    applicant["documents"][0]["number"] = "A1234564"  # check digit should be 3
    applicant["documents"][1]["type"] = "PASSPORT"
    document["materials"][0]["digest"] = "md5=abc"
    document["materials"].append({"code": "TAX_RETURN", "digest": DIGEST})
    document["particulars"]["favourite_colour"] = "blue"
    del document["particulars"]["business_scope"]

    problems = assess(document, matter).problems

    assert Counter((p.pointer, p.code) for p in problems) == Counter(
        [
            ("/applicant/names/original", "required"),
            ("/applicant/birth_date", "invalid_date"),
            ("/applicant/documents/0/number", "invalid_document"),
            ("/applicant/documents/1/type", "unknown_document_type"),
            ("/particulars/business_scope", "required"),
            ("/particulars/favourite_colour", "unexpected_field"),
            ("/materials/0/digest", "invalid_digest"),
            ("/materials/1/code", "unknown_material"),
        ]
    )
    assert all(p.message == MESSAGES[p.code] for p in problems)
    assert all(p.xpath is None for p in problems)


def test_problem_messages_speak_three_scripts_and_portuguese() -> None:
    for code, message in MESSAGES.items():
        assert set(message.as_dict()) == {"zh-Hant", "zh-Hans", "en", "pt"}, code
        assert message.zh_hant != message.en
        assert message.pt != message.en, code


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: d.pop("applicant"), [("/applicant", "required")]),
        (lambda d: d.__setitem__("applicant", "陳大文"), [("/applicant", "required")]),
        (
            lambda d: d["applicant"]["names"].__setitem__("original", "   "),
            [("/applicant/names/original", "required")],
        ),
        (lambda d: d["applicant"].pop("birth_date"), [("/applicant/birth_date", "required")]),
        (
            lambda d: d["applicant"].__setitem__("birth_date", "15/03/1988"),
            [("/applicant/birth_date", "invalid_date")],
        ),
        (
            lambda d: d["applicant"].__setitem__("documents", []),
            [("/applicant/documents", "no_identity_document")],
        ),
        (
            lambda d: d["applicant"]["documents"].__setitem__(1, "H12345678"),
            [("/applicant/documents/1", "wrong_type")],
        ),
        (
            lambda d: d["applicant"]["documents"][1].pop("number"),
            [("/applicant/documents/1/number", "invalid_document")],
        ),
        (lambda d: d.__setitem__("particulars", ["x"]), [("/particulars", "wrong_type")]),
        (
            lambda d: d.pop("particulars"),
            [
                ("/particulars/business_name", "required"),
                ("/particulars/business_address", "required"),
                ("/particulars/business_scope", "required"),
            ],
        ),
        (
            lambda d: d["particulars"].__setitem__("business_name", ""),
            [("/particulars/business_name", "required")],
        ),
        (lambda d: d.__setitem__("materials", {}), [("/materials", "wrong_type")]),
        (lambda d: d["materials"].append("form.pdf"), [("/materials/1", "wrong_type")]),
        (
            lambda d: d["materials"][0].pop("digest"),
            [("/materials/0/digest", "invalid_digest")],
        ),
    ],
    ids=[
        "no-applicant",
        "applicant-not-object",
        "blank-name",
        "no-birth-date",
        "birth-date-not-iso",
        "no-documents",
        "document-not-object",
        "document-without-number",
        "particulars-not-object",
        "no-particulars",
        "empty-required-particular",
        "materials-not-list",
        "material-not-object",
        "material-without-digest",
    ],
)
def test_single_problem_is_located_exactly(
    document: dict[str, Any],
    matter: Matter,
    change: Any,
    expected: list[tuple[str, str]],
) -> None:
    change(document)

    assert _found(document, matter) == expected


def test_optional_particulars_may_be_left_out(document: dict[str, Any], matter: Matter) -> None:
    del document["particulars"]["capital"]
    del document["particulars"]["employees"]

    assert _found(document, matter) == []


@pytest.mark.parametrize(
    "digest",
    [
        DIGEST,
        "sha-512=:" + "A" * 86 + "==:",
    ],
)
def test_rfc9530_digests_are_accepted(
    document: dict[str, Any], matter: Matter, digest: str
) -> None:
    document["materials"][0]["digest"] = digest

    assert _found(document, matter) == []


@pytest.mark.parametrize(
    "digest",
    [
        "sha-1=:R7qqQA6Z5bl826qGIRqaGz8YwH2=:",
        "sha-256=R7qqQA6Z5bl826qGIRqaGz8YwH2fkweCuH6MyFfwdIs=",
        "sha-256=:R7qq QA6Z:",
        "",
    ],
)
def test_other_digest_forms_are_refused(
    document: dict[str, Any], matter: Matter, digest: str
) -> None:
    document["materials"][0]["digest"] = digest

    assert _found(document, matter) == [("/materials/0/digest", "invalid_digest")]


@pytest.mark.parametrize("birth_date", ["19880315", "1988-W11-2"])
def test_birth_date_must_be_in_extended_iso_form(
    document: dict[str, Any], matter: Matter, birth_date: str
) -> None:
    document["applicant"]["birth_date"] = birth_date

    assert _found(document, matter) == [("/applicant/birth_date", "invalid_date")]
