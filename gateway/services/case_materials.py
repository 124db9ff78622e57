"""Materials an application names: resolved from the uploads, checked, filled in and bound.

An application's ``materials[]`` item names ``{"code", "material_id"}`` (a ``filename`` may
go with it). The gateway looks the upload up, checks it (:func:`check_named`: the caller's
own upload, not bound to another case, a code of the matter, a media type that material
accepts, the per-application total), then fills the item in from the stored upload —
``digest``, ``size``, ``media_type``, the upload's ``filename`` unless one is given — and
its ``href``: where a handler of the case fetches it (``GET``, RFC 9421-signed;
:data:`MATERIAL_PATH` below the gateway's public base URL). What the application stores,
what its receipt binds and what every forward carries is that filled-in item, so the
translation record's digests cover the digests of the files.

An item given by its digest alone (no ``material_id``: a file that was never uploaded) is
kept as it came when ``MaterialLimits.digest_only`` allows it (the default while partner
systems move to uploads); otherwise it is a ``material_not_uploaded`` problem. It has no
``href``: there is nothing to fetch.

Binding happens in the submission's (or the supplement's) own unit of work: a material is
bound once, and a bound material is never removed by the expiry sweep.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.domain import minimisation
from gateway.domain.commands import Caller
from gateway.domain.documents import problem
from gateway.domain.errors import FieldProblem
from gateway.domain.materials import MaterialLimits, StoredMaterial
from gateway.domain.matters import Matter
from gateway.domain.values import local_date
from gateway.services.ports import MatterCatalog, UnitOfWork

# Where a handler of the case fetches a material of it, below the public base URL.
MATERIAL_PATH = "/v1/applications/{application_id}/materials/{material_id}"
_FILLED = ("digest", "size", "media_type")


@dataclass(frozen=True, slots=True)
class NamedMaterial:
    """One ``materials[]`` item of an application: its pointer, code and material id."""

    pointer: str  # e.g. /materials/0
    code: str
    material_id: str


def check_named(
    matter: Matter,
    named: Sequence[NamedMaterial],
    found: dict[str, StoredMaterial],
    caller: Caller,
    limits: MaterialLimits,
    *,
    application_id: str | None = None,
) -> list[FieldProblem]:
    """Every problem with the materials an application names (one pass, Art. 19(3)):
    a code the matter does not ask for, an id that is not the caller's upload (or unknown),
    one bound to another application, a media type this material does not accept (the
    catalog's ``media_types``), and the total beyond ``limits.application_bytes``. ``found``
    is :meth:`MaterialRepository.get_many` of the ids."""
    by_code = {m.code: m for m in matter.materials}
    problems: list[FieldProblem] = []
    total = 0
    seen: set[str] = set()
    for item in named:
        wanted = by_code.get(item.code)
        if wanted is None:
            problems.append(problem(f"{item.pointer}/code", "unknown_material"))
        stored = found.get(item.material_id)
        if stored is None or stored.owner != caller.agency_id:
            problems.append(problem(f"{item.pointer}/material_id", "unknown_material_id"))
            continue
        if item.material_id in seen:
            problems.append(problem(f"{item.pointer}/material_id", "duplicate_material_id"))
            continue
        seen.add(item.material_id)
        if stored.application_id is not None and stored.application_id != application_id:
            problems.append(problem(f"{item.pointer}/material_id", "material_in_use"))
        if wanted is not None and stored.media_type not in wanted.media_types:
            problems.append(problem(f"{item.pointer}/material_id", "media_type_not_allowed"))
        total += stored.size
    if total > limits.application_bytes:
        problems.append(problem("/materials", "materials_too_large"))
    return problems


def named_in(items: object, base: str = "/materials") -> list[NamedMaterial]:
    """The items of a ``materials`` list that name an upload (a text ``material_id``)."""
    if not isinstance(items, list):
        return []
    return [
        NamedMaterial(f"{base}/{i}", str(item.get("code") or ""), item["material_id"])
        for i, item in enumerate(items)
        if isinstance(item, dict) and isinstance(item.get("material_id"), str)
    ]


@dataclass(frozen=True, slots=True)
class Resolved:
    """The uploads an application's materials name, and every problem with them."""

    found: dict[str, StoredMaterial]
    problems: list[FieldProblem]


async def resolve(
    uow: UnitOfWork,
    items: object,
    matter: Matter,
    caller: Caller,
    limits: MaterialLimits,
    *,
    application_id: str | None = None,
    base: str = "/materials",
) -> Resolved:
    """Look up the uploads ``items`` (a ``materials`` list) name and check them all; an item
    that also gives a ``digest`` must give the upload's. Items by digest alone are checked
    against ``limits.digest_only``."""
    named = named_in(items, base)
    found = await uow.materials.get_many([n.material_id for n in named]) if named else {}
    problems = check_named(matter, named, found, caller, limits, application_id=application_id)
    for item in named:
        stored = found.get(item.material_id)
        given = _item(items, item.pointer).get("digest")
        mine = stored is not None and stored.owner == caller.agency_id
        if mine and given is not None and stored is not None and given != stored.digest:
            problems.append(problem(f"{item.pointer}/digest", "material_digest_mismatch"))
    if not limits.digest_only and isinstance(items, list):
        problems += [
            problem(f"{base}/{i}/material_id", "material_not_uploaded")
            for i, item in enumerate(items)
            if isinstance(item, dict) and "material_id" not in item
        ]
    return Resolved(found, problems)


def _item(items: object, pointer: str) -> Mapping[str, Any]:
    index = int(pointer.rsplit("/", 1)[1])
    assert isinstance(items, list)
    return items[index]  # type: ignore[no-any-return]


def href(base_url: str, application_id: str, material_id: str) -> str:
    """The absolute URL a handler of the case fetches a material at."""
    return base_url.rstrip("/") + MATERIAL_PATH.format(
        application_id=application_id, material_id=material_id
    )


def filled(
    items: list[Any], found: Mapping[str, StoredMaterial], application_id: str, base_url: str
) -> list[Any]:
    """The ``materials`` items with what the gateway knows of each upload filled in (the
    client's ``digest``, ``size`` and ``media_type`` are replaced by the stored ones)."""
    out = []
    for item in items:
        stored = found.get(item.get("material_id")) if isinstance(item, dict) else None
        if stored is None:
            out.append(item)
            continue
        entry: dict[str, Any] = {
            "code": item["code"],
            "material_id": stored.material_id,
            "digest": stored.digest,
            "size": stored.size,
            "media_type": stored.media_type,
            "href": href(base_url, application_id, stored.material_id),
        }
        filename = item.get("filename") or stored.filename
        if filename:
            entry["filename"] = filename
        out.append(entry)
    return out


def with_materials(
    document: Mapping[str, Any],
    found: Mapping[str, StoredMaterial],
    application_id: str,
    base_url: str,
) -> dict[str, Any]:
    """``document`` with its named materials filled in (see :func:`filled`)."""
    items = document.get("materials")
    if not found or not isinstance(items, list):
        return dict(document)
    return {**document, "materials": filled(items, found, application_id, base_url)}


def addressed(document: Mapping[str, Any], application_id: str, base_url: str) -> dict[str, Any]:
    """``document`` with an ``href`` on every stored material that has none yet (evidence an
    issuer sent is bound to the case after it was received, without one)."""
    items = document.get("materials")
    if not isinstance(items, list) or not any(
        isinstance(m, dict) and "material_id" in m and "href" not in m for m in items
    ):
        return dict(document)
    return {
        **document,
        "materials": [
            {**m, "href": href(base_url, application_id, m["material_id"])}
            if isinstance(m, dict) and "material_id" in m and "href" not in m
            else m
            for m in items
        ],
    }


async def bind(
    uow: UnitOfWork, items: object, found: Mapping[str, StoredMaterial], application_id: str
) -> None:
    """Bind the uploads ``items`` name to the application, each as its code; ConflictError
    when one was bound elsewhere meanwhile (the whole unit of work is then rolled back)."""
    for item in named_in(items):
        stored = found[item.material_id]
        if stored.application_id != application_id:
            await uow.materials.bind(item.material_id, application_id, item.code)


def receipt_claim(document: Mapping[str, Any]) -> list[dict[str, str]]:
    """What a receipt binds of the materials: each item's code, material id and digest."""
    items = document.get("materials")
    if not isinstance(items, list):
        return []
    return [
        {k: item[k] for k in ("code", "material_id", "digest") if isinstance(item.get(k), str)}
        for item in items
        if isinstance(item, dict)
    ]


def listed(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The fetchable materials of a document, as a timeline event or a view lists them."""
    items = document.get("materials")
    if not isinstance(items, list):
        return []
    return [
        {k: item[k] for k in ("code", "material_id", *_FILLED, "href") if k in item}
        for item in items
        if isinstance(item, dict) and "material_id" in item
    ]


# ---- reading a material: its uploader, or a handling agency the case was forwarded to ----


async def may_read(
    uow: UnitOfWork,
    material: StoredMaterial,
    caller: Caller,
    catalog: MatterCatalog | None = None,
) -> bool:
    """Who may fetch a material: the party that uploaded it (its own, bound or not), and a
    handling agency (lead or reviewer) of the application it is bound to once the gateway
    has queued that agency's forward of the case — from then on its forward lists the file.
    A handler whose forward is not due yet (a reviewer while the lead examines) may not, nor
    one whose declared fields leave the material out (data minimisation: it was never sent
    the file's address, and guessing it gets nothing)."""
    if material.owner == caller.agency_id:
        return True
    if material.application_id is None or caller.person_id is not None:
        return False
    app = await uow.applications.get(material.application_id)
    if app is None:
        return False
    handler = next(
        (h for h in app.handlers if h.agency_id == caller.agency_id and h.message_id), None
    )
    if handler is None:
        return False
    if catalog is None:
        return True
    route = catalog.get(app.matter, local_date(app.received_at)).route
    pointers = minimisation.fields_for(route, handler.agency_id, handler.role)
    return pointers is None or bool(
        {"/materials", f"/materials/{material.code}"}.intersection(pointers)
    )


async def readable(
    uow: UnitOfWork,
    caller: Caller,
    material_id: str,
    now: datetime,
    *,
    application_id: str | None = None,
    catalog: MatterCatalog | None = None,
) -> StoredMaterial | None:
    """The material if ``caller`` may fetch it (at ``application_id``'s address: only a
    material bound to that case); else None, exactly as for an id that does not exist.
    Every attempt is on the audit trail: ``material.fetched`` or ``material.fetch_refused``
    with the caller and the material id. The caller's unit of work commits it."""
    material = await uow.materials.get(material_id)
    allowed = (
        material is not None
        and (application_id is None or material.application_id == application_id)
        and await may_read(uow, material, caller, catalog)
    )
    data: dict[str, Any] = {"application_id": application_id}
    if allowed and material is not None:
        data["digest"] = material.digest
    uow.audit.record(
        "material.fetched" if allowed else "material.fetch_refused",
        caller.agency_id,
        material_id,
        data,
        now,
    )
    return material if allowed else None
