"""The schemas the gateway accepts or emits, published for partners to validate against.

Every XSD and JSON Schema in the mappings' ``schemas`` folder and in each jurisdiction's
(``adapters/<jurisdiction>/schemas``, gateway/jurisdictions.py) is published as it is on disk,
except an XSD that a codec completes at load (the HK and Macau XSDs get the particulars of the
catalog, :mod:`gateway.mapping.particulars`): that one is published as the generated document
the gateway validates with. Each comes with the identifier it declares (a JSON Schema's
``$id``, an XSD's ``targetNamespace``), the version that identifier ends with
(``urn:gba:hk:application:1`` is version 1), a title and an RFC 9530 digest of its bytes. A
partner fetches ``GET /v1/schemas/{name}`` and validates with standard tools; the digest
doubles as the entity tag.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from lxml import etree

from gateway.domain.errors import ConfigurationError

JSON_SCHEMA = "application/schema+json"
XSD = "application/xml"


@dataclass(frozen=True, slots=True)
class PublishedSchema:
    name: str  # the file name: the last segment of its address
    kind: str  # "json-schema" or "xsd"
    media_type: str
    id: str  # $id or targetNamespace
    version: int | None  # the number the identifier ends with
    title: str
    digest: str  # sha-256=:...: of ``content``
    content: bytes

    def listing(self, href: str) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "media_type": self.media_type,
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "digest": self.digest,
            "size": len(self.content),
            "href": href,
        }


def _version(identifier: str) -> int | None:
    last = identifier.rsplit(":", 1)[-1]
    return int(last) if last.isdigit() else None


def _json_schema(path: Path, content: bytes) -> tuple[str, str]:
    document = json.loads(content)
    identifier = document.get("$id")
    if not isinstance(identifier, str):
        raise ConfigurationError(f"{path.name}: a published JSON Schema needs an $id")
    return identifier, str(document.get("title") or path.stem)


def _xsd(path: Path, content: bytes) -> tuple[str, str]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(content, parser)
    identifier = root.get("targetNamespace")
    if not identifier:
        raise ConfigurationError(f"{path.name}: a published XSD needs a targetNamespace")
    comments = [c for c in root.itersiblings(preceding=True) if isinstance(c, etree._Comment)]
    text = " ".join((comments[-1].text or "").split()) if comments else ""
    title = text.split(":", 1)[0].split(". ", 1)[0].strip() or path.stem
    return identifier, title


def _schema_files(directories: tuple[Path, ...]) -> list[Path]:
    """The schema files of every folder that exists; a name published twice is refused."""
    files: dict[str, Path] = {}
    for directory in directories:
        for path in sorted(directory.iterdir()) if directory.is_dir() else ():
            if path.name in files and files[path.name] != path:
                raise ConfigurationError(
                    f"{path.name} is published from both {files[path.name].parent} and {directory}"
                )
            files[path.name] = path
    return [files[name] for name in sorted(files)]


def published_schemas(
    directory: Path,
    generated: Mapping[str, bytes] | None = None,
    *,
    jurisdiction_dirs: Iterable[Path] = (),
) -> Mapping[str, PublishedSchema]:
    """Every ``*.schema.json`` and ``*.xsd`` in ``directory`` and in ``jurisdiction_dirs``
    (each jurisdiction folder's ``schemas``), by file name, read once; ``generated`` gives the
    content of those a codec generated (by file name)."""
    found: dict[str, PublishedSchema] = {}
    for path in _schema_files((directory, *jurisdiction_dirs)):
        if path.name.endswith(".schema.json"):
            kind, media_type, read = "json-schema", JSON_SCHEMA, _json_schema
        elif path.suffix == ".xsd":
            kind, media_type, read = "xsd", XSD, _xsd
        else:
            continue
        content = (generated or {}).get(path.name) or path.read_bytes()
        identifier, title = read(path, content)
        digest = "sha-256=:" + base64.b64encode(hashlib.sha256(content).digest()).decode() + ":"
        found[path.name] = PublishedSchema(
            path.name, kind, media_type, identifier, _version(identifier), title, digest, content
        )
    return MappingProxyType(found)
