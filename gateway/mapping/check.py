"""``gba-gateway mappings check``: every problem of the reviewed mapping data, one line each.

Mapping data is reviewed like code. This loads everything under ``mappings/`` the way the
gateway does at start-up, but instead of refusing at the first broken file it lists every
problem of every file, each line naming the file (relative to ``mappings/``):

- ``matters/*.yaml``: the catalog rules of :mod:`gateway.mapping.catalog`, overlapping versions,
  and routes to agencies that are not registered (when the registered ids are given);
- ``fields/*.yaml``: field mappings that do not load (unknown transforms, bad XPath, a missing
  or broken schema file, a particular of the catalog the ``particulars:`` section cannot
  write), as :meth:`XmlCodec.load` reports them, loaded with the particulars of every matter
  version that reads;
- ``schemas/*.xsd``: schema files that do not parse as XML Schema;
- the same ``fields/`` and ``schemas/`` of every registered jurisdiction's folder
  (gateway/jurisdictions.py), named from the folder (``hk/fields/hk.yaml``).

An empty list means all is well.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lxml import etree

from gateway import jurisdictions as registry
from gateway.domain.matters import Particular
from gateway.mapping.catalog import read_catalog
from gateway.mapping.fields import MappingError, XmlCodec
from gateway.mapping.files import read_yaml_mapping

# Our own files, parsed as strictly as any input (as gateway.mapping.fields does).
_SCHEMA_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def check_mappings(
    mappings_dir: Path,
    known_agencies: Iterable[str] | None = None,
    jurisdictions: registry.Jurisdictions | None = None,
) -> list[str]:
    """Every problem under ``mappings_dir`` and in each jurisdiction's folder
    (``jurisdictions``, None: the registered ones), one readable line each; [] when all is
    well."""
    matter_lines, particulars = _matter_problems(mappings_dir / "matters", known_agencies)
    lines = [
        *matter_lines,
        *_field_problems(mappings_dir / "fields", particulars),
        *_schema_problems(mappings_dir / "schemas"),
    ]
    for adapter in jurisdictions or registry.registered():
        if adapter.folder.resolve() != mappings_dir.resolve():
            named = f"{adapter.folder.name}/"
            lines += _field_problems(adapter.fields_dir, particulars, named)
            lines += _schema_problems(adapter.schemas_dir, named)
    return lines


def _matter_problems(
    directory: Path, known_agencies: Iterable[str] | None
) -> tuple[list[str], list[Particular]]:
    """The catalog's problems, and the particulars of every version that reads (a particular
    whose kind differs between matters is a catalog problem: only its first kind is kept)."""
    if not directory.is_dir():
        return ["matters/: the folder is missing"], []
    versions, problems = read_catalog(directory)
    lines = [f"matters/{p}" for p in problems]
    kinds: dict[str, Particular] = {}
    for v in versions:
        for p in v.matter.particulars if v.matter is not None else ():
            kinds.setdefault(p.name, p)
    if known_agencies is not None:
        known = set(known_agencies)
        for v in versions:
            if v.route is None:
                continue
            for agency in v.route.handlers:
                if agency not in known:
                    lines.append(
                        f"matters/{v.file}: {v.code} v{v.version}: the route names agency "
                        f"{agency!r}, which is not registered"
                    )
    return lines, list(kinds.values())


def field_jurisdiction(path: Path, spec: Mapping[str, Any] | None = None) -> str:
    """The jurisdiction a field mapping file configures: its ``format``, else its file name."""
    if spec is None:
        spec, _ = read_yaml_mapping(path)
    name = spec.get("format") if spec is not None else None
    name = str(name or path.stem).lower()
    return registry.registered().format_codes().get(name, name.upper())


def _field_problems(directory: Path, particulars: list[Particular], folder: str = "") -> list[str]:
    lines = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            XmlCodec.load(path, field_jurisdiction(path), particulars)
        except MappingError as exc:  # the message starts with the file name
            lines.append(f"{folder}fields/{exc.detail}")
    return lines


def _schema_problems(directory: Path, folder: str = "") -> list[str]:
    lines = []
    for path in sorted(directory.glob("*.xsd")):
        try:
            etree.XMLSchema(etree.parse(str(path), _SCHEMA_PARSER))
        except (OSError, etree.LxmlError) as exc:
            lines.append(f"{folder}schemas/{path.name}: {type(exc).__name__}: {exc}")
    return lines


__all__ = ["check_mappings", "field_jurisdiction"]
