"""Macau: the Macau native XML application format, mapped by ``mappings/fields/macau.yaml``.

Every jurisdiction folder has the same shape: ``JURISDICTION`` and
``codec(mappings_dir, particulars)``
(wire format <-> canonical application). The format has Portuguese element names with
Portuguese and Traditional Chinese labels (``mappings/schemas/macau-application.xsd``). The
identity profile (Macao One Account claims -> canonical identity) joins this folder with the
identity federation.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import holidays

from adapters.macau import identity, sandbox
from gateway.domain.matters import Particular
from gateway.jurisdictions import JurisdictionAdapter
from gateway.mapping.fields import XmlCodec

JURISDICTION = "MO"


def codec(folder: Path, mappings_dir: Path, particulars: Iterable[Particular]) -> XmlCodec:
    """The codec; ``particulars`` are the catalog's, each written under the particulars
    element of the format (``Catalog.particulars()``)."""
    return XmlCodec.load(mappings_dir / "fields" / "macau.yaml", JURISDICTION, particulars)


def working_days(year: int) -> holidays.HolidayBase:
    """Public and government holidays, Saturday + Sunday weekend (domain.md §6.1)."""
    return holidays.Macau(years=year, categories=(holidays.PUBLIC, holidays.GOVERNMENT))


ADAPTER = JurisdictionAdapter(
    code=JURISDICTION,
    format="macau",
    provider="macau",
    folder=Path(__file__).parent,
    codec=codec,
    identity=identity.PROFILE,
    names={"en": "Macao", "pt": "Macau", "zh-Hant": "澳門", "zh-Hans": "澳门"},
    calling_code="853",
    working_days=working_days,
    sandbox_idp=sandbox.IDENTITY_PROVIDER,
    order=2,
    sample_persona="lei-sio-meng",
)
