"""A text value no target can hold (U+0000, bytes that are not UTF-8) is a quality failure of
its record: quarantined naming the check and the column, while the rest of the batch reaches
every target, PostgreSQL included, and the run succeeds under max_error_rate."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import sqlalchemy as sa
import yaml

import catalog
from exchange.cli import main
from exchange.run.encoding import INVALID_UTF8, NUL_CHARACTER, check_encoding, storable
from exchange.store import create_store_engine, upgrade
from quality import FAILURE_SCHEMA, GateResult
from quality.tables import quarantined_records
from tests.exchange.conftest import create_source, make_rows, write_workspace

BAD = b"138\xff\xfe0001"  # not UTF-8


# ---- the check itself ---------------------------------------------------------------------------


def test_check_finds_nul_and_undecodable_values_and_spells_them_out() -> None:
    batch = pa.table({
        "id": pa.array([1, 2, 3, 4, 5]),
        "name": pa.array(["ok", "a\x00b", None, "名", "c"]),
        "phone": pa.array([b"1", BAD, None, "名".encode(), b"\xe9\x00"]),
    })
    found = check_encoding(batch)
    assert found.passed.tolist() == [True, False, True, True, False]
    failures = {(r["row"], r["check"], r["column"]) for r in found.failures.to_pylist()}
    assert failures == {
        (1, NUL_CHARACTER, "name"), (1, INVALID_UTF8, "phone"),
        (4, INVALID_UTF8, "phone"), (4, NUL_CHARACTER, "phone"),
    }
    messages = {r["check"]: r["message"] for r in found.failures.to_pylist()}
    assert "NUL character (U+0000)" in messages[NUL_CHARACTER]
    assert "not UTF-8" in messages[INVALID_UTF8]
    # What the gate and the quarantine see: text, the offending parts escaped, nothing else.
    assert found.batch.column("name").type == pa.string()
    assert found.batch.column("phone").type == pa.string()
    assert found.batch.column("name").to_pylist() == ["ok", "a\\u0000b", None, "名", "c"]
    assert found.batch.column("phone").to_pylist() == [
        "1", "138\\xff\\xfe0001", None, "名", "\\xe9\\u0000"]
    assert found.batch.column("id").to_pylist() == [1, 2, 3, 4, 5]
    counts = {(c.check, c.column): c.failed for c in found.checks}
    assert counts == {(INVALID_UTF8, "name"): 0, (NUL_CHARACTER, "name"): 1,
                      (INVALID_UTF8, "phone"): 2, (NUL_CHARACTER, "phone"): 1}


def test_check_leaves_clean_text_as_it_is() -> None:
    batch = pa.table({"id": [1, 2], "name": ["a", "名"], "raw": pa.array([b"x", b"y"])})
    found = check_encoding(batch)
    assert found.passed.all()
    assert found.failures.num_rows == 0
    assert found.batch.column("name").to_pylist() == ["a", "名"]
    assert found.batch.column("raw").to_pylist() == ["x", "y"]


def test_check_finds_undecodable_text_in_a_string_array() -> None:
    """pyarrow's JSON reader makes string arrays that are not UTF-8: they are not trusted."""
    forged = pa.Array.from_buffers(pa.string(), 3, [None, pa.py_buffer(
        np.array([0, 2, 4, 6], dtype=np.int32).tobytes()), pa.py_buffer(b"ok\xff\xfeno")])
    found = check_encoding(pa.table({"v": forged}))
    assert found.passed.tolist() == [True, False, True]
    assert found.batch.column("v").to_pylist() == ["ok", "\\xff\\xfe", "no"]


def test_many_bad_values_are_each_found() -> None:
    values = [b"x\xff" if i % 7 == 0 else b"ok" for i in range(10_000)]
    found = check_encoding(pa.table({"v": pa.array(values)}))
    assert np.flatnonzero(~found.passed).tolist() == list(range(0, 10_000, 7))


def test_judged_adds_the_failures_to_the_gates_result() -> None:
    found = check_encoding(pa.table({"v": pa.array([b"ok", BAD, b"fine"])}))
    gate = GateResult(np.array([True, True, False]), pa.table({
        "row": pa.array([2], pa.int64()), "check": ["pattern"], "column": ["v"],
        "message": ["no"], "detail": ["no"],
    }, schema=FAILURE_SCHEMA))
    result = found.judged(gate)
    assert result.passed.tolist() == [True, False, False]
    assert [(r["row"], r["check"]) for r in result.failures.to_pylist()] == [
        (1, INVALID_UTF8), (2, "pattern")]


