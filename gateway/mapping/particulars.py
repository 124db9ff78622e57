"""How a native XML format writes the matters' particulars: declared once, expanded at load.

The particulars of every matter are defined once, in ``mappings/matters/*.yaml`` (name,
required, kind). A field mapping does not list them one by one: its ``particulars:`` section
says how the format writes *a* particular, and :func:`field_specs` expands it, for every
particular of the catalog, into ordinary field specs (``to`` / ``from`` / ``transform``, as in
the ``fields:`` list) that :class:`~gateway.mapping.fields.XmlCodec` compiles like any other,
so decoding and encoding use the same machinery. The section holds:

- ``container``: the element that holds the particulars (``h:Particulars``), a simple path
  from the root; the XSD declares it with the complex type of the same local name (or
  ``schema_type``), whose content :func:`fill_schema` generates;
- ``element``: how a canonical name becomes an element name: ``pascal`` (``company_name`` ->
  ``CompanyName``) or ``explicit`` (every particular needs an entry in ``names``);
- ``names``: element names that override the rule (ASCII, PascalCase, unique; a name for a
  particular no matter has is unused, so a broken matter file does not break the format);
- ``kinds``: for each kind of particular (``text``, ``integer``, ``date``, ``money``,
  ``address``), the XSD ``type`` of its element and its ``fields``, each ``{to, from,
  transform}`` relative to the particular: ``to`` a member of the canonical value (none: the
  value itself), ``from`` ``.`` (the element's text) or ``@attribute``.

Problems raise :class:`ParticularsError` (a ValueError); ``XmlCodec.load`` reports them as a
MappingError naming the file.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lxml import etree

from gateway.domain.matters import Particular

_XS = "http://www.w3.org/2001/XMLSchema"
_ELEMENT_NAME = re.compile(r"[A-Z][A-Za-z0-9]*")
_MEMBER_SOURCE = re.compile(r"\.|@[A-Za-z_][A-Za-z0-9_.\-]*")
_RULES = ("pascal", "explicit")


class ParticularsError(ValueError):
    """The ``particulars:`` section of a field mapping cannot write the catalog's particulars."""


@dataclass(frozen=True, slots=True)
class KindShape:
    """How one kind of particular is written: its XSD type and its member fields."""

    type: str
    fields: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True, slots=True)
class ParticularsLayout:
    """A field mapping's ``particulars:`` section, read."""

    container: str  # prefixed simple path, e.g. "h:Particulars"
    schema_type: str  # the XSD complex type whose content is generated
    rule: str  # "pascal" | "explicit"
    names: Mapping[str, str]
    kinds: Mapping[str, KindShape]

    @property
    def prefix(self) -> str:
        last = self.container.rsplit("/", 1)[-1]
        return last.rpartition(":")[0]

    def element(self, name: str) -> str:
        """The local element name of particular ``name``."""
        if name in self.names:
            return self.names[name]
        if self.rule == "explicit":
            raise ParticularsError(f"particular {name!r} has no element name in names:")
        return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def read_layout(spec: object) -> ParticularsLayout:
    """The ``particulars:`` section of a field mapping, checked."""
    if not isinstance(spec, Mapping):
        raise ParticularsError("particulars must be a mapping")
    container = spec.get("container")
    if not isinstance(container, str) or not container.strip():
        raise ParticularsError("particulars needs a container element")
    rule = spec.get("element", "pascal")
    if rule not in _RULES:
        raise ParticularsError(f"element must be one of {', '.join(_RULES)}, not {rule!r}")
    names = spec.get("names") or {}
    if not isinstance(names, Mapping):
        raise ParticularsError("names must be a mapping of particular -> element name")
    bad = sorted(
        str(k) for k, v in names.items() if not isinstance(v, str) or not _ELEMENT_NAME.fullmatch(v)
    )
    if bad:
        raise ParticularsError(f"element names must be ASCII PascalCase: {', '.join(bad)}")
    kinds = spec.get("kinds")
    if not isinstance(kinds, Mapping) or not kinds:
        raise ParticularsError("particulars needs kinds: the shape of each kind of particular")
    default_type = container.rsplit("/", 1)[-1].rpartition(":")[2]
    return ParticularsLayout(
        container=container,
        schema_type=str(spec.get("schema_type") or default_type),
        rule=str(rule),
        names=dict(names),
        kinds={str(kind): _shape(str(kind), shape) for kind, shape in kinds.items()},
    )


def _shape(kind: str, spec: object) -> KindShape:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("type"), str):
        raise ParticularsError(f"kind {kind}: needs the XSD type of its element")
    fields = spec.get("fields") or [{"from": "."}]
    if not isinstance(fields, list) or not all(isinstance(f, Mapping) for f in fields):
        raise ParticularsError(f"kind {kind}: fields must be a list of mappings")
    members = [f.get("to") for f in fields]
    for field in fields:
        if not _MEMBER_SOURCE.fullmatch(str(field.get("from", ""))):
            raise ParticularsError(f"kind {kind}: from must be '.' or '@attribute'")
    if None in members and len(members) > 1:
        raise ParticularsError(f"kind {kind}: a value without members has one field")
    if len(set(members)) != len(members):
        raise ParticularsError(f"kind {kind}: a member is written twice")
    return KindShape(spec["type"], tuple(fields))


