"""ISO-8601 durations (`P1D`, `PT1H`, `P1M`, `P1Y2M10DT2H30M`) and the timeliness promise.

Years and months are calendar units: `P1M` after 31 January is the last day of February, not
30 days later, so they are added to the date, the rest as a timedelta.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
from dataclasses import dataclass
from typing import Literal

from govex.durations import duration_parts

Timeliness = Literal["on_time", "late", "never", "unknown"]


@dataclass(frozen=True)
class Duration:
    months: int  # years are 12 months
    delta: dt.timedelta

    def after(self, start: dt.datetime) -> dt.datetime:
        """`start` plus this duration (calendar months, clamped to the month's last day)."""
        if self.months:
            month_index = start.month - 1 + self.months
            year, month = start.year + month_index // 12, month_index % 12 + 1
            day = min(start.day, calendar.monthrange(year, month)[1])
            start = start.replace(year=year, month=month, day=day)
        return start + self.delta


@functools.lru_cache(maxsize=1024)  # a catalog promises a handful of distinct frequencies
def parse_duration(text: str) -> Duration | None:
    """The duration, or None when `text` is not an ISO-8601 duration."""
    part = duration_parts(text.strip())
    if part is None:
        return None
    return Duration(
        months=int(part["years"]) * 12 + int(part["months"]),
        delta=dt.timedelta(weeks=part["weeks"], days=part["days"], hours=part["hours"],
                           minutes=part["minutes"], seconds=part["seconds"]),
    )


@dataclass(frozen=True)
class Promise:
    """The provider's update promise checked against its last successful run."""

    state: Timeliness
    update_frequency: str
    last_success: dt.datetime | None
    due: dt.datetime | None

    def to_json(self) -> dict[str, str | None]:
        return {
            "state": self.state,
            "update_frequency": self.update_frequency,
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "due": self.due.isoformat() if self.due else None,
        }


def check_promise(
    update_frequency: str, last_success: dt.datetime | None, now: dt.datetime
) -> Promise:
    """on_time while `now` is within one promised period after the last successful run; late
    after that; never without any successful run; unknown if the duration does not parse."""
    duration = parse_duration(update_frequency)
    if duration is None:
        return Promise("unknown", update_frequency, last_success, None)
    if last_success is None:
        return Promise("never", update_frequency, None, None)
    due = duration.after(last_success)
    return Promise("on_time" if now <= due else "late", update_frequency, last_success, due)
