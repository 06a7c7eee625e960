"""A subscription's `valid_from` and `valid_until` are days in Asia/Shanghai, as the request
form proposes them and the verification service counts them: from 16:00 UTC a run already
counts the next day."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from exchange.run import start_run, steps, subscriptions_of
from exchange.store import create_store_engine
from govex.workdays import local_date

AT_NIGHT_UTC = dt.datetime(2026, 12, 3, 17, 0, tzinfo=dt.UTC)  # 01:00 on 4 December in Beijing


def test_the_local_date_is_the_date_in_shanghai() -> None:
    assert local_date(AT_NIGHT_UTC) == dt.date(2026, 12, 4)
    assert local_date(dt.datetime(2026, 12, 3, 15, 59, tzinfo=dt.UTC)) == dt.date(2026, 12, 3)
    naive = AT_NIGHT_UTC.replace(tzinfo=None)  # as SQLite hands moments back: UTC
    assert local_date(naive) == dt.date(2026, 12, 4)


@pytest.mark.parametrize(("valid_from", "valid_until", "delivered"), [
    ("2026-12-04", "2030-12-31", True),  # begins today, Beijing time
    ("2026-12-05", "2030-12-31", False),  # begins tomorrow
])
def test_a_run_counts_validity_in_shanghai_days(
    scenario_factory: Any, make_rows: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    valid_from: str, valid_until: str, delivered: bool,
) -> None:
    built = scenario_factory(
        f"sqlite:///{tmp_path / 'psb.db'}", {"gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"},
        [{"id": "SUB-GSC-001", "consumer": "gsc", "fields": ["id_no", "name"], "masking": {},
          "mode": "upsert", "target": {"connection": "gsc_lite", "table": "gsc_residents"},
          "valid_from": valid_from, "valid_until": valid_until}],
        make_rows(10))
    monkeypatch.setattr(steps, "_now", lambda: AT_NIGHT_UTC)
    store = create_store_engine(built.store_url)
    try:
        planned = subscriptions_of(store, start_run(store, "PSB-RES-001"))
    finally:
        store.dispose()
    assert (planned == ["SUB-GSC-001"]) is delivered, planned
