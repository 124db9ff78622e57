"""Canonical application -> native XML: the reverse direction of a field mapping file.

The same ``mappings/fields/*.yaml`` file drives both directions. A field is *written* when its
``from`` is a simple path (:mod:`gateway.mapping.paths`: child elements with namespace
prefixes, ``.``, one optional final ``@attribute``), it has no ``value`` constant, and its
transform has an inverse (:func:`gateway.mapping.transforms.build_inverse`). Everything else
is derived from what is written, and skipped:

* ``hk2s`` / ``s2hk`` fields (``names/zh-Hans``): the original-script field on the same
  element (``names/zh-Hant``) is written, and decoding derives the other script from it;
* other XPath: ``concat()`` (``names/latin``) is rebuilt from the surname and given names, the
  union of ``names/original`` from the Chinese name or, without one, the surname (the English
  or Portuguese name fields), so it comes back as ``zh-Hant`` or ``family_name_latin``;
* when two written fields name the same element or attribute, the first in the file is
  written (both decode to the same value).

A list writes one repeated element (its ``each`` path, which must be simple) per canonical
item, with the item's fields relative to it. Elements are created only for values present
(a blank string counts as absent, as in decoding), then put in the order of the XSD's content
models (:func:`schema_order` reads the ``xs:sequence`` declarations, named and inline types,
``ref`` and ``xs:extension``), so the output validates; without a schema they keep the
mapping's order. The result is validated against the XSD before it is returned.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from lxml import etree

from gateway.domain.documents import MESSAGES, problem
from gateway.domain.errors import FieldProblem, ValidationFailedError
from gateway.mapping.transforms import TransformError

if TYPE_CHECKING:
    from gateway.mapping.fields import FieldRule, ListRule

_XS = "{http://www.w3.org/2001/XMLSchema}"
_GROUPS = frozenset({f"{_XS}sequence", f"{_XS}choice", f"{_XS}all", f"{_XS}complexContent"})
_MAX_DEPTH = 64  # recursive content models stop here
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_MISSING: Any = object()

Order = Mapping[tuple[str, ...], Mapping[str, int]]


def _local(qname: str | None) -> str:
    return (qname or "").rpartition(":")[2]


def schema_order(schema: etree._Element) -> dict[tuple[str, ...], dict[str, int]]:
    """Child element order of every element an XSD declares, by path of Clark tags.

    ``{(root,): {child: 0, ...}, (root, child): {...}}``: each element path maps the tags of
    its children to their position in the content model (first occurrence).
    """
    tns = schema.get("targetNamespace")
    qualified = schema.get("elementFormDefault") == "qualified"
    types = {t.get("name"): t for t in schema.iterchildren(f"{_XS}complexType")}
    tops = {e.get("name"): e for e in schema.iterchildren(f"{_XS}element")}
    order: dict[tuple[str, ...], dict[str, int]] = {}

    def clark(name: str, top: bool) -> str:
        return f"{{{tns}}}{name}" if tns and (top or qualified) else name

    def particles(model: etree._Element, depth: int) -> Iterator[etree._Element]:
        for node in model.iterchildren(etree.Element):
            if node.tag == f"{_XS}element":
                yield node
            elif node.tag in _GROUPS or node.tag == f"{_XS}restriction":
                yield from particles(node, depth)
            elif node.tag == f"{_XS}extension":
                base = types.get(_local(node.get("base")))
                if base is not None and depth < _MAX_DEPTH:
                    yield from particles(base, depth + 1)
                yield from particles(node, depth)

    def visit(declaration: etree._Element, path: tuple[str, ...]) -> None:
        model = declaration.find(f"{_XS}complexType")
        if model is None:
            model = types.get(_local(declaration.get("type")))
        if model is None or len(path) > _MAX_DEPTH:
            return
        children: dict[str, int] = {}
        for particle in particles(model, len(path)):
            ref = particle.get("ref")
            target = tops.get(_local(ref)) if ref else particle
            tag = clark(_local(ref), True) if ref else clark(str(particle.get("name")), False)
            children.setdefault(tag, len(children))
            if target is not None:
                visit(target, (*path, tag))
        if children:
            order[path] = children

    for name, declaration in tops.items():
        visit(declaration, (clark(str(name), True),))
    return order


@lru_cache(maxsize=4096)  # the mapping's pointers: one per field, written once per document
def _pointer(parts: tuple[str, ...]) -> str:
    return "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts)


def _get(holder: Mapping[str, Any], pointer: tuple[str, ...]) -> Any:
    node: Any = holder
    for part in pointer:
        # dict first: the ABC check is slow, and is made for every field of every document
        if not isinstance(node, dict | Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _ensure(parent: etree._Element, steps: tuple[str, ...]) -> etree._Element:
    """The element at ``steps`` below ``parent``: the first existing one, else a new one."""
    for tag in steps:
        child = next((c for c in parent.iterchildren(tag)), None)
        parent = child if child is not None else etree.SubElement(parent, tag)
    return parent


def _sort(element: etree._Element, path: tuple[str, ...], order: Order) -> None:
    children = order.get(path)
    if children and len(element) > 1:
        last = len(children)
        element[:] = sorted(element, key=lambda child: children.get(child.tag, last))
    for child in element:
        _sort(child, (*path, child.tag), order)


def _writable(rules: tuple[FieldRule, ...]) -> tuple[FieldRule, ...]:
    written: dict[tuple[tuple[str, ...], str | None], FieldRule] = {}
    for rule in rules:
        if rule.inverse is not None and rule.path is not None:
            written.setdefault((rule.path.steps, rule.path.attribute), rule)
    return tuple(written.values())


Group = tuple[tuple[str, ...], bool, tuple["FieldRule", ...]]


def _groups(rules: tuple[FieldRule, ...]) -> tuple[Group, ...]:
    """Consecutive rules under the same value of the document (the first two parts of their
    pointers: ``/particulars/capital``, ``/applicant/names``), and whether one of them is
    required. A group whose value is absent is passed over with one look-up: most of the
    catalog's particulars, for one matter's document."""
    groups: list[tuple[tuple[str, ...], list[FieldRule]]] = []
    for rule in rules:
        under = rule.pointer[:2]
        if groups and groups[-1][0] == under:
            groups[-1][1].append(rule)
        else:
            groups.append((under, [rule]))
    return tuple((under, any(r.required for r in g), tuple(g)) for under, g in groups)


class NativeEncoder:
    """Writes canonical documents as one jurisdiction's XML, from its compiled mapping."""

    def __init__(
        self,
        root: str,
        schema: etree.XMLSchema | None,
        fields: tuple[FieldRule, ...],
        lists: tuple[ListRule, ...],
        namespaces: Mapping[str, str],
        order: Order | None,
    ) -> None:
        self._root = root
        self._schema = schema
        self._order = order or {}
        default = etree.QName(root).namespace
        self._nsmap = {(None if uri == default else p): uri for p, uri in namespaces.items()}
        if default is not None:
            self._nsmap[None] = default
        self._fields = _groups(_writable(fields))
        self._lists = tuple(
            (lst, _writable(lst.fields)) for lst in lists if lst.path is not None and lst.path.steps
        )

    def encode(self, document: Mapping[str, Any]) -> bytes:
        """UTF-8 XML with a declaration, or ValidationFailedError with every problem."""
        root = self.element(document)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    @property
    def nsmap(self) -> dict[str | None, str]:
        """The namespace declarations the root element is written with."""
        return dict(self._nsmap)

    def element(self, document: Mapping[str, Any]) -> etree._Element:
        """The native root element, checked against the XSD (ValidationFailedError)."""
        problems: list[FieldProblem] = []
        root = etree.Element(self._root, nsmap=self._nsmap)
        for under, required, rules in self._fields:
            if required or _get(document, under) is not _MISSING:
                self._write(rules, document, root, "", problems)
        for lst, rules in self._lists:
            self._write_list(lst, rules, document, root, problems)
        _sort(root, (root.tag,), self._order)
        if self._schema is not None and not self._schema.validate(root):
            problems += [
                FieldProblem("schema", MESSAGES["schema"], xpath=entry.path or "/")
                for entry in self._schema.error_log
            ]
        if problems:
            raise ValidationFailedError(f"{len(problems)} problem(s) found", errors=problems)
        return root

    def _write_list(
        self,
        lst: ListRule,
        rules: tuple[FieldRule, ...],
        document: Mapping[str, Any],
        root: etree._Element,
        problems: list[FieldProblem],
    ) -> None:
        assert lst.path is not None
        where = _pointer(lst.pointer)
        items = _get(document, lst.pointer)
        if items is _MISSING or items is None:
            return
        if not isinstance(items, list):
            problems.append(problem(where, "wrong_type"))
            return
        *parents, tag = lst.path.steps
        for i, item in enumerate(items):
            if not isinstance(item, Mapping):
                problems.append(problem(f"{where}/{i}", "wrong_type"))
                continue
            element = etree.SubElement(_ensure(root, tuple(parents)), tag)
            self._write(rules, item, element, f"{where}/{i}", problems)

    @staticmethod
    def _write(
        rules: tuple[FieldRule, ...],
        holder: Mapping[str, Any],
        context: etree._Element,
        prefix: str,
        problems: list[FieldProblem],
    ) -> None:
        for rule in rules:
            assert rule.path is not None
            assert rule.inverse is not None
            where = prefix + _pointer(rule.pointer)
            value = _get(holder, rule.pointer)
            if value is _MISSING or value is None or (isinstance(value, str) and not value.strip()):
                if rule.required:
                    problems.append(problem(where, "required"))
                continue
            if isinstance(value, bool) or not isinstance(value, str | int):
                problems.append(problem(where, "wrong_type"))
                continue
            try:
                text = rule.inverse(str(value), holder)
            except TransformError as exc:
                problems.append(problem(where, exc.code))
                continue
            if _NOT_XML_CHAR.search(text):
                problems.append(problem(where, "invalid_value"))
                continue
            element = _ensure(context, rule.path.steps)
            if rule.path.attribute is None:
                element.text = text
            else:
                element.set(rule.path.attribute, text)


# For the message around a native application (XmlCodec.encode): the same element helpers.
ensure = _ensure
sort_children = _sort

__all__ = ["NativeEncoder", "ensure", "schema_order", "sort_children"]
