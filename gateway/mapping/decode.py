"""The decoding plan of a field mapping: every ``from`` of the file, read in one walk.

Each field's ``from`` is compiled at load into a *reader*:

* a simple path (:mod:`gateway.mapping.paths`) becomes a slot of the mapping's
  :class:`~gateway.mapping.paths.PathIndex`, or a direct read of the context element (``.``,
  ``@type``) in list items;
* a union of simple element paths (``h:A/h:ChineseName | h:A/h:EnglishName/h:Surname``)
  becomes ordered slots: the branch filled first in the walk is XPath's first node;
* ``concat()`` of simple paths and string literals joins the string-values of the first
  nodes; when one of those elements has children (only in a document the schema refuses, as
  its string-value is then more than its text), the compiled XPath is run instead;
* any other XPath is run as compiled at load.

The readers and transforms of a field list are then written out as one Python function
(:func:`generate`), so that no field is interpreted at run time: the text transforms run
inline, the others are called directly.

So the result is that of evaluating every ``from`` as XPath and taking the first node's text,
as the mapping defines, with one walk over the elements on mapped paths instead of one XPath
evaluation per field. Problems are collected in the same order, with the same XPaths
(``tests/unit/mapping/test_roundtrip.py`` checks both against plain XPath evaluation).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lxml import etree

from gateway.domain.documents import MESSAGES
from gateway.domain.errors import FieldProblem
from gateway.mapping import transforms
from gateway.mapping.paths import UNSET, PathIndex, SimplePath, parse_simple

if TYPE_CHECKING:
    from gateway.mapping.fields import FieldRule, ListRule

# Reader kinds. A reader is (kind, argument).
_ELEMENT, _ATTRIBUTE, _SELF, _SELF_ATTRIBUTE, _UNION, _CONCAT, _XPATH, _CONSTANT, _LITERAL = range(
    9
)

# Transform modes: the text transforms run inline, the others are called.
_CALL, _TEXT, _UPPER = range(3)

# A compiled field: (reader kind, reader argument, transform, mode, pointer, required, source).
Plan = tuple[tuple[int, Any, transforms.Transform, int, tuple[str, ...], bool, str], ...]


def first_text(found: Any) -> str | None:
    """The text of an XPath result as the mapping takes it: the first node, not blank."""
    if isinstance(found, list):
        found = found[0] if found else None
    if found is None:
        return None
    text = found.text if isinstance(found, etree._Element) else str(found)
    return text if text and text.strip() else None


def _split_arguments(text: str) -> list[str] | None:
    arguments, current, quote = [], "", ""
    for ch in text:
        if quote:
            current += ch
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            current, quote = current + ch, ch
        elif ch == ",":
            arguments.append(current.strip())
            current = ""
        else:
            current += ch
    return None if quote else [*arguments, current.strip()]


def _simple(source: str, ns: Mapping[str, str]) -> SimplePath | None:
    try:
        return parse_simple(source, ns)
    except ValueError:  # a prefix unknown here: the compiled XPath knows its namespaces
        return None


def _path_reader(path: SimplePath, index: PathIndex) -> tuple[int, Any]:
    if not path.steps:
        return (_SELF, None) if path.attribute is None else (_SELF_ATTRIBUTE, path.attribute)
    return (_ELEMENT if path.attribute is None else _ATTRIBUTE), index.add(path)


def _union(source: str, ns: Mapping[str, str], index: PathIndex) -> tuple[int, ...] | None:
    branches = [_simple(branch.strip(), ns) for branch in source.split("|")]
    if len(branches) < 2 or any(b is None or b.attribute is not None for b in branches):
        return None
    return tuple(index.add(branch, ordered=True) for branch in branches if branch is not None)


def _concat(source: str, ns: Mapping[str, str], index: PathIndex) -> tuple[Any, ...] | None:
    text = source.strip()
    if not (text.startswith("concat(") and text.endswith(")")):
        return None
    arguments = _split_arguments(text[len("concat(") : -1])
    if arguments is None or len(arguments) < 2:
        return None
    parts = []
    for argument in arguments:
        if len(argument) >= 2 and argument[0] == argument[-1] and argument[0] in "'\"":
            parts.append((_LITERAL, argument[1:-1]))
        elif (path := _simple(argument, ns)) is not None:
            parts.append(_path_reader(path, index))
        else:
            return None
    return tuple(parts)


def _reader(rule: FieldRule, ns: Mapping[str, str], index: PathIndex) -> tuple[int, Any]:
    if rule.xpath is None and rule.path is None:
        return _CONSTANT, rule.value
    if rule.path is not None:
        return _path_reader(rule.path, index)
    if "|" in rule.source and (slots := _union(rule.source, ns, index)) is not None:
        return _UNION, (slots, index)
    if (parts := _concat(rule.source, ns, index)) is not None:
        return _CONCAT, (parts, rule.xpath)
    return _XPATH, rule.xpath


def compile_plan(rules: tuple[FieldRule, ...], ns: Mapping[str, str], index: PathIndex) -> Plan:
    """The readers of ``rules``, with their slots added to ``index``."""
    modes = {transforms.TEXT: _TEXT, transforms.UPPER: _UPPER}
    readers = [_reader(rule, ns, index) for rule in rules]
    return tuple(
        (
            *reader,
            rule.transform,
            _CALL if reader[0] == _CONSTANT else modes.get(rule.transform, _CALL),
            rule.pointer,
            rule.required,
            rule.source,
        )
        for reader, rule in zip(readers, rules, strict=True)
    )


def _string_value(kind: int, argument: Any, context: etree._Element, found: list[Any]) -> Any:
    """A concat() argument's string, or None when only XPath can tell (mixed content)."""
    if kind == _LITERAL:
        return argument
    if kind in (_ATTRIBUTE, _SELF_ATTRIBUTE):
        value = found[argument] if kind == _ATTRIBUTE else context.get(argument)
        return "" if value is UNSET or value is None else value
    element = found[argument] if kind == _ELEMENT else context
    if element is UNSET:
        return ""
    return None if len(element) else element.text or ""


