"""A fourth jurisdiction joins from a folder of its own, with no edit to the gateway.

"Sandboxia" (code XX, format ``xx``) is written into a temporary folder the way
``docs/mappings.md`` ("Adding a fourth jurisdiction") describes: a package exporting
``ADAPTER``, a field map in ``fields/`` and an XSD in ``schemas/``. Named by the setting
``jurisdiction_folders``, it is registered like the three shipped ones: its codec decodes its
documents, ``mappings check`` and ``mappings report`` cover its files, ``/v1/schemas`` publishes
its XSD, an agency of XX registers, and its identity provider may be configured.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from gateway import jurisdictions, operations
from gateway.bootstrap import codecs, create_app
from gateway.identity.discovery import load_providers
from gateway.mapping.check import check_mappings
from gateway.mapping.report import coverage_report
from gateway.settings import Settings
from gateway.trust.registry import registration
from tests.conftest import Database, free_port, sandbox_settings

NS = "urn:gba:xx:application:1"
MATTER = "11440400MB2C00081P4440120002000"

ADAPTER_PY = '''
"""Sandboxia: a fictional fourth jurisdiction, in a folder of its own."""

from pathlib import Path

from gateway.domain.identity import CanonicalIdentity
from gateway.domain.matters import Assurance
from gateway.jurisdictions import JurisdictionAdapter
from gateway.mapping.fields import XmlCodec
from gateway.mapping.identity import IdentityProfile, person_names

FOLDER = Path(__file__).parent


def codec(folder, mappings_dir, *more):
    return XmlCodec.load(folder / "fields" / "xx.yaml", "XX", *more)


def _read(r, issuer, assurance, acr):
    subject, name, born = r.claim("sub"), r.claim("name"), r.birth_date(r.claim("born"), "born")
    if subject is None or name is None or born is None:
        return None
    return CanonicalIdentity(
        provider="sandboxia", issuer=issuer, subject=subject, jurisdiction="XX",
        names=person_names(name, simplified_original=False), birth_date=born,
        documents=(), assurance=assurance, acr=acr,
    )


ADAPTER = JurisdictionAdapter(
    code="XX",
    format="xx",
    provider="sandboxia",
    folder=FOLDER,
    codec=codec,
    identity=IdentityProfile(
        provider="sandboxia", jurisdiction="XX",
        acr_values={"xx:1": Assurance.LOW, "xx:2": Assurance.SUBSTANTIAL}, read=_read,
    ),
    names={"en": "Sandboxia"},
    calling_code="999",
)
'''

FIELDS_YAML = f"""\
format: xx
version: xx-2026.1
root: x:Request
schema: xx-application.xsd
namespaces:
  x: {NS}
fields:
  - {{to: /matter, from: x:Matter, transform: upper, required: true}}
  - {{to: /applicant/names/original, from: x:Name, required: true}}
  - {{to: /applicant/names/zh-Hant, from: x:Name}}
  - {{to: /applicant/birth_date, from: x:Born, required: true}}
  - {{to: /applicant/email, from: x:Email}}
"""

XSD = f"""\
<?xml version="1.0" encoding="UTF-8"?>
<!-- Sandboxia application: the fictional fourth jurisdiction's native format. -->
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{NS}"
           xmlns:x="{NS}" elementFormDefault="qualified">
  <xs:element name="Request">
    <xs:complexType>
      <xs:sequence>
        <xs:element name="Matter" type="xs:string"/>
        <xs:element name="Name" type="xs:string"/>
        <xs:element name="Born" type="xs:date"/>
        <xs:element name="Email" type="xs:string" minOccurs="0"/>
      </xs:sequence>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""

DOCUMENT = f"""\
<?xml version="1.0" encoding="UTF-8"?>
<Request xmlns="{NS}">
  <Matter>{MATTER.lower()}</Matter>
  <Name>陳沙盒</Name>
  <Born>1990-01-02</Born>
  <Email>chan@example.xx</Email>
</Request>
""".encode()


@pytest.fixture
def sandboxia(tmp_path: Path) -> Iterator[Path]:
    """The folder of the fourth jurisdiction; the registry forgets it afterwards."""
    folder = tmp_path / "sandboxia"
    (folder / "fields").mkdir(parents=True)
    (folder / "schemas").mkdir()
    (folder / "__init__.py").write_text(ADAPTER_PY, "utf-8")
    (folder / "fields" / "xx.yaml").write_text(FIELDS_YAML, "utf-8")
    (folder / "schemas" / "xx-application.xsd").write_text(XSD, "utf-8")
    jurisdictions.reset()
    yield folder
    jurisdictions.reset()


