"""Routes of redress a refusal names (Art. 21), read from ``mappings/appeals.yaml``.

Each jurisdiction lists its routes (complaint, administrative review, litigation) with their
names in three scripts, their legal basis and the time limit counted from the decision:
natural days or months. :meth:`AppealRoutes.for_refusal` gives them with their last day.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from gateway.domain.errors import ConfigurationError
from gateway.mapping.files import read_yaml_mapping

ROUTES = ("complaint", "administrative_review", "litigation")
UNITS = ("natural_days", "months")


@dataclass(frozen=True, slots=True)
class AppealRoute:
    route: str
    names: dict[str, str]
    basis: str | None
    within: tuple[int, str] | None

    def last_day(self, decided_on: date) -> date | None:
        if self.within is None:
            return None
        value, unit = self.within
        if unit == "natural_days":
            return decided_on + timedelta(days=value)
        month = decided_on.month - 1 + value
        year, month = decided_on.year + month // 12, month % 12 + 1
        day = min(decided_on.day, calendar.monthrange(year, month)[1])
        return date(year, month, day)


class AppealRoutes:
    def __init__(self, table: dict[str, tuple[AppealRoute, ...]]) -> None:
        self._table = table

    @classmethod
    def load(cls, path: Path) -> AppealRoutes:
        data, why = read_yaml_mapping(path)
        if data is None:
            raise ConfigurationError(f"{path.name} {why}")
        problems: list[str] = []
        table = {
            jurisdiction: tuple(
                _route(item, f"{jurisdiction}[{i}]", problems) for i, item in enumerate(items or [])
            )
            for jurisdiction, items in data.items()
        }
        if set(table) - {"GD", "HK", "MO"}:
            problems.append("jurisdictions are GD, HK and MO")
        if problems:
            raise ConfigurationError(f"{path.name}: " + "; ".join(problems))
        return cls(table)

    def for_refusal(self, jurisdiction: str, decided_on: date) -> list[dict[str, Any]]:
        """The routes open to the applicant after a refusal by an agency of ``jurisdiction``."""
        return [
            {
                "route": r.route,
                "names": dict(r.names),
                "basis": r.basis,
                "last_day": (last.isoformat() if (last := r.last_day(decided_on)) else None),
            }
            for r in self._table.get(jurisdiction, ())
        ]


def _route(item: Any, where: str, problems: list[str]) -> AppealRoute:
    if not isinstance(item, dict) or item.get("route") not in ROUTES:
        problems.append(f"{where}: route is one of {', '.join(ROUTES)}")
        return AppealRoute("complaint", {}, None, None)
    names = item.get("names")
    if not isinstance(names, dict) or not {"zh-Hans", "zh-Hant", "en"} <= set(names):
        problems.append(f"{where}: names in zh-Hans, zh-Hant and en")
        names = {}
    within = item.get("within")
    limit = None
    if within is not None:
        value, unit = (
            (within.get("value"), within.get("unit")) if isinstance(within, dict) else (None, None)
        )
        if not isinstance(value, int) or value < 1 or unit not in UNITS:
            problems.append(f"{where}: within is {{value: N, unit: natural_days|months}}")
        else:
            limit = (value, unit)
    return AppealRoute(
        item["route"], {str(k): str(v) for k, v in names.items()}, item.get("basis"), limit
    )
