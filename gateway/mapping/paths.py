"""Simple location paths, evaluated together in one walk over the tree.

Most ``from`` expressions of a mapping file are *simple paths*: child steps with namespace
prefixes (``h:Applicant/h:EnglishName/h:Surname``), ``.`` for the context element, and one
optional final attribute (``h:Applicant/h:Address/@district``, ``@type``). Both directions use
them: the decoder reads them without running XPath, the encoder writes them.

:class:`PathIndex` gathers the simple paths of a mapping into a tree of steps and evaluates
all of them in one depth-first walk (document order) over the elements on a mapped path. A
slot receives what XPath selects first, in document order:

* an element slot: the first matching element (the decoder reads its text before the first
  child, as it would from XPath's first node; a later element is never used instead);
* an attribute slot: the value on the first matching element that *has* the attribute (the
  first attribute node of the node-set);
* a list slot: every matching element, in document order.

Element slots can be *ordered*: the walk then also logs when they are filled, so that the
first node of a union of paths is known (:meth:`PathIndex.first_of`).

Anything else (other functions, predicates, ``//``, ``..``, axes) is not a simple path: the
decoder runs it as compiled XPath, the encoder skips it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree

_NAME = r"[^\W\d][\w.\-]*"
_QNAME = rf"(?:{_NAME}:)?{_NAME}"
_STEP = rf"(?:\.|{_QNAME})"
_SIMPLE = re.compile(rf"(?:{_STEP}(?:/{_STEP})*(?:/@{_QNAME})?|@{_QNAME})")

UNSET: Any = object()
"""A slot that no node filled (distinct from an element without text)."""


@dataclass(frozen=True, slots=True)
class SimplePath:
    """Child steps (Clark tags) and an optional final attribute (Clark name)."""

    steps: tuple[str, ...]
    attribute: str | None


_XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"


def _clark(qname: str, namespaces: Mapping[str, str]) -> str:
    prefix, _, local = qname.rpartition(":")
    if not prefix:
        return local  # XPath 1.0: an unprefixed name is in no namespace
    if prefix == "xml" and prefix not in namespaces:
        return f"{{{_XML_NAMESPACE}}}{local}"
    if prefix not in namespaces:
        raise ValueError(f"undeclared namespace prefix {prefix!r}")
    return f"{{{namespaces[prefix]}}}{local}"


def parse_simple(expression: str, namespaces: Mapping[str, str]) -> SimplePath | None:
    """The steps of a simple path, or None when ``expression`` is any other XPath."""
    if not _SIMPLE.fullmatch(expression):
        return None
    parts = expression.split("/")
    attribute = None
    if parts[-1].startswith("@"):
        attribute = _clark(parts.pop()[1:], namespaces)
    steps = tuple(_clark(part, namespaces) for part in parts if part != ".")
    return SimplePath(steps, attribute)


class _Step:
    """A step of the index; the walk reads :attr:`actions`, a tuple, in its hot loop."""

    __slots__ = ("actions", "attributes", "children", "element", "every", "logged")

    def __init__(self) -> None:
        self.element = -1  # slot of the first matching element
        self.logged = False  # ordered: log when the element slot is filled
        self.attributes: list[tuple[int, str]] = []
        self.every: list[int] = []
        self.children: dict[str, _Step] = {}
        self.actions: tuple[Any, ...] = ()

    def freeze(self, log: int) -> tuple[Any, ...]:
        children = {tag: step.freeze(log) for tag, step in self.children.items()}
        # A step whose only child step is a plain list: its items are taken in one call.
        only = None
        if len(self.children) == 1:
            ((tag, child),) = self.children.items()
            if child.element < 0 and not (child.attributes or child.children):
                only = (tag, tuple(child.every))
        self.actions = (
            self.element,
            log if self.logged else -1,
            tuple(self.attributes),
            tuple(self.every),
            None if only else children,
            only,
        )
        return self.actions


class PathIndex:
    """Simple paths from one context element, all evaluated by :meth:`evaluate`.

    Paths are added while the mapping is compiled; a path added twice shares its slot.
    """

    def __init__(self) -> None:
        self._top = _Step()
        self._slots: dict[tuple[tuple[str, ...], str | None], int] = {}
        self._lists: list[int] = []
        self._log = -1  # the slot holding the order in which ordered slots were filled
        self._actions: tuple[Any, ...] | None = None
        self.size = 0

    def _slot(self) -> int:
        slot, self.size = self.size, self.size + 1
        return slot

    def _step(self, steps: tuple[str, ...]) -> _Step:
        node = self._top
        for tag in steps:
            node = node.children.setdefault(tag, _Step())
        return node

    def add(self, path: SimplePath, *, ordered: bool = False) -> int:
        """The slot of the first element ``path`` selects, or of its attribute's value.

        ``ordered`` element slots also log when they are filled, for :meth:`first_of`.
        """
        self._actions = None
        node = self._step(path.steps)
        key = (path.steps, path.attribute)
        if key not in self._slots:
            self._slots[key] = self._slot()
            if path.attribute is None:
                node.element = self._slots[key]
            else:
                node.attributes.append((self._slots[key], path.attribute))
        if ordered and path.attribute is None and not node.logged:
            node.logged = True
            if self._log < 0:
                self._log = self._slot()
                self._lists.append(self._log)
        return self._slots[key]

    def add_list(self, steps: tuple[str, ...]) -> int:
        """A slot for every element ``steps`` selects, in document order."""
        slot = self._slot()
        self._actions = None
        self._step(steps).every.append(slot)
        self._lists.append(slot)
        return slot

    def first_of(self, found: list[Any], slots: tuple[int, ...]) -> Any:
        """The element that comes first in document order among ordered ``slots``."""
        for slot in found[self._log]:
            if slot in slots:
                return found[slot]
        return UNSET

    def freeze(self) -> None:
        """Prepare the walk (done by the first :meth:`evaluate` if not called before)."""
        self._actions = self._top.freeze(self._log)

    def evaluate(self, context: etree._Element) -> list[Any]:
        """Slot values: elements, attribute values or element lists; UNSET when absent."""
        if self._actions is None:
            self.freeze()
        found: list[Any] = [UNSET] * self.size
        for slot in self._lists:
            found[slot] = []
        _walk((context,), {context.tag: self._actions}, found)
        return found


def _walk(elements: Any, steps: dict[str, tuple[Any, ...]], found: list[Any]) -> None:
    # Depth first, children in order: XPath's document order.
    for element in elements:
        actions = steps.get(element.tag)
        if actions is None:
            continue
        slot, log, attributes, every, children, only = actions
        if slot >= 0 and found[slot] is UNSET:
            found[slot] = element
            if log >= 0:
                found[log].append(slot)
        for slot, name in attributes:
            if found[slot] is UNSET:
                value = element.get(name)
                if value is not None:
                    found[slot] = value
        for slot in every:
            found[slot].append(element)
        if children:
            _walk(element, children, found)
        elif only:
            tag, lists = only
            for slot in lists:
                found[slot].extend(element.iterchildren(tag))


__all__ = ["UNSET", "PathIndex", "SimplePath", "parse_simple"]