def _settings(tmp_path: Path, folder: Path) -> Settings:
    return sandbox_settings(
        tmp_path, Database("sqlite", f"sqlite:///{tmp_path / 'gateway.db'}")
    ).with_overrides(jurisdiction_folders=(folder,))


def test_the_setting_registers_it_after_the_installed_three(
    tmp_path: Path, sandboxia: Path
) -> None:
    assert jurisdictions.registered().codes == ("HK", "MO", "GD")

    registered = jurisdictions.for_settings(_settings(tmp_path, sandboxia))

    assert registered.codes == ("HK", "MO", "GD", "XX")
    assert registered.by_format("xx").provider == "sandboxia"
    assert operations.formats(_settings(tmp_path, sandboxia))[-1] == "xx"


def test_its_codec_decodes_its_documents(tmp_path: Path, sandboxia: Path) -> None:
    codec = codecs(_settings(tmp_path, sandboxia))["XX"]

    decoded = codec.decode(DOCUMENT)

    assert not decoded.problems
    assert decoded.document["matter"] == MATTER
    assert decoded.document["applicant"]["names"]["original"] == "陳沙盒"
    assert decoded.document["applicant"]["birth_date"] == "1990-01-02"
    refused = codec.decode(DOCUMENT.replace(b"<Born>1990-01-02</Born>", b""))
    assert refused.problems


def test_mappings_translate_reads_its_format(tmp_path: Path, sandboxia: Path) -> None:
    out = operations.mappings_translate(_settings(tmp_path, sandboxia), "xx", "canonical", DOCUMENT)

    assert json.loads(out)["applicant"]["email"] == "chan@example.xx"


def test_mappings_check_and_report_cover_its_files(tmp_path: Path, sandboxia: Path) -> None:
    settings = _settings(tmp_path, sandboxia)
    registered = jurisdictions.for_settings(settings)
    said: list[str] = []

    assert operations.mappings_check(settings, sandbox_agencies=False, say=said.append)
    assert said == ["mappings: all sound"]
    assert "   XX (5 pointers):" in coverage_report(settings.mappings_dir, registered)

    (sandboxia / "schemas" / "xx-application.xsd").write_text("<xs:schema", "utf-8")
    (sandboxia / "fields" / "xx.yaml").write_text(
        FIELDS_YAML.replace("transform: upper", "transform: no_such_transform"), "utf-8"
    )
    lines = check_mappings(settings.mappings_dir, jurisdictions=registered)

    assert any(line.startswith("sandboxia/schemas/xx-application.xsd: ") for line in lines)
    assert any(line.startswith("sandboxia/fields/xx.yaml: ") for line in lines)


def test_an_agency_of_the_fourth_jurisdiction_registers(tmp_path: Path, sandboxia: Path) -> None:
    spec = {"agency_id": "xx-registry", "jurisdiction": "xx", "names": {"en": "XX Registry"}}
    before = registration(spec, now=datetime.now(UTC), sandbox=True)
    assert [p.pointer for p in before.problems if p.pointer == "/jurisdiction"] == ["/jurisdiction"]

    jurisdictions.for_settings(_settings(tmp_path, sandboxia))
    after = registration(spec, now=datetime.now(UTC), sandbox=True)

    assert "/jurisdiction" not in [p.pointer for p in after.problems]
    assert after.agency.jurisdiction == "XX"


def test_its_identity_provider_may_be_configured(tmp_path: Path, sandboxia: Path) -> None:
    path = tmp_path / "idps.yaml"
    path.write_text(
        "providers:\n  - {name: sandboxia, discovery_url: 'https://id.example.xx/.well-known/"
        "openid-configuration', client_id: gba, id_token_algs: [ES256]}\n",
        "utf-8",
    )
    jurisdictions.for_settings(_settings(tmp_path, sandboxia))

    (config,) = load_providers(path)

    assert config.name == "sandboxia"


async def test_v1_schemas_publishes_its_xsd(
    tmp_path: Path, sandboxia: Path, aiohttp_server: object
) -> None:
    settings = _settings(tmp_path, sandboxia).with_overrides(port=free_port())
    app = create_app(settings)
    server = await aiohttp_server(app, host="127.0.0.1", port=settings.port)  # type: ignore[operator]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{server.make_url('/v1/schemas')}") as response:
            items = {item["name"]: item for item in (await response.json())["items"]}
        async with session.get(f"{server.make_url('/v1/schemas/xx-application.xsd')}") as served:
            content = await served.read()

    assert items["xx-application.xsd"]["id"] == NS
    assert items["xx-application.xsd"]["version"] == 1
    assert "hk-application.xsd" in items
    assert content == (sandboxia / "schemas" / "xx-application.xsd").read_bytes()
