"""Working-day arithmetic on the Chinese calendar: National Day, an adjusted Saturday working
day (调休), Asia/Shanghai day boundaries, and the weekday fallback for an uncovered year."""

from __future__ import annotations

import datetime as dt

from govex.workdays import (
    SHANGHAI,
    add_working_days,
    covers,
    is_working_day,
    working_days_between,
)


def _sh(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=SHANGHAI)


def test_national_day_is_off_and_the_adjusted_saturday_is_on() -> None:
    assert not is_working_day(dt.date(2026, 10, 1))  # Thursday, National Day
    assert not is_working_day(dt.date(2026, 10, 7))  # Wednesday, still the holiday
    assert is_working_day(dt.date(2026, 10, 10))  # Saturday, adjusted working day
    assert not is_working_day(dt.date(2026, 10, 11))  # an ordinary Sunday
    assert is_working_day(dt.date(2026, 10, 8))


def test_a_deadline_crosses_the_national_day_holiday() -> None:
    # Submitted Wednesday 30 September, 5 working days: 8, 9, 10 (Saturday, adjusted), 12, 13.
    assert add_working_days(_sh(2026, 9, 30, 16, 0), 5) == _sh(2026, 10, 13, 16, 0)
    # 2 working days from the holiday itself start counting after it: 8 and 9 October.
    assert add_working_days(_sh(2026, 10, 3, 9, 30), 2) == _sh(2026, 10, 9, 9, 30)
    # The adjusted Saturday counts like any working day.
    assert add_working_days(_sh(2026, 10, 9, 10, 0), 1) == _sh(2026, 10, 10, 10, 0)


def test_days_are_counted_in_shanghai_not_utc() -> None:
    # 2026-10-09 17:00 UTC is already Saturday 10 October 01:00 in Shanghai.
    start = dt.datetime(2026, 10, 9, 17, 0, tzinfo=dt.UTC)
    due = add_working_days(start, 1)
    assert due.tzinfo == dt.UTC
    assert due.astimezone(SHANGHAI) == _sh(2026, 10, 12, 1, 0)


def test_elapsed_working_days_skip_the_holiday() -> None:
    assert working_days_between(_sh(2026, 9, 30, 12, 0), _sh(2026, 10, 8, 12, 0)) == 1.0
    assert working_days_between(_sh(2026, 10, 8, 12, 0), _sh(2026, 9, 30, 12, 0)) == -1.0
    assert working_days_between(_sh(2026, 10, 1), _sh(2026, 10, 8)) == 0.0


def test_an_uncovered_year_falls_back_to_weekdays() -> None:
    assert covers(2026)
    assert not covers(2099)
    assert is_working_day(dt.date(2099, 10, 1))  # a Thursday: no holiday data, so working
    assert not is_working_day(dt.date(2099, 10, 3))  # a Saturday
    assert add_working_days(_sh(2099, 10, 2, 9, 0), 1) == _sh(2099, 10, 5, 9, 0)
