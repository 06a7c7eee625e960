"""Record provenance (fingerprints, keys, bulk writes on SQLite and PostgreSQL), due dates in
working days and the overdue flag, and the 0007 migration matching the tables."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import records
from exchange.store import create_store_engine, upgrade
from govex.errors import DeclarationError
from records import disputes as dispute_tables
from records.provenance import provenance

AT = dt.datetime(2026, 11, 27, 8, 0, tzinfo=dt.UTC)


def _batch(**columns: list[object]) -> pa.Table:
    return pa.table(columns)


def test_value_hashes_are_16_hex_characters_and_stable() -> None:
    batch = _batch(id=[1, 2, 3], name=["甲", "乙", "甲"], score=[5, 6, 5])
    hashes = records.value_hashes(batch).to_pylist()
    assert all(len(h) == 16 and int(h, 16) >= 0 for h in hashes)
    assert hashes == records.value_hashes(batch).to_pylist()
    assert hashes[0] != hashes[2]  # the id differs
    assert records.value_hashes(batch, ["name", "score"]).to_pylist()[0] == \
        records.value_hashes(batch, ["name", "score"]).to_pylist()[2]
    assert records.value_hashes(batch.slice(0, 0)).to_pylist() == []


def test_a_rows_hash_does_not_depend_on_the_other_rows_of_its_batch() -> None:
    alone = _batch(score=pa.array([7], pa.int64()), name=["x"])
    with_null = _batch(score=pa.array([7, None], pa.int64()), name=["x", None])
    chunked = pa.concat_tables([alone, alone])
    assert records.value_hashes(alone)[0] == records.value_hashes(with_null)[0]
    assert records.value_hashes(chunked).to_pylist() == [records.value_hashes(alone)[0].as_py()] * 2


def test_null_empty_and_the_word_none_hash_differently() -> None:
    batch = _batch(a=pa.array([None, "", "None"], pa.string()), b=["k", "k", "k"])
    assert len(set(records.value_hashes(batch).to_pylist())) == 3
    single = _batch(a=pa.array([None, "", "None"], pa.string()))
    assert len(set(records.value_hashes(single).to_pylist())) == 3
    shifted = _batch(a=["ab", "a"], b=["c", "bc"])  # field boundaries matter
    assert len(set(records.value_hashes(shifted).to_pylist())) == 2


def test_record_keys_and_split_key() -> None:
    batch = _batch(region=["110105", None], seq=[1, 2])
    assert records.record_keys(batch, ["region", "seq"]).to_pylist() == ["110105,1", "None,2"]
    assert records.split_key("110105,7", ["region", "seq"]) == {"region": "110105", "seq": "7"}
    assert records.split_key("a,b", ["only"]) == {"only": "a,b"}
    with pytest.raises(DeclarationError, match="does not match the record key"):
        records.split_key("110105", ["region", "seq"])


def test_working_days_skip_weekends() -> None:
    wednesday = dt.datetime(2026, 11, 25, 10, 30, tzinfo=dt.UTC)
    assert records.working_days_after(wednesday, 5) == wednesday + dt.timedelta(days=7)
    friday = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)
    assert records.working_days_after(friday, 1) == friday + dt.timedelta(days=3)
    saturday = dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC)
    assert records.working_days_after(saturday, 5) == dt.datetime(2026, 12, 4, 9, 0,
                                                                  tzinfo=dt.UTC)
    assert records.working_days_after(saturday, 1).weekday() == 0
    # A dispute opened before National Day waits out the holiday; the adjusted Saturday counts.
    before_holiday = dt.datetime(2026, 9, 30, 2, 0, tzinfo=dt.UTC)
    assert records.working_days_after(before_holiday, 3) == dt.datetime(2026, 10, 10, 2, 0,
                                                                        tzinfo=dt.UTC)


def test_dispute_days_setting() -> None:
    assert records.dispute_days({}) == 5
    assert records.dispute_days({"GOVEX_DISPUTE_DAYS": "10"}) == 10
    for bad in ("0", "-1", "five"):
        with pytest.raises(DeclarationError, match="GOVEX_DISPUTE_DAYS"):
            records.dispute_days({"GOVEX_DISPUTE_DAYS": bad})


@pytest.fixture
def store(tmp_path: Path) -> sa.Engine:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'govex.db'}")
    upgrade(engine)
    return engine


def _partition(change: tuple[Any, ...]) -> bool:
    """PostgreSQL's monthly provenance partitions (and their indexes) are made at run time by
    records.partitions, not declared: they are not drift."""
    kind, item = change[0], change[1]
    table = item if kind == "remove_table" else getattr(item, "table", None)
    return table is not None and re.fullmatch(
        r"lineage_provenance_(p\d{6}|legacy)", str(table.name)) is not None


def _drift(engine: sa.Engine) -> list[object]:
    names = set(records.provenance_metadata.tables) | set(records.disputes_metadata.tables)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), [
            records.provenance_metadata, records.disputes_metadata])
    return [d for d in diff
            if any(name in repr(d) for name in names) and not _partition(d)]


def test_overdue_counts_only_unfinished_disputes_past_due(store: sa.Engine) -> None:
    opened = dt.datetime(2026, 11, 27, 9, 0, tzinfo=dt.UTC)  # a Friday
    due = records.working_days_after(opened, 5)
    assert due == dt.datetime(2026, 12, 4, 9, 0, tzinfo=dt.UTC)
    with store.begin() as conn:
        for i, state in enumerate(("open", "acknowledged", "resolved", "rejected")):
            conn.execute(sa.insert(dispute_tables.disputes).values(
                id=f"DSP-{i}", resource="R", record_key="k", field="f", claim="c",
                opened_by="gsc", provider="psb", state=state, reason=None, due=due,
                evidence=None, opened_at=opened, updated_at=opened))
    with store.connect() as conn:
        before = records.list_disputes(conn, now=due - dt.timedelta(seconds=1))
        after = records.list_disputes(conn, now=due + dt.timedelta(seconds=1))
        one = records.get_dispute(conn, "DSP-0", now=due + dt.timedelta(days=1))
    assert not any(d["overdue"] for d in before)
    assert {d["id"]: d["overdue"] for d in after} == {
        "DSP-0": True, "DSP-1": True, "DSP-2": False, "DSP-3": False}
    assert one["overdue"] is True
    assert one["due"] == "2026-12-04T09:00:00+00:00"


def _write_and_read(engine: sa.Engine) -> None:
    keys = pa.array([f"k{i}" for i in range(1000)])
    hashes = records.value_hashes(pa.table({"v": list(range(1000))}))
    with engine.begin() as conn:
        n = records.record_provenance(conn, resource="R", subscription="S1", run_id="run-1",
                                      delivered_at=AT, keys=keys, hashes=hashes)
        records.record_provenance(conn, resource="R", subscription="S2", run_id="run-1",
                                  delivered_at=AT, keys=keys.slice(0, 10),
                                  hashes=hashes.slice(0, 10))
        records.record_provenance(conn, resource="R", subscription="S1", run_id="run-2",
                                  delivered_at=AT + dt.timedelta(hours=1),
                                  keys=pa.array(["k3"]), hashes=pa.array(["00000000000000ff"]))
    assert n == 1000
    with engine.connect() as conn:
        total = conn.execute(sa.select(sa.func.count()).select_from(provenance)).scalar_one()
        history = records.deliveries_of(conn, "R", "k3")
        latest = records.latest_hashes(conn, "R", "k3")
    assert total == 1011
    # Newest first; deliveries of the same moment in reverse order of writing.
    assert [(d["subscription"], d["run_id"]) for d in history] == [
        ("S1", "run-2"), ("S2", "run-1"), ("S1", "run-1")]
    assert history[0]["delivered_at"] == AT + dt.timedelta(hours=1)
    assert latest["S1"]["hash"] == "00000000000000ff"
    assert latest["S2"]["hash"] == hashes[3].as_py()


def test_provenance_bulk_write_on_sqlite(store: sa.Engine) -> None:
    assert _drift(store) == []
    _write_and_read(store)


@pytest.mark.integration
def test_provenance_copy_on_postgresql(pg_url: str) -> None:
    engine = create_store_engine(pg_url)
    try:
        upgrade(engine)
        assert _drift(engine) == []
        _write_and_read(engine)
        # COPY runs inside the caller's transaction: a rollback takes it back.
        conn = engine.connect()
        transaction = conn.begin()
        records.record_provenance(conn, resource="R", subscription="S9", run_id="x",
                                  delivered_at=AT, keys=pa.array(["a"]),
                                  hashes=pa.array(["0" * 16]))
        transaction.rollback()
        conn.close()
        with engine.connect() as conn:
            assert records.deliveries_of(conn, "R", "a") == []
    finally:
        engine.dispose()


def test_a_delivery_time_without_a_zone_is_refused() -> None:
    """A naive time would be one instant to the month's partition (bound in the store
    session's zone) and another to the stored row: refused before anything is written."""
    engine = sa.create_engine("sqlite://")
    with engine.connect() as conn, pytest.raises(ValueError, match="has no time zone"):
        records.record_provenance(conn, resource="R", subscription="S1", run_id="r",
                                  delivered_at=dt.datetime(2026, 11, 30, 20, 0),  # noqa: DTZ001
                                  keys=pa.array(["k"]), hashes=pa.array(["0" * 16]))