def union(particulars: Iterable[Particular]) -> tuple[Particular, ...]:
    """Every particular name once, sorted by name; one name must have one kind everywhere.

    Each is optional here: whether a particular is required is the matter's rule (checked by
    the use case), not the format's.
    """
    kinds: dict[str, str] = {}
    values: dict[str, tuple[str, ...] | None] = {}
    for p in particulars:
        if kinds.setdefault(p.name, p.kind) != p.kind:
            raise ParticularsError(
                f"particular {p.name!r} is of kind {kinds[p.name]} in one matter "
                f"and {p.kind} in another"
            )
        # a code list only when every matter declaring the name has one: all their values
        known = values.get(p.name, ())
        values[p.name] = (
            None if known is None or not p.values else tuple(dict.fromkeys((*known, *p.values)))
        )
    return tuple(
        Particular(name, False, kinds[name], values=values[name] or ()) for name in sorted(kinds)
    )


def _element_names(layout: ParticularsLayout, particulars: Sequence[Particular]) -> dict[str, str]:
    missing = [
        p.name for p in particulars if layout.rule == "explicit" and p.name not in layout.names
    ]
    if missing:
        raise ParticularsError(f"no element name in names: for {', '.join(missing)}")
    shapeless = [f"{p.name} ({p.kind})" for p in particulars if p.kind not in layout.kinds]
    if shapeless:
        raise ParticularsError(f"no shape in kinds: for {', '.join(shapeless)}")
    elements = {p.name: layout.element(p.name) for p in particulars}
    seen: dict[str, str] = {}
    for name, element in elements.items():
        if element in seen:
            raise ParticularsError(f"{seen[element]} and {name} are both written as {element}")
        seen[element] = name
    return elements


def field_specs(
    layout: ParticularsLayout, particulars: Iterable[Particular]
) -> list[dict[str, Any]]:
    """The field specs (as in a mapping's ``fields:``) that write ``particulars``."""
    catalog = union(particulars)
    elements = _element_names(layout, catalog)
    prefix = f"{layout.prefix}:" if layout.prefix else ""
    out: list[dict[str, Any]] = []
    for p in catalog:
        element = f"{layout.container}/{prefix}{elements[p.name]}"
        for field in layout.kinds[p.kind].fields:
            source = str(field["from"])
            spec = {k: v for k, v in field.items() if k not in ("to", "from")}
            spec["to"] = f"/particulars/{p.name}" + (f"/{field['to']}" if field.get("to") else "")
            spec["from"] = element if source == "." else f"{element}/{source}"
            out.append(spec)
    return out


def fill_schema(
    schema: etree._Element,
    layout: ParticularsLayout,
    particulars: Iterable[Particular],
    labels: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Generate the content of the XSD's particulars type, in place: one optional element per
    particular, in name order, typed by its kind, restricted to its code list when every
    matter that has it gives one (``labels``: documentation by language)."""
    catalog = union(particulars)
    elements = _element_names(layout, catalog)
    found = [
        t
        for t in schema.iterchildren(f"{{{_XS}}}complexType")
        if t.get("name") == layout.schema_type
    ]
    if len(found) != 1:
        raise ParticularsError(f"the XSD has no complexType {layout.schema_type} to generate")
    holder = found[0]
    for child in list(holder):
        if child.tag != f"{{{_XS}}}annotation":
            holder.remove(child)
    sequence = etree.SubElement(holder, f"{{{_XS}}}sequence")
    for p in catalog:
        declared = etree.SubElement(
            sequence, f"{{{_XS}}}element", name=elements[p.name], minOccurs="0"
        )
        texts = (labels or {}).get(p.name) or {}
        if texts:
            annotation = etree.SubElement(declared, f"{{{_XS}}}annotation")
            for lang, text in texts.items():
                doc = etree.SubElement(annotation, f"{{{_XS}}}documentation")
                doc.set("{http://www.w3.org/XML/1998/namespace}lang", lang)
                doc.text = text
        if not p.values:
            declared.set("type", layout.kinds[p.kind].type)
            continue
        # a code list: the kind's (simple) type restricted to the listed values
        simple = etree.SubElement(declared, f"{{{_XS}}}simpleType")
        restriction = etree.SubElement(
            simple, f"{{{_XS}}}restriction", base=layout.kinds[p.kind].type
        )
        for value in p.values:
            etree.SubElement(restriction, f"{{{_XS}}}enumeration", value=value)
    etree.indent(holder, space="  ", level=1)
    holder.tail = holder.tail or "\n"


__all__ = [
    "KindShape",
    "ParticularsError",
    "ParticularsLayout",
    "field_specs",
    "fill_schema",
    "read_layout",
    "union",
]
