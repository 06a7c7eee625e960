"""Sources over tables the departments made themselves, in each database's own types."""

from __future__ import annotations

import datetime as dt
import decimal
import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

import connectors
from connectors import ReadSpec, TargetColumn, TargetSpec
from connectors.sql.sqlite import canonical_timestamp
from govex.errors import GovexError

UTC = dt.UTC
TS = pa.timestamp("us", tz="UTC")


def _exec(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(sa.text(statement))
    engine.dispose()


def _read(url: str, spec: ReadSpec) -> pa.Table:
    source = connectors.open_source("url", url)
    try:
        return pa.concat_tables(list(source.read_batches(spec)))
    finally:
        source.close()


@pytest.mark.integration
def test_postgresql_native_types(pg_url: str) -> None:
    _exec(
        pg_url,
        "CREATE TABLE people (id integer PRIMARY KEY, name varchar(20), amount numeric(10,2), "
        "ok boolean, born date, naive timestamp, aware timestamptz, big numeric)",
        "INSERT INTO people VALUES (1, '张三', 12.34, true, '2000-01-02', "
        "'2026-01-01 08:00:00.5', '2026-01-01 08:00:00+08', 1.5), "
        "(2, '', NULL, NULL, NULL, NULL, NULL, NULL)",
    )
    table = _read(pg_url, ReadSpec("people", None, None, ("id",), None))
    types = {f.name: f.type for f in table.schema}
    assert types == {"id": pa.int64(), "name": pa.string(), "amount": pa.decimal128(10, 2),
                     "ok": pa.bool_(), "born": pa.date32(), "naive": TS, "aware": TS,
                     "big": pa.float64()}
    first, second = table.to_pylist()
    assert first["amount"] == decimal.Decimal("12.34")
    assert first["naive"] == dt.datetime(2026, 1, 1, 8, 0, 0, 500000, tzinfo=UTC)
    assert first["aware"] == dt.datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert second["name"] == ""
    assert second["amount"] is None


@pytest.mark.integration
@pytest.mark.parametrize("column_type", ["timestamp", "timestamptz"])
def test_postgresql_resume_on_either_timestamp_kind(pg_url: str, column_type: str) -> None:
    _exec(pg_url, f"CREATE TABLE ev (id int PRIMARY KEY, t {column_type} NOT NULL)",
          "INSERT INTO ev SELECT i, timestamp '2026-01-01' + (i / 3) * interval '1 second' "
          "FROM generate_series(1, 20) AS i")
    source = connectors.open_source("url", pg_url)
    spec = ReadSpec("ev", None, None, ("id",), "t", batch_rows=4)
    batches = list(source.read_batches(spec))
    cursor = source.cursor_after(spec, batches[1])
    rest = list(source.read_batches(ReadSpec("ev", None, None, ("id",), "t", after=cursor)))
    assert [i for b in rest for i in b.column("id").to_pylist()] == list(range(9, 21))


@pytest.mark.integration
def test_postgresql_abandoned_read_does_not_block_the_next(pg_url: str) -> None:
    _exec(pg_url, "CREATE TABLE big AS SELECT i AS id FROM generate_series(1, 200000) AS i")
    source = connectors.open_source("url", pg_url)
    reader = source.read_batches(ReadSpec("big", None, None, ("id",), None, batch_rows=1000))
    assert next(reader).num_rows == 1000
    reader.close()
    assert sum(b.num_rows for b in source.read_batches(
        ReadSpec("big", None, None, ("id",), None, batch_rows=50000))) == 200000


@pytest.mark.integration
def test_mariadb_native_types(mariadb_url: str) -> None:
    _exec(
        mariadb_url,
        "CREATE TABLE people (id int PRIMARY KEY, name varchar(20), amount decimal(10,2), "
        "ok boolean, born date, at datetime(6), stamp timestamp NULL) CHARSET=utf8mb4",
        "SET time_zone = '+08:00'",
        "INSERT INTO people VALUES (1, '张三', -12.34, 1, '2000-01-02', "
        "'2026-01-01 08:00:00.5', '2026-01-01 08:00:00'), (2, '', NULL, 0, NULL, NULL, NULL)",
    )
    table = _read(mariadb_url, ReadSpec("people", None, None, ("id",), None))
    assert {f.name: f.type for f in table.schema} == {
        "id": pa.int64(), "name": pa.string(), "amount": pa.decimal128(10, 2),
        "ok": pa.bool_(), "born": pa.date32(), "at": TS, "stamp": TS}
    first, second = table.to_pylist()
    assert first["amount"] == decimal.Decimal("-12.34")
    assert first["at"] == dt.datetime(2026, 1, 1, 8, 0, 0, 500000, tzinfo=UTC)
    assert first["stamp"] == dt.datetime(2026, 1, 1, 0, 0, tzinfo=UTC)  # written at +08:00
    assert (second["name"], second["ok"]) == ("", False)


@pytest.mark.integration
def test_mariadb_keys_are_case_sensitive_and_abandoned_reads_recover(mariadb_url: str) -> None:
    spec = TargetSpec("codes", (TargetColumn("code", pa.string(), False),
                                TargetColumn("n", pa.int64())), ("code",))
    sink = connectors.open_sink("url", mariadb_url)
    sink.ensure_table(spec)
    sink.write(spec, pa.table({"code": ["a", "A"], "n": [1, 2]}), "upsert",
               connectors.LedgerEntry("S", "R", "run"))
    assert sorted(sink.read_table(spec).column("code").to_pylist()) == ["A", "a"]
    sink.close()
    source = connectors.open_source("url", mariadb_url)
    reader = source.read_batches(ReadSpec("codes", None, None, ("code",), None, batch_rows=1))
    next(reader)
    reader.close()
    assert _read(mariadb_url, ReadSpec("codes", None, None, ("code",), None)).num_rows == 2


def test_sqlite_timestamps_in_any_spelling_order_by_instant(tmp_path: Path) -> None:
    path = tmp_path / "dept.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE ev (id INTEGER PRIMARY KEY, t DATETIME NOT NULL, d DATE, "
                     "ok BOOLEAN, note TEXT)")
        conn.executemany("INSERT INTO ev VALUES (?, ?, ?, ?, ?)", [
            (1, "2026-01-01 08:00:00", "2026-01-01", 1, "x"),
            (2, "2026-01-01T09:00:00+08:00", None, 0, 5),  # 01:00 UTC: first
            (3, "2026-01-01T02:30:00Z", "2026-01-03", None, None),
            (4, "2026-01-01 08:00:00.000001", None, 1, "y"),
        ])
    url = f"sqlite:///{path}"
    spec = ReadSpec("ev", None, None, ("id",), "t", batch_rows=2)
    source = connectors.open_source("url", url)
    batches = list(source.read_batches(spec))
    table = pa.concat_tables(batches)
    assert table.column("id").to_pylist() == [2, 3, 1, 4]
    assert table.schema.field("t").type == TS
    assert table.schema.field("d").type == pa.date32()
    assert table.column("ok").to_pylist() == [False, None, True, True]
    assert table.column("note").to_pylist() == ["5", None, "x", "y"]
    cursor = source.cursor_after(spec, batches[0])
    rest = list(source.read_batches(ReadSpec("ev", None, None, ("id",), "t", after=cursor)))
    assert [i for b in rest for i in b.column("id").to_pylist()] == [1, 4]


