"""One conformance class every connector passes: PostgreSQL, MariaDB, SQLite, CSV, JSONL.

Sources are seeded through the sink of the same backend (so both directions are exercised);
dialect-specific native tables (naive timestamps, offsets, MariaDB DATETIME, SQLite spellings)
are covered in test_sql_native.py.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

import connectors
from connectors import Cursor, LedgerEntry, ReadSpec, TargetColumn, TargetSpec
from govex.errors import DeclarationError, GovexError

UTC = dt.UTC
TS = pa.timestamp("us", tz="UTC")

ALL_TYPES = TargetSpec(
    "all_types",
    (
        TargetColumn("id", pa.int64(), nullable=False),
        TargetColumn("name", pa.string()),
        TargetColumn("note", pa.string()),
        TargetColumn("score", pa.float64()),
        TargetColumn("active", pa.bool_()),
        TargetColumn("birth", pa.date32()),
        TargetColumn("seen", TS),
    ),
    ("id",),
)

EVENTS = TargetSpec(
    "events",
    (
        TargetColumn("id", pa.int64(), nullable=False),
        TargetColumn("updated", TS, nullable=False),
        TargetColumn("value", pa.string()),
    ),
    ("id",),
)

COMPOSITE = TargetSpec(
    "composite",
    (
        TargetColumn("region", pa.string(), nullable=False),
        TargetColumn("seq", pa.int64(), nullable=False),
        TargetColumn("updated", TS, nullable=False),
        TargetColumn("value", pa.int64()),
    ),
    ("region", "seq"),
)


def all_types_rows() -> pa.Table:
    return pa.table(
        {
            "id": [1, 2, 3, 4],
            "name": ["张三", "李四·王五", "", None],
            "note": ["多行\n文本, \"引号\"", "", None, "plain"],
            "score": [1.5, -0.25, None, 1e10],
            "active": [True, False, None, True],
            "birth": [dt.date(1990, 1, 1), None, dt.date(2000, 2, 29), dt.date(1970, 1, 1)],
            "seen": pa.array(
                [
                    dt.datetime(2026, 1, 1, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=8))),
                    dt.datetime(2026, 6, 30, 23, 59, 59, 123456, tzinfo=UTC),
                    None,
                    dt.datetime(1999, 12, 31, 16, 0, tzinfo=UTC),
                ],
                TS,
            ),
        },
        schema=ALL_TYPES.arrow_schema(),
    )


def events(n: int, shared: int = 50, base: int = 0) -> pa.Table:
    """`n` events whose watermark repeats: `shared` rows per distinct value."""
    start = dt.datetime(2026, 3, 1, tzinfo=UTC)
    ids = list(range(base + 1, base + n + 1))
    return pa.table(
        {
            "id": ids,
            "updated": pa.array([start + dt.timedelta(minutes=(i - 1) // shared) for i in ids], TS),
            "value": [f"v{i}" for i in ids],
        },
        schema=EVENTS.arrow_schema(),
    )


def ledger(run: str = "run-1", sub: str = "SUB-1") -> LedgerEntry:
    return LedgerEntry(sub, "RES-1", run)


@pytest.fixture
def sink(backend: Any) -> Iterator[connectors.SinkConnector]:
    s = connectors.open_sink(backend.kind, backend.target, backend.fmt)
    yield s
    s.close()


@pytest.fixture
def source(backend: Any) -> Iterator[connectors.SourceConnector]:
    s = connectors.open_source(backend.kind, backend.target, backend.fmt)
    yield s
    s.close()


def seed(sink: connectors.SinkConnector, spec: TargetSpec, table: pa.Table) -> None:
    sink.ensure_table(spec)
    sink.write(spec, table, "append", ledger("seed", sub="SEED"))


def read_all(source: connectors.SourceConnector, spec: ReadSpec) -> list[pa.Table]:
    return [b for b in source.read_batches(spec) if b.num_rows]


def rows_by(table: pa.Table, *key: str) -> list[dict[str, Any]]:
    return sorted(table.to_pylist(), key=lambda r: tuple(r[k] for k in key))


def ids(batches: list[pa.Table]) -> list[int]:
    return [i for b in batches for i in b.column("id").to_pylist()]


class TestConformance:
    # -- types ------------------------------------------------------------------------------
    def test_round_trip_of_every_type(self, sink: Any, source: Any) -> None:
        expected = all_types_rows()
        seed(sink, ALL_TYPES, expected)
        assert rows_by(sink.read_table(ALL_TYPES), "id") == expected.to_pylist()
        read = pa.concat_tables(
            read_all(source, ReadSpec("all_types", None, None, ("id",), None))
        )
        assert read.schema.field("seen").type == TS
        for name in ALL_TYPES.column_names:
            assert read.schema.field(name).type == ALL_TYPES.arrow_schema().field(name).type
        assert rows_by(read, "id") == expected.to_pylist()

    def test_null_and_empty_string_stay_distinct(self, sink: Any, source: Any) -> None:
        seed(sink, ALL_TYPES, all_types_rows())
        read = pa.concat_tables(read_all(source, ReadSpec("all_types", None, ("id", "name"),
                                                          ("id",), None)))
        names = dict(zip(read.column("id").to_pylist(), read.column("name").to_pylist(),
                         strict=True))
        assert names[3] == ""
        assert names[4] is None

    def test_timestamps_keep_their_instant(self, sink: Any) -> None:
        seed(sink, ALL_TYPES, all_types_rows())
        seen = {r["id"]: r["seen"] for r in sink.read_table(ALL_TYPES).to_pylist()}
        assert seen[1] == dt.datetime(2026, 1, 1, 0, 0, tzinfo=UTC)  # 08:00+08:00
        assert seen[1].utcoffset() == dt.timedelta(0)
        assert seen[2].microsecond == 123456

    # -- reading ------------------------------------------------------------------------------
    def test_incremental_resumes_exactly_after_any_cursor(self, sink: Any, source: Any) -> None:
        seed(sink, EVENTS, events(230, shared=50))
        spec = ReadSpec("events", None, None, ("id",), "updated", batch_rows=7)
        batches = read_all(source, spec)
        assert all(b.num_rows <= 7 for b in batches)
        assert ids(batches) == list(range(1, 231))
        everything = ids(batches)
        # Resume after batch boundaries inside runs of equal watermarks, via JSON.
        for index in (0, 6, 7, 15, len(batches) - 2):
            cursor = source.cursor_after(spec, batches[index])
            cursor = Cursor.from_json(json.loads(json.dumps(cursor.to_json())))
            done = sum(b.num_rows for b in batches[: index + 1])
            resumed = ReadSpec("events", None, None, ("id",), "updated", after=cursor,
                               batch_rows=7)
            assert ids(read_all(source, resumed)) == everything[done:]
        last = source.cursor_after(spec, batches[-1])
        assert read_all(source, ReadSpec("events", None, None, ("id",), "updated",
                                         after=last)) == []

    def test_cursor_values_are_json_with_offset(self, sink: Any, source: Any) -> None:
        seed(sink, EVENTS, events(3))
        spec = ReadSpec("events", None, None, ("id",), "updated")
        cursor = source.cursor_after(spec, read_all(source, spec)[-1])
        assert cursor.columns == ("updated", "id")
        assert cursor.values == ("2026-03-01T00:00:00+00:00", 3)

    def test_snapshot_batches_are_bounded(self, sink: Any, source: Any) -> None:
        seed(sink, EVENTS, events(101))
        batches = read_all(source, ReadSpec("events", None, ("id",), ("id",), None,
                                            batch_rows=10))
        assert [b.num_rows for b in batches] == [10] * 10 + [1]
        assert sorted(ids(batches)) == list(range(1, 102))

    def test_new_rows_after_the_cursor_are_read(self, sink: Any, source: Any) -> None:
        seed(sink, EVENTS, events(20, shared=5))
        spec = ReadSpec("events", None, None, ("id",), "updated", batch_rows=100)
        cursor = source.cursor_after(spec, read_all(source, spec)[-1])
        later = events(5, shared=1, base=20)  # new ids, later watermarks
        sink.write(EVENTS, later, "append", ledger("seed-2", sub="SEED"))
        resumed = ReadSpec("events", None, None, ("id",), "updated", after=cursor)
        assert ids(read_all(source, resumed)) == [21, 22, 23, 24, 25]

    def test_composite_key_ordering_and_resume(self, sink: Any, source: Any) -> None:
        ts = dt.datetime(2026, 1, 1, tzinfo=UTC)
        table = pa.table(
            {"region": ["b", "a", "e", "d", "c"] * 4, "seq": [i // 5 for i in range(20)],
             "updated": pa.array([ts] * 20, TS), "value": list(range(20))},
            schema=COMPOSITE.arrow_schema(),
        )
        seed(sink, COMPOSITE, table)
        spec = ReadSpec("composite", None, None, ("region", "seq"), "updated", batch_rows=3)
        batches = read_all(source, spec)
        order = [(r["region"], r["seq"]) for b in batches for r in b.to_pylist()]
        assert order == sorted(order)
        cursor = source.cursor_after(spec, batches[2])
        rest = read_all(source, ReadSpec("composite", None, None, ("region", "seq"), "updated",
                                         after=cursor, batch_rows=3))
        assert [(r["region"], r["seq"]) for b in rest for r in b.to_pylist()] == order[9:]

    def test_query_source(self, backend: Any, sink: Any, source: Any) -> None:
        seed(sink, EVENTS, events(30, shared=10))
        query = "SELECT id, updated, value FROM events WHERE id > 10"
        spec = ReadSpec(None, query, None, ("id",), "updated", batch_rows=4)
        if not backend.is_sql:
            with pytest.raises(DeclarationError, match="query"):
                read_all(source, spec)
            return
        batches = read_all(source, spec)
        assert ids(batches) == list(range(11, 31))
        cursor = source.cursor_after(spec, batches[1])
        resumed = ReadSpec(None, query + ";", None, ("id",), "updated", after=cursor)
        assert ids(read_all(source, resumed)) == list(range(19, 31))

    def test_unknown_column_is_a_declaration_error(self, sink: Any, source: Any) -> None:
        seed(sink, EVENTS, events(2))
        with pytest.raises(DeclarationError, match="nope"):
            read_all(source, ReadSpec("events", None, ("id", "nope"), ("id",), None))

    # -- writing -----------------------------------------------------------------------------
    def test_upsert_updates_existing_keys_and_inserts_new(self, sink: Any) -> None:
        sink.ensure_table(EVENTS)
        sink.write(EVENTS, events(5), "upsert", ledger())
        change = events(4, base=3).set_column(2, "value", pa.array(["x4", "x5", "x6", "x7"]))
        assert sink.write(EVENTS, change, "upsert", ledger()) == 4
        values = {r["id"]: r["value"] for r in sink.read_table(EVENTS).to_pylist()}
        assert values == {1: "v1", 2: "v2", 3: "v3", 4: "x4", 5: "x5", 6: "x6", 7: "x7"}

    def test_upsert_with_repeated_key_in_a_batch_keeps_the_last(self, sink: Any) -> None:
        sink.ensure_table(EVENTS)
        twice = pa.concat_tables([events(2), events(1).set_column(2, "value", pa.array(["new"]))])
        sink.write(EVENTS, twice, "upsert", ledger())
        values = {r["id"]: r["value"] for r in sink.read_table(EVENTS).to_pylist()}
        assert values == {1: "new", 2: "v2"}

    def test_composite_key_upsert(self, sink: Any) -> None:
        ts = dt.datetime(2026, 1, 1, tzinfo=UTC)
        first = pa.table({"region": ["a", "a", "b"], "seq": [1, 2, 1],
                          "updated": pa.array([ts] * 3, TS), "value": [1, 2, 3]},
                         schema=COMPOSITE.arrow_schema())
        second = pa.table({"region": ["a", "b"], "seq": [2, 2],
                           "updated": pa.array([ts] * 2, TS), "value": [20, 30]},
                          schema=COMPOSITE.arrow_schema())
        sink.ensure_table(COMPOSITE)
        sink.write(COMPOSITE, first, "upsert", ledger())
        sink.write(COMPOSITE, second, "upsert", ledger())
        got = {(r["region"], r["seq"]): r["value"] for r in sink.read_table(COMPOSITE).to_pylist()}
        assert got == {("a", 1): 1, ("a", 2): 20, ("b", 1): 3, ("b", 2): 30}

    def test_append_appends(self, sink: Any) -> None:
        spec = TargetSpec("log", EVENTS.columns, ())
        sink.ensure_table(spec)
        sink.write(spec, events(3), "append", ledger())
        sink.write(spec, events(2), "append", ledger())
        assert sorted(sink.read_table(spec).column("id").to_pylist()) == [1, 1, 2, 2, 3]

    def test_replace_swaps_the_content(self, sink: Any) -> None:
        sink.ensure_table(EVENTS)
        sink.write(EVENTS, events(10), "upsert", ledger("run-1"))
        n = sink.replace(EVENTS, iter([events(2, base=100), events(1, base=200)]), ledger("run-2"))
        assert n == 3
        assert sorted(sink.read_table(EVENTS).column("id").to_pylist()) == [101, 102, 201]
        entry = sink.read_ledger("SUB-1")
        assert (entry.run_id, entry.rows) == ("run-2", 3)

    def test_replace_failing_midway_keeps_the_old_content(self, sink: Any) -> None:
        sink.ensure_table(EVENTS)
        sink.write(EVENTS, events(10), "upsert", ledger("run-1"))

        def batches() -> Iterator[pa.Table]:
            yield events(5, base=100)
            bad = events(1, base=200).to_pydict()
            bad["updated"] = [None]  # NULL in a NOT NULL column
            yield pa.table(bad, schema=pa.schema([("id", pa.int64()), ("updated", TS),
                                                  ("value", pa.string())]))

        with pytest.raises(GovexError):
            sink.replace(EVENTS, batches(), ledger("run-2"))
        assert sorted(sink.read_table(EVENTS).column("id").to_pylist()) == list(range(1, 11))
        assert sink.read_ledger("SUB-1").run_id == "run-1"

    def test_ledger_is_written_with_the_data(self, sink: Any) -> None:
        assert sink.read_ledger("SUB-1") is None
        sink.ensure_table(EVENTS)
        sink.write(EVENTS, events(5), "upsert", ledger("run-1"))
        sink.write(EVENTS, events(3, base=5), "upsert", ledger("run-1"))
        entry = sink.read_ledger("SUB-1")
        assert entry == LedgerEntry("SUB-1", "RES-1", "run-1", 8)
        sink.write(EVENTS, events(2), "upsert", ledger("run-2"))
        assert sink.read_ledger("SUB-1").rows == 2

    def test_failing_write_leaves_neither_rows_nor_ledger(self, sink: Any) -> None:
        sink.ensure_table(EVENTS)
        sink.write(EVENTS, events(2), "upsert", ledger("run-1"))
        bad = pa.table({"id": [3, None], "updated": events(2).column("updated"),
                        "value": ["a", "b"]})
        with pytest.raises(GovexError):
            sink.write(EVENTS, bad, "upsert", ledger("run-2"))
        assert sorted(sink.read_table(EVENTS).column("id").to_pylist()) == [1, 2]
        assert sink.read_ledger("SUB-1").run_id == "run-1"

    def test_discard_runs_removes_only_those_runs(self, sink: Any) -> None:
        spec = TargetSpec("hist", (*EVENTS.columns,
                                   TargetColumn("_govex_run_id", pa.string(), False)),
                          ("id", "_govex_run_id"))
        sink.ensure_table(spec)
        for run in ("r1", "r2", "r3"):
            batch = events(3).append_column("_govex_run_id", pa.array([run] * 3))
            sink.write(spec, batch, "append", ledger(run))
        assert sink.discard_runs(spec, ["r2", "r3"]) == 6
        assert set(sink.read_table(spec).column("_govex_run_id").to_pylist()) == {"r1"}

    def test_delete_keys_removes_exactly_those_records_with_the_ledger(self, sink: Any) -> None:
        sink.ensure_table(COMPOSITE)
        ts = dt.datetime(2026, 1, 1, tzinfo=UTC)
        sink.write(COMPOSITE, pa.table({"region": ["a", "a", "b"], "seq": [1, 2, 1],
                                        "updated": pa.array([ts] * 3, TS), "value": [1, 2, 3]},
                                       schema=COMPOSITE.arrow_schema()), "upsert", ledger("r1"))
        gone = pa.table({"region": ["a", "b", "z"], "seq": [2, 1, 9]})
        assert sink.delete_keys(COMPOSITE, gone, ledger("r2")) == 2
        got = [(r["region"], r["seq"]) for r in sink.read_table(COMPOSITE).to_pylist()]
        assert got == [("a", 1)]
        assert sink.read_ledger("SUB-1").run_id == "r2"

    # -- ensure_table ---------------------------------------------------------------------
    def test_ensure_table_creates_and_accepts_a_matching_table(self, backend: Any) -> None:
        first = connectors.open_sink(backend.kind, backend.target, backend.fmt)
        first.ensure_table(ALL_TYPES)
        first.close()
        again = connectors.open_sink(backend.kind, backend.target, backend.fmt)
        again.ensure_table(ALL_TYPES)  # a fresh sink checks the existing table and accepts it
        assert again.read_table(ALL_TYPES).num_rows == 0
        again.close()

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            ("missing", "extra"),
            ("type", "score"),
            ("key", "primary key"),
        ],
    )
    def test_ensure_table_rejects_an_incompatible_table(
        self, backend: Any, sink: Any, change: str, message: str
    ) -> None:
        seed(sink, EVENTS, events(3))
        columns = list(EVENTS.columns)
        key = EVENTS.primary_key
        if change == "missing":
            columns.append(TargetColumn("extra", pa.string()))
        elif change == "type":
            columns = [*columns[:2], TargetColumn("score", pa.date32())]
            columns[2] = TargetColumn("value", pa.date32())
            message = "value"
        else:
            key = ("id", "value")
        wanted = TargetSpec("events", tuple(columns), key)
        fresh = connectors.open_sink(backend.kind, backend.target, backend.fmt)
        try:
            with pytest.raises(DeclarationError, match=message) as caught:
                fresh.ensure_table(wanted)
            assert "events" in str(caught.value)
            with pytest.raises(DeclarationError):
                fresh.write(wanted, pa.table({c.name: pa.nulls(1, c.type) for c in columns}),
                            "upsert", ledger())
        finally:
            fresh.close()
        assert sorted(sink.read_table(EVENTS).column("id").to_pylist()) == [1, 2, 3]
