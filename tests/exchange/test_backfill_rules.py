"""Who needs a backfill, where a read is split for it, and how migration 0010 carries existing
subscriptions over: fast tests, no database server."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory

import catalog
from exchange.run import bookkeeping
from exchange.run.backfill import PriorSplit, delivered_shape, needing_backfill
from exchange.run.bookkeeping import SubscriptionProgress
from exchange.store import create_store_engine
from exchange.store.engine import _alembic_config, _script_config, upgrade
from govex.errors import DeclarationError

T0 = dt.datetime(2026, 11, 1, 8, 0, tzinfo=dt.UTC)
WATERMARK = {"columns": ["updated_at", "id"], "values": ["2026-11-01T08:01:00+00:00", "b"]}


def _sub(sub_id: str = "SUB-A", **changes: Any) -> catalog.Subscription:
    body = {"id": sub_id, "resource": "R-001", "consumer": "gsc", "purpose": "测试",
            "fields": ["id", "score"], "masking": {"score": "hash"}, "mode": "upsert",
            "target": {"connection": "db", "table": "t"}, "valid_from": "2026-01-01", **changes}
    return catalog.Subscription.model_validate(body)


def _progress(sub: catalog.Subscription, cursor: dict[str, Any] | None = WATERMARK,
              contract: str | None = "resident@1.2.0",
              shape: dict[str, Any] | None = None) -> SubscriptionProgress:
    return SubscriptionProgress(sub.id, cursor, "run-1", contract,
                                delivered_shape(sub) if shape is None else shape)


def test_only_subscriptions_holding_the_watermark_as_they_want_it_are_current() -> None:
    current = _sub()
    progress = {current.id: _progress(current)}
    assert needing_backfill([current], progress, "resident@1.3.0", WATERMARK) == []  # minor
    assert needing_backfill([current], progress, "resident@2.0.0", WATERMARK) == ["SUB-A"]
    assert needing_backfill([_sub("SUB-NEW")], progress, "resident@1.2.0", WATERMARK) == [
        "SUB-NEW"]
    for changed in ({"target": {"connection": "db", "table": "t2"}}, {"mode": "append"},
                    {"fields": ["id", "score", "name"]}, {"masking": {}}):
        assert needing_backfill([_sub(**changed)], progress, "resident@1.2.0", WATERMARK) == [
            "SUB-A"], changed
    assert needing_backfill([_sub(fields=["score", "id"])], progress, "resident@1.2.0",
                            WATERMARK) == []  # the order of fields changes nothing held
    behind = {current.id: _progress(current, cursor={**WATERMARK, "values": ["2026", "a"]})}
    assert needing_backfill([current], behind, "resident@1.2.0", WATERMARK) == ["SUB-A"]
    carried = {current.id: SubscriptionProgress(current.id, WATERMARK, "run-0", None, None)}
    assert needing_backfill([current], carried, "resident@9.0.0", WATERMARK) == []
    # Before the resource has a watermark every run reads (and sends) everything anyway.
    assert needing_backfill([_sub("SUB-NEW")], {}, "resident@1.2.0", None) == []


def _batch(rows: list[tuple[int, str]]) -> pa.Table:
    """Rows (minute after T0, id) as a source yields them, ordered by (updated_at, id)."""
    return pa.table({
        "updated_at": pa.array([T0 + dt.timedelta(minutes=m) for m, _ in rows],
                               pa.timestamp("us", tz="UTC")),
        "id": pa.array([k for _, k in rows], pa.string()),
    })


def _ids(table: pa.Table) -> list[str]:
    return [str(v) for v in table.column("id").to_pylist()]


def test_a_read_splits_right_after_the_row_the_watermark_names() -> None:
    split = PriorSplit(WATERMARK, ("updated_at", "id"))
    first = split(_batch([(0, "z"), (1, "a")]))
    second = split(_batch([(1, "b"), (1, "c"), (2, "a")]))
    third = split(_batch([(3, "a")]))
    assert [(_ids(p), _ids(a)) for p, a in (first, second, third)] == [
        (["z", "a"], []), (["b"], ["c", "a"]), ([], ["a"])]


def test_when_the_named_row_is_gone_rows_are_compared_with_the_watermark() -> None:
    split = PriorSplit(WATERMARK, ("updated_at", "id"))
    prior, after = split(_batch([(0, "x"), (1, "a"), (1, "c"), (3, "a")]))  # "b" updated since
    assert (_ids(prior), _ids(after)) == (["x", "a"], ["c", "a"])
    nothing_new = PriorSplit(WATERMARK, ("updated_at", "id"))
    prior, after = nothing_new(_batch([(0, "x"), (1, "a")]))
    assert (_ids(prior), after.num_rows) == (["x", "a"], 0)


def test_a_watermark_over_other_columns_than_the_read_order_is_refused() -> None:
    with pytest.raises(DeclarationError, match="run the resource once with --full"):
        PriorSplit(WATERMARK, ("changed_at", "id"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


def test_migration_carries_over_only_subscriptions_the_history_shows_current(
    store_url: str,
) -> None:
    """Before 0010 only the resource had a watermark. A subscription that got a full read and
    every later run is current; one added after the first run, or skipped by a later run, is
    not (the next run backfills it); a dispute's correction run is neither."""
    engine = create_store_engine(store_url)
    before = ScriptDirectory.from_config(_script_config()).get_revision(
        "0010_subscription_progress").down_revision
    assert isinstance(before, str)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), before)
    json_columns = ("subscriptions", "parent", "cursor_start", "cursor_end", "cursor")
    def table(name: str, *columns: str) -> sa.TableClause:
        return sa.table(name, *(sa.column(c, sa.JSON if c in json_columns else None)
                                for c in columns))
    runs = table("exchange_runs", "run_id", "resource", "status", "subscription",
                 "subscriptions", "full", "parent", "cursor_start", "cursor_end", "read",
                 "passed", "quarantined", "started_at")
    deliveries = table("exchange_deliveries", "run_id", "subscription", "status", "delivered",
                       "started_at")
    watermarks = table("exchange_watermarks", "resource", "cursor", "run_id", "updated_at")
    cursor = {"columns": ["updated_at", "id"], "values": ["2026-11-02T00:00:00+00:00", "9"]}
    history = [  # (run, single subscription, cursor_start, cursor_end, delivered to)
        ("r1", None, None, {"values": [1]}, ["S-FULL", "S-SKIPPED"]),  # the first run
        ("r2", None, {"values": [1]}, {"values": [2]}, ["S-FULL", "S-LATE"]),
        ("fix", None, None, None, ["S-FIX"]),  # a dispute's correction
        ("r3", "S-ALONE", None, {"values": [3]}, ["S-ALONE"]),  # --full --subscription
        ("r4", None, {"values": [2]}, cursor, ["S-FULL", "S-LATE", "S-ALONE"]),
    ]
    with engine.begin() as conn:
        for i, (run_id, single, start, end, subs) in enumerate(history):
            at = T0 + dt.timedelta(hours=i)
            conn.execute(sa.insert(runs).values(
                run_id=run_id, resource="R-001", status="success", subscription=single,
                subscriptions=subs, full=False, parent=None, cursor_start=start,
                cursor_end=end, read=1, passed=1, quarantined=0, started_at=at))
            for sub in subs:
                conn.execute(sa.insert(deliveries).values(
                    run_id=run_id, subscription=sub, status="success", delivered=1,
                    started_at=at))
        conn.execute(sa.insert(watermarks).values(
            resource="R-001", cursor=cursor, run_id="r4", updated_at=T0))
    upgrade(engine)
    with engine.connect() as conn:
        carried = bookkeeping.read_progress(conn, "R-001")
        summary = bookkeeping.load_summary(conn, "r4")
    engine.dispose()
    assert sorted(carried) == ["S-ALONE", "S-FULL"]
    assert carried["S-FULL"] == SubscriptionProgress("S-FULL", cursor, "r4", None, None)
    assert [d.to_json() for d in summary.deliveries][0] == {
        "subscription": "S-ALONE", "delivered": 1, "status": "success"}  # backfill: false
