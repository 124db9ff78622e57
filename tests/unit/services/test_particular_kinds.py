"""assess(): every particular checked against its kind and code list, every problem at once."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from gateway.domain import particulars as kinds
from gateway.domain.matters import Matter, Names, Particular
from gateway.mapping.catalog import Catalog
from gateway.services.validation import assess

ROOT = Path(__file__).parents[3]
GOLDEN = ROOT / "tests" / "fixtures" / "documents" / "hk-individual-business.canonical.json"
CANONICAL = ROOT / "mappings" / "schemas" / "canonical-application.schema.json"
LABELS = Names("标签", "標籤", "Label", "Etiqueta")


@pytest.fixture(scope="module")
def matter() -> Matter:
    """The individual-business matter with a date and a code-list particular added."""
    catalog = Catalog.load(ROOT / "mappings" / "matters")
    base = catalog.get("11440400MB2C00081P4440120002000", date(2026, 3, 3))
    extra = (
        Particular("opening_date", False, "date", LABELS),
        Particular("premises_kind", False, "text", LABELS, ("owned", "leased")),
    )
    return Matter(**{**_fields(base), "particulars": base.particulars + extra})


def _fields(matter: Matter) -> dict[str, Any]:
    return {name: getattr(matter, name) for name in Matter.__dataclass_fields__}


def _problems(matter: Matter, **particulars: Any) -> list[tuple[str | None, str]]:
    document = json.loads(GOLDEN.read_text("utf-8"))
    document["particulars"].update(particulars)
    return [(p.pointer, p.code) for p in assess(document, matter).problems]


def test_the_golden_particulars_are_of_their_kinds(matter: Matter) -> None:
    assert _problems(matter) == []
    assert _problems(matter, opening_date="2026-02-28", premises_kind="leased") == []


@pytest.mark.parametrize(
    ("name", "value", "code", "where"),
    [
        ("opening_date", "2026-02-30", "invalid_date", ""),  # not a real day
        ("opening_date", "28/02/2026", "invalid_date", ""),
        ("opening_date", "20260228", "invalid_date", ""),
        ("opening_date", 20260228, "wrong_type", ""),
        ("employees", "three", "invalid_value", ""),
        ("employees", "-3", "invalid_value", ""),
        ("employees", 3, "wrong_type", ""),
        ("premises_kind", "rented", "unknown_code", ""),
        ("business_scope", "x" * (kinds.TEXT_MAX_LENGTH + 1), "invalid_value", ""),
        ("business_scope", ["餐飲服務"], "wrong_type", ""),
        ("capital", "50000", "wrong_type", ""),
        ("capital", {"amount": "5e4", "currency": "CNY"}, "invalid_amount", "/amount"),
        ("capital", {"amount": 50000, "currency": "CNY"}, "invalid_amount", "/amount"),
        ("capital", {"amount": "50000.00", "currency": "USD"}, "unknown_code", "/currency"),
        ("capital", {"amount": "50000.00"}, "required", "/currency"),
        ("business_address", "横琴示例大道 88 号", "wrong_type", ""),
        ("business_address", {"text": "横琴", "floor": "1"}, "unexpected_field", "/floor"),
        ("business_address", {"area_code": "4404"}, "invalid_value", "/area_code"),
        ("business_address", {"jurisdiction": "TW"}, "unknown_code", "/jurisdiction"),
    ],
)
def test_a_value_not_of_its_kind_is_located_exactly(
    matter: Matter, name: str, value: Any, code: str, where: str
) -> None:
    assert _problems(matter, **{name: value}) == [(f"/particulars/{name}{where}", code)]


def test_every_kind_problem_is_reported_at_once(matter: Matter) -> None:
    found = _problems(
        matter,
        opening_date="2026-13-01",
        employees="3.5",
        premises_kind="bought",
        capital={"amount": "1,000", "currency": "EUR", "note": "x"},
    )

    assert sorted(found) == [
        ("/particulars/capital/amount", "invalid_amount"),
        ("/particulars/capital/currency", "unknown_code"),
        ("/particulars/capital/note", "unexpected_field"),
        ("/particulars/employees", "invalid_value"),
        ("/particulars/opening_date", "invalid_date"),
        ("/particulars/premises_kind", "unknown_code"),
    ]


def test_the_kind_rules_are_those_of_the_canonical_schema() -> None:
    """Money and addresses: the constants the check uses say what the published $defs say."""
    defs = json.loads(CANONICAL.read_text("utf-8"))["$defs"]
    money, address = defs["money"]["properties"], defs["address"]["properties"]

    assert money["amount"]["pattern"] == kinds.AMOUNT_PATTERN
    assert tuple(money["currency"]["enum"]) == kinds.CURRENCIES
    assert set(address) == {*kinds.ADDRESS_MEMBERS, "area_code", "jurisdiction"}
    for name, longest in kinds.ADDRESS_MEMBERS.items():
        assert address[name]["maxLength"] == longest
    assert address["area_code"]["pattern"] == kinds.AREA_CODE_PATTERN
    assert tuple(address["jurisdiction"]["enum"]) == kinds.ADDRESS_JURISDICTIONS
