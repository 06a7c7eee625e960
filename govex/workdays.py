"""Working days on the Chinese calendar, counted in Asia/Shanghai.

Deadlines in government data sharing are in working days (工作日): the authority reviews a
request within 2, the provider answers within 5, a dispute is answered within 5. A working day
follows the State Council's yearly holiday notice: public holidays are off, and some weekend
days are adjusted working days (调休). The `chinesecalendar` package keeps those notices as data.
For a year it does not cover yet, we count plain Monday–Friday and say so (`covers`), so a
deadline is never silently wrong without the dashboard telling.
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

__all__ = [
    "SHANGHAI",
    "add_working_days",
    "covers",
    "is_working_day",
    "local_date",
    "working_days_between",
]

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local_date(at: dt.datetime | None = None) -> dt.date:
    """The calendar date in Asia/Shanghai of `at` (default: now; a zone-less `at` is UTC): the
    day a subscription's `valid_from`/`valid_until`, a usage count and a deadline refer to.
    Between 16:00 and 24:00 UTC it is already the next day's date."""
    moment = dt.datetime.now(dt.UTC) if at is None else at
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(SHANGHAI).date()


@functools.cache
def _calendar_years() -> tuple[int, int]:
    """The first and last year the holiday data covers."""
    from chinese_calendar import constants

    years = {day.year for day in constants.holidays} | {day.year for day in constants.workdays}
    return min(years), max(years)


def covers(year: int) -> bool:
    """True when `year`'s holidays and adjusted working days are known; False means weekdays
    only (Monday–Friday) are counted for that year."""
    first, last = _calendar_years()
    return first <= year <= last


@functools.lru_cache(maxsize=4096)
def is_working_day(day: dt.date) -> bool:
    """A working day in mainland China: holidays off, adjusted weekend days on; Monday–Friday
    for a year the calendar does not cover."""
    if not covers(day.year):
        return day.weekday() < 5
    from chinese_calendar import is_workday

    return bool(is_workday(day))


def _local(moment: dt.datetime) -> dt.datetime:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
    return aware.astimezone(SHANGHAI)


def add_working_days(start: dt.datetime, days: int) -> dt.datetime:
    """`start` moved forward by `days` working days, keeping the time of day in Asia/Shanghai.

    Something submitted on a Friday evening with 2 days to go is due Tuesday evening; submitted
    on a holiday, the count starts from the next working day. Returns an aware datetime in the
    zone of `start` (UTC when `start` is naive).
    """
    local = _local(start)
    day = local.date()
    remaining = days
    while remaining > 0:
        day += dt.timedelta(days=1)
        if is_working_day(day):
            remaining -= 1
    due = dt.datetime.combine(day, local.timetz())
    return due.astimezone(start.tzinfo or dt.UTC)


def working_days_between(start: dt.datetime, end: dt.datetime) -> float:
    """Working days elapsed from `start` to `end` (fractions for partial days), counting only
    the hours that fall on working days in Asia/Shanghai. Negative when `end` is earlier."""
    if end < start:
        return -working_days_between(end, start)
    a, b = _local(start), _local(end)
    total = 0.0
    day = a.date()
    while day <= b.date():
        if is_working_day(day):
            begin = max(a, dt.datetime.combine(day, dt.time(), SHANGHAI))
            finish = min(b, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), SHANGHAI))
            total += max((finish - begin).total_seconds(), 0.0) / 86400
        day += dt.timedelta(days=1)
    return total
