"""Registry, identifier checks, foreign files and the file sink's crash recovery."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

import connectors
from connectors import LedgerEntry, ReadSpec, TargetColumn, TargetSpec
from govex.errors import DeclarationError

SPEC = TargetSpec("t", (TargetColumn("id", pa.int64(), False), TargetColumn("v", pa.string())),
                  ("id",))


def test_importing_connectors_loads_no_driver() -> None:
    code = ("import sys, connectors; bad = [m for m in ('psycopg', 'pymysql', 'sqlalchemy', "
            "'sqlite3', 'connectors.sql.postgres') if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).parents[2])
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("kind", "target", "fmt", "message"),
    [
        ("kafka", "127.0.0.1:9092", None, "kind 'kafka'"),
        ("url", "oracle://scott@db/x", None, "database 'oracle'"),
        ("url", "not a url", None, "not a database URL"),
        ("path", ".", "parquet", "file format 'parquet'"),
    ],
)
def test_registry_rejects_what_it_cannot_serve(kind: str, target: str, fmt: str | None,
                                               message: str) -> None:
    with pytest.raises(DeclarationError, match=message):
        connectors.open_source(kind, target, fmt)
    with pytest.raises(DeclarationError, match=message):
        connectors.open_sink(kind, target, fmt)


def test_capabilities_are_data(tmp_path: Path) -> None:
    sqlite = connectors.open_sink("url", f"sqlite:///{tmp_path / 'x.db'}")
    files = connectors.open_sink("path", str(tmp_path), "csv")
    assert sqlite.capabilities.native_upsert == "on_conflict"
    assert files.capabilities.bulk_load == "file"


@pytest.mark.parametrize("bad", ["bad-name", "x; DROP TABLE y", "a.b.c", ""])
def test_unsafe_names_are_refused(tmp_path: Path, bad: str) -> None:
    sink = connectors.open_sink("url", f"sqlite:///{tmp_path / 'x.db'}")
    with pytest.raises(DeclarationError):
        sink.ensure_table(TargetSpec(bad, SPEC.columns, SPEC.primary_key))
    with pytest.raises(DeclarationError):
        list(connectors.open_source("path", str(tmp_path), "csv").read_batches(
            ReadSpec(bad, None, None, (), None)))


def test_foreign_csv_is_typed_over_the_whole_file(tmp_path: Path) -> None:
    rows = ["id,code,amount,flag,day,at,text"]
    rows += [f"{i},{i:04d},{i}.5,true,2026-01-0{1 + i % 9},2026-01-01 08:00:00,t{i}"
             for i in range(1, 3000)]
    rows += ['3000,,,,,2026-01-01T09:00:00+08:00,""']  # empty cell = NULL, "" = empty string
    rows += ["3001,0012,7,false,2026-01-01,2026-01-01 00:00:00Z,late text"]
    (tmp_path / "foreign.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    source = connectors.open_source("path", str(tmp_path), "csv")
    batches = list(source.read_batches(ReadSpec("foreign", None, None, ("id",), None,
                                                batch_rows=1000)))
    assert [b.num_rows for b in batches] == [1000, 1000, 1000, 1]
    table = pa.concat_tables(batches)
    types = {f.name: f.type for f in table.schema}
    assert types["id"] == pa.int64()
    assert types["code"] == pa.string()  # "0012" keeps its zeros
    assert types["amount"] == pa.float64()
    assert types["flag"] == pa.bool_()
    assert types["day"] == pa.date32()
    assert types["at"] == pa.timestamp("us", tz="UTC")
    last_two = table.slice(2999).to_pylist()
    assert last_two[0]["code"] is None
    assert last_two[0]["text"] == ""
    assert last_two[0]["at"] == dt.datetime(2026, 1, 1, 1, 0, tzinfo=dt.UTC)
    assert last_two[1]["code"] == "0012"


def test_foreign_jsonl_is_read(tmp_path: Path) -> None:
    lines = [json.dumps({"id": i, "name": f"名{i}", "score": None if i == 2 else i / 2})
             for i in range(1, 4)]
    (tmp_path / "f.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    source = connectors.open_source("path", str(tmp_path), "jsonl")
    spec = ReadSpec("f", None, None, ("id",), "id", batch_rows=2)
    batches = list(source.read_batches(spec))
    assert [r["name"] for b in batches for r in b.to_pylist()] == ["名1", "名2", "名3"]
    assert source.cursor_after(spec, batches[0]).values == (2,)


def test_file_append_truncates_an_uncommitted_tail(tmp_path: Path) -> None:
    sink = connectors.open_sink("path", str(tmp_path), "csv")
    spec = TargetSpec("log", SPEC.columns, ())
    sink.ensure_table(spec)
    sink.write(spec, pa.table({"id": [1], "v": ["a"]}), "append", LedgerEntry("S", "R", "r1"))
    with (tmp_path / "log.csv").open("ab") as f:  # a crash after data, before the ledger
        f.write(b'2,"half')
    sink.write(spec, pa.table({"id": [3], "v": ["c"]}), "append", LedgerEntry("S", "R", "r2"))
    assert sink.read_table(spec).column("id").to_pylist() == [1, 3]
    assert sink.read_ledger("S").run_id == "r2"


def test_file_sidecar_is_valid_json_and_files_keep_permissions(tmp_path: Path) -> None:
    sink = connectors.open_sink("path", str(tmp_path), "jsonl")
    sink.ensure_table(SPEC)
    sink.write(SPEC, pa.table({"id": [1], "v": ["x"]}), "upsert", LedgerEntry("S", "R", "r"))
    sidecar = json.loads((tmp_path / "t.govex-ledger.json").read_text())
    assert sidecar["table"]["primary_key"] == ["id"]
    assert sidecar["ledger"]["S"]["rows"] == 1
    assert (tmp_path / "t.jsonl").stat().st_mode & 0o644 == 0o644
    assert not list(tmp_path.glob(".*.tmp"))
