"""Declarative field mappings: native XML <-> canonical application.

A mapping file (``fields/`` of a jurisdiction folder, ``adapters/hk/fields/hk.yaml``) names,
for each canonical field (a JSON pointer), the XPath it comes from and the transform applied
(:mod:`gateway.mapping.transforms`). Lists (identity documents, materials) map each matching
element through relative fields. A document is checked against its XSD first, then every
field is mapped, and every problem of both steps is reported together (Art. 19(3)). The
particulars of every matter are not listed field by field: the file's ``particulars:``
section is expanded at load, for the catalog's particulars, into ordinary fields and into
the content of the XSD's particulars type (:mod:`gateway.mapping.particulars`).

Decoding (:mod:`gateway.mapping.decode`) reads every simple path of the mapping in one walk
over the tree (:mod:`gateway.mapping.paths`) and gives what evaluating each ``from`` as XPath
gives, problems included. :meth:`XmlCodec.to_native` is the reverse direction, from the same
file (:mod:`gateway.mapping.encode`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from lxml import etree

from gateway.domain.documents import MESSAGES, Decoded
from gateway.domain.errors import (
    ConfigurationError,
    FieldProblem,
    NotExpressibleError,
    ValidationFailedError,
)
from gateway.domain.matters import Particular
from gateway.mapping import particulars as particulars_layout
from gateway.mapping import transforms
from gateway.mapping.carried import Pattern, dropped, written_transforms
from gateway.mapping.decode import DecodePlan
from gateway.mapping.encode import NativeEncoder, ensure, schema_order, sort_children
from gateway.mapping.messages import KINDS as MESSAGE_KINDS
from gateway.mapping.messages import AgencyMessage
from gateway.mapping.paths import SimplePath, parse_simple
from gateway.mapping.xml import parse_xml, schema_problems

# Schemas are our own reviewed files, but they are parsed as strictly as any input.
_SCHEMA_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


class MappingError(ConfigurationError):
    """A mapping file is not valid; the gateway refuses to start with it."""


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One field: canonical ``pointer`` <- ``source`` through ``transform``.

    ``path`` is set when ``source`` is a simple path, ``xpath`` when it is any other XPath.
    ``inverse`` is set when the encoder writes the field (a simple path, no constant, and a
    transform with an inverse).
    """

    pointer: tuple[str, ...]
    source: str
    xpath: etree.XPath | None
    transform: transforms.Transform
    required: bool
    value: str | None = None
    path: SimplePath | None = None
    inverse: transforms.Inverse | None = None


@dataclass(frozen=True, slots=True)
class MessageSpec:
    """A forward in the native format: ``root`` holds ``envelope`` (each member of the
    forward's envelope, a JSON pointer, written at a simple path below it) and then the
    application element. Declared by the mapping file's ``envelope:`` section."""

    root: str
    envelope: str
    fields: tuple[tuple[tuple[str, ...], SimplePath], ...]


@dataclass(frozen=True, slots=True)
class ListRule:
    """Each element ``each`` selects becomes one item of the list at ``pointer``.

    A *scalar* list has one field without ``to`` (its pointer is empty): each item is that
    field's value, not an object (the reasons of a decision, the codes of missing materials).
    """

    pointer: tuple[str, ...]
    source: str
    each: etree.XPath
    fields: tuple[FieldRule, ...]
    path: SimplePath | None = None

    @property
    def scalar(self) -> bool:
        return len(self.fields) == 1 and not self.fields[0].pointer


