"""The delivery ledger in the target database: how far each subscription has committed.

One row per subscription, written in the same transaction as the rows it describes, so that
after a crash the ledger and the data agree. `rows` counts the rows the ledger's run has
committed into this target so far (it restarts at each new run_id).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa

from ..base import Cursor, LedgerEntry
from .dialects import Dialect

LEDGER_TABLE = "_govex_delivery_ledger"
_COLUMNS = ("subscription", "resource", "run_id", "cursor", "rows", "extra", "updated_at")


def create_sql(d: Dialect) -> str:
    key, text = d.ddl_type(pa.string(), True), d.ddl_type(pa.string(), False)
    q = d.quote
    return (
        f"CREATE TABLE IF NOT EXISTS {d.quote_table(LEDGER_TABLE)} ("
        f"{q('subscription')} {key} NOT NULL PRIMARY KEY, "
        f"{q('resource')} {key} NOT NULL, {q('run_id')} {key} NOT NULL, "
        f"{q('cursor')} {text}, {q('rows')} {d.ddl_type(pa.int64(), False)} NOT NULL, "
        f"{q('extra')} {text}, "
        f"{q('updated_at')} {d.ddl_type(pa.timestamp('us', tz='UTC'), False)} NOT NULL)"
        f"{d.table_suffix}"
    )


def load(d: Dialect, cur: Any, subscription: str) -> LedgerEntry | None:
    cols = ", ".join(d.quote(c) for c in _COLUMNS[:6])
    cur.execute(
        f"SELECT {cols} FROM {d.quote_table(LEDGER_TABLE)} "
        f"WHERE {d.quote('subscription')} = {d.placeholder}",
        (subscription,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    cursor = Cursor.from_json(json.loads(row[3])) if row[3] else None
    extra = json.loads(row[5]) if row[5] else {}
    return LedgerEntry(row[0], row[1], row[2], cursor, int(row[4]), extra)


def save(d: Dialect, cur: Any, entry: LedgerEntry, rows: int, *, accumulate: bool = True) -> None:
    """Upsert the entry. With `accumulate`, `rows` adds to the count already committed by the
    same run (a run writes many batches); otherwise the count is `entry.rows + rows`."""
    previous = load(d, cur, entry.subscription) if accumulate else None
    total = entry.rows + rows
    if previous is not None and previous.run_id == entry.run_id:
        total = previous.rows + rows
    values = (
        entry.subscription, entry.resource, entry.run_id,
        json.dumps(entry.cursor.to_json(), ensure_ascii=False) if entry.cursor else None,
        total,
        json.dumps(entry.extra, ensure_ascii=False, default=str) if entry.extra else None,
        d.datetime_param(dt.datetime.now(dt.UTC)),
    )
    cur.execute(d.upsert_sql(LEDGER_TABLE, _COLUMNS, ("subscription",)), values)
