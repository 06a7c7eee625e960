"""Quality results over time and the quarantine: the quality package's own tables.

- `quality_check_results`: per run, per check and column: rows evaluated, failed, the rate.
- `quality_quarantine`: one row per failing record (resource + key), holding every failed
  check, the record's values (so the provider can fix it at the source), the run of its latest
  failure, and when it was first and last seen. A record leaves quarantine when a later batch
  carries it and it passes: that is how a fix at the source clears it.

All writes take the caller's connection, so the engine records a batch's verdicts in the same
transaction as the rest of the batch.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as _pc
import sqlalchemy as sa

from quality.docs import mask_value
from quality.gate import GateResult
from quality.report import QualityReport, _plain

pc: Any = _pc  # pyarrow-stubs cannot follow kernels generic over types

__all__ = [
    "check_results",
    "metadata",
    "quarantine",
    "quarantine_table",
    "record_check_totals",
    "record_gate",
    "report",
]

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)

check_results = sa.Table(
    "quality_check_results",
    metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("resource", sa.String(64), nullable=False, index=True),
    sa.Column("check", sa.String(100), primary_key=True),
    sa.Column("column", sa.String(200), primary_key=True),  # '' for a table-level check
    sa.Column("evaluated", sa.BigInteger, nullable=False),
    sa.Column("failed", sa.BigInteger, nullable=False),
    sa.Column("failure_rate", sa.Float, nullable=False),
    sa.Column("recorded_at", TS, nullable=False),
)

quarantine_table = sa.Table(
    "quality_quarantine",
    metadata,
    sa.Column("resource", sa.String(64), primary_key=True),
    sa.Column("record_key", sa.String(500), primary_key=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("failed_checks", sa.JSON, nullable=False),
    sa.Column("record", sa.JSON, nullable=False),
    sa.Column("first_seen", TS, nullable=False),
    sa.Column("last_seen", TS, nullable=False),
)

# SQLite and PostgreSQL cap bound parameters per statement; key lists go in slices.
_CHUNK = 500


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_array(batch: pa.Table, key_fields: Sequence[str]) -> Any:
    """Record keys, vectorised: key values as text joined by ',' (INTERFACES' KEY form)."""
    parts = [pc.cast(batch.column(k), pa.string()) for k in key_fields]
    if len(parts) == 1:
        return pc.fill_null(parts[0], "None")
    return pc.binary_join_element_wise(*[pc.fill_null(p, "None") for p in parts], ",")


#: Renders the failing values of one column for the quarantine: (column, values) -> text.
Show = Callable[[str, Any], Sequence[str | None]]


def _shown_values(batch: pa.Table, failures: pa.Table, show: Show | None) -> list[str | None]:
    """Per failure row, the offending value as the provider may see it: one `show` call per
    column over that column's failing values (vectorised); None for a table-level check."""
    out: list[str | None] = [None] * failures.num_rows
    if not failures.num_rows:
        return out
    columns = np.asarray(pc.fill_null(failures.column("column"), "").to_pylist(), dtype=object)
    rows = np.asarray(failures.column("row").to_numpy(), dtype=np.int64)
    for name in dict.fromkeys(columns.tolist()):
        if not name or name not in batch.column_names:
            continue
        at = np.flatnonzero(columns == name)
        take: Any = pa.array(rows[at], pa.int64())
        values = batch.column(name).take(take)
        shown = (show(name, values) if show is not None
                 else [mask_value(v) for v in values.to_pylist()])
        for index, text in zip(at.tolist(), shown, strict=True):
            out[index] = text
    return out


def _chunks(items: Sequence[str]) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


def record_gate(
    conn: sa.Connection,
    *,
    run_id: str,
    resource: str,
    key_fields: Sequence[str],
    batch: pa.Table,
    result: GateResult,
    show: Show | None = None,
) -> int:
    """Quarantine the batch's failing records and release the ones that passed.

    Failing records are upserted (first_seen kept, last_seen/run/checks/record replaced);
    records of this batch that passed are deleted from quarantine. Each failed check is
    `{check, column, detail, value}`: `value` is the offending value as `show(column, values)`
    renders it (masked by the column's PII category; without `show`, by shape, as Data Docs
    shows it). Returns the number of records quarantined by this batch.
    """
    now = _now()
    passed = np.asarray(result.passed, dtype=np.bool_)
    key_array = _key_array(batch, key_fields)
    # Release what passed: only keys already in quarantine matter, and the backlog is small
    # next to a batch, so intersect in Arrow instead of deleting every passing key.
    held = [
        k for (k,) in conn.execute(
            sa.select(quarantine_table.c.record_key).where(
                quarantine_table.c.resource == resource
            )
        )
    ]
    if held:
        released_mask = pc.and_(pc.is_in(key_array, value_set=pa.array(held, pa.string())),
                                pa.array(passed))
        released = sorted(set(key_array.filter(released_mask).to_pylist()))
        for part in _chunks(released):
            conn.execute(
                sa.delete(quarantine_table).where(
                    quarantine_table.c.resource == resource,
                    quarantine_table.c.record_key.in_(part),
                )
            )
    failing = np.flatnonzero(~passed)
    if not len(failing):
        return 0
    failing_keys = [str(k) for k in key_array.take(pa.array(failing)).to_pylist()]
    checks: dict[int, list[dict[str, str | None]]] = {}
    failures = result.failures
    details = (failures.column("detail").to_pylist() if "detail" in failures.column_names
               else [None] * failures.num_rows)
    values = _shown_values(batch, failures, show)
    row: Any
    for row, check, column, detail, value in zip(
        failures.column("row").to_pylist(),
        failures.column("check").to_pylist(),
        failures.column("column").to_pylist(),
        details,
        values,
        strict=True,
    ):
        item = {"check": str(check), "column": str(column or ""), "detail": detail,
                "value": value}
        listed = checks.setdefault(int(row), [])
        if item not in listed:
            listed.append(item)
    take: Any = pa.array(failing, pa.int64())
    records = batch.take(take).to_pylist()
    by_key: dict[str, dict[str, Any]] = {}
    for row, key, record in zip(failing.tolist(), failing_keys, records, strict=True):
        by_key[key] = {
            "failed_checks": checks.get(row, []),
            "record": json.loads(json.dumps({k: _plain(v) for k, v in record.items()})),
        }
    existing: dict[str, dt.datetime] = {}
    ordered = sorted(by_key)
    for part in _chunks(ordered):
        for key, first in conn.execute(
            sa.select(quarantine_table.c.record_key, quarantine_table.c.first_seen).where(
                quarantine_table.c.resource == resource,
                quarantine_table.c.record_key.in_(part),
            )
        ):
            existing[key] = first
    for part in _chunks(ordered):
        conn.execute(
            sa.delete(quarantine_table).where(
                quarantine_table.c.resource == resource,
                quarantine_table.c.record_key.in_(part),
            )
        )
    conn.execute(
        sa.insert(quarantine_table),
        [
            {
                "resource": resource, "record_key": key, "run_id": run_id,
                "failed_checks": by_key[key]["failed_checks"], "record": by_key[key]["record"],
                "first_seen": existing.get(key, now), "last_seen": now,
            }
            for key in ordered
        ],
    )
    return len(ordered)


def record_check_totals(
    conn: sa.Connection,
    run_id: str,
    resource: str,
    totals: QualityReport | Iterable[Mapping[str, Any]],
) -> None:
    """Store a run's per check totals (a merged `QualityReport`, or its `totals()` list);
    recording a run again replaces its rows."""
    items = totals.totals() if isinstance(totals, QualityReport) else list(totals)
    now = _now()
    conn.execute(sa.delete(check_results).where(check_results.c.run_id == run_id))
    if not items:
        return
    conn.execute(
        sa.insert(check_results),
        [
            {
                "run_id": run_id, "resource": resource, "check": str(t["check"]),
                "column": str(t.get("column") or ""), "evaluated": int(t["evaluated"]),
                "failed": int(t["failed"]),
                "failure_rate": _rate(t),
                "recorded_at": now,
            }
            for t in items
        ],
    )


def _rate(total: Mapping[str, Any]) -> float:
    given = total.get("failure_rate")
    if given is not None:
        return float(given)
    evaluated = int(total["evaluated"])
    return int(total["failed"]) / evaluated if evaluated else 0.0


def _iso(value: Any) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # SQLite hands back naive values; they were stored as UTC
            value = value.replace(tzinfo=dt.UTC)
        return str(value.isoformat())
    return str(value)


def quarantine(conn: sa.Connection, resource: str) -> list[dict[str, Any]]:
    """`govex quality quarantine CODE --json` items: [{key, failed_checks, run_id, first_seen}],
    ordered by key."""
    return _quarantined(conn, resource, full=False)


def quarantined_records(conn: sa.Connection, resource: str) -> list[dict[str, Any]]:
    """Like `quarantine`, plus the record's values and last_seen (for the provider's page)."""
    return _quarantined(conn, resource, full=True)


def _quarantined(conn: sa.Connection, resource: str, *, full: bool) -> list[dict[str, Any]]:
    q = quarantine_table
    columns = [q.c.record_key, q.c.failed_checks, q.c.run_id, q.c.first_seen]
    if full:
        columns += [q.c.last_seen, q.c.record]
    rows = conn.execute(
        sa.select(*columns).where(q.c.resource == resource).order_by(q.c.record_key)
    ).mappings()
    items = []
    for r in rows:
        item = {
            "key": r["record_key"],
            "failed_checks": [_failed_check(c) for c in r["failed_checks"]],
            "run_id": r["run_id"],
            "first_seen": _iso(r["first_seen"]),
        }
        if full:
            item["last_seen"] = _iso(r["last_seen"])
            item["record"] = dict(r["record"])
        items.append(item)
    return items


_CHECK_KEYS = frozenset({"check", "column", "detail", "value"})


def _failed_check(item: Mapping[str, Any]) -> dict[str, Any]:
    """One failed check as the quarantine lists it: check, column, detail and value always
    present (null for a record quarantined before details were kept)."""
    return {"check": item.get("check"), "column": item.get("column"),
            "detail": item.get("detail"), "value": item.get("value"),
            **{k: v for k, v in item.items() if k not in _CHECK_KEYS}}


def report(
    conn: sa.Connection, resource: str | None = None, *, run_id: str | None = None
) -> list[dict[str, Any]]:
    """Quality over time: one item per run (oldest first) with its checks; of one run only
    with `run_id` (a run's own lineage event, which must not read the whole history).

    `[{"run_id", "resource", "recorded_at", "evaluated", "failed_checks": n,
       "checks": [{"check", "column", "evaluated", "failed", "failure_rate"}]}]` where the
    run's `evaluated` is its rows (the largest per check count).
    """
    query = sa.select(check_results).order_by(
        check_results.c.recorded_at, check_results.c.run_id, check_results.c.check,
        check_results.c.column,
    )
    if resource is not None:
        query = query.where(check_results.c.resource == resource)
    if run_id is not None:
        query = query.where(check_results.c.run_id == run_id)
    runs: dict[str, dict[str, Any]] = {}
    for r in conn.execute(query).mappings():
        run = runs.setdefault(
            r["run_id"],
            {"run_id": r["run_id"], "resource": r["resource"],
             "recorded_at": _iso(r["recorded_at"]), "evaluated": 0, "failed_checks": 0,
             "checks": []},
        )
        run["evaluated"] = max(run["evaluated"], int(r["evaluated"]))
        run["failed_checks"] += 1 if r["failed"] else 0
        run["checks"].append(
            {"check": r["check"], "column": r["column"], "evaluated": int(r["evaluated"]),
             "failed": int(r["failed"]), "failure_rate": float(r["failure_rate"])}
        )
    return list(runs.values())