def _split_pointer(pointer: str) -> tuple[str, ...]:
    if pointer.startswith("/"):
        pointer = pointer[1:]
    return tuple(part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/"))


def _compile_field(spec: Mapping[str, Any], ns: Mapping[str, str]) -> FieldRule:
    transform_spec = spec.get("transform", "text")
    if isinstance(transform_spec, str):
        transform_spec = {"name": transform_spec}
    source = str(spec.get("from", ""))
    try:
        transform = transforms.build(transform_spec["name"], transform_spec)
        path = parse_simple(source, ns) if "from" in spec else None
        xpath = etree.XPath(source, namespaces=dict(ns)) if "from" in spec else None
        # Written by the encoder: a simple path, not a constant (an enum must be one-to-one).
        encoded = path is not None and "value" not in spec
        inverse = (
            transforms.build_inverse(transform_spec["name"], transform_spec) if encoded else None
        )
    except (ValueError, KeyError, etree.XPathSyntaxError) as exc:
        raise MappingError(f"field {spec.get('to')!r}: {exc}") from exc
    if xpath is None and "value" not in spec:
        raise MappingError(f"field {spec.get('to')!r} needs 'from' or 'value'")
    return FieldRule(
        pointer=_split_pointer(str(spec["to"])) if spec.get("to") else (),
        source=source,
        xpath=None if path is not None else xpath,
        transform=transform,
        required=bool(spec.get("required", False)),
        value=spec.get("value"),
        path=path,
        inverse=inverse,
    )


def _qname(name: str, ns: Mapping[str, str]) -> str:
    prefix, _, local = str(name).rpartition(":")
    if prefix and prefix not in ns:
        raise MappingError(f"undeclared namespace prefix {prefix!r} in {name!r}")
    return etree.QName(ns.get(prefix) or None, local).text


def _compile_message(spec: Mapping[str, Any], ns: Mapping[str, str]) -> MessageSpec:
    fields = []
    for entry in spec["fields"]:
        try:
            path = parse_simple(str(entry["to"]), ns)
        except ValueError as exc:
            raise MappingError(f"envelope field {entry.get('from')!r}: {exc}") from exc
        if path is None or path.attribute is not None or not path.steps:
            raise MappingError(f"envelope field {entry.get('from')!r}: not an element path")
        fields.append((_split_pointer(str(entry["from"])), path))
    return MessageSpec(_qname(spec["message"], ns), _qname(spec["element"], ns), tuple(fields))


def _patterns(
    fields: tuple[FieldRule, ...], lists: tuple[ListRule, ...]
) -> list[tuple[Pattern, FieldRule]]:
    """Every field rule with its pointer pattern (a list item's index as ``*``)."""
    found = [(rule.pointer, rule) for rule in fields]
    for lst in lists:
        found += [((*lst.pointer, "*", *rule.pointer), rule) for rule in lst.fields]
    return found


def _member(record: Mapping[str, Any], pointer: tuple[str, ...]) -> Any:
    node: Any = record
    for part in pointer:
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def output_digest(element: etree._Element) -> str:
    """RFC 9530-form SHA-256 of the exclusive XML canonicalisation of ``element``: what a
    receiver recomputes with any C14N tool from the element as it arrived."""
    c14n = etree.tostring(element, method="c14n", exclusive=True, with_comments=False)
    return "sha-256=:" + base64.b64encode(hashlib.sha256(c14n).digest()).decode() + ":"


def _compile_fields(
    specs: Sequence[Mapping[str, Any]], ns: Mapping[str, str]
) -> tuple[FieldRule, ...]:
    """Fields of a document or message: each needs its ``to``."""
    missing = [str(spec.get("from")) for spec in specs if not spec.get("to")]
    if missing:
        raise MappingError(f"field(s) without 'to': {', '.join(missing)}")
    return tuple(_compile_field(spec, ns) for spec in specs)


def _compile_list(spec: Mapping[str, Any], ns: Mapping[str, str]) -> ListRule:
    try:
        path = parse_simple(str(spec["each"]), ns)
    except ValueError as exc:
        raise MappingError(f"list {spec.get('to')!r}: {exc}") from exc
    fields = tuple(_compile_field(f, ns) for f in spec["fields"])
    if any(not rule.pointer for rule in fields) and len(fields) > 1:
        raise MappingError(f"list {spec.get('to')!r}: a field without 'to' is the only one")
    return ListRule(
        pointer=_split_pointer(str(spec["to"])),
        source=str(spec["each"]),
        each=etree.XPath(spec["each"], namespaces=dict(ns)),
        fields=fields,
        path=path if path is not None and path.attribute is None else None,
    )


def _compile_messages(
    spec: Mapping[str, Any],
    ns: Mapping[str, str],
    schema: etree.XMLSchema | None,
    order: Mapping[tuple[str, ...], Mapping[str, int]] | None,
    particulars: list[dict[str, Any]] | None,
) -> dict[str, AgencyMessage]:
    """The ``messages:`` section: each kind's root, fields and lists, compiled like the
    application's (``particulars: true`` adds the fields of the ``particulars:`` section)."""
    out: dict[str, AgencyMessage] = {}
    for kind, message in spec.items():
        if kind not in MESSAGE_KINDS:
            raise MappingError(f"messages: unknown kind {kind!r}")
        try:
            field_specs = list(message.get("fields", ()))
            if message.get("particulars"):
                if particulars is None:
                    raise MappingError("particulars: true needs a particulars section")
                field_specs += particulars
            root = _qname(message["root"], ns)
            if order is not None and (root,) not in order:
                raise MappingError(f"the XSD declares no element {message['root']} with content")
            out[kind] = AgencyMessage(
                kind,
                root,
                schema,
                _compile_fields(field_specs, ns),
                tuple(_compile_list(item, ns) for item in message.get("lists", ())),
                ns,
                order,
            )
        except MappingError as exc:
            raise MappingError(f"messages: {kind}: {exc.detail}") from exc
    return out


def _labels(particulars: Iterable[Particular]) -> dict[str, dict[str, str]]:
    """Each particular's labels by language (XSD documentation): the first matter's."""
    out: dict[str, dict[str, str]] = {}
    for p in particulars:
        if p.labels is not None and p.name not in out:
            out[p.name] = p.labels.as_dict()
    return out


def _schema_document(
    path: Path, layout: particulars_layout.ParticularsLayout | None, catalog: tuple[Particular, ...]
) -> bytes:
    """The XSD as validated with: the file, with its particulars type generated if the
    mapping has a ``particulars:`` section."""
    content = path.read_bytes()
    if layout is None:
        return content
    document = etree.ElementTree(etree.fromstring(content, _SCHEMA_PARSER))
    try:
        particulars_layout.fill_schema(document.getroot(), layout, catalog, _labels(catalog))
    except particulars_layout.ParticularsError as exc:
        raise MappingError(f"particulars: {exc}") from exc
    return etree.tostring(document, xml_declaration=True, encoding="UTF-8")


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
        *,
        namespaces: Mapping[str, str] | None = None,
        order: Mapping[tuple[str, ...], Mapping[str, int]] | None = None,
        schema_name: str | None = None,
        schema_document: bytes | None = None,
        message: MessageSpec | None = None,
        messages: Mapping[str, AgencyMessage] | None = None,
    ) -> None:
        self.jurisdiction = jurisdiction
        self.version = version
        self._root = root
        self._schema = schema
        self._fields = fields
        self._lists = lists
        self._plan = DecodePlan(fields, lists, namespaces or {})
        self._encoder = NativeEncoder(root, schema, fields, lists, namespaces or {}, order)
        # The XSD's file name and the document validated with (its particulars type
        # generated), which is what GET /v1/schemas serves under that name.
        self.schema_name = schema_name
        self.schema_document = schema_document
        self._order = order or {}
        self._message = message
        # The agency's other messages in this format, by kind (``messages:`` section).
        self.messages: Mapping[str, AgencyMessage] = dict(messages or {})
        self._written = written_transforms(_patterns(fields, lists))

    @classmethod
    def load(cls, path: Path, jurisdiction: str, particulars: Iterable[Particular]) -> XmlCodec:
        """Load and compile a mapping file; MappingError names the file and the problem.

        ``particulars`` are the catalog's (every version of every matter): the file's
        ``particulars:`` section (:mod:`gateway.mapping.particulars`) expands into one field
        per particular and member, and generates the content of the XSD's particulars type;
        the schema is compiled from that generated document (:attr:`schema_document`).
        """
        try:
            spec = yaml.load(path.read_text("utf-8"), Loader=yaml.CSafeLoader)
            ns = spec.get("namespaces", {})
            field_specs = list(spec.get("fields", ()))
            layout = None
            catalog = tuple(particulars)
            particular_specs = None
            if spec.get("particulars") is not None:
                try:
                    layout = particulars_layout.read_layout(spec["particulars"])
                    particular_specs = particulars_layout.field_specs(layout, catalog)
                    field_specs += particular_specs
                except particulars_layout.ParticularsError as exc:
                    raise MappingError(f"particulars: {exc}") from exc
            schema = order = None
            schema_name = schema_bytes = None
            if spec.get("schema"):
                schema_name = str(spec["schema"])
                schema_path = path.parent.parent / "schemas" / schema_name
                schema_bytes = _schema_document(schema_path, layout, catalog)
                schema_root = etree.fromstring(schema_bytes, _SCHEMA_PARSER)
                schema = etree.XMLSchema(schema_root)
                order = schema_order(schema_root)
            fields = _compile_fields(field_specs, ns)
            lists = tuple(_compile_list(item, ns) for item in spec.get("lists", ()))
            prefix, _, local = str(spec["root"]).rpartition(":")
            root = etree.QName(ns.get(prefix) or None, local)
            version = str(spec["version"])
            message = _compile_message(spec["envelope"], ns) if spec.get("envelope") else None
            messages = _compile_messages(
                spec.get("messages") or {}, ns, schema, order, particular_specs
            )
            return cls(
                jurisdiction,
                version,
                root.text,
                schema,
                fields,
                lists,
                namespaces=ns,
                order=order,
                schema_name=schema_name,
                schema_document=schema_bytes,
                message=message,
                messages=messages,
            )
        except MappingError as exc:
            raise MappingError(f"{path.name}: {exc.detail}") from exc
        except (
            OSError,
            yaml.YAMLError,
            etree.LxmlError,
            KeyError,
            TypeError,
            AttributeError,
            ValueError,
        ) as exc:
            raise MappingError(f"{path.name}: {type(exc).__name__}: {exc}") from exc

    def decode(self, body: bytes) -> Decoded:
        """The canonical document of ``body`` as far as it maps, with every schema and field
        problem found (the use case adds the business-rule problems and answers once)."""
        document, problems = self.translate(body)
        return Decoded(document, self.version, tuple(problems))

    def translate(self, body: bytes) -> tuple[dict[str, Any], list[FieldProblem]]:
        """What :meth:`decode` finds, without raising for problems: the canonical document
        as far as it maps, and the schema and field problems (MalformedBodyError and a wrong
        root element still raise)."""
        root = parse_xml(body)
        if root.tag != self._root:
            raise ValidationFailedError(
                "the XML root element is not this jurisdiction's application",
                errors=[FieldProblem("schema", MESSAGES["schema"], xpath="/")],
            )
        problems = self._schema_problems(root)
        return self._plan.run(root, problems), problems

    def to_native(self, document: Mapping[str, Any]) -> bytes:
        """The canonical ``document`` as this jurisdiction's XML (UTF-8, with declaration).

        Written from the same mapping file, in the XSD's element order, and checked against
        the XSD: every problem (a value the reverse transform refuses, a required field that
        is missing, a schema violation) is reported together in a ValidationFailedError.
        """
        return self._encoder.encode(document)

    def carried(self, document: Mapping[str, Any]) -> etree._Element:
        """The native application element of ``document`` when this format carries all of it.

        :raises NotExpressibleError: a value the format refuses (the encoder's problems), or
            fields that do not come back when the element is decoded again (``not_in_format``
            at their pointers, :mod:`gateway.mapping.carried`); every problem listed.
        """
        try:
            application = self._encoder.element(document)
        except ValidationFailedError as exc:
            raise NotExpressibleError(
                f"the {self.jurisdiction} format refuses {len(exc.errors)} value(s)",
                errors=exc.errors,
            ) from None
        back = self._plan.run(application, [])
        lost = dropped(document, back, self._written)
        if lost:
            raise NotExpressibleError(
                f"the {self.jurisdiction} format cannot carry {len(lost)} field(s)", errors=lost
            )
        return application

    def encode(self, document: Mapping[str, Any], envelope: Mapping[str, Any]) -> tuple[bytes, str]:
        """A forward as this format's message: the root of the mapping's ``envelope:`` section
        holding the envelope (every member of ``envelope``, the translation record with this
        format as ``output_format`` and the digest of the application element's exclusive
        C14N as ``output_digest``) and the native application, valid against the XSD.

        :raises NotExpressibleError: see :meth:`carried`, or an envelope value the XSD
            refuses (``schema`` problems at its XPath); nothing is sent then.
        """
        if self._message is None:
            raise MappingError(f"the {self.jurisdiction} mapping declares no envelope")
        application = self.carried(document)
        spec = self._message
        message = etree.Element(spec.root, nsmap=self._encoder.nsmap)
        holder = etree.SubElement(message, spec.envelope)
        record = {
            **envelope,
            "translation": {
                **envelope.get("translation", {}),
                "output_format": self.jurisdiction,
                "output_digest": "",
            },
        }
        digest_at = None
        for pointer, path in spec.fields:
            if pointer == ("translation", "output_digest"):
                digest_at = ensure(holder, path.steps)
                continue
            value = _member(record, pointer)
            if value is not None and str(value).strip():
                ensure(holder, path.steps).text = str(value)
        message.append(application)
        sort_children(message, (message.tag,), self._order)
        etree.indent(message)
        if digest_at is None:
            raise MappingError(f"the {self.jurisdiction} envelope has no output digest element")
        digest_at.text = output_digest(application)
        problems = self._schema_problems(message)
        if problems:  # an envelope value the format refuses: the forward stops, not the case
            raise NotExpressibleError(
                f"the {self.jurisdiction} message refuses {len(problems)} value(s)",
                errors=problems,
            )
        return etree.tostring(message, xml_declaration=True, encoding="UTF-8"), "application/xml"

    def read_message(self, body: bytes) -> tuple[dict[str, Any], etree._Element]:
        """A received message of this format: its envelope as a dict (by the mapping's
        ``envelope:`` pointers, all values as text) and its application element.

        :raises ValidationFailedError: not this format's message, or not valid against the XSD.
        """
        if self._message is None:
            raise MappingError(f"the {self.jurisdiction} mapping declares no envelope")
        root = parse_xml(body)
        if root.tag != self._message.root:
            problems = [FieldProblem("schema", MESSAGES["schema"], xpath="/")]
        else:
            problems = self._schema_problems(root)
        if problems:
            raise ValidationFailedError("not a valid message of this format", errors=problems)
        holder = root.find(self._message.envelope)
        application = root.find(self._root)
        envelope: dict[str, Any] = {}
        for pointer, path in self._message.fields:
            element = holder
            for tag in path.steps:
                element = element.find(tag) if element is not None else None
            if element is not None and element.text:
                node = envelope
                for part in pointer[:-1]:
                    node = node.setdefault(part, {})
                node[pointer[-1]] = element.text
        assert application is not None
        return envelope, application

    def _schema_problems(self, root: etree._Element) -> list[FieldProblem]:
        return schema_problems(self._schema, root)


__all__ = ["FieldRule", "ListRule", "MappingError", "MessageSpec", "XmlCodec", "output_digest"]
