"""`records.count_usage`: one upsert that adds to a subscription's Asia/Shanghai day in the
caller's transaction, on every database the store's tables are created on."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import records
from exchange.store import create_store_engine, upgrade

# 23:59 and 00:00 in Asia/Shanghai (UTC+8): the same UTC date, two counting days.
LATE = dt.datetime(2026, 11, 1, 15, 59, 59, tzinfo=dt.UTC)
MIDNIGHT = dt.datetime(2026, 11, 1, 16, 0, tzinfo=dt.UTC)


@pytest.fixture(params=[
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.integration),
    pytest.param("mariadb", marks=pytest.mark.integration),
])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    if request.param == "sqlite":
        engine = create_store_engine(f"sqlite:///{tmp_path / 'govex.db'}")
        upgrade(engine)
    elif request.param == "postgresql":
        engine = create_store_engine(request.getfixturevalue("pg_url"))
        upgrade(engine)
    else:
        # The store runs on SQLite or PostgreSQL and not every migration fits MariaDB's index
        # limits (see tests/lineage/test_audit.py): the metering table alone, to check its
        # ON DUPLICATE KEY UPDATE.
        engine = create_store_engine(request.getfixturevalue("mariadb_url"))
        records.usage_metadata.create_all(engine)
    yield engine
    engine.dispose()


def count(engine: sa.Engine, at: dt.datetime = LATE, sub: str = "SUB-GSC-001",
          **counts: int) -> None:
    with engine.begin() as conn:
        records.count_usage(conn, subscription=sub, resource="PSB-RES-001", consumer="gsc",
                            at=at, **counts)


def rows(engine: sa.Engine) -> list[tuple[str, dt.date, int, int, int, int, int]]:
    c = records.usage_daily.c
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(  # type: ignore[misc]
            sa.select(c.subscription, c.day, c.records, c.bytes, c.calls, c.matches, c.not_found)
            .order_by(c.subscription, c.day))]


def test_counts_add_up_per_subscription_and_shanghai_day(store: sa.Engine) -> None:
    count(store, records=10, bytes=1000)
    count(store, records=5, bytes=400, calls=1, matches=3, not_found=1)
    count(store, at=MIDNIGHT, records=7)
    count(store, sub="SUB-GSC-002", calls=2, matches=2)
    assert rows(store) == [
        ("SUB-GSC-001", dt.date(2026, 11, 1), 15, 1400, 1, 3, 1),
        ("SUB-GSC-001", dt.date(2026, 11, 2), 7, 0, 0, 0, 0),
        ("SUB-GSC-002", dt.date(2026, 11, 1), 0, 0, 2, 2, 0),
    ]
    with store.connect() as conn:
        report = records.usage(conn, start=dt.date(2026, 11, 1), end=dt.date(2026, 11, 1))
    assert [(r.subscription, r.day) for r in report.rows] == [
        ("SUB-GSC-001", dt.date(2026, 11, 1)), ("SUB-GSC-002", dt.date(2026, 11, 1))]
    assert report.totals == {"records": 15, "bytes": 1400, "calls": 3, "matches": 5,
                             "not_found": 1}


def test_a_count_rolls_back_with_its_transaction(store: sa.Engine) -> None:
    count(store, records=3)
    def fail_after_counting() -> None:
        with store.begin() as conn:
            records.count_usage(conn, subscription="SUB-GSC-001", resource="PSB-RES-001",
                                consumer="gsc", at=LATE, records=100)
            raise RuntimeError("the delivery failed")

    with pytest.raises(RuntimeError, match="the delivery failed"):
        fail_after_counting()
    assert rows(store) == [("SUB-GSC-001", dt.date(2026, 11, 1), 3, 0, 0, 0, 0)]


def test_nothing_counted_leaves_no_row_and_negative_counts_are_refused(
    store: sa.Engine,
) -> None:
    count(store)
    assert rows(store) == []
    with pytest.raises(ValueError, match="bytes is negative"):
        count(store, records=1, bytes=-5)
    assert rows(store) == []


def test_concurrent_counts_are_never_lost(store: sa.Engine) -> None:
    if store.dialect.name == "sqlite":
        workers, each = 3, 10  # one writer at a time: enough to see the busy wait work
    else:
        workers, each = 8, 25
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for _ in range(each):
                count(store, records=2, calls=1)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    threads = [threading.Thread(target=hammer) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert rows(store) == [
        ("SUB-GSC-001", dt.date(2026, 11, 1), 2 * workers * each, 0, workers * each, 0, 0)]


def test_the_counting_day_is_the_shanghai_date() -> None:
    assert records.usage_day(LATE) == dt.date(2026, 11, 1)
    assert records.usage_day(MIDNIGHT) == dt.date(2026, 11, 2)
    assert records.usage_day(MIDNIGHT.replace(tzinfo=None)) == dt.date(2026, 11, 2)  # naive: UTC
