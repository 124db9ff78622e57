"""Canonical application -> native XML: the reverse direction of a field mapping file.

The same field map (``adapters/<jurisdiction>/fields/*.yaml``) drives both directions. A
field is *written* when its ``from`` is a simple path (:mod:`gateway.mapping.paths`: child
elements with namespace prefixes, ``.``, one optional final ``@attribute``), it has no
``value`` constant, and its transform has an inverse
(:func:`gateway.mapping.transforms.build_inverse`). Everything else is derived from what is
written, and skipped:

* ``hk2s`` / ``s2hk`` fields (``names/zh-Hans``): the original-script field on the same
  element (``names/zh-Hant``) is written, and decoding derives the other script from it;
* other XPath: ``concat()`` (``names/latin``) is rebuilt from the surname and given names, the
  union of ``names/original`` from the Chinese name or, without one, the surname (the English
  or Portuguese name fields), so it comes back as ``zh-Hant`` or ``family_name_latin``;
* when two written fields name the same element or attribute, the first in the file is
  written (both decode to the same value).

A list writes one repeated element (its ``each`` path, which must be simple) per canonical
item, with the item's fields relative to it. Elements are created only for values present
(a blank string counts as absent, as in decoding), in the order of the XSD's content models
(:func:`schema_order` reads the ``xs:sequence`` declarations, named and inline types, ``ref``
and ``xs:extension``), so the output validates; without a schema they keep the mapping's
order. The result is validated against the XSD before it is returned.

As for decoding (:mod:`gateway.mapping.decode`), the mapping is compiled at load into one
Python function (:func:`_generate`): the elements of the output form a tree known in advance
(:class:`_Node`: each element's text field, attribute fields and children in the XSD's
order), so the function reads and checks every value first, in the mapping's order, then
creates the elements that hold one, parents before children. Nothing is looked up by path or
sorted per document; the translation bench (``make bench``) compares it with a hand-written
lxml builder.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from lxml import etree

from gateway.domain.documents import problem
from gateway.domain.errors import FieldProblem, ValidationFailedError
from gateway.mapping import transforms
from gateway.mapping.transforms import TransformError
from gateway.mapping.xml import schema_problems

if TYPE_CHECKING:
    from gateway.mapping.fields import FieldRule, ListRule

_XS = "{http://www.w3.org/2001/XMLSchema}"
_GROUPS = frozenset({f"{_XS}sequence", f"{_XS}choice", f"{_XS}all", f"{_XS}complexContent"})
_MAX_DEPTH = 64  # recursive content models stop here
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

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


# --- the generated encoder -------------------------------------------------------------------


class _Node:
    """One element of the output: the field written as its text, those written as its
    attributes, its children in the XSD's order, and for a list's repeated element the list."""

    __slots__ = ("attributes", "children", "items", "path", "placed", "repeated", "tag", "text")

    def __init__(self, tag: str, path: tuple[str, ...], items: ListRule | None = None) -> None:
        self.tag, self.path, self.items = tag, path, items
        self.text: FieldRule | None = None
        self.attributes: list[tuple[str, FieldRule]] = []
        self.children: list[_Node] = []
        self.placed: tuple[FieldRule, ...] = ()  # the fields read from this node's holder
        self.repeated: list[_Node] = []  # the lists placed from here, in the mapping's order

    def child(self, tag: str) -> _Node:
        for node in self.children:
            if node.tag == tag and node.items is None:
                return node
        node = _Node(tag, (*self.path, tag))
        self.children.append(node)
        return node

    def place(self, rules: tuple[FieldRule, ...]) -> None:
        """Put each written field at its element, relative to this node."""
        self.placed = _writable(rules)
        for rule in self.placed:
            assert rule.path is not None
            node = self
            for tag in rule.path.steps:
                node = node.child(tag)
            if rule.path.attribute is None:
                node.text = node.text or rule
            else:
                node.attributes.append((rule.path.attribute, rule))

    def place_list(self, lst: ListRule) -> None:
        """Put a list's repeated element (its ``each`` path) and its items' fields."""
        assert lst.path is not None
        *parents, tag = lst.path.steps
        node = self
        for step in parents:
            node = node.child(step)
        item = _Node(tag, (*node.path, tag), lst)
        node.children.append(item)
        item.place(lst.fields)
        self.repeated.append(item)

    def order(self, order: Order) -> None:
        positions = order.get(self.path, {})
        last = len(positions)
        self.children.sort(key=lambda node: positions.get(node.tag, last))
        for node in self.children:
            node.order(order)


class _Writer:
    """Writes the source of ``write(document, problems) -> root``: every value is read and
    checked first, in the mapping's order (so problems come in that order), then the elements
    holding a value are created, in the XSD's order, so nothing is sorted afterwards."""

    def __init__(self) -> None:
        self.constants: dict[str, Any] = {}
        self._count = 0

    def name(self, prefix: str) -> str:
        self._count += 1
        return f"{prefix}{self._count}"

    def constant(self, value: Any) -> str:
        name = self.name("K")
        self.constants[name] = value
        return name

    def values(
        self, node: _Node, holder: str, where: str | None, lines: list[str]
    ) -> dict[int, str]:
        """Read every field placed at or below ``node`` (not inside lists) into locals."""
        found: dict[int, str] = {}
        parents: dict[tuple[str, ...], str] = {(): holder}
        for rule in node.placed:
            found[id(rule)] = self._value(rule, holder, parents, where, lines)
        return found

    def _value(
        self,
        rule: FieldRule,
        holder: str,
        parents: dict[tuple[str, ...], str],
        where: str | None,
        lines: list[str],
    ) -> str:
        if not rule.pointer:  # a scalar list's item: the value is the item itself
            return self._checked(rule, holder, None, where, lines)
        steps = rule.pointer[:-1]
        parent = holder
        for depth in range(1, len(steps) + 1):
            prefix = tuple(steps[:depth])
            if prefix not in parents:
                name = self.name("d")
                lines += [
                    f"{name} = {parent}.get({prefix[-1]!r}) if {parent} is not None else None",
                    f"if {name} is not None and not isinstance({name}, dict):",
                    f"    {name} = as_dict({name})",
                ]
                parents[prefix] = name
            parent = parents[prefix]
        return self._checked(rule, holder, parent, where, lines)

    def _checked(
        self, rule: FieldRule, holder: str, parent: str | None, where: str | None, lines: list[str]
    ) -> str:
        """Read the field's value (from ``parent``, or ``holder`` itself when the field has no
        pointer), check and convert it."""
        value, pointer = self.name("v"), _pointer(rule.pointer)
        at = repr(pointer) if where is None else f"{where} + {pointer!r}"
        assert rule.inverse is not None
        if rule.inverse is transforms.AS_IS:  # a text as it is: nothing to refuse
            convert: list[str] = []
        else:
            convert = [
                "try:",
                f"    {value} = {self.constant(rule.inverse)}({value}, {holder})",
                "except TransformError as exc:",
                f"    problems.append(problem({at}, exc.code))",
                f"    {value} = None",
            ]
        required = f"problems.append(problem({at}, 'required'))" if rule.required else "pass"
        read = (
            f"{value} = {parent}.get({rule.pointer[-1]!r}) if {parent} is not None else None"
            if parent is not None
            else f"{value} = {holder}"
        )
        lines += [  # a non-blank text first: the common case, with one type test
            read,
            f"if type({value}) is str and {value}.strip():",
            *("    " + line for line in convert or ["pass"]),
            f"elif {value} is None or (isinstance({value}, str) and not {value}.strip()):",
            f"    {value} = None",
            f"    {required}",
            f"elif isinstance({value}, bool) or not isinstance({value}, (str, int)):",
            f"    problems.append(problem({at}, 'wrong_type'))",
            f"    {value} = None",
            "else:  # a number, or a subclass of str",
            f"    {value} = str({value})",
            *("    " + line for line in convert),
        ]
        lines += [  # a character XML cannot hold
            f"if {value} is not None and not_xml({value}):",
            f"    problems.append(problem({at}, 'invalid_value'))",
            f"    {value} = None",
        ]
        return value

    def lists(self, node: _Node, holder: str, lines: list[str]) -> dict[int, str]:
        """Every list placed from ``node``: its items that are objects (any value in a scalar
        list), as ``(i, item)``."""
        found: dict[int, str] = {}
        for child in node.repeated:
            assert child.items is not None
            lst, items, at = child.items, self.name("L"), repr(_pointer(child.items.pointer))
            raw = self.name("r")
            *steps, key = lst.pointer
            lines.append(f"{raw} = {holder}")
            for part in (*steps, key):
                lines.append(f"{raw} = {raw}.get({part!r}) if isinstance({raw}, Mapping) else None")
            lines += [
                f"{items} = []",
                f"if {raw} is not None:",
                f"    if not isinstance({raw}, list):",
                f"        problems.append(problem({at}, 'wrong_type'))",
                "    else:",
                f"        for i, item in enumerate({raw}):",
            ]
            if lst.scalar:  # each item a value, checked as its field's value
                lines.append(f"            {items}.append((i, item))")
            else:
                lines += [
                    "            if isinstance(item, Mapping):",
                    f"                {items}.append(",
                    "                    (i, item if type(item) is dict else dict(item))",
                    "                )",
                    "            else:",
                    f"                problems.append(problem({at} + '/' + str(i), 'wrong_type'))",
                ]
            found[id(child)] = items
        return found

    def present(self, node: _Node, values: Mapping[int, str], lists: Mapping[int, str]) -> str:
        """The condition under which ``node`` is written: a value at or below it."""
        if node.items is not None:
            return lists[id(node)]
        terms = [f"{values[id(r)]} is not None" for r in (node.text,) if r is not None]
        terms += [f"{values[id(r)]} is not None" for _, r in node.attributes]
        terms += [self.present(child, values, lists) for child in node.children]
        return " or ".join(terms) if terms else "False"

    def elements(
        self,
        node: _Node,
        element: str,
        values: Mapping[int, str],
        lists: Mapping[int, str],
        lines: list[str],
    ) -> None:
        """Set ``node``'s text and attributes on ``element``, then write its children."""
        if node.text is not None:
            value = values[id(node.text)]
            lines += [f"if {value} is not None:", f"    {element}.text = {value}"]
        for attribute, rule in node.attributes:
            value = values[id(rule)]
            lines += [f"if {value} is not None:", f"    {element}.set({attribute!r}, {value})"]
        for child in node.children:
            tag = self.constant(child.tag)
            if child.items is not None:
                self._repeated(child, element, tag, lists[id(child)], lines)
                continue
            condition = self.present(child, values, lists)
            if condition == "False":
                continue
            name = self.name("e")
            body: list[str] = [f"{name} = SubElement({element}, {tag})"]
            self.elements(child, name, values, lists, body)
            lines += [f"if {condition}:", *("    " + line for line in body)]

    def _repeated(self, node: _Node, parent: str, tag: str, items: str, lines: list[str]) -> None:
        assert node.items is not None
        holder, element = self.name("h"), self.name("e")
        where = f"{_pointer(node.items.pointer)!r} + '/' + str(i)"
        body: list[str] = []
        values = self.values(node, holder, where, body)
        lists = self.lists(node, holder, body)
        body.append(f"{element} = SubElement({parent}, {tag})")
        self.elements(node, element, values, lists, body)
        lines += [f"for i, {holder} in {items}:", *("    " + line for line in body)]


