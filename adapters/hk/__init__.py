"""Hong Kong: the HK native XML application format, mapped by ``mappings/fields/hk.yaml``.

Every jurisdiction folder has the same shape: ``JURISDICTION`` and
``codec(mappings_dir, particulars)``
(wire format <-> canonical application). The identity profile (iAM Smart claims -> canonical
identity) joins this folder with the identity federation.
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
    return XmlCodec.load(mappings_dir / "fields" / "hk.yaml", JURISDICTION, particulars)


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
