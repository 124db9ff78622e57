"""Data minimisation (PIPL art. 6, the GBA personal-information rules' minimum necessary):
only the fields a handler needs leave the gateway for it.

A matter's route declares, per handling agency, the fields it needs as JSON pointers into the
canonical document (``route.fields`` in mappings/matters/*.yaml). Every handler gets
:data:`MINIMUM` (who the applicant is, and the matter); besides it, a handler with a declared
list gets what it names; one without gets the whole document if it is the lead (it examines
the application: Art. 19) and nothing more if it is a reviewer.

Pointers select a member (``/applicant/address``, ``/particulars/specialty``) or, in the
``materials`` and ``commitments`` lists, the items of one material code
(``/materials/PRACTISING_CERTIFICATE``); ``/materials`` selects them all.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.domain.matters import Route

# what every handler is sent: the matter, and who the applicant is
MINIMUM = ("/matter", "/applicant/names", "/applicant/birth_date", "/applicant/documents")
_LISTS = {"materials": "code", "commitments": "material"}  # lists selected by item code


def fields_for(route: Route, agency_id: str, role: str | None = None) -> tuple[str, ...] | None:
    """The pointers the agency is sent, or None for the whole document. ``role``: the
    agency's on the case (lead | reviewer); by default, its place in the route."""
    declared = route.fields_of(agency_id)
    if declared is None:
        lead = role == "lead" if role is not None else agency_id == route.lead
        return None if lead else MINIMUM
    return tuple(dict.fromkeys((*MINIMUM, *declared)))


def minimised(document: Mapping[str, Any], pointers: Iterable[str] | None) -> dict[str, Any]:
    """The document with only the fields ``pointers`` select (None: all of it), in the
    document's own order; a pointer to something absent selects nothing."""
    if pointers is None:
        return dict(document)
    wanted = [_parts(p) for p in pointers]
    return _pick(document, wanted)


def _parts(pointer: str) -> tuple[str, ...]:
    if not pointer.startswith("/"):
        raise ValueError(f"{pointer!r} is not a JSON pointer")
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/"))


def _pick(node: Mapping[str, Any], wanted: list[tuple[str, ...]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        here = [w for w in wanted if w and w[0] == key]
        if not here:
            continue
        if any(len(w) == 1 for w in here):
            out[key] = copy.deepcopy(value)
        elif isinstance(value, Mapping):
            picked = _pick(value, [w[1:] for w in here])
            if picked:
                out[key] = picked
        elif key in _LISTS and isinstance(value, list):
            codes = {w[1] for w in here}
            items = [
                copy.deepcopy(item)
                for item in value
                if isinstance(item, Mapping) and item.get(_LISTS[key]) in codes
            ]
            if items:
                out[key] = items
    return out


def leaves(document: Mapping[str, Any], prefix: str = "") -> set[str]:
    """The JSON pointers of the document's members (list items by material code, for the
    materials and commitments lists; other lists whole): what a forward carries."""
    found: set[str] = set()
    for key, value in document.items():
        pointer = f"{prefix}/{key.replace('~', '~0').replace('/', '~1')}"
        if isinstance(value, Mapping) and value:
            found |= leaves(value, pointer)
        elif key in _LISTS and not prefix and isinstance(value, list):
            found |= {
                f"{pointer}/{item.get(_LISTS[key])}" for item in value if isinstance(item, Mapping)
            }
        else:
            found.add(pointer)
    return found


def selected(pointer: str, pointers: Iterable[str]) -> bool:
    """Whether ``pointer`` (as :func:`leaves` names it) lies within one of ``pointers``."""
    return any(pointer == p or pointer.startswith(p + "/") for p in pointers)
