"""Hong Kong: the HK native XML application format, mapped by ``fields/hk.yaml``.

Every jurisdiction folder has the same shape (gateway/jurisdictions.py): ``ADAPTER``, the one
thing the gateway imports (through the ``gba_gateway.jurisdictions`` entry points), names the
code, the format, the identity provider with its profile (``identity.py``), the codec
(``codec(folder, mappings_dir, particulars)``: wire format <-> canonical application), the
working-day calendar and the sandbox's imitation of the identity provider (``sandbox.py``).
The field map and the XSD (``schemas/hk-application.xsd``) live in this folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import holidays

from adapters.hk import identity, sandbox
from gateway.domain.matters import Particular
from gateway.jurisdictions import JurisdictionAdapter
from gateway.mapping.fields import XmlCodec

JURISDICTION = "HK"


def codec(folder: Path, mappings_dir: Path, particulars: Iterable[Particular]) -> XmlCodec:
    """The codec; ``particulars`` are the catalog's, each written under the particulars
    element of the format (``Catalog.particulars()``)."""
    return XmlCodec.load(folder / "fields" / "hk.yaml", JURISDICTION, particulars)


def working_days(year: int) -> holidays.HolidayBase:
    """The 17 general holidays (``OPTIONAL``) and a Saturday + Sunday weekend: government
    offices close on Saturdays (domain.md §6.1)."""
    calendar = holidays.HongKong(years=year, categories=(holidays.OPTIONAL,))
    calendar.weekend = {5, 6}
    return calendar


ADAPTER = JurisdictionAdapter(
    code=JURISDICTION,
    format="hk",
    provider="hk",
    folder=Path(__file__).parent,
    codec=codec,
    identity=identity.PROFILE,
    names={"en": "Hong Kong", "zh-Hant": "香港", "zh-Hans": "香港"},
    calling_code="852",
    working_days=working_days,
    sandbox_idp=sandbox.IDENTITY_PROVIDER,
    order=1,
)
