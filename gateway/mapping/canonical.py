"""The canonical JSON form: strict parsing in, one envelope out."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from gateway.domain.documents import Decoded
from gateway.domain.errors import MalformedBodyError

CANONICAL_VERSION = "canonical-1"
JSON_TYPES = frozenset({"application/json"})


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
    """RFC 8259 JSON in UTF-8 without duplicate names, NaN or Infinity."""
    try:
        text = body.decode("utf-8")
        return json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except UnicodeDecodeError:
        raise MalformedBodyError("JSON must be UTF-8") from None
    except json.JSONDecodeError as exc:
        raise MalformedBodyError(
            f"JSON is not well-formed (line {exc.lineno}, column {exc.colno})"
        ) from None


def encode_envelope(document: Mapping[str, Any], envelope: Mapping[str, Any]) -> bytes:
    """A forwarded message: the envelope's fields plus the canonical ``application``."""
    return json.dumps({**envelope, "application": document}, ensure_ascii=False).encode()


class CanonicalCodec:
    """Applications already in the canonical model, from any jurisdiction."""

    jurisdiction = "canonical"
    media_types = JSON_TYPES

    def decode(self, body: bytes) -> Decoded:
        document = loads_strict(body)
        if not isinstance(document, dict):
            raise MalformedBodyError("a canonical application is a JSON object")
        return Decoded(document, CANONICAL_VERSION)

    def encode(self, document: Mapping[str, Any], envelope: Mapping[str, Any]) -> tuple[bytes, str]:
        return encode_envelope(document, envelope), "application/json"
