"""The usage report's shapes (JSON, CSV without formula injection) and the bytes measure."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pyarrow as pa

import records

DAY = dt.date(2026, 11, 1)


def row(subscription: str, consumer: str = "gsc", resource: str = "PSB-RES-001",
        **counts: int) -> records.UsageRow:
    values = dict.fromkeys(records.USAGE_COUNTS, 0) | counts
    return records.UsageRow(subscription, DAY, resource, consumer, **values)


def test_csv_cells_that_a_spreadsheet_would_run_get_an_apostrophe() -> None:
    hostile = ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)", "\tTAB", "\rCR"]
    report = records.UsageReport(
        [row(s, records=1) for s in hostile] + [row("SUB-GSC-001", consumer="=cmd", bytes=5)],
        {},
    )
    read = list(csv.reader(io.StringIO(report.to_csv())))
    assert read[0] == ["day", "resource", "consumer", "subscription", *records.USAGE_COUNTS]
    assert [r[3] for r in read[1:-1]] == [f"'{s}" for s in hostile]
    assert read[-1] == ["2026-11-01", "PSB-RES-001", "'=cmd", "SUB-GSC-001", "0", "5", "0",
                        "0", "0"]


def test_json_rows_name_the_day_and_carry_every_count() -> None:
    report = records.UsageReport([row("SUB-GSC-001", records=3, calls=1)],
                                 {"records": 3, "bytes": 0, "calls": 1, "matches": 0,
                                  "not_found": 0})
    assert report.as_json() == {
        "rows": [{"day": "2026-11-01", "resource": "PSB-RES-001", "consumer": "gsc",
                  "subscription": "SUB-GSC-001", "records": 3, "bytes": 0, "calls": 1,
                  "matches": 0, "not_found": 0}],
        "totals": {"records": 3, "bytes": 0, "calls": 1, "matches": 0, "not_found": 0},
    }


def test_delivered_bytes_are_the_values_as_utf8_text_without_govex_columns() -> None:
    batch = pa.table({
        "name": pa.array(["张三", None, "Li"]),  # 6 + 0 + 2
        "birth_date": pa.array([DAY, DAY, None], pa.date32()),  # 10 + 10 + 0
        "score": pa.array([7, 100, None], pa.int64()),  # 1 + 3 + 0
        "_govex_run_id": pa.array(["r" * 36] * 3),  # not the consumer's values
    })
    assert records.delivered_bytes(batch, ["name", "birth_date", "score"]) == 32
    assert records.delivered_bytes(batch.slice(1, 1), ["name", "birth_date", "score"]) == 13
    empty = pa.table({"name": pa.array([None, None], pa.string())})
    assert records.delivered_bytes(empty, ["name"]) == 0

