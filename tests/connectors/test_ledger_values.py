"""The delivery ledger lives in the consumer's database, so it holds no record value: no cursor
column in a ledger govex creates, and the raw cursors an earlier version wrote (watermark and
key values, such as a resident ID the consumer is not approved for) emptied at the next write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

import connectors
from connectors import LedgerEntry, TargetColumn, TargetSpec

SECRET = "11010519900307002X"  # a key value the consumer never received
CURSOR = json.dumps({"columns": ["updated_at", "id_no"],
                     "values": ["2026-11-01T08:00:00+00:00", SECRET]})
SPEC = TargetSpec("stats", (TargetColumn("_govex_key", pa.string(), False),
                            TargetColumn("district", pa.string())), ("_govex_key",))
BATCH = pa.table({"_govex_key": ["a1b2"], "district": ["350102"]})


def _url(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'consumer.db'}"
    return str(request.getfixturevalue(f"{kind}_url"))


KINDS = ["sqlite", pytest.param("pg", marks=pytest.mark.integration),
         pytest.param("mariadb", marks=pytest.mark.integration)]


def _ledger_rows(url: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            result = conn.execute(sa.text("SELECT * FROM _govex_delivery_ledger"))
            return list(result.keys()), [tuple(r) for r in result]
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", KINDS)
def test_a_new_ledger_has_no_cursor_and_no_record_value(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = _url(request, kind, tmp_path)
    sink = connectors.open_sink("url", url)
    sink.write(SPEC, BATCH, "upsert", LedgerEntry("SUB-STATS-001", "PSB-RES-001", "run-1"))
    sink.close()
    columns, rows = _ledger_rows(url)
    assert "cursor" not in columns
    assert len(rows) == 1
    assert SECRET not in repr(rows)


@pytest.mark.parametrize("kind", KINDS)
def test_an_old_ledger_loses_its_raw_cursors_at_the_next_write(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = _url(request, kind, tmp_path)
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # the ledger as an earlier version created and filled it
        conn.execute(sa.text(
            "CREATE TABLE _govex_delivery_ledger (subscription VARCHAR(190) NOT NULL PRIMARY KEY, "
            "resource VARCHAR(190) NOT NULL, run_id VARCHAR(190) NOT NULL, cursor TEXT, "
            "rows BIGINT NOT NULL, extra TEXT, updated_at TIMESTAMP NOT NULL)"
            if kind != "mariadb" else
            "CREATE TABLE _govex_delivery_ledger (subscription VARCHAR(190) NOT NULL PRIMARY KEY, "
            "resource VARCHAR(190) NOT NULL, run_id VARCHAR(190) NOT NULL, `cursor` TEXT, "
            "`rows` BIGINT NOT NULL, extra TEXT, updated_at DATETIME(6) NOT NULL)"
        ))
        for sub in ("SUB-STATS-001", "SUB-OTHER-001"):
            conn.execute(sa.text(
                "INSERT INTO _govex_delivery_ledger VALUES (:s, 'PSB-RES-001', 'old', :c, 5, "
                "NULL, :t)"
            ), {"s": sub, "c": CURSOR, "t": "2026-11-01 08:00:00"})
    engine.dispose()

    sink = connectors.open_sink("url", url)
    sink.write(SPEC, BATCH, "upsert", LedgerEntry("SUB-STATS-001", "PSB-RES-001", "run-2"))
    entry = sink.read_ledger("SUB-STATS-001")
    sink.close()
    assert entry == LedgerEntry("SUB-STATS-001", "PSB-RES-001", "run-2", 1)
    columns, rows = _ledger_rows(url)
    assert len(rows) == 2
    assert SECRET not in repr(rows)  # the other subscription's row too
    assert {r[columns.index("cursor")] for r in rows} == {None}


def test_a_file_ledger_loses_its_raw_cursors_at_the_next_write(tmp_path: Path) -> None:
    sink = connectors.open_sink("path", str(tmp_path), "csv")
    sink.write(SPEC, BATCH, "upsert", LedgerEntry("SUB-STATS-001", "PSB-RES-001", "run-1"))
    sidecar = tmp_path / "stats.govex-ledger.json"
    old = json.loads(sidecar.read_text("utf-8"))
    old["ledger"]["SUB-OTHER-001"] = {"resource": "PSB-RES-001", "run_id": "old", "rows": 5,
                                      "cursor": json.loads(CURSOR), "extra": {}}
    sidecar.write_text(json.dumps(old), "utf-8")
    sink.write(SPEC, BATCH, "upsert", LedgerEntry("SUB-STATS-001", "PSB-RES-001", "run-2"))
    sink.close()
    text = sidecar.read_text("utf-8")
    assert SECRET not in text
    assert "cursor" not in text


@pytest.mark.integration
def test_deliveries_racing_to_create_the_ledger_all_write(pg_url: str) -> None:
    """Sixteen deliveries into one fresh PostgreSQL database at once, each into its own table:
    PostgreSQL's CREATE TABLE IF NOT EXISTS is not atomic between sessions, so some lose the
    race for the shared ledger; every one of them still delivers."""
    import threading

    barrier = threading.Barrier(16)
    failures: list[BaseException] = []

    def deliver(n: int) -> None:
        sink = connectors.open_sink("url", pg_url)
        spec = TargetSpec(f"t{n}", SPEC.columns, SPEC.primary_key)
        try:
            sink._connection()  # connected first, so that all reach the DDL together
            barrier.wait()
            sink.write(spec, BATCH, "upsert", LedgerEntry(f"SUB-{n}", "PSB-RES-001", f"r{n}"))
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)
        finally:
            sink.close()

    threads = [threading.Thread(target=deliver, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    assert len(_ledger_rows(pg_url)[1]) == 16
