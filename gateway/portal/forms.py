"""The application form, generated from the matter's JSON Schema and its catalog entry.

Each particular of ``properties.particulars`` becomes a :class:`Field` by its ``x-kind``:
text, date and integer one input; a value list (``enum``) a select; money an amount and a
currency; an address its text, district, area code and jurisdiction (``$defs``). Labels are
the schema's ``x-labels``. Inputs are named by the JSON pointer of their value less its
leading slash (``particulars/capital/amount``), so a problem the API reports at a pointer is
shown at the field it names, or at the particular it lies under (:func:`place_errors`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.portal.i18n import Translator

_SUBFIELDS = {
    "money": ("amount", "currency"),
    "address": ("text", "district", "area_code", "jurisdiction"),
}


@dataclass
class Input:
    pointer: str
    label_key: str | None  # a portal message for a member of money or address
    kind: str  # text, date, integer, select
    options: tuple[str, ...] = ()
    value: str = ""
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def id(self) -> str:
        return "f" + self.pointer.replace("/", "-")


@dataclass
class Field:
    """One particular: a label and one or more inputs; a group when more than one."""

    name: str
    labels: Mapping[str, str]
    required: bool
    kind: str
    inputs: list[Input]
    errors: list[dict[str, str]] = field(default_factory=list)

    @property
    def pointer(self) -> str:
        return f"/particulars/{self.name}"

    @property
    def id(self) -> str:
        return "f" + self.pointer.replace("/", "-")

    @property
    def grouped(self) -> bool:
        return len(self.inputs) > 1


def _resolve(schema: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return {**schema["$defs"][ref.removeprefix("#/$defs/")], **node}
    return node


def fields_of(schema: Mapping[str, Any]) -> list[Field]:
    particulars = schema["properties"]["particulars"]
    required = set(particulars.get("required", []))
    out = []
    for name, raw in particulars.get("properties", {}).items():
        node = _resolve(schema, raw)
        kind = node.get("x-kind", "text")
        pointer = f"/particulars/{name}"
        if kind in _SUBFIELDS:
            members = node.get("properties", {})
            inputs = []
            for member in _SUBFIELDS[kind]:
                if member not in members:
                    continue
                options = tuple(members[member].get("enum", ()))
                inputs.append(
                    Input(
                        f"{pointer}/{member}",
                        f"{kind}_{member}",
                        "select" if options else "text",
                        options,
                    )
                )
        elif node.get("enum"):
            inputs = [Input(pointer, None, "select", tuple(node["enum"]))]
        else:
            inputs = [Input(pointer, None, kind if kind in ("date", "integer") else "text")]
        labels = node.get("x-labels") or {"en": node.get("title", name)}
        out.append(Field(name, labels, name in required, kind, inputs))
    return out


def fill(fields: list[Field], values: Mapping[str, str]) -> None:
    for item in fields:
        for entry in item.inputs:
            entry.value = values.get(entry.pointer, "")


def application(matter: str, fields: list[Field], values: Mapping[str, str]) -> dict[str, Any]:
    """The canonical application (without applicant: the gateway takes it from the login);
    empty inputs are left out, so the API reports what is missing."""
    particulars: dict[str, Any] = {}
    for item in fields:
        if item.grouped:
            members = {
                entry.pointer.rsplit("/", 1)[1]: values[entry.pointer].strip()
                for entry in item.inputs
                if values.get(entry.pointer, "").strip()
            }
            if members:
                particulars[item.name] = members
        elif values.get(item.pointer, "").strip():
            particulars[item.name] = values[item.pointer].strip()
    return {"matter": matter, "particulars": particulars}


def place_errors(
    fields: list[Field], errors: list[dict[str, Any]], tr: Translator
) -> list[dict[str, str]]:
    """Attach each problem to the input at its pointer, else to the particular it lies under;
    every problem (placed or not) is returned for the summary, with the id it links to."""
    summary = []
    inputs = {entry.pointer: (item, entry) for item in fields for entry in item.inputs}
    for index, error in enumerate(errors):
        pointer = str(error.get("pointer", ""))
        message = tr.pick(error.get("message"), str(error.get("code", "")))
        shown = {"id": f"err-{index}", "message": message, "pointer": pointer, "target": ""}
        if pointer in inputs:
            item, entry = inputs[pointer]
            entry.errors.append(shown)
            shown["target"] = entry.id
        else:
            for item in fields:
                if pointer == item.pointer or pointer.startswith(item.pointer + "/"):
                    item.errors.append(shown)
                    shown["target"] = item.inputs[0].id
                    break
        shown["label"] = _label_of(fields, pointer, tr)
        summary.append(shown)
    return summary


def _label_of(fields: list[Field], pointer: str, tr: Translator) -> str:
    for item in fields:
        if pointer == item.pointer or pointer.startswith(item.pointer + "/"):
            return tr.pick(item.labels, item.name)
    return pointer


def label_of_pointer(
    schema: Mapping[str, Any], pointer: str, tr: Translator, matter: Mapping[str, Any]
) -> str:
    """A field pointer of the route's minimised field lists, in words."""
    parts = pointer.strip("/").split("/")
    if len(parts) >= 2 and parts[0] == "particulars":
        node = schema["properties"]["particulars"].get("properties", {}).get(parts[1], {})
        return tr.pick(node.get("x-labels"), parts[1])
    if len(parts) >= 2 and parts[0] == "materials":
        for material in matter.get("materials", []):
            if material.get("code") == parts[1]:
                return tr.pick(material.get("names"), parts[1])
    if len(parts) >= 2 and parts[0] == "applicant":
        return tr(_APPLICANT.get(parts[1], "part_applicant"))
    return tr(f"part_{parts[0]}") if parts and parts[0] else pointer


# The applicant's members, as the consent page names them.
_APPLICANT = {
    "names": "name",
    "birth_date": "birth_date",
    "documents": "documents",
    "phone": "category_contact",
    "email": "category_contact",
    "address": "category_address",
}