def test_sqlite_query_columns_keep_declared_types(tmp_path: Path) -> None:
    path = tmp_path / "dept.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE p (id INTEGER PRIMARY KEY, born DATE)")
        conn.execute("INSERT INTO p VALUES (1, '2000-01-02')")
    table = _read(f"sqlite:///{path}",
                  ReadSpec(None, "SELECT id, born, id * 2 AS twice FROM p", None, ("id",), None))
    assert table.to_pylist() == [{"id": 1, "born": dt.date(2000, 1, 2), "twice": 2}]


def test_canonical_timestamp_is_fixed_width_utc() -> None:
    assert canonical_timestamp("2026-01-01T09:00:00+08:00") == "2026-01-01 01:00:00.000000"
    assert canonical_timestamp("2026-01-01 08:00:00.5Z") == "2026-01-01 08:00:00.500000"
    assert canonical_timestamp(0) == "1970-01-01 00:00:00.000000"
    assert canonical_timestamp(None) is None


@pytest.mark.integration
def test_postgresql_binary_copy_stores_what_csv_copy_stores(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Binary COPY (pgcopy) and the CSV path leave identical rows, extremes and NULLs
    included; columns without an exact binary form, or out of the column's range, take CSV
    (and so PostgreSQL's own error)."""
    import psycopg

    from connectors.sql import pgcopy
    from connectors.sql.postgres import PostgresDialect

    batch = pa.table({
        "i8": pa.array([1, None, -(2**63), 2**63 - 1], pa.int64()),
        "i4": pa.array([1, None, -(2**31), 2**31 - 1], pa.int64()),
        "i2": pa.array([1, None, -(2**15), 2**15 - 1], pa.int32()),
        "f8": pa.array([1.5, None, float("inf"), -0.0]),
        "b": pa.array([True, None, False, True]),
        "d": pa.array([dt.date(2000, 1, 1), None, dt.date(1, 1, 1), dt.date(9999, 12, 31)]),
        "ts": pa.array([dt.datetime(2026, 1, 1, 8, 0, 0, 500000, tzinfo=UTC), None,
                        dt.datetime(1, 1, 1, tzinfo=UTC),
                        dt.datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)],
                       TS).cast(pa.timestamp("us")),
        "tz": pa.array([dt.datetime(2026, 1, 1, 8, 0, 0, 1, tzinfo=UTC), None,
                        dt.datetime(1970, 1, 1, tzinfo=UTC), dt.datetime(1960, 5, 5, tzinfo=UTC)],
                       TS),
        "ms": pa.array([0, None, -1, 1_700_000_000_123], pa.timestamp("ms", tz="UTC")),
        "t": pa.array(["张三", None, "", 'a\r\nb,"c"\\.']),
        "v": pa.array(["😀x", None, "", "0123456789"]),
        "c": pa.array(["ab", None, "", "abcd"]),
    })
    ddl = ("(i8 bigint, i4 integer, i2 smallint, f8 double precision, b boolean, d date, "
           "ts timestamp, tz timestamptz, ms timestamptz, t text, v varchar(10), c char(4), "
           "extra text DEFAULT 'x')")
    dialect = PostgresDialect(pg_url)
    conn = dialect.connect()
    try:
        cur = conn.cursor()
        cur.execute(f"CREATE TABLE via_binary {ddl}")
        cur.execute(f"CREATE TABLE via_csv {ddl}")
        assert pgcopy.encoder(batch, pgcopy.column_types(cur, '"via_binary"')) is not None
        dialect.copy_in(cur, "via_binary", batch.slice(0, 2))
        dialect.copy_in(cur, "via_binary", batch.slice(2))
        with monkeypatch.context() as patch:
            patch.setattr(pgcopy, "encoder", lambda *_args: None)
            dialect.copy_in(cur, "via_csv", batch)
        query = "SELECT * FROM {} ORDER BY i8 NULLS FIRST"
        binary = cur.execute(query.format("via_binary")).fetchall()
        assert binary == cur.execute(query.format("via_csv")).fetchall()
        assert len(binary) == 4
        assert binary[0][-1] == "x"  # columns the batch lacks take their default

        cur.execute("CREATE TABLE narrow (n integer, amount numeric(10, 2), r real)")
        types = pgcopy.column_types(cur, '"narrow"')
        assert pgcopy.encoder(pa.table({"n": pa.array([2**31])}), types) is None
        assert pgcopy.encoder(pa.table({"amount": pa.array([1.5])}), types) is None
        assert pgcopy.encoder(pa.table({"r": pa.array([0.1])}), types) is None
        with pytest.raises(psycopg.errors.NumericValueOutOfRange):
            dialect.copy_in(cur, "narrow", pa.table({"n": pa.array([2**31])}))
    finally:
        conn.close()


@pytest.mark.integration
def test_postgresql_zoned_timestamps_into_a_naive_column_keep_their_local_wall_time(
    pg_url: str,
) -> None:
    """Text COPY stores a +08:00 value's local wall time in a `timestamp` column; binary COPY
    would store UTC, so such a column keeps the CSV path."""
    from connectors.sql import pgcopy
    from connectors.sql.postgres import PostgresDialect

    local = pa.array([dt.datetime(2026, 1, 1, 3, 14, 8, tzinfo=UTC)],
                     pa.timestamp("us", tz="+08:00"))
    batch = pa.table({"naive": local, "aware": local})
    dialect = PostgresDialect(pg_url)
    conn = dialect.connect()
    try:
        cur = conn.cursor()
        cur.execute("CREATE TABLE zoned (naive timestamp, aware timestamptz)")
        types = pgcopy.column_types(cur, '"zoned"')
        assert pgcopy.encoder(batch.select(["naive"]), types) is None
        assert pgcopy.encoder(batch.select(["aware"]), types) is not None
        dialect.copy_in(cur, "zoned", batch)
        [(naive, aware)] = cur.execute("SELECT naive, aware FROM zoned").fetchall()
        # the +08:00 wall time, as text COPY stores it
        assert naive == dt.datetime(2026, 1, 1, 11, 14, 8, tzinfo=UTC).replace(tzinfo=None)
        assert aware == dt.datetime(2026, 1, 1, 3, 14, 8, tzinfo=UTC)
    finally:
        conn.close()


def test_a_sqlite_target_in_a_new_directory_is_created_a_source_is_not(tmp_path: Path) -> None:
    spec = TargetSpec("t", (TargetColumn("id", pa.int64(), nullable=False),), ("id",))
    sink = connectors.open_sink("url", f"sqlite:///{tmp_path / 'new' / 'dir' / 'gsc.db'}")
    try:
        sink.ensure_table(spec)
    finally:
        sink.close()
    assert (tmp_path / "new" / "dir" / "gsc.db").exists()

    source = connectors.open_source("url", f"sqlite:///{tmp_path / 'absent' / 'src.db'}")
    try:
        with pytest.raises(GovexError):
            list(source.read_batches(ReadSpec("t", None, None, ("id",), None)))
    finally:
        source.close()
    assert not (tmp_path / "absent").exists()


def test_a_postgresql_that_never_answers_is_a_transient_failure_not_a_hang(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A server that takes the TCP connection and says nothing (a wedged database, a
    half-open firewall) fails the connect within CONNECT_TIMEOUT (10 s; 1 s here, to keep the
    test short) as a transient error naming where; `?connect_timeout=N` in the URL wins."""
    import socket
    import time

    from connectors.sql import postgres
    from govex.errors import TransientError

    assert postgres.CONNECT_TIMEOUT == 10
    monkeypatch.setattr(postgres, "CONNECT_TIMEOUT", 1)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)  # accepts, never answers
        port = silent.getsockname()[1]
        for query, bound in (("", 5), ("?connect_timeout=2", 6)):
            dialect = postgres.PostgresDialect(
                f"postgresql+psycopg://govex@127.0.0.1:{port}/quiet{query}")
            started = time.monotonic()
            with pytest.raises(TransientError, match="cannot connect to"):
                dialect.connect()
            assert time.monotonic() - started < bound


def test_mariadb_url_options_are_typed_and_checked(mariadb_url: str) -> None:
    """A connection URL's query reaches PyMySQL typed (`connect_timeout=5` was a TypeError
    deep in PyMySQL); an option govex does not pass, `local_infile` on, or a value not of its
    kind is refused in one sentence naming it."""
    from connectors.sql.mariadb import MariaDBDialect
    from govex.errors import DeclarationError

    conn = MariaDBDialect(
        f"{mariadb_url}?connect_timeout=5&read_timeout=30&ssl_disabled=true&local_infile=0"
    ).connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    finally:
        conn.close()
    refused = [("local_infile=1", "option 'local_infile' must stay off"),
               ("ssl_verify_cert=maybe", "'ssl_verify_cert' must be true or false"),
               ("compress=1", "option 'compress' is not one govex passes"),
               ("connect_timeout=soon", "'connect_timeout' must be a whole number of at least 1"),
               ("read_timeout=0", "'read_timeout' must be a whole number of at least 1")]
    for query, says in refused:
        with pytest.raises(DeclarationError, match=says):
            MariaDBDialect(f"{mariadb_url}?{query}").connect()
