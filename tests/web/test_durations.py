"""ISO-8601 durations and the timeliness promise."""

from __future__ import annotations

import datetime as dt

import pytest

from exchange.web.durations import check_promise, parse_duration

T0 = dt.datetime(2026, 1, 31, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(("text", "after"), [
    ("P1D", dt.datetime(2026, 2, 1, 12, 0, tzinfo=dt.UTC)),
    ("PT1H", dt.datetime(2026, 1, 31, 13, 0, tzinfo=dt.UTC)),
    ("PT30M", dt.datetime(2026, 1, 31, 12, 30, tzinfo=dt.UTC)),
    ("P7D", dt.datetime(2026, 2, 7, 12, 0, tzinfo=dt.UTC)),
    ("P2W", dt.datetime(2026, 2, 14, 12, 0, tzinfo=dt.UTC)),
    ("P1M", dt.datetime(2026, 2, 28, 12, 0, tzinfo=dt.UTC)),  # calendar month, clamped
    ("P1Y2M10DT2H30M", dt.datetime(2027, 4, 10, 14, 30, tzinfo=dt.UTC)),
    ("PT0.5S", dt.datetime(2026, 1, 31, 12, 0, 0, 500000, tzinfo=dt.UTC)),
])
def test_parse_and_add(text: str, after: dt.datetime) -> None:
    duration = parse_duration(text)
    assert duration is not None
    assert duration.after(T0) == after


@pytest.mark.parametrize("bad", ["", "P", "PT", "1D", "P1H", "daily", "P-1D", "PT1D"])
def test_not_durations(bad: str) -> None:
    assert parse_duration(bad) is None


def test_promise_states() -> None:
    last = T0
    assert check_promise("P1D", last, T0 + dt.timedelta(hours=23)).state == "on_time"
    assert check_promise("P1D", last, T0 + dt.timedelta(days=1)).state == "on_time"
    late = check_promise("P1D", last, T0 + dt.timedelta(days=1, seconds=1))
    assert late.state == "late"
    assert late.due == T0 + dt.timedelta(days=1)
    assert check_promise("PT1H", None, T0).state == "never"
    assert check_promise("weekly", last, T0).state == "unknown"
    assert check_promise("P1D", last, T0).to_json() == {
        "state": "on_time", "update_frequency": "P1D", "last_success": T0.isoformat(),
        "due": (T0 + dt.timedelta(days=1)).isoformat(),
    }
