"""What the disputed-record flag asks of every sink (PostgreSQL, MariaDB, SQLite, CSV, JSONL): a
column with a default is added to a table that predates it (existing rows take the default, and
the compatibility check does not call it missing), a boolean flag is set on exactly the rows of
some keys, and a small all-key table holds or drops rows once."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

import connectors
from connectors import LedgerEntry, TargetColumn, TargetSpec
from govex.errors import DeclarationError

FLAG = TargetColumn("_govex_disputed", pa.bool_(), nullable=False, default=False)
BEFORE = TargetSpec(
    "residents",
    (
        TargetColumn("region", pa.string(), nullable=False),
        TargetColumn("seq", pa.int64(), nullable=False),
        TargetColumn("name", pa.string()),
    ),
    ("region", "seq"),
)
AFTER = TargetSpec("residents", (*BEFORE.columns, FLAG), BEFORE.primary_key)
MARKS = TargetSpec(
    "_govex_disputes",
    tuple(TargetColumn(n, pa.string(), nullable=False)
          for n in ("target_table", "record_key", "dispute")),
    ("target_table", "record_key", "dispute"),
)


def _rows(n: int, flagged: bool | None = None) -> pa.Table:
    data: dict[str, Any] = {
        "region": [f"R{i % 3}" for i in range(n)],
        "seq": list(range(n)),
        "name": [f"居民{i}" for i in range(n)],
    }
    if flagged is not None:
        data["_govex_disputed"] = [flagged] * n
    return pa.table(data)


def _ledger(run: str = "run-1") -> LedgerEntry:
    return LedgerEntry("SUB-1", "RES-1", run)


def _flags(sink: Any) -> dict[tuple[str, int], bool]:
    table = sink.read_table(AFTER).to_pylist()
    return {(r["region"], r["seq"]): r["_govex_disputed"] for r in table}


@pytest.fixture
def sink(backend: Any) -> Any:
    s = connectors.open_sink(backend.kind, backend.target, backend.fmt)
    yield s
    s.close()


def test_a_table_from_before_gets_the_column_and_its_rows_read_false(
    backend: Any, sink: Any
) -> None:
    sink.write(BEFORE, _rows(6), "upsert", _ledger())
    fresh = connectors.open_sink(backend.kind, backend.target, backend.fmt)
    try:
        assert fresh.table_problems(AFTER) == []  # will be added: not a problem
        assert fresh.columns_to_add(AFTER) == ["_govex_disputed"]
        fresh.ensure_table(AFTER)
        assert fresh.columns_to_add(AFTER) == []
        assert _flags(fresh) == {(f"R{i % 3}", i): False for i in range(6)}
        fresh.write(AFTER, _rows(8, flagged=False).slice(6), "upsert", _ledger("run-2"))
        assert len(_flags(fresh)) == 8
    finally:
        fresh.close()
    again = connectors.open_sink(backend.kind, backend.target, backend.fmt)
    try:  # the addition is there for a later process too, and is not made twice
        again.ensure_table(AFTER)
        assert again.table_problems(AFTER) == []
        assert set(_flags(again).values()) == {False}
    finally:
        again.close()


def test_a_missing_column_without_a_default_is_still_refused(backend: Any, sink: Any) -> None:
    sink.write(BEFORE, _rows(2), "upsert", _ledger())
    wider = TargetSpec("residents", (*BEFORE.columns, TargetColumn("phone", pa.string())),
                       BEFORE.primary_key)
    fresh = connectors.open_sink(backend.kind, backend.target, backend.fmt)
    try:
        problems = fresh.table_problems(wider)
        assert problems is not None
        assert [column for column, _message in problems] == ["phone"]
        with pytest.raises(DeclarationError, match="phone"):
            fresh.ensure_table(wider)
    finally:
        fresh.close()


def test_flag_keys_sets_exactly_those_rows(sink: Any) -> None:
    sink.write(AFTER, _rows(9, flagged=False), "upsert", _ledger())
    keys = pa.table({"region": ["R1", "R2", "R0"], "seq": [1, 5, 7]})  # (R0, 7): no such row
    sink.flag_keys(AFTER, keys, "_govex_disputed", True)
    flagged = {k for k, v in _flags(sink).items() if v}
    assert flagged == {("R1", 1), ("R2", 5)}
    sink.flag_keys(AFTER, keys.slice(0, 1), "_govex_disputed", False)
    assert {k for k, v in _flags(sink).items() if v} == {("R2", 5)}
    assert sink.read_ledger("SUB-1") == LedgerEntry("SUB-1", "RES-1", "run-1", 9)  # untouched


def test_an_upsert_keeps_what_it_delivers_for_the_flag(sink: Any) -> None:
    """A delivery writes the flag as it is told (the engine tells it the store's state)."""
    sink.write(AFTER, _rows(3, flagged=False), "upsert", _ledger())
    sink.write(AFTER, _rows(2, flagged=True).slice(1), "upsert", _ledger("run-2"))
    assert _flags(sink) == {("R0", 0): False, ("R1", 1): True, ("R2", 2): False}


def test_mark_rows_holds_each_row_once_and_drops_it(sink: Any) -> None:
    rows = pa.table({"target_table": ["log", "log"], "record_key": ["a", "b,c"],
                     "dispute": ["DSP-1", "DSP-1"]})
    sink.mark_rows(MARKS, rows, True)
    sink.mark_rows(MARKS, rows.slice(0, 1), True)  # already there: left alone
    held = sorted(tuple(r.values()) for r in sink.read_table(MARKS).to_pylist())
    assert held == [("log", "a", "DSP-1"), ("log", "b,c", "DSP-1")]
    sink.mark_rows(MARKS, rows.slice(0, 1), False)
    sink.mark_rows(MARKS, rows.slice(0, 1), False)  # already gone: nothing to do
    assert [tuple(r.values()) for r in sink.read_table(MARKS).to_pylist()] == [
        ("log", "b,c", "DSP-1")]
