"""Guangdong: agencies receive and send the canonical JSON application.

Every jurisdiction folder has the same shape (gateway/jurisdictions.py): ``ADAPTER``, the one
thing the gateway imports (through the ``gba_gateway.jurisdictions`` entry points), names the
code, the format, the identity provider with its profile (``identity.py``), the codec
(``codec(folder, mappings_dir, particulars)``: wire format <-> canonical application), the
working-day calendar and the sandbox's imitation of the identity provider (``sandbox.py``).
Guangdong's own exchange format is the canonical model itself (the canonical codes are
Guangdong's implementation codes), so its codec is the canonical one under Guangdong's name;
the message it receives is ``schemas/guangdong-message.schema.json``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import holidays

from adapters.guangdong import identity, sandbox
from gateway.domain.matters import Particular
from gateway.jurisdictions import JurisdictionAdapter
from gateway.mapping.canonical import CanonicalCodec

JURISDICTION = "GD"


class GuangdongCodec(CanonicalCodec):
    jurisdiction = JURISDICTION


def codec(
    folder: Path, mappings_dir: Path, particulars: Iterable[Particular] = ()
) -> GuangdongCodec:
    """Guangdong applications are canonical JSON, checked against the canonical schema (which
    carries every particular as it is: ``particulars`` changes nothing here)."""
    return GuangdongCodec(mappings_dir / "schemas")


def working_days(year: int) -> holidays.HolidayBase:
    """Mainland public holidays with the State Council's adjusted working weekends
    (domain.md §6.1)."""
    return holidays.China(years=year)


ADAPTER = JurisdictionAdapter(
    code=JURISDICTION,
    format="guangdong",
    provider="guangdong",
    folder=Path(__file__).parent,
    codec=codec,
    identity=identity.PROFILE,
    names={"en": "Guangdong", "zh-Hans": "广东", "zh-Hant": "廣東"},
    calling_code="86",
    trunk_prefix="0",
    working_days=working_days,
    sandbox_idp=sandbox.IDENTITY_PROVIDER,
    order=3,
)
