"""The Arrow-rendered MariaDB INSERTs store exactly what PyMySQL's executemany stores, for
hostile text too, under both escaping modes of the server."""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

from connectors.sql.mariadb import MariaDBDialect
from connectors.sql.mariadb_values import values_bodies

HOSTILE = [
    "plain", "", "it's", "back\\slash", "\\'", "'; DROP TABLE t; --", "tab\tnew\nline\r",
    "nul\x00byte", "ctrl-z\x1a", "全角＇引号", "emoji 😀", "\\", "'", "''", "\\\\'", None,
]


def _batch() -> pa.Table:
    n = len(HOSTILE)
    return pa.table({
        "id": pa.array(range(1, n + 1), pa.int64()),
        "text": pa.array(HOSTILE, pa.string()),
        "num": pa.array([decimal.Decimal("12.50") if i % 3 else None for i in range(n)],
                        pa.decimal128(10, 2)),
        "ratio": pa.array([1 / (i + 1) if i % 4 else None for i in range(n)], pa.float64()),
        "day": pa.array([dt.date(2026, 1, 1 + i) for i in range(n)], pa.date32()),
        "at": pa.array([dt.datetime(2026, 1, 1, 0, 0, i, 123456, tzinfo=dt.UTC)
                        for i in range(n)], pa.timestamp("us", tz="UTC")),
        "flag": pa.array([i % 2 == 0 for i in range(n)], pa.bool_()),
    })


DDL = ("CREATE TABLE {name} (id BIGINT PRIMARY KEY, text TEXT, num DECIMAL(10,2), "
       "ratio DOUBLE, day DATE, at DATETIME(6), flag TINYINT) DEFAULT CHARSET=utf8mb4")


def _rows(cur: Any, table: str) -> list[tuple[Any, ...]]:
    cur.execute(f"SELECT * FROM {table} ORDER BY id")
    return list(cur.fetchall())


@pytest.mark.integration
@pytest.mark.parametrize("mode", ["", "NO_BACKSLASH_ESCAPES"])
def test_rendered_inserts_store_what_executemany_stores(mariadb_url: str, mode: str) -> None:
    dialect = MariaDBDialect(mariadb_url)
    conn = dialect.connect()
    try:
        with conn.cursor() as cur:
            if mode:
                cur.execute(f"SET SESSION sql_mode = CONCAT(@@sql_mode, ',{mode}')")
            for name in ("rendered", "bound"):
                cur.execute(DDL.format(name=name))
            batch = _batch()
            dialect.insert(cur, "rendered", batch)  # the Arrow-rendered path
            super(MariaDBDialect, dialect).insert(cur, "bound", batch)  # PyMySQL executemany
            rendered, bound = _rows(cur, "rendered"), _rows(cur, "bound")
            assert rendered == bound
            assert [r[1] for r in rendered] == HOSTILE  # and both are the values themselves
            # Upsert: the same rows again with new text replace, never duplicate.
            changed = batch.set_column(1, "text", pa.array([f"v2 {t}" for t in HOSTILE]))
            dialect.upsert(cur, "rendered", changed, ["id"])
            assert [r[1] for r in _rows(cur, "rendered")] == [f"v2 {t}" for t in HOSTILE]
    finally:
        conn.close()
        engine = sa.create_engine(mariadb_url)
        with engine.begin() as c:
            for name in ("rendered", "bound"):
                c.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
        engine.dispose()


def test_statements_stay_within_the_size_budget() -> None:
    column = pa.array([f"row {i:05d} " + "x" * 50 for i in range(2000)])
    bodies = values_bodies([column], backslash_escapes=True, max_bytes=10_000)
    assert bodies is not None
    texts = list(bodies)
    assert len(texts) > 10
    assert all(len(t.encode()) <= 10_000 for t in texts)
    rows = ",".join(texts).split("),(")
    assert len(rows) == 2000  # every row once, in order
    assert rows[0] == "('row 00000 " + "x" * 50 + "'"
    assert rows[-1].endswith("01999 " + "x" * 50 + "')")


def test_a_column_without_a_literal_form_falls_back() -> None:
    assert values_bodies([pa.array([b"\x00"], pa.binary())], backslash_escapes=True) is None
    assert values_bodies([pa.array([float("nan")])], backslash_escapes=True) is None
    assert values_bodies([pa.array([1.5, None])], backslash_escapes=True) is not None
