"""The JSON Schema of each matter's canonical application, built from the catalog."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from gateway.domain.matters import Matter
from gateway.mapping.catalog import Catalog
from gateway.mapping.matter_schema import MatterSchemas, matter_schema
from gateway.sandbox.personas import persona
from gateway.sandbox.samples import canonical_sample
from gateway.services.validation import assess

ROOT = Path(__file__).parents[3]
CATALOG = Catalog.load(ROOT / "mappings" / "matters")
ON = date(2026, 6, 1)
MATTERS = {str(m.code): m for m in CATALOG.all(ON)}
BUSINESS = "11440400MB2C00081P4440120002000"  # text, address, money, integer particulars
RESIDENCE = "11440100MB2C0002124440700001000"  # a date and a code list


@pytest.fixture(scope="module")
def schemas() -> MatterSchemas:
    return MatterSchemas.load(ROOT / "mappings" / "schemas")


def _sample(code: str) -> dict[str, Any]:
    return canonical_sample(MATTERS[code], persona("chan-tai-man"))


def _errors(schemas: MatterSchemas, code: str, document: dict[str, Any]) -> list[str]:
    validator = schemas.validator(MATTERS[code])
    return sorted(
        "/" + "/".join(map(str, e.absolute_path)) for e in validator.iter_errors(document)
    )


@pytest.mark.parametrize("code", sorted(MATTERS))
def test_every_shipped_sample_validates_against_its_matter_schema(
    schemas: MatterSchemas, code: str
) -> None:
    for name in ("chan-tai-man", "lei-sio-meng", "zhang-wei"):
        document = canonical_sample(MATTERS[code], persona(name))
        assert _errors(schemas, code, document) == [], name


@pytest.mark.parametrize("code", sorted(MATTERS))
def test_the_schema_is_versioned_2020_12_and_requires_the_matters_particulars(
    schemas: MatterSchemas, code: str
) -> None:
    matter = MATTERS[code]
    published = schemas.published(matter)
    schema = json.loads(published.content)

    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == published.id == f"urn:gba:matter:{code}:{matter.version}"
    assert published.media_type == "application/schema+json"
    assert schema["properties"]["matter"]["const"] == code
    particulars = schema["properties"]["particulars"]
    assert particulars["additionalProperties"] is False
    assert list(particulars["properties"]) == [p.name for p in matter.particulars]
    assert particulars.get("required", []) == [p.name for p in matter.particulars if p.required]
    for p in matter.particulars:
        field = particulars["properties"][p.name]
        assert p.labels is not None
        assert field["title"] == p.labels.en
        assert field["x-labels"] == p.labels.as_dict()
        assert field["x-kind"] == p.kind


def test_kinds_become_types(schemas: MatterSchemas) -> None:
    fields = json.loads(schemas.published(MATTERS[BUSINESS]).content)["properties"]["particulars"]
    business = fields["properties"]
    assert business["capital"]["$ref"] == "#/$defs/money"
    assert business["business_address"]["$ref"] == "#/$defs/address"
    assert business["employees"] == {**business["employees"], "type": "string"}
    assert business["employees"]["pattern"] == "^[0-9]{1,9}$"
    fields = json.loads(schemas.published(MATTERS[RESIDENCE]).content)["properties"]["particulars"]
    residence = fields["properties"]
    assert residence["residence_since"]["format"] == "date"
    assert residence["residence_condition"]["enum"] == ["employment", "residence", "study"]


WRONG = [
    (BUSINESS, "employees", 3),
    (BUSINESS, "employees", "three"),
    (BUSINESS, "capital", "50000"),
    (BUSINESS, "capital", {"amount": "5e4", "currency": "CNY"}),
    (BUSINESS, "capital", {"amount": "50000.00", "currency": "USD"}),
    (BUSINESS, "business_address", "横琴示例大道 88 号"),
    (BUSINESS, "business_address", {"text": "横琴", "floor": "1"}),
    (BUSINESS, "business_scope", ["餐飲服務"]),
    (RESIDENCE, "residence_since", "2026-02-30"),
    (RESIDENCE, "residence_since", "28/02/2026"),
    (RESIDENCE, "residence_condition", "holiday"),
]


@pytest.mark.parametrize(("code", "name", "value"), WRONG)
def test_a_wrong_value_fails_the_schema_and_assess_alike(
    schemas: MatterSchemas, code: str, name: str, value: Any
) -> None:
    """The schema a portal validates with and the gateway's own check say the same."""
    document = _sample(code)
    document["particulars"][name] = value

    assert _errors(schemas, code, document), (name, value)
    pointers = [p.pointer or "" for p in assess(document, MATTERS[code]).problems]
    assert pointers, (name, value)
    assert all(p.startswith(f"/particulars/{name}") for p in pointers)


def test_an_unknown_or_missing_particular_fails_the_schema(schemas: MatterSchemas) -> None:
    document = _sample(BUSINESS)
    document["particulars"]["favourite_colour"] = "red"
    del document["particulars"]["business_name"]

    errors = list(schemas.validator(MATTERS[BUSINESS]).iter_errors(document))
    assert sorted(e.validator for e in errors) == ["additionalProperties", "required"]


def test_the_canonical_schema_is_not_changed_and_each_version_is_built_once(
    schemas: MatterSchemas,
) -> None:
    canonical = json.loads(
        (ROOT / "mappings/schemas/canonical-application.schema.json").read_text()
    )
    before = copy.deepcopy(canonical)
    matter_schema(MATTERS[BUSINESS], canonical)
    assert canonical == before
    assert schemas.published(MATTERS[BUSINESS]) is schemas.published(MATTERS[BUSINESS])
    assert schemas.validator(MATTERS[BUSINESS]) is schemas.validator(MATTERS[BUSINESS])


def test_a_new_matter_version_is_a_new_schema(schemas: MatterSchemas) -> None:
    matter: Matter = MATTERS[BUSINESS]
    fields = {name: getattr(matter, name) for name in Matter.__dataclass_fields__}
    newer = Matter(**{**fields, "version": 2, "particulars": matter.particulars[:3]})

    first, second = schemas.published(matter), schemas.published(newer)
    assert second.id == f"urn:gba:matter:{BUSINESS}:2"
    assert first.digest != second.digest