def test_storable_spells_out_what_no_store_holds() -> None:
    assert storable("plain 名") == "plain 名"
    assert storable("a\x00b \ud800") == "a\\u0000b \\ud800"


# ---- whole runs on real databases ----------------------------------------------------------------

N = 200
NUL_KEY = f"{110105199001010000 + 3:018d}"
BAD_KEY = f"{110105199001010000 + 7:018d}"


def _subscriptions() -> list[dict[str, Any]]:
    return [
        {"id": "SUB-GSC-001", "consumer": "gsc",
         "fields": ["id_no", "name", "phone", "birth_date", "score"],
         "masking": {}, "mode": "upsert",
         "target": {"connection": "gsc_pg", "table": "gsc_residents"}},
        {"id": "SUB-HPF-001", "consumer": "hpf", "fields": ["id_no", "name", "phone"],
         "masking": {}, "mode": "append",
         "target": {"connection": "hpf_maria", "table": "hpf_residents"}},
        {"id": "SUB-GSC-002", "consumer": "gsc", "fields": ["id_no", "name", "phone"],
         "masking": {}, "mode": "snapshot",
         "target": {"connection": "gsc_lite", "table": "gsc_snapshot"}},
    ]


def _rows(url: str, table: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {table}")).mappings()]
    finally:
        engine.dispose()


def _workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: dict[str, str],
               store_url: str, targets: dict[str, str]) -> None:
    """The scenario of tests.exchange.conftest with its source connection `source`."""
    monkeypatch.setenv("GOVEX_STAGING_DIR", str(tmp_path / "staging"))
    monkeypatch.setenv("GOVEX_DATA_DOCS_DIR", str(tmp_path / "data_docs"))
    root = tmp_path / "ws"
    write_workspace(root, "sqlite:///replaced.db", targets, _subscriptions())
    (root / "connections.yaml").write_text(yaml.safe_dump({"connections": {
        "psb_db": source, **{name: {"url": url} for name, url in targets.items()},
    }}))
    engine = create_store_engine(store_url)
    upgrade(engine)
    catalog.apply_workspace(engine, root)
    engine.dispose()
    monkeypatch.setenv("GOVEX_DB_URL", store_url)


