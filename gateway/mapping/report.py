"""``gba-gateway mappings report``: what each jurisdiction's mapping covers, in plain text.

Read from the reviewed data only (nothing is compiled, so a broken file is still reported on):

1. the canonical pointers each jurisdiction's field mapping (``fields/*.yaml`` of its folder,
   gateway/jurisdictions.py, or of ``mappings/``) fills, from the ``to:`` of its fields, of
   its lists' fields (``/list/*/field``: every item) and of its ``particulars:`` section
   expanded for the catalog's particulars (:func:`gateway.mapping.particulars.field_specs`,
   as loading does);
2. the pointers one jurisdiction maps and another does not;
3. the particulars of each matter that a jurisdiction's mapping cannot fill (such a matter
   cannot be applied for in that jurisdiction's native format);
4. the matters without an HK or a Macau counterpart (relation ``none``, or none listed).

Guangdong submits the canonical model itself, so it has no field mapping to report on.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway import jurisdictions as registry
from gateway.domain.matters import Matter, Particular
from gateway.domain.values import Jurisdiction
from gateway.mapping import particulars as particulars_layout
from gateway.mapping.catalog import read_catalog
from gateway.mapping.check import field_jurisdiction
from gateway.mapping.files import read_yaml_mapping


def _pointers(spec: Mapping[str, Any], particulars: list[Particular]) -> set[str]:
    def join(base: str, to: object) -> str:
        return base.rstrip("/") + "/" + str(to).lstrip("/")

    fields = list(spec.get("fields") or ())
    if spec.get("particulars") is not None:
        layout = particulars_layout.read_layout(spec["particulars"])
        fields += particulars_layout.field_specs(layout, particulars)
    out = {str(f["to"]) for f in fields if isinstance(f, Mapping) and "to" in f}
    for lst in spec.get("lists") or ():
        if not isinstance(lst, Mapping) or "to" not in lst:
            continue
        base = join(str(lst["to"]), "*")
        out |= {
            join(base, f["to"])
            for f in lst.get("fields") or ()
            if isinstance(f, Mapping) and "to" in f
        }
    return out


def _field_coverage(
    directories: list[tuple[str, Path]], particulars: list[Particular]
) -> tuple[dict[str, set[str]], list[str]]:
    coverage: dict[str, set[str]] = {}
    unreadable: list[str] = []
    for folder, path in ((f, p) for f, d in directories for p in sorted(d.glob("*.yaml"))):
        spec, reason = read_yaml_mapping(path)
        if spec is None:
            unreadable.append(f"{folder}fields/{path.name}: {reason}")
            continue
        try:
            pointers = _pointers(spec, particulars)
        except particulars_layout.ParticularsError as exc:
            unreadable.append(f"{folder}fields/{path.name}: particulars: {exc}")
            pointers = _pointers({**spec, "particulars": None}, particulars)
        coverage.setdefault(field_jurisdiction(path, spec), set()).update(pointers)
    return coverage, unreadable


def _latest(directory: Path) -> tuple[list[Matter], list[Particular], int]:
    """The latest readable version of each matter, the particulars of every readable version
    (the first kind of each name), and how many problems the catalog has."""
    versions, problems = read_catalog(directory) if directory.is_dir() else ([], [])
    latest: dict[str, Matter] = {}
    kinds: dict[str, Particular] = {}
    for v in versions:
        for p in v.matter.particulars if v.matter is not None else ():
            kinds.setdefault(p.name, p)
        m = v.matter
        if m is not None and (
            str(m.code) not in latest or latest[str(m.code)].effective_from < m.effective_from
        ):
            latest[str(m.code)] = m
    return [latest[code] for code in sorted(latest)], list(kinds.values()), len(problems)


def _counterpart_gap(matter: Matter, jurisdiction: Jurisdiction) -> str | None:
    counterpart = matter.counterpart(jurisdiction)
    if counterpart is None:
        return f"no {jurisdiction.value} counterpart listed"
    if counterpart.relation == "none":
        return f"no {jurisdiction.value} counterpart (relation none)"
    return None


def coverage_report(mappings_dir: Path, registered: registry.Jurisdictions | None = None) -> str:
    """A plain-text coverage report of the field mappings (under ``mappings_dir`` and in the
    folder of each jurisdiction of ``registered``, None: the registered ones) and the matter
    counterparts."""
    matters, particulars, problem_count = _latest(mappings_dir / "matters")
    folders = [("", mappings_dir / "fields")] + [
        (f"{j.folder.name}/", j.fields_dir) for j in registered or registry.registered()
    ]
    coverage, unreadable = _field_coverage(folders, particulars)
    jurisdictions = sorted(coverage)
    every = sorted(set().union(*coverage.values())) if coverage else []
    lines = [f"Mapping coverage of {mappings_dir}", ""]

    lines.append("1. Canonical pointers each jurisdiction's field mapping fills")
    if not coverage:
        lines.append("   (no field mappings)")
    for j in jurisdictions:
        lines.append(f"   {j} ({len(coverage[j])} pointers):")
        lines += [f"     {pointer}" for pointer in sorted(coverage[j])]
    lines += [f"   ! {u}" for u in unreadable]
    lines.append("   GD submits the canonical model itself (no field mapping).")
    lines.append("")

    lines.append("2. Pointers one jurisdiction maps and another does not")
    gaps = []
    for pointer in every:
        have = [j for j in jurisdictions if pointer in coverage[j]]
        lack = [j for j in jurisdictions if pointer not in coverage[j]]
        if lack:
            gaps.append(f"   {pointer}: mapped by {', '.join(have)}; not by {', '.join(lack)}")
    lines += gaps or ["   (none: every jurisdiction maps the same pointers)"]
    lines.append("")

    lines.append("3. Matter particulars a jurisdiction's field mapping cannot fill")
    unfilled = []
    for matter in matters:
        by_gap: dict[tuple[str, ...], list[str]] = {}
        for j in jurisdictions:
            missing = tuple(
                p.name
                for p in matter.particulars
                if not any(
                    pointer == f"/particulars/{p.name}"
                    or pointer.startswith(f"/particulars/{p.name}/")
                    for pointer in coverage[j]
                )
            )
            if missing:
                by_gap.setdefault(missing, []).append(j)
        unfilled += [
            f"   {matter.code} {matter.names.zh_hans}: {', '.join(js)} "
            f"{'lacks' if len(js) == 1 else 'lack'} {', '.join(missing)}"
            for missing, js in by_gap.items()
        ]
    lines += unfilled or ["   (none)"]
    lines.append("")

    lines.append("4. Matters without a Hong Kong (HK) or Macao (MO) counterpart")
    without = []
    for matter in matters:
        missing = [
            gap
            for j in (Jurisdiction.HK, Jurisdiction.MO)
            if (gap := _counterpart_gap(matter, j)) is not None
        ]
        if missing:
            without.append(f"   {matter.code} {matter.names.zh_hans}: {'; '.join(missing)}")
    lines += without or ["   (none: every matter has both)"]
    lines.append("")

    lines.append(f"{len(matters)} matters, {len(jurisdictions)} field mappings.")
    if problem_count:
        lines.append(
            f"The catalog has {problem_count} problem(s); versions with problems are left out. "
            "Run `gba-gateway mappings check`."
        )
    return "\n".join(lines) + "\n"


__all__ = ["coverage_report"]
