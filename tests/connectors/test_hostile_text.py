"""Sources holding text no target can hold — U+0000, bytes that are not UTF-8 — are read, not
refused: one such value must not stop a read. Text that is not all UTF-8 arrives as bytes,
byte for byte (the gate quarantines its record); nothing is decoded with replacements.
A PostgreSQL sink refuses U+0000 naming the column."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pyarrow as pa
import pytest
import sqlalchemy as sa

import connectors
from connectors import LedgerEntry, ReadSpec, TargetColumn, TargetSpec
from connectors.arrowutil import as_text, holds_nul
from govex.errors import FatalError

BAD = b"caf\xe9 \xff"  # Latin-1 leftovers: not UTF-8


def _read(kind: str, target: str, spec: ReadSpec, fmt: str | None = None) -> list[pa.Table]:
    source = connectors.open_source(kind, target, fmt)
    try:
        return list(source.read_batches(spec))
    finally:
        source.close()


def _values(batches: list[pa.Table], column: str) -> list[object]:
    return [v for b in batches for v in b.column(column).to_pylist()]


def test_as_text_decodes_only_what_is_utf8() -> None:
    assert as_text(pa.array([b"ok", None, "名".encode()])).to_pylist() == ["ok", None, "名"]
    kept = as_text(pa.array([b"ok", BAD]))
    assert kept.type == pa.binary()
    assert kept.to_pylist() == [b"ok", BAD]
    assert as_text(pa.array([1, 2])).to_pylist() == [1, 2]


def test_holds_nul_looks_only_at_the_values_in_view() -> None:
    values = pa.array(["ab", "c\x00d", None, "e"])
    assert holds_nul(values)
    assert not holds_nul(values.slice(0, 1))
    assert not holds_nul(values.slice(2))
    assert holds_nul(values.slice(1, 1))
    assert holds_nul(pa.chunked_array([values.slice(0, 1), values.slice(1)]))
    assert holds_nul(pa.array(["x\x00"], pa.large_string()))
    assert holds_nul(pa.array([b"\x00"]))
    assert not holds_nul(pa.array([None, None], pa.string()))
    assert not holds_nul(pa.array([], pa.string()))


def test_sqlite_source_reads_nul_and_undecodable_text_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "src.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, at TIMESTAMP)")
    conn.executemany("INSERT INTO t VALUES (?, ?, '2026-01-01 08:00:00')", [
        (1, "plain"), (2, "a\x00b"), (3, "名字"), (4, None),
    ])
    conn.execute("INSERT INTO t VALUES (5, CAST(? AS TEXT), '2026-01-01 08:00:00')", (BAD,))
    conn.execute("INSERT INTO t VALUES (6, ?, '2026-01-01 08:00:00')", (b"blob \xff\x00",))
    conn.execute("INSERT INTO t VALUES (7, ?, '2026-01-01 08:00:00')", (b"utf8 blob",))
    conn.commit()
    conn.close()
    spec = ReadSpec("t", None, None, ("id",), "at", batch_rows=3)
    batches = _read("url", f"sqlite:///{path}", spec)
    # Batches without a bad value are text; the one holding them keeps its bytes exactly.
    assert [b.column("name").type for b in batches] == [pa.string(), pa.binary(), pa.string()]
    assert _values(batches, "name") == [
        "plain", "a\x00b", "名字", None, BAD, b"blob \xff\x00", "utf8 blob",
    ]  # NUL kept, never cut or replaced; a BLOB that is UTF-8 is its text
    assert _values(batches, "id") == [1, 2, 3, 4, 5, 6, 7]


def test_sqlite_untyped_column_of_undecodable_text_is_read(tmp_path: Path) -> None:
    path = tmp_path / "src.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(1, "ok"), (2, BAD), (3, 7)])
    conn.execute("UPDATE t SET v = CAST(v AS TEXT) WHERE id = 2")
    conn.commit()
    conn.close()
    batches = _read("url", f"sqlite:///{path}",
                    ReadSpec(None, "SELECT id, v FROM t", None, ("id",), None))
    assert _values(batches, "v") == [b"ok", BAD, b"7"]


def test_csv_source_with_undecodable_bytes_is_read(tmp_path: Path) -> None:
    (tmp_path / "people.csv").write_bytes(
        b"id,name,city\n1,ok,\xe5\x8c\x97\n2," + BAD + b",x\n3,\"a\x00b\",y\n"
        + b"".join(b"%d,n%d,c\n" % (i, i) for i in range(4, 10))
    )
    spec = ReadSpec("people", None, None, ("id",), None, batch_rows=4,
                    types={"name": pa.string(), "city": pa.string()})
    batches = _read("path", str(tmp_path), spec, "csv")
    assert [b.num_rows for b in batches] == [4, 4, 1]
    assert batches[0].column("name").type == pa.binary()  # the batch holding the bad value
    assert batches[1].column("name").type == pa.string()
    assert batches[0].column("city").type == pa.string()
    assert _values(batches[:1], "name") == [b"ok", BAD, b"a\x00b", b"n4"]
    assert _values(batches, "city")[:3] == ["北", "x", "y"]
    assert _values(batches, "id") == list(range(1, 10))


def test_foreign_csv_with_undecodable_bytes_infers_text(tmp_path: Path) -> None:
    (tmp_path / "f.csv").write_bytes(b"id,code\n1,12\n2," + BAD + b"\n")
    batches = _read("path", str(tmp_path), ReadSpec("f", None, None, ("id",), None), "csv")
    assert _values(batches, "id") == [1, 2]
    assert _values(batches, "code") == [b"12", BAD]


def test_jsonl_source_keeps_undecodable_text_as_bytes(tmp_path: Path) -> None:
    lines = [json.dumps({"id": 1, "name": "ok"}).encode(),
             b'{"id": 2, "name": "' + BAD + b'"}',
             json.dumps({"id": 3, "name": "a\x00b"}).encode()]
    (tmp_path / "f.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    batches = _read("path", str(tmp_path), ReadSpec("f", None, None, ("id",), "id"), "jsonl")
    table = pa.concat_tables(batches)
    table.validate(full=True)  # pyarrow's JSON reader alone would hand over invalid "text"
    assert table.column("name").type == pa.binary()
    assert table.column("name").to_pylist() == [b"ok", BAD, b"a\x00b"]
    clean = tmp_path / "g.jsonl"
    clean.write_bytes(lines[0] + b"\n" + lines[2] + b"\n")
    batches = _read("path", str(tmp_path), ReadSpec("g", None, None, ("id",), None), "jsonl")
    assert _values(batches, "name") == ["ok", "a\x00b"]


@pytest.mark.integration
def test_postgresql_sql_ascii_source_with_undecodable_bytes_is_read(pg_url: str) -> None:
    """A database in SQL_ASCII keeps whatever bytes it was given; COPY hands them over."""
    admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
    url = sa.make_url(pg_url)
    legacy = f"{url.database}_ascii"
    with admin.connect() as conn:
        conn.execute(sa.text(
            f'CREATE DATABASE "{legacy}" ENCODING \'SQL_ASCII\' LC_COLLATE \'C\' '
            "LC_CTYPE 'C' TEMPLATE template0"))
    admin.dispose()
    legacy_url = url.set(database=legacy).render_as_string(hide_password=False)
    try:
        import psycopg

        with psycopg.connect(
            host=url.host, port=url.port, user=url.username, password=url.password,
            dbname=legacy, client_encoding="SQL_ASCII",
        ) as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, name text)")
            conn.execute(b"INSERT INTO t VALUES (1, 'ok'), (2, '" + BAD + b"'), (3, 'x')")
        batches = _read("url", legacy_url, ReadSpec("t", None, None, ("id",), None))
        assert _values(batches, "id") == [1, 2, 3]
        assert _values(batches, "name") == [b"ok", BAD, b"x"]
    finally:
        admin = sa.create_engine(pg_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{legacy}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.integration
def test_mariadb_source_keeps_a_nul_in_varchar(mariadb_url: str) -> None:
    engine = sa.create_engine(mariadb_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id int PRIMARY KEY, name varchar(20), "
                             "raw varbinary(20))"))
        conn.execute(sa.text("INSERT INTO t VALUES (1, 'ok', 'ok'), (2, :nul, :bad)"),
                     {"nul": "a\x00b", "bad": BAD})
    engine.dispose()
    batches = _read("url", mariadb_url, ReadSpec("t", None, None, ("id",), None))
    assert _values(batches, "name") == ["ok", "a\x00b"]
    assert _values(batches, "raw") == [b"ok", BAD]


SPEC = TargetSpec("t", (TargetColumn("id", pa.int64(), False), TargetColumn("name", pa.string())),
                  ("id",))


@pytest.mark.integration
def test_postgresql_sink_refuses_nul_naming_the_column(pg_url: str) -> None:
    sink = connectors.open_sink("url", pg_url)
    ledger = LedgerEntry("SUB-1", "R-1", "run-1")
    batch = pa.table({"id": [1, 2], "name": ["ok", "a\x00b"]})
    try:
        for write in (lambda: sink.write(SPEC, batch, "upsert", ledger),
                      lambda: sink.replace(SPEC, [batch], ledger)):
            with pytest.raises(FatalError, match=r"column 'name' holds a NUL character "
                                                 r"\(U\+0000\) in 1 row"):
                write()
        assert sink.read_table(SPEC).num_rows == 0
        assert sink.write(SPEC, batch.slice(0, 1), "upsert", ledger) == 1
    finally:
        sink.close()


def test_sqlite_sink_keeps_nul(tmp_path: Path) -> None:
    sink = connectors.open_sink("url", f"sqlite:///{tmp_path / 't.db'}")
    ledger = LedgerEntry("SUB-1", "R-1", "run-1")
    try:
        sink.write(SPEC, pa.table({"id": [1], "name": ["a\x00b"]}), "upsert", ledger)
        assert sink.read_table(SPEC).column("name").to_pylist() == ["a\x00b"]
    finally:
        sink.close()
