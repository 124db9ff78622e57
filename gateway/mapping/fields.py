"""Declarative field mappings: native XML -> canonical application.

A mapping file in ``mappings/fields/`` names, for each canonical field (a JSON pointer), the
XPath it comes from and the transform applied (:mod:`gateway.mapping.transforms`). Lists
(identity documents, materials) map each matching element through relative fields. Every
XPath is compiled once at load; a document is checked against its XSD first, then every field
is mapped, and every problem of both steps is reported together (Art. 19(3)).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from lxml import etree

from gateway.domain.documents import MESSAGES, Decoded
from gateway.domain.errors import ConfigurationError, FieldProblem, ValidationFailedError
from gateway.mapping import transforms
from gateway.mapping.canonical import encode_envelope
from gateway.mapping.xml import parse_xml

# Schemas are our own reviewed files, but they are parsed as strictly as any input.
_SCHEMA_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


class MappingError(ConfigurationError):
    """A mapping file is not valid; the gateway refuses to start with it."""


@dataclass(frozen=True, slots=True)
class FieldRule:
    pointer: tuple[str, ...]
    source: str
    xpath: etree.XPath | None
    transform: transforms.Transform
    required: bool
    value: str | None = None


@dataclass(frozen=True, slots=True)
class ListRule:
    pointer: tuple[str, ...]
    source: str
    each: etree.XPath
    fields: tuple[FieldRule, ...]


def _split_pointer(pointer: str) -> tuple[str, ...]:
    if pointer.startswith("/"):
        pointer = pointer[1:]
    return tuple(part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/"))


def _compile_field(spec: Mapping[str, Any], ns: Mapping[str, str]) -> FieldRule:
    transform_spec = spec.get("transform", "text")
    if isinstance(transform_spec, str):
        transform_spec = {"name": transform_spec}
    try:
        transform = transforms.build(transform_spec["name"], transform_spec)
        xpath = etree.XPath(spec["from"], namespaces=dict(ns)) if "from" in spec else None
    except (ValueError, KeyError, etree.XPathSyntaxError) as exc:
        raise MappingError(f"field {spec.get('to')!r}: {exc}") from exc
    if xpath is None and "value" not in spec:
        raise MappingError(f"field {spec.get('to')!r} needs 'from' or 'value'")
    return FieldRule(
        pointer=_split_pointer(str(spec["to"])),
        source=str(spec.get("from", "")),
        xpath=xpath,
        transform=transform,
        required=bool(spec.get("required", False)),
        value=spec.get("value"),
    )


def _set(target: dict[str, Any], pointer: tuple[str, ...], value: Any) -> None:
    node = target
    for part in pointer[:-1]:
        node = node.setdefault(part, {})
    node[pointer[-1]] = value


def _first_text(found: Any) -> str | None:
    if isinstance(found, list):
        found = found[0] if found else None
    if found is None:
        return None
    text = found.text if isinstance(found, etree._Element) else str(found)
    return text if text and text.strip() else None


class XmlCodec:
    """A jurisdiction's XML application format, mapped to the canonical model by data."""

    media_types = frozenset({"application/xml", "text/xml"})

    def __init__(
        self,
        jurisdiction: str,
        version: str,
        root: str,
        schema: etree.XMLSchema | None,
        fields: tuple[FieldRule, ...],
        lists: tuple[ListRule, ...],
    ) -> None:
        self.jurisdiction = jurisdiction
        self.version = version
        self._root = root
        self._schema = schema
        self._fields = fields
        self._lists = lists

    @classmethod
    def load(cls, path: Path, jurisdiction: str) -> XmlCodec:
        """Load and compile a mapping file; MappingError names the file and the problem."""
        try:
            spec = yaml.load(path.read_text("utf-8"), Loader=yaml.CSafeLoader)
            ns = spec.get("namespaces", {})
            schema = None
            if spec.get("schema"):
                schema_path = path.parent.parent / "schemas" / spec["schema"]
                schema = etree.XMLSchema(etree.parse(str(schema_path), _SCHEMA_PARSER))
            fields = tuple(_compile_field(f, ns) for f in spec.get("fields", ()))
            lists = tuple(
                ListRule(
                    pointer=_split_pointer(str(item["to"])),
                    source=str(item["each"]),
                    each=etree.XPath(item["each"], namespaces=ns),
                    fields=tuple(_compile_field(f, ns) for f in item["fields"]),
                )
                for item in spec.get("lists", ())
            )
            prefix, _, local = str(spec["root"]).rpartition(":")
            root = etree.QName(ns.get(prefix) or None, local)
            version = str(spec["version"])
        except MappingError as exc:
            raise MappingError(f"{path.name}: {exc.detail}") from exc
        except (
            OSError,
            yaml.YAMLError,
            etree.LxmlError,
            KeyError,
            TypeError,
            AttributeError,
        ) as exc:
            raise MappingError(f"{path.name}: {type(exc).__name__}: {exc}") from exc
        return cls(jurisdiction, version, root.text, schema, fields, lists)

    def decode(self, body: bytes) -> Decoded:
        root = parse_xml(body)
        if root.tag != self._root:
            raise ValidationFailedError(
                "the XML root element is not this jurisdiction's application",
                errors=[FieldProblem("schema", MESSAGES["schema"], xpath="/")],
            )
        problems = self._schema_problems(root)
        document: dict[str, Any] = {}
        for rule in self._fields:
            self._apply(rule, root, document, rule.source, problems)
        for lst in self._lists:
            items = []
            for i, element in enumerate(lst.each(root), start=1):
                item: dict[str, Any] = {}
                for rule in lst.fields:
                    self._apply(rule, element, item, f"{lst.source}[{i}]/{rule.source}", problems)
                items.append(item)
            _set(document, lst.pointer, items)
        if problems:
            raise ValidationFailedError(f"{len(problems)} problem(s) found", errors=problems)
        return Decoded(document, self.version)

    def encode(self, document: Mapping[str, Any], envelope: Mapping[str, Any]) -> tuple[bytes, str]:
        """Forwards to this jurisdiction's agencies carry the canonical JSON envelope."""
        return encode_envelope(document, envelope), "application/json"

    def _schema_problems(self, root: etree._Element) -> list[FieldProblem]:
        if self._schema is None or self._schema.validate(root):
            return []
        return [
            FieldProblem("schema", MESSAGES["schema"], xpath=entry.path or "/")
            for entry in self._schema.error_log
        ]

    @staticmethod
    def _apply(
        rule: FieldRule,
        context: etree._Element,
        target: dict[str, Any],
        where: str,
        problems: list[FieldProblem],
    ) -> None:
        raw = rule.value if rule.xpath is None else _first_text(rule.xpath(context))
        if raw is None:
            if rule.required:
                problems.append(FieldProblem("required", MESSAGES["required"], xpath=where))
            return
        try:
            _set(target, rule.pointer, rule.transform(raw))
        except transforms.TransformError as exc:
            problems.append(FieldProblem(exc.code, MESSAGES[exc.code], xpath=where))


__all__ = ["MappingError", "XmlCodec"]
