"""GET /v1/schemas lists, and GET /v1/schemas/{name} serves, every XSD and JSON Schema the
gateway accepts or emits, byte for byte, so that a partner validates with standard tools."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import aiohttp
from jsonschema import Draft202012Validator
from lxml import etree
from multidict import CIMultiDict

from gateway.settings import REPO_ROOT
from gateway.web.keys import DEPENDENCIES
from tests.conftest import RunningGateway
from tests.support import sample_xml

SCHEMAS = REPO_ROOT / "mappings" / "schemas"
# The jurisdiction-neutral schemas, and each jurisdiction folder's own.
FOLDERS = [SCHEMAS, *sorted(REPO_ROOT.glob("adapters/*/schemas"))]
ON_DISK = sorted(
    (p for f in FOLDERS for p in f.iterdir() if p.name.endswith((".schema.json", ".xsd"))),
    key=lambda p: p.name,
)
# The HK and Macau XSDs are served as the gateway generates them (the catalog's particulars
# filled in), which is the document their codecs validate with.
GENERATED = ("hk-application.xsd", "macau-application.xsd")


def _served(gateway: RunningGateway, path: Path) -> bytes:
    """What the gateway validates with under ``path``'s name."""
    if path.name not in GENERATED:
        return path.read_bytes()
    codecs = gateway.app[DEPENDENCIES].codecs  # type: ignore[index]
    (document,) = [
        c.schema_document for c in codecs.values() if getattr(c, "schema_name", None) == path.name
    ]
    return document


async def _get(
    gateway: RunningGateway, path: str, headers: dict[str, str] | None = None
) -> tuple[int, CIMultiDict[str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(gateway.url + path, headers=headers or {}) as response,
    ):
        return response.status, CIMultiDict(response.headers), await response.read()


def _digest(content: bytes) -> str:
    return "sha-256=:" + base64.b64encode(hashlib.sha256(content).digest()).decode() + ":"


async def test_every_schema_is_listed_with_its_identifier_version_and_digest(
    gateway: RunningGateway,
) -> None:
    status, _, body = await _get(gateway, "/v1/schemas")

    assert status == 200
    items = {item["name"]: item for item in json.loads(body)["items"]}
    assert sorted(items) == [p.name for p in ON_DISK]
    hk = items["hk-application.xsd"]
    assert hk["kind"] == "xsd"
    assert hk["id"] == "urn:gba:hk:application:1"
    assert hk["version"] == 1
    assert hk["href"] == f"{gateway.settings.base_url}/v1/schemas/hk-application.xsd"
    canonical = items["canonical-application.schema.json"]
    assert canonical["kind"] == "json-schema"
    assert canonical["media_type"] == "application/schema+json"
    assert canonical["id"] == "urn:gba:canonical:application:1"
    for path in ON_DISK:
        assert items[path.name]["digest"] == _digest(_served(gateway, path))
        assert items[path.name]["size"] == len(_served(gateway, path))


async def test_a_schema_is_served_as_it_is_validated_with(gateway: RunningGateway) -> None:
    for path in ON_DISK:
        status, headers, content = await _get(gateway, f"/v1/schemas/{path.name}")
        assert status == 200
        assert content == _served(gateway, path)
        assert headers["ETag"] == f'"{_digest(content)}"'
        assert headers["Content-Digest"] == _digest(content)
        if path.suffix == ".xsd":
            assert headers["Content-Type"].startswith("application/xml")
            etree.XMLSchema(etree.fromstring(content))  # compiles with a standard tool
        else:
            assert headers["Content-Type"].startswith("application/schema+json")
            Draft202012Validator.check_schema(json.loads(content))


async def test_a_partner_validates_its_own_document_with_the_fetched_xsd(
    gateway: RunningGateway,
) -> None:
    _, _, content = await _get(gateway, "/v1/schemas/hk-application.xsd")
    schema = etree.XMLSchema(etree.fromstring(content))

    assert schema.validate(etree.fromstring(sample_xml()))
    broken = sample_xml().replace(b"<Applicant>", b"<Applicant><Unknown/>", 1)
    assert broken != sample_xml()
    assert not schema.validate(etree.fromstring(broken))


async def test_a_cached_schema_is_not_sent_again(gateway: RunningGateway) -> None:
    _, headers, _ = await _get(gateway, "/v1/schemas/partner-ack.schema.json")

    status, again, content = await _get(
        gateway, "/v1/schemas/partner-ack.schema.json", {"If-None-Match": headers["ETag"]}
    )

    assert status == 304
    assert content == b""
    assert again["ETag"] == headers["ETag"]


async def test_only_published_schemas_are_served(gateway: RunningGateway) -> None:
    for name in ("nope.xsd", "..%2Fsettings.py", "%2E%2E%2Fgateway.toml", "fields"):
        status, headers, body = await _get(gateway, f"/v1/schemas/{name}")
        assert status == 404, name
        assert headers["Content-Type"] == "application/problem+json"
        assert json.loads(body)["type"].endswith("/problems/not-found")


async def test_the_served_xsds_declare_every_particular_of_the_catalog(
    gateway: RunningGateway,
) -> None:
    from gateway.mapping.catalog import Catalog

    names = {p.name for p in Catalog.load(REPO_ROOT / "mappings" / "matters").particulars()}
    xs = "{http://www.w3.org/2001/XMLSchema}"
    for name, holder in (
        ("hk-application.xsd", "Particulars"),
        ("macau-application.xsd", "Particularidades"),
    ):
        _, _, content = await _get(gateway, f"/v1/schemas/{name}")
        (path,) = [p for p in ON_DISK if p.name == name]
        on_disk = etree.fromstring(path.read_bytes())
        served = etree.fromstring(content)
        declared = [
            e.get("name")
            for t in served.iterchildren(f"{xs}complexType")
            if t.get("name") == holder
            for e in t.iter(f"{xs}element")
        ]
        assert len(declared) == len(names) == len(set(declared))
        # the file itself keeps only the placeholder
        assert not [
            e
            for t in on_disk.iterchildren(f"{xs}complexType")
            if t.get("name") == holder
            for e in t.iter(f"{xs}element")
        ]
