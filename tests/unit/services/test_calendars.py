"""Working-day calendars of Guangdong, Hong Kong and Macao, and deadline arithmetic."""

from __future__ import annotations

from datetime import date, timedelta

import holidays
import pytest

from gateway.services.calendars import HolidayCalendar, is_working_day

CALENDAR = HolidayCalendar()


def _days(first: str, last: str) -> list[date]:
    start, end = date.fromisoformat(first), date.fromisoformat(last)
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


# --------------------------------------------------------------------------- Guangdong


@pytest.mark.parametrize("day", _days("2026-10-01", "2026-10-07"), ids=str)
def test_gd_national_day_week_is_not_working(day: date) -> None:
    assert not is_working_day("GD", day)


@pytest.mark.parametrize("day", ["2026-09-20", "2026-10-10"])
def test_gd_adjusted_weekend_days_around_national_day_are_working(day: str) -> None:
    assert date.fromisoformat(day).weekday() in (5, 6)
    assert is_working_day("GD", date.fromisoformat(day))


def test_gd_one_working_day_after_the_eve_of_national_day_is_the_8th() -> None:
    assert CALENDAR.add_working_days("GD", date(2026, 9, 30), 1) == date(2026, 10, 8)


def test_gd_five_working_days_across_national_day() -> None:
    # 9-30 Wed; 10-01..07 off; 10-08 Thu, 10-09 Fri, 10-10 Sat (adjusted, working),
    # 10-11 Sun off, 10-12 Mon, 10-13 Tue.
    assert CALENDAR.add_working_days("GD", date(2026, 9, 30), 5) == date(2026, 10, 13)


@pytest.mark.parametrize("day", _days("2026-02-16", "2026-02-23"), ids=str)
def test_gd_spring_festival_2026_is_not_working(day: date) -> None:
    assert not is_working_day("GD", day)


@pytest.mark.parametrize("day", ["2026-02-14", "2026-02-28"])
def test_gd_spring_festival_make_up_saturdays_are_working(day: str) -> None:
    assert date.fromisoformat(day).weekday() == 5
    assert is_working_day("GD", date.fromisoformat(day))


def test_gd_working_day_after_spring_festival() -> None:
    # 2-13 Fri, 2-14 Sat (working), then nine days off until Tue 2-24.
    assert CALENDAR.add_working_days("GD", date(2026, 2, 13), 1) == date(2026, 2, 14)
    assert CALENDAR.add_working_days("GD", date(2026, 2, 14), 1) == date(2026, 2, 24)


def test_gd_ordinary_weekend_is_not_working() -> None:
    assert not is_working_day("GD", date(2026, 3, 7))  # Saturday
    assert not is_working_day("GD", date(2026, 3, 8))  # Sunday
    assert is_working_day("GD", date(2026, 3, 9))


def test_gd_year_boundary() -> None:
    # The holidays package lists New Year's Day 2027 (a Friday) as a holiday.
    assert date(2027, 1, 1) in holidays.China(years=2027)
    assert not is_working_day("GD", date(2027, 1, 1))
    assert [d for d in _days("2027-01-01", "2027-01-04") if is_working_day("GD", d)] == [
        date(2027, 1, 4)
    ]

    assert CALENDAR.add_working_days("GD", date(2026, 12, 31), 1) == date(2027, 1, 4)


# --------------------------------------------------------------------------- Hong Kong, Macao


@pytest.mark.parametrize("day", ["2026-03-07", "2026-03-08"])
def test_hk_government_weekend_is_saturday_and_sunday(day: str) -> None:
    assert not is_working_day("HK", date.fromisoformat(day))


@pytest.mark.parametrize("day", ["2026-12-25", "2026-12-26", "2026-10-01", "2026-02-17"])
def test_hk_general_holidays_are_not_working(day: str) -> None:
    assert not is_working_day("HK", date.fromisoformat(day))


def test_hk_mainland_only_holidays_are_working() -> None:
    assert is_working_day("HK", date(2026, 10, 5))  # GD National Day week, not in HK
    assert not is_working_day("GD", date(2026, 10, 5))


def test_hk_working_days_over_christmas() -> None:
    # 12-24 Thu, 12-25 Fri and 12-26 Sat holidays, 12-27 Sun.
    assert CALENDAR.add_working_days("HK", date(2026, 12, 24), 1) == date(2026, 12, 28)


@pytest.mark.parametrize("day", ["2026-12-20", "2026-12-21", "2026-12-22", "2026-12-24"])
def test_mo_government_holidays_are_not_working(day: str) -> None:
    assert not is_working_day("MO", date.fromisoformat(day))


def test_mo_winter_solstice_is_a_working_day_elsewhere() -> None:
    assert date(2026, 12, 22).weekday() == 1  # Tuesday
    assert not is_working_day("MO", date(2026, 12, 22))
    assert is_working_day("HK", date(2026, 12, 22))
    assert is_working_day("GD", date(2026, 12, 22))


def test_mo_saturday_is_not_working() -> None:
    assert not is_working_day("MO", date(2026, 3, 7))


# --------------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize("jurisdiction", ["GD", "HK", "MO"])
def test_zero_days_from_a_saturday_is_the_next_monday(jurisdiction: str) -> None:
    assert CALENDAR.add_working_days(jurisdiction, date(2026, 3, 7), 0) == date(2026, 3, 9)


@pytest.mark.parametrize("jurisdiction", ["GD", "HK", "MO"])
def test_zero_days_from_a_working_day_is_that_day(jurisdiction: str) -> None:
    assert CALENDAR.add_working_days(jurisdiction, date(2026, 3, 4), 0) == date(2026, 3, 4)


def test_zero_days_on_a_holiday_moves_past_it() -> None:
    assert CALENDAR.add_working_days("GD", date(2026, 10, 1), 0) == date(2026, 10, 8)


def test_working_days_skip_the_weekend() -> None:
    # Thu 3-5 + 3 working days: Fri 3-6, Mon 3-9, Tue 3-10.
    assert CALENDAR.add_working_days("GD", date(2026, 3, 5), 3) == date(2026, 3, 10)


def test_unknown_jurisdiction_has_no_calendar() -> None:
    with pytest.raises(ValueError, match="TW"):
        CALENDAR.add_working_days("TW", date(2026, 3, 4), 1)