def _generate(root: _Node, nsmap: Mapping[str | None, str]) -> Any:
    """``write(document, problems) -> root element`` for the placed and ordered ``root``."""
    writer = _Writer()
    lines = [
        "if not isinstance(document, dict):",
        "    document = as_dict(document)",
    ]
    values = writer.values(root, "document", None, lines)
    lists = writer.lists(root, "document", lines)
    lines.append(f"root = Element({writer.constant(root.tag)}, nsmap={writer.constant(nsmap)})")
    writer.elements(root, "root", values, lists, lines)
    lines.append("return root")
    source = "def write(document, problems):\n" + textwrap.indent("\n".join(lines), "    ")
    namespace: dict[str, Any] = {
        **writer.constants,
        "Element": etree.Element,
        "SubElement": etree.SubElement,
        "Mapping": Mapping,
        "TransformError": TransformError,
        "problem": problem,
        "not_xml": _NOT_XML_CHAR.search,
        "as_dict": _as_dict,
    }
    exec(compile(source, f"<encoder of {root.tag}>", "exec"), namespace)  # noqa: S102
    return namespace["write"]


def _as_dict(value: Any) -> dict[str, Any] | None:
    return dict(value) if isinstance(value, Mapping) else None


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
        tree = _Node(root, (root,))
        tree.place(fields)
        for lst in lists:
            if lst.path is not None and lst.path.steps:
                tree.place_list(lst)
        tree.order(self._order)
        self._write = _generate(tree, self._nsmap)

    @property
    def nsmap(self) -> dict[str | None, str]:
        """The namespace declarations the root element is written with."""
        return dict(self._nsmap)

    def encode(self, document: Mapping[str, Any]) -> bytes:
        """UTF-8 XML with a declaration, or ValidationFailedError with every problem."""
        root = self.element(document)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)

    def element(self, document: Mapping[str, Any]) -> etree._Element:
        """The native root element, checked against the XSD (ValidationFailedError)."""
        problems: list[FieldProblem] = []
        root = self._write(document, problems)
        problems += schema_problems(self._schema, root)
        if problems:
            raise ValidationFailedError(f"{len(problems)} problem(s) found", errors=problems)
        return root


# For the message around a native application (XmlCodec.encode): the same element helpers.
ensure = _ensure
sort_children = _sort

__all__ = ["NativeEncoder", "ensure", "schema_order", "sort_children"]