def _quarantined(store_url: str) -> dict[str, dict[str, Any]]:
    """The quarantine as the provider's page shows it (with the records' values)."""
    engine = create_store_engine(store_url)
    try:
        with engine.connect() as conn:
            return {item["key"]: item
                    for item in quarantined_records(conn, "PSB-RES-001")}
    finally:
        engine.dispose()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, Any]:
    capsys.readouterr()
    code = main([*argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def _delivered_everything_but(scenario: dict[str, str], kept_out: set[str]) -> None:
    expected = {r["id_no"] for r in make_rows(N)} - kept_out
    for connection, table in (("gsc_pg", "gsc_residents"), ("hpf_maria", "hpf_residents"),
                              ("gsc_lite", "gsc_snapshot")):
        rows = _rows(scenario[connection], table)
        assert sorted(r["id_no"] for r in rows) == sorted(expected), connection


@pytest.fixture
def targets(pg_url: str, mariadb_url: str, tmp_path: Path) -> dict[str, str]:
    return {"gsc_pg": pg_url, "hpf_maria": mariadb_url,
            "gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"}


@pytest.mark.integration
def test_sqlite_source_nul_and_undecodable_records_are_quarantined_the_rest_delivered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    targets: dict[str, str], pg_url: str,
) -> None:
    """The store is PostgreSQL too: the quarantine must hold what PostgreSQL text cannot."""
    source = tmp_path / "psb.db"
    create_source(f"sqlite:///{source}", make_rows(N))
    conn = sqlite3.connect(source)
    conn.execute("UPDATE residents SET name = ? WHERE id_no = ?", ("王\x00五", NUL_KEY))
    conn.execute("UPDATE residents SET phone = CAST(? AS TEXT) WHERE id_no = ?", (BAD, BAD_KEY))
    conn.commit()
    conn.close()
    _workspace(tmp_path, monkeypatch, {"url": f"sqlite:///{source}"}, pg_url, targets)

    code, summary = _run(capsys, "run", "PSB-RES-001")
    assert (code, summary["status"]) == (0, "success"), summary
    assert (summary["read"], summary["passed"], summary["quarantined"]) == (N, N - 2, 2)
    assert [d["delivered"] for d in summary["deliveries"]] == [N - 2] * 3
    assert "nul_character on name (1)" in summary["message"]
    assert "invalid_utf8 on phone (1)" in summary["message"]
    _delivered_everything_but(targets, {NUL_KEY, BAD_KEY})

    held = _quarantined(pg_url)
    assert set(held) == {NUL_KEY, BAD_KEY}
    assert held[NUL_KEY]["failed_checks"] == [{"check": "nul_character", "column": "name",
                                                "detail": "NUL character", "value": "王*******"}]
    assert held[BAD_KEY]["failed_checks"] == [{
        "check": "invalid_utf8", "column": "phone", "detail": "bytes that are not UTF-8",
        "value": "***********0001"}]
    # The provider sees exactly what to fix, spelled out.
    assert held[NUL_KEY]["record"]["name"] == "王\\u0000五"
    assert held[BAD_KEY]["record"]["phone"] == "138\\xff\\xfe0001"

    code, report = _run(capsys, "quality", "report", "PSB-RES-001")
    checks = {(c["check"], c["column"]): c["failed"] for c in report[-1]["checks"]}
    assert checks[("nul_character", "name")] == 1
    assert checks[("invalid_utf8", "phone")] == 1
    assert checks[("nul_character", "phone")] == 0

    # Fixed at the source: the next run delivers them and releases them from quarantine.
    conn = sqlite3.connect(source)
    conn.execute("UPDATE residents SET name = '王五', updated_at = '2026-11-30 00:00:00.000000' "
                 "WHERE id_no = ?", (NUL_KEY,))
    conn.execute("UPDATE residents SET phone = '13800000007', "
                 "updated_at = '2026-11-30 00:00:00.000000' WHERE id_no = ?", (BAD_KEY,))
    conn.commit()
    conn.close()
    code, summary = _run(capsys, "run", "PSB-RES-001")
    assert (code, summary["read"], summary["quarantined"]) == (0, 2, 0), summary
    pg = {r["id_no"]: r for r in _rows(targets["gsc_pg"], "gsc_residents")}
    assert (pg[NUL_KEY]["name"], pg[BAD_KEY]["phone"]) == ("王五", "13800000007")
    assert _quarantined(pg_url) == {}


@pytest.mark.integration
def test_hostile_key_is_quarantined_on_a_postgresql_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    targets: dict[str, str], pg_url: str,
) -> None:
    """The record key itself holds NUL or undecodable bytes: the quarantine's key column is
    PostgreSQL text, and the gate must still record the failure instead of crashing."""
    source = tmp_path / "psb.db"
    create_source(f"sqlite:///{source}", make_rows(N))
    conn = sqlite3.connect(source)
    conn.execute("UPDATE residents SET id_no = ? WHERE id_no = ?", ("11010\x00", NUL_KEY))
    conn.execute("UPDATE residents SET id_no = CAST(? AS TEXT) WHERE id_no = ?", (BAD, BAD_KEY))
    conn.commit()
    conn.close()
    _workspace(tmp_path, monkeypatch, {"url": f"sqlite:///{source}"}, pg_url, targets)

    code, summary = _run(capsys, "run", "PSB-RES-001")
    assert (code, summary["status"], summary["quarantined"]) == (0, "success", 2), summary
    _delivered_everything_but(targets, {NUL_KEY, BAD_KEY})
    keys = {key: {c["check"] for c in item["failed_checks"]}
            for key, item in _quarantined(pg_url).items()}
    assert keys["11010\\u0000"] >= {"nul_character"}
    assert keys["138\\xff\\xfe0001"] >= {"invalid_utf8"}


@pytest.mark.integration
def test_mariadb_source_nul_reaches_no_postgresql_target(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    pg_url: str, mariadb_url: str,
) -> None:
    """MariaDB keeps U+0000 in VARCHAR; PostgreSQL refuses it in the whole COPY."""
    create_source(mariadb_url, make_rows(N))
    engine = sa.create_engine(mariadb_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE residents SET name = :v WHERE id_no = :k"),
                     {"v": "王\x00五", "k": NUL_KEY})
    engine.dispose()
    targets = {"gsc_pg": pg_url, "hpf_maria": f"sqlite:///{tmp_path / 'hpf.db'}",
               "gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"}
    _workspace(tmp_path, monkeypatch, {"url": mariadb_url},
               f"sqlite:///{tmp_path / 'store.db'}", targets)
    code, summary = _run(capsys, "run", "PSB-RES-001")
    assert (code, summary["status"], summary["quarantined"]) == (0, "success", 1), summary
    _delivered_everything_but(targets, {NUL_KEY})


