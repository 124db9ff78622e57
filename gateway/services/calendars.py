"""Working-day calendars of the jurisdictions (domain.md §6.1).

Each jurisdiction's folder gives its calendar (``working_days`` of its ``ADAPTER``,
gateway/jurisdictions.py), a ``holidays`` calendar for a year:

- GD: mainland public holidays with the State Council's adjusted working weekends.
- HK: the 17 general holidays (``OPTIONAL`` category) with a Saturday + Sunday weekend,
  because government offices close on Saturdays.
- MO: public and government holidays, Saturday + Sunday weekend.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from gateway import jurisdictions


@lru_cache(maxsize=64)
def _calendar(jurisdiction: str, year: int) -> Any:
    try:
        calendar = jurisdictions.registered().by_code(jurisdiction).working_days
    except KeyError:
        calendar = None
    if calendar is None:
        raise ValueError(f"no working-day calendar for {jurisdiction!r}")
    return calendar(year)


def is_working_day(jurisdiction: str, day: date) -> bool:
    return bool(_calendar(jurisdiction, day.year).is_working_day(day))


class HolidayCalendar:
    """:class:`~gateway.services.ports.WorkingCalendar` backed by the ``holidays`` package."""

    def add_working_days(self, jurisdiction: str, start: date, days: int) -> date:
        """The day on which ``days`` working days after ``start`` have passed.

        With ``days == 0`` (same-day matters) this is ``start`` itself when it is a working
        day, else the next working day. Remembered: every case received on one day asks the
        same question (a calendar's holidays are fixed once its year is loaded).
        """
        return _add_working_days(jurisdiction, start, days)


@lru_cache(maxsize=4096)
def _add_working_days(jurisdiction: str, start: date, days: int) -> date:
    day = start
    while not is_working_day(jurisdiction, day):
        day += timedelta(days=1)
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        if is_working_day(jurisdiction, day):
            remaining -= 1
    return day