def _read(kind: int, argument: Any, context: etree._Element, found: list[Any]) -> Any:
    """The raw text of the readers the generated code does not inline (UNSET: absent)."""
    if kind == _UNION:
        slots, index = argument
        element = index.first_of(found, slots)
        return UNSET if element is UNSET else element.text
    if kind == _CONCAT:
        parts, xpath = argument
        strings = [_string_value(k, a, context, found) for k, a in parts]
        return first_text(xpath(context)) if None in strings else "".join(strings)
    return first_text(argument(context))  # _XPATH


# --- the generated mapping functions ---------------------------------------------------------

_READERS = {
    _ELEMENT: "raw = found[{arg}]\nraw = None if raw is UNSET else raw.text",
    _ATTRIBUTE: "raw = found[{arg}]\nif raw is UNSET:\n    raw = None",
    _SELF: "raw = context.text",
    _SELF_ATTRIBUTE: "raw = context.get({arg})",
    _CONSTANT: "raw = A{n}",
}
_OTHER_READER = "raw = read({kind}, A{n}, context, found)\nif raw is UNSET:\n    raw = None"
_INLINE = {_TEXT: '" ".join(raw.split())', _UPPER: '" ".join(raw.split()).upper()'}
_INLINE_FIELD = """{reader}
if raw is not None and (value := {expression}):
    {store}
{absent}"""
_CALLED_FIELD = """{reader}
if raw is not None and {present}:
    try:
        value = T{n}(raw)
    except TransformError as exc:
        problems.append(problem(exc.code, {where}))
    else:
        {store}
{absent}"""
_FUNCTION = """def map_elements(elements, found, problems, list_source):
    out = []
    for i, context in enumerate(elements, start=1):
{evaluate}        target = {{}}
{fields}
        out.append(target)
    return out
"""