def test_postgresql_binary_copy_stores_what_csv_copy_stores(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Provenance goes to a PostgreSQL store by binary COPY; text COPY (CSV) is the fallback
    when a column has no exact binary form. Both must store the same rows: keys with commas,
    quotes, newlines and Chinese, a fingerprint, a delete, and a delivery time with
    microseconds given in another zone."""
    from connectors.sql import pgcopy

    keys = pa.array(['110105,1', 'a"b', "line\nbreak", "居民,甲", " lead", "x" * 400])
    hashes = pa.array(["0123456789abcdef", records.DELETED, "f" * 16, "0" * 16, "1" * 16,
                       "2" * 16])
    at = dt.datetime(2026, 11, 27, 16, 30, 1, 123456,
                     tzinfo=dt.timezone(dt.timedelta(hours=8)))
    stored = []
    encoded: list[int] = []
    real_encode = pgcopy.encode

    def encode(batch: pa.Table, columns: Any) -> Any:
        encoded.append(batch.num_rows)
        return real_encode(batch, columns)

    monkeypatch.setattr(pgcopy, "encode", encode)
    engine = create_store_engine(pg_url)
    try:
        upgrade(engine)
        for run_id, binary in (("run-binary", True), ("run-csv", False)):
            if not binary:
                monkeypatch.setattr(pgcopy, "encoder", lambda *_args: None)
            with engine.begin() as conn:
                records.record_provenance(conn, resource="R", subscription="S1", run_id=run_id,
                                          delivered_at=at, keys=keys, hashes=hashes)
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.select(provenance.c.resource, provenance.c.record_key,
                              provenance.c.subscription, provenance.c.value_hash,
                              provenance.c.delivered_at)
                    .where(provenance.c.run_id == run_id).order_by(provenance.c.id)
                ).all()
            stored.append([tuple(r) for r in rows])
    finally:
        engine.dispose()
    assert encoded == [len(keys)]  # the first went binary, the second as CSV
    assert stored[0] == stored[1]
    assert [r[1] for r in stored[0]] == keys.to_pylist()
    assert {r[4] for r in stored[0]} == {at}


def test_sqlite_bulk_path_stores_what_executemany_stores(
    store: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The json_each path and the executemany fallback leave identical rows, for keys JSON
    would escape (quotes, backslashes, control characters, astral characters), sliced arrays
    and hashes that are not hex (which take the fallback)."""
    from records import provenance as module

    keys = pa.array(["1", "张三,2", 'q"uote\\back', "tab\tnl\n\x01", "😀𠀋", "", "x" * 400])
    hashes = records.value_hashes(pa.table({"k": keys}))

    def rows(engine: sa.Engine) -> list[tuple[object, ...]]:
        with engine.begin() as conn:
            for k, h in ((keys, hashes), (keys.slice(2, 3), hashes.slice(2, 3)),
                         (pa.array(["z"]), pa.array(["not sixteen"]))):
                records.record_provenance(conn, resource="R", subscription="S", run_id="r",
                                          delivered_at=AT, keys=k, hashes=h)
        with engine.connect() as conn:
            return list(conn.exec_driver_sql(
                "SELECT id, resource, record_key, typeof(record_key), subscription, run_id, "
                "value_hash, typeof(value_hash), delivered_at FROM lineage_provenance ORDER BY id"
            ))

    fast = rows(store)
    plain = create_store_engine(f"sqlite:///{store.url.database}.plain")
    upgrade(plain)
    monkeypatch.setattr(module, "_json_each_insert", lambda *_args: False)
    assert rows(plain) == fast
    assert [r[2] for r in fast[:len(keys)]] == keys.to_pylist()
    assert fast[-1][6] == "not sixteen"