@pytest.mark.integration
@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_file_source_with_undecodable_bytes_quarantines_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    pg_url: str, fmt: str,
) -> None:
    rows = make_rows(N)
    lines: list[bytes] = []
    for row in rows:
        row = {**row, "birth_date": row["birth_date"].isoformat(),
               "updated_at": row["updated_at"].isoformat()}
        if fmt == "jsonl":
            # Without birth_date: pyarrow types a foreign JSONL file itself and reads an ISO
            # date as a timestamp, which the contract's `format: date` refuses.
            row.pop("birth_date")
            line = json.dumps(row, ensure_ascii=False).encode()
        else:
            line = ",".join(str(row[k]) for k in row).encode()
        if row["id_no"] == BAD_KEY:
            line = line.replace(row["phone"].encode(), BAD)
        if row["id_no"] == NUL_KEY:
            line = line.replace(row["name"].encode(),
                                b"a\\u0000b" if fmt == "jsonl" else b"a\x00b")
        lines.append(line)
    files = tmp_path / "files"
    files.mkdir()
    header = [",".join(rows[0]).encode()] if fmt == "csv" else []
    (files / f"residents.{fmt}").write_bytes(b"\n".join(header + lines) + b"\n")
    targets = {"gsc_pg": pg_url, "hpf_maria": f"sqlite:///{tmp_path / 'hpf.db'}",
               "gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"}
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    _workspace(tmp_path, monkeypatch, {"path": str(files), "format": fmt}, store_url, targets)

    code, summary = _run(capsys, "run", "PSB-RES-001")
    assert (code, summary["status"], summary["quarantined"]) == (0, "success", 2), summary
    _delivered_everything_but(targets, {NUL_KEY, BAD_KEY})
    checks = {key: item["failed_checks"] for key, item in _quarantined(store_url).items()}
    assert [(c["check"], c["column"]) for c in checks[BAD_KEY]] == [("invalid_utf8", "phone")]
    assert [(c["check"], c["column"]) for c in checks[NUL_KEY]] == [("nul_character", "name")]




@pytest.mark.integration
def test_a_failure_quoting_a_nul_is_recorded_on_a_postgresql_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    pg_url: str,
) -> None:
    """pyarrow quotes the value it cannot parse, NUL and all; the run's failure must still be
    recorded (before, the store refused the message and the run was left running)."""
    source = tmp_path / "psb.db"
    create_source(f"sqlite:///{source}", make_rows(N))
    conn = sqlite3.connect(source)  # a DATE column holding what is no date fails the read
    conn.execute("UPDATE residents SET birth_date = ? WHERE id_no = ?",
                 ("1990\x00-01-01", NUL_KEY))
    conn.commit()
    conn.close()
    targets = {"gsc_pg": pg_url, "hpf_maria": f"sqlite:///{tmp_path / 'hpf.db'}",
               "gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"}
    _workspace(tmp_path, monkeypatch, {"url": f"sqlite:///{source}"}, pg_url, targets)
    code, summary = _run(capsys, "run", "PSB-RES-001")
    assert (code, summary["status"]) == (1, "failed")
    assert summary["message"].startswith("extract failed: SQLite column 'birth_date'")
    assert "'1990\\u0000-01-01'" in summary["message"]


@pytest.mark.integration
def test_a_dispute_correction_holding_a_nul_is_refused_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    targets: dict[str, str], pg_url: str,
) -> None:
    """The correction re-reads the record and passes it through the same check as a run."""
    source = tmp_path / "psb.db"
    create_source(f"sqlite:///{source}", make_rows(N))
    _workspace(tmp_path, monkeypatch, {"url": f"sqlite:///{source}"},
               f"sqlite:///{tmp_path / 'store.db'}", targets)
    assert _run(capsys, "run", "PSB-RES-001")[1]["status"] == "success"
    capsys.readouterr()
    from exchange.store import create_store_engine, tokens

    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with engine.begin() as conn:  # the CLI acts with tokens: the consumer's, the provider's
        consumer = tokens.create_token(conn, "gsc", "consumer")
        monkeypatch.setenv("GOVEX_TOKEN", tokens.create_token(conn, "psb", "provider"))
    engine.dispose()
    assert main(["dispute", "open", "PSB-RES-001", NUL_KEY, "--field", "name",
                 "--claim", "wrong name", "--token", consumer]) == 0
    dispute_id = capsys.readouterr().out.splitlines()[-1]
    assert main(["dispute", "ack", dispute_id]) == 0
    conn = sqlite3.connect(source)
    conn.execute("UPDATE residents SET name = ? WHERE id_no = ?", ("王\x00五", NUL_KEY))
    conn.commit()
    conn.close()
    capsys.readouterr()
    assert main(["dispute", "resolve", dispute_id]) == 1
    assert "nul_character on name" in capsys.readouterr().err
    pg = {r["id_no"]: r for r in _rows(targets["gsc_pg"], "gsc_residents")}
    assert pg[NUL_KEY]["name"] == "居民3"
