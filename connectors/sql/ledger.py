"""The delivery ledger in the target database: how far each subscription has committed.

One row per subscription, written in the same transaction as the rows it describes, so that
after a crash the ledger and the data agree. `rows` counts the rows the ledger's run has
committed into this target so far (it restarts at each new run_id).

The ledger lives in the consumer's database, so it holds nothing a subscription might not be
approved to see: run ids, counts, times and (for a correction) the dispute id. Versions before
this one kept a `cursor` column (watermark and key values); `scrub_sql` empties it in a table
they created, and the column is no longer created.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pyarrow as pa

from ..base import LedgerEntry
from .dialects import Dialect

LEDGER_TABLE = "_govex_delivery_ledger"
_COLUMNS = ("subscription", "resource", "run_id", "rows", "extra", "updated_at")
LEGACY_CURSOR = "cursor"  # raw watermark and key values, written by earlier versions


def create_sql(d: Dialect) -> str:
    key, text = d.ddl_type(pa.string(), True), d.ddl_type(pa.string(), False)
    q = d.quote
    return (
        f"CREATE TABLE IF NOT EXISTS {d.quote_table(LEDGER_TABLE)} ("
        f"{q('subscription')} {key} NOT NULL PRIMARY KEY, "
        f"{q('resource')} {key} NOT NULL, {q('run_id')} {key} NOT NULL, "
        f"{q('rows')} {d.ddl_type(pa.int64(), False)} NOT NULL, "
        f"{q('extra')} {text}, "
        f"{q('updated_at')} {d.ddl_type(pa.timestamp('us', tz='UTC'), False)} NOT NULL)"
        f"{d.table_suffix}"
    )


def scrub_sql(d: Dialect) -> str:
    """Empty the cursor column an earlier version's ledger table has (record values)."""
    column = d.quote(LEGACY_CURSOR)
    return (
        f"UPDATE {d.quote_table(LEDGER_TABLE)} SET {column} = NULL WHERE {column} IS NOT NULL"
    )


def load(d: Dialect, cur: Any, subscription: str) -> LedgerEntry | None:
    cols = ", ".join(d.quote(c) for c in _COLUMNS[:5])
    cur.execute(
        f"SELECT {cols} FROM {d.quote_table(LEDGER_TABLE)} "
        f"WHERE {d.quote('subscription')} = {d.placeholder}",
        (subscription,),
    )
    row = cur.fetchone()
    if row is None:
        return None
    extra = json.loads(row[4]) if row[4] else {}
    return LedgerEntry(row[0], row[1], row[2], int(row[3]), extra)


def save(d: Dialect, cur: Any, entry: LedgerEntry, rows: int, *, accumulate: bool = True) -> None:
    """Upsert the entry. With `accumulate`, `rows` adds to the count already committed by the
    same run (a run writes many batches); otherwise the count is `entry.rows + rows`."""
    previous = load(d, cur, entry.subscription) if accumulate else None
    total = entry.rows + rows
    if previous is not None and previous.run_id == entry.run_id:
        total = previous.rows + rows
    values = (
        entry.subscription, entry.resource, entry.run_id,
        total,
        json.dumps(entry.extra, ensure_ascii=False, default=str) if entry.extra else None,
        d.datetime_param(dt.datetime.now(dt.UTC)),
    )
    cur.execute(d.upsert_sql(LEDGER_TABLE, _COLUMNS, ("subscription",)), values)