def _problem(code: str, where: str) -> FieldProblem:
    return FieldProblem(code, MESSAGES[code], xpath=where)


def _field_code(n: int, field: tuple[Any, ...], in_list: bool) -> str:
    kind, argument, _, mode, pointer, required, source = field
    reader = _READERS.get(kind, _OTHER_READER)
    arg = repr(argument) if kind == _SELF_ATTRIBUTE else argument
    where = f'f"{{list_source}}[{{i}}]/" + {source!r}' if in_list else repr(source)
    if pointer:
        *parents, key = pointer
        store = "target" + "".join(f".setdefault({part!r}, {{}})" for part in parents)
        store = f"{store}[{key!r}] = value"
    else:  # a scalar list's item is the value itself
        store = "target = value"
    values = {
        "reader": reader.format(arg=arg, n=n, kind=kind),
        "store": store,
        "absent": f'else:\n    problems.append(problem("required", {where}))' if required else "",
        "expression": _INLINE.get(mode, ""),
        "present": "True" if kind == _CONSTANT else "raw.strip()",
        "n": n,
        "where": where,
    }
    return (_INLINE_FIELD if mode in _INLINE else _CALLED_FIELD).format(**values)


def generate(plan: Plan, index: PathIndex | None, in_list: bool, name: str) -> Any:
    """``map_elements(elements, found, problems, list_source) -> list of dicts`` for ``plan``.

    The plan is written out as Python (every field one block, in order) and compiled once,
    at load: the same technique as :mod:`dataclasses`, for the same reason (no per-field
    interpretation in a loop that runs for every field of every item). Only numbers and
    ``repr()`` of the mapping's strings enter the source; transforms and readers are passed
    by name. ``found`` is the top-level walk; ``index`` evaluates each item's own slots.
    """
    fields = "\n".join(_field_code(n, field, in_list) for n, field in enumerate(plan))
    source = _FUNCTION.format(
        evaluate="        found = evaluate(context)\n" if index is not None else "",
        fields=textwrap.indent(fields or "pass", " " * 8),
    )
    namespace: dict[str, Any] = {
        "UNSET": UNSET,
        "TransformError": transforms.TransformError,
        "problem": _problem,
        "read": _read,
        "evaluate": index.evaluate if index is not None else None,
    }
    for n, (_, argument, transform, *_) in enumerate(plan):
        namespace[f"A{n}"], namespace[f"T{n}"] = argument, transform
    exec(compile(source, f"<decoder of {name}>", "exec"), namespace)  # noqa: S102
    return namespace["map_elements"]


class DecodePlan:
    """Every field and list of a mapping, compiled for :meth:`run`."""

    def __init__(
        self, fields: tuple[FieldRule, ...], lists: tuple[ListRule, ...], ns: Mapping[str, str]
    ) -> None:
        self._index = PathIndex()
        self._fields = generate(compile_plan(fields, ns, self._index), None, False, "fields")
        self._lists = []
        for lst in lists:
            item_index = PathIndex()
            plan = compile_plan(lst.fields, ns, item_index)
            slot = self._index.add_list(lst.path.steps) if lst.path is not None else -1
            index = item_index if item_index.size else None
            self._lists.append((lst, slot, generate(plan, index, True, lst.source)))
            item_index.freeze()
        self._index.freeze()

    def run(self, root: etree._Element, problems: list[FieldProblem]) -> dict[str, Any]:
        """The canonical document of ``root``; problems are appended to ``problems``."""
        found = self._index.evaluate(root)
        (document,) = self._fields((root,), found, problems, None)
        for lst, slot, map_items in self._lists:
            elements = found[slot] if slot >= 0 else lst.each(root)
            items = map_items(elements, found, problems, lst.source)
            if lst.scalar:  # an item without its value (blank) is no item
                items = [item for item in items if not isinstance(item, dict)]
            node = document
            for part in lst.pointer[:-1]:
                node = node.setdefault(part, {})
            node[lst.pointer[-1]] = items
        return document


__all__ = ["DecodePlan", "first_text", "generate"]
