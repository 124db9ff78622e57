"""Macau: the Macau native XML application format, mapped by ``fields/macau.yaml``.

Every jurisdiction folder has the same shape (gateway/jurisdictions.py): ``ADAPTER``, the one
thing the gateway imports (through the ``gba_gateway.jurisdictions`` entry points), names the
code, the format, the identity provider with its profile (``identity.py``), the codec
(``codec(folder, mappings_dir, particulars)``: wire format <-> canonical application), the
working-day calendar and the sandbox's imitation of the identity provider (``sandbox.py``).
The format has Portuguese element names with Portuguese and Traditional Chinese labels
(``schemas/macau-application.xsd``).
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
    return XmlCodec.load(folder / "fields" / "macau.yaml", JURISDICTION, particulars)


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
