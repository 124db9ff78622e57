"""The canonical JSON form: strict parsing and JSON Schema validation in, one envelope out.

``mappings/schemas/canonical-application.schema.json`` describes the canonical application;
every violation is reported (JSON pointer, code, message in three scripts), not the first,
and together with the business-rule problems of the use case.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

from gateway.domain.documents import Decoded, problem
from gateway.domain.errors import FieldProblem, MalformedBodyError

CANONICAL_VERSION = "canonical-1"
JSON_TYPES = frozenset({"application/json"})
CANONICAL_SCHEMA = "canonical-application.schema.json"
_CODES = {"required": "required", "additionalProperties": "unexpected_field", "type": "wrong_type"}


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise MalformedBodyError("JSON with a duplicate member name is refused")
        out[key] = value
    return out


def _no_constants(name: str) -> None:
    raise MalformedBodyError(f"JSON value {name} is not allowed")


def loads_strict(body: bytes) -> Any:
    """RFC 8259 JSON in UTF-8 without duplicate names, NaN or Infinity.

    :raises MalformedBodyError: anything else, arrays and objects nested deeper than the
        interpreter's recursion limit included.
    """
    try:
        text = body.decode("utf-8")
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise MalformedBodyError("JSON must be UTF-8") from None
    except json.JSONDecodeError as exc:
        raise MalformedBodyError(
            f"JSON is not well-formed (line {exc.lineno}, column {exc.colno})"
        ) from None
    except RecursionError:  # json's C scanner recurses once per nested array or object
        raise MalformedBodyError("JSON is nested too deeply") from None


def json_digest(document: Mapping[str, Any]) -> str:
    """RFC 9530-form SHA-256 of a JSON document in its one serialisation (sorted members,
    no insignificant whitespace, UTF-8): what a receiver recomputes from what it parsed."""
    data = json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "sha-256=:" + base64.b64encode(hashlib.sha256(data.encode()).digest()).decode() + ":"


def encode_envelope(
    document: Mapping[str, Any], envelope: Mapping[str, Any], output_format: str = "canonical"
) -> bytes:
    """A forwarded message: the envelope's fields plus the canonical ``application``; the
    translation record names the output format and the digest of ``application``."""
    translation = {
        **envelope.get("translation", {}),
        "output_format": output_format,
        "output_digest": json_digest(document),
    }
    message = {**envelope, "translation": translation, "application": document}
    return json.dumps(message, ensure_ascii=False).encode()


@lru_cache(maxsize=8)
def schema_validator(
    schemas_dir: Path, name: str, also: tuple[Path, ...] = ()
) -> jsonschema.Draft202012Validator:
    """A compiled validator for one of the reviewed schemas (the others of ``schemas_dir`` and
    of the folders ``also``, such as the canonical ones a jurisdiction's refers to, resolvable
    by $id)."""
    resources = []
    for path in sorted(p for d in (schemas_dir, *also) for p in d.glob("*.schema.json")):
        contents = json.loads(path.read_text("utf-8"))
        resources.append((contents["$id"], Resource.from_contents(contents)))
    registry: Registry = Registry().with_resources(resources)
    schema = json.loads((schemas_dir / name).read_text("utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _pointer(parts: Iterable[Any]) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def schema_problems(
    validator: jsonschema.Draft202012Validator, instance: Any
) -> list[FieldProblem]:
    """Every schema violation as a problem at the member it concerns."""
    problems = []
    for error in validator.iter_errors(instance):
        where = _pointer(error.absolute_path)
        if error.validator == "required":
            present = error.instance if isinstance(error.instance, dict) else {}
            problems += [
                problem(f"{where}/{name}", "required")
                for name in error.validator_value
                if name not in present
            ]
        elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
            allowed = set(error.schema.get("properties", {}))
            problems += [
                problem(f"{where}/{name}", "unexpected_field")
                for name in error.instance
                if name not in allowed
            ]
        else:
            problems.append(problem(where, _CODES.get(str(error.validator), "invalid_value")))
    return sorted(set(problems), key=lambda p: (p.pointer or "", p.code))


class CanonicalCodec:
    """Applications already in the canonical model, from any jurisdiction."""

    jurisdiction = "canonical"
    media_types = JSON_TYPES

    def __init__(self, schemas_dir: Path | None = None) -> None:
        self._validator = schema_validator(schemas_dir, CANONICAL_SCHEMA) if schemas_dir else None

    def decode(self, body: bytes) -> Decoded:
        document = loads_strict(body)
        if not isinstance(document, dict):
            raise MalformedBodyError("a canonical application is a JSON object")
        found = schema_problems(self._validator, document) if self._validator else []
        return Decoded(document, CANONICAL_VERSION, tuple(found))

    def encode(self, document: Mapping[str, Any], envelope: Mapping[str, Any]) -> tuple[bytes, str]:
        """The JSON message of ``guangdong-message.schema.json`` (Guangdong's own format, and
        what an agency that receives ``canonical`` gets)."""
        return encode_envelope(document, envelope, self.jurisdiction), "application/json"
