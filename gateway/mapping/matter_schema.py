"""The JSON Schema (2020-12) of one matter's canonical application, built from the catalog.

It is the canonical schema (``canonical-application.schema.json``) with ``matter`` fixed to the
matter's code and ``particulars`` specialised: one property per particular, typed by its kind
with the rules of :mod:`gateway.domain.particulars` (a date is ``format: date`` with its
pattern, money and an address refer to the canonical ``$defs``, an integer is a string of
digits, a code list is an ``enum``), titled by its English label with every label in the
``x-labels`` annotation and its kind in ``x-kind``; the required ones listed, nothing else
allowed. Its ``$id`` is ``urn:gba:matter:<code>:<version>``: a new matter version is a new
schema.

A portal builds its form from it; a partner validates with standard tools. Each schema is
built once per matter version and kept, with its bytes and digest (:class:`MatterSchemas`).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import jsonschema

from gateway.domain import particulars as kinds
from gateway.domain.matters import Matter, Particular
from gateway.mapping.canonical import CANONICAL_SCHEMA
from gateway.mapping.published import JSON_SCHEMA, PublishedSchema

ID_PREFIX = "urn:gba:matter:"


def particular_schema(particular: Particular) -> dict[str, Any]:
    """The schema of one particular's value, by its kind."""
    kind = particular.kind
    if kind == "money":
        out: dict[str, Any] = {"$ref": "#/$defs/money"}
    elif kind == "address":
        out = {"$ref": "#/$defs/address"}
    elif kind == "date":
        out = {"type": "string", "format": "date", "pattern": kinds.DATE_PATTERN}
    elif kind == "integer":
        out = {"type": "string", "pattern": kinds.INTEGER_PATTERN}
    elif particular.values:
        out = {"type": "string", "enum": list(particular.values)}
    else:
        out = {"type": "string", "maxLength": kinds.TEXT_MAX_LENGTH}
    out["x-kind"] = kind
    if particular.labels is not None:
        out["title"] = particular.labels.en
        out["x-labels"] = particular.labels.as_dict()
    return out


def matter_schema(matter: Matter, canonical: dict[str, Any]) -> dict[str, Any]:
    """The canonical schema specialised for ``matter`` (``canonical`` is not changed)."""
    schema = copy.deepcopy(canonical)
    code = str(matter.code)
    schema["$id"] = f"{ID_PREFIX}{code}:{matter.version}"
    schema["title"] = f"{matter.names.en} (matter {code}, version {matter.version})"
    schema["description"] = (
        f"The canonical application ({canonical.get('$id')}) for this matter: its particulars "
        "typed by kind, the required ones listed, nothing else accepted."
    )
    schema["x-names"] = matter.names.as_dict()
    properties = schema["properties"]
    properties["matter"] = {**properties["matter"], "const": code}
    particulars: dict[str, Any] = {
        "type": "object",
        "properties": {p.name: particular_schema(p) for p in matter.particulars},
        "additionalProperties": False,
    }
    required = [p.name for p in matter.particulars if p.required]
    if required:
        particulars["required"] = required
        schema["required"] = [*schema.get("required", []), "particulars"]
    properties["particulars"] = particulars
    return schema


class MatterSchemas:
    """Each matter version's schema, built and checked on first use and kept."""

    def __init__(self, canonical: dict[str, Any]) -> None:
        self._canonical = canonical
        self._published: dict[tuple[str, int], PublishedSchema] = {}
        self._validators: dict[tuple[str, int], jsonschema.Draft202012Validator] = {}

    @classmethod
    def load(cls, schemas_dir: Path) -> MatterSchemas:
        return cls(json.loads((schemas_dir / CANONICAL_SCHEMA).read_text("utf-8")))

    def published(self, matter: Matter) -> PublishedSchema:
        key = (str(matter.code), matter.version)
        found = self._published.get(key)
        if found is None:
            schema = matter_schema(matter, self._canonical)
            jsonschema.Draft202012Validator.check_schema(schema)
            content = json.dumps(schema, ensure_ascii=False, indent=2).encode()
            digest = base64.b64encode(hashlib.sha256(content).digest()).decode()
            found = PublishedSchema(
                name=f"{key[0]}/schema",
                kind="json-schema",
                media_type=JSON_SCHEMA,
                id=schema["$id"],
                version=matter.version,
                title=schema["title"],
                digest=f"sha-256=:{digest}:",
                content=content,
            )
            self._published[key] = found
        return found

    def validator(self, matter: Matter) -> jsonschema.Draft202012Validator:
        """A compiled validator of the matter's schema, with format checks (dates)."""
        key = (str(matter.code), matter.version)
        found = self._validators.get(key)
        if found is None:
            schema = json.loads(self.published(matter).content)
            checker = jsonschema.Draft202012Validator.FORMAT_CHECKER
            found = jsonschema.Draft202012Validator(schema, format_checker=checker)
            self._validators[key] = found
        return found
