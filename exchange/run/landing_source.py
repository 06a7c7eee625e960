"""The landing table of a Kafka-fed resource as the source of its exchange run.

`govex ingest` lands every accepted message as one row of `landing_<code>` with an increasing
`_govex_seq`; the exchange run then reads that table like any incremental source, with the
landing sequence as its watermark (`{"columns": ["_govex_seq"], "values": [n]}`), so each run
delivers exactly what landed since the last successful one.

Why the latest row per key: a stream carries every version of a record in order, but a
subscriber wants the record's state. Among the rows of one run's range, only the one with the
highest sequence per `_govex_key` counts; it is an upsert (its data, typed back from the landed
text) or a delete (its key, which upsert targets then remove). The range is fixed when the read
starts (`upto`), so rows landing while the run reads wait for the next run instead of racing it.

A backfill reads from the beginning and splits by sequence (`LandingBatch.split`): the latest
row of a key whose sequence is after the watermark is exactly that key's latest row in the
incremental range, so subscriptions already current receive what an incremental read sends.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as _pc
import sqlalchemy as sa

import contracts
from exchange.ingest import landing_table, landing_table_name
from exchange.run import bookkeeping
from govex.errors import FatalError

pc: Any = _pc

SEQ_COLUMN = "_govex_seq"


@dataclass(frozen=True)
class LandingBatch:
    """One bounded slice of a run's range: upserts in contract columns, deletes as keys, and
    the landing sequence of each (`upsert_seq`, `delete_seq`, in row order)."""

    upserts: pa.Table
    deletes: pa.Table
    last_seq: int
    upsert_seq: pa.Array[Any]
    delete_seq: pa.Array[Any]

    def split(self, after: int) -> tuple[LandingBatch, LandingBatch]:
        """(rows landed at or before sequence `after`, rows landed after it)."""
        up, down = pc.greater(self.upsert_seq, after), pc.greater(self.delete_seq, after)
        up_before, down_before = pc.invert(up), pc.invert(down)
        return (
            LandingBatch(self.upserts.filter(up_before), self.deletes.filter(down_before),
                         self.last_seq, self.upsert_seq.filter(up_before),
                         self.delete_seq.filter(down_before)),
            LandingBatch(self.upserts.filter(up), self.deletes.filter(down), self.last_seq,
                         self.upsert_seq.filter(up), self.delete_seq.filter(down)),
        )


def seq_cursor(seq: int) -> dict[str, Any]:
    """The run cursor (same JSON shape as a SQL source's) after landing sequence `seq`."""
    return {"columns": [SEQ_COLUMN], "values": [seq]}


def seq_after(cursor: dict[str, Any] | None) -> int:
    """The landing sequence a stored cursor points after (0: from the beginning)."""
    if not cursor:
        return 0
    if list(cursor.get("columns", [])) != [SEQ_COLUMN]:
        msg = (f"the stored watermark {cursor} is not a landing sequence; run the resource "
               "once with --full to start over from its landing table")
        raise FatalError(msg)
    return int(cursor["values"][0])


def landing_schema(contract: contracts.Contract) -> pa.Schema:
    """The contract's Arrow types as read back from landed text: dates and date-times stay
    text (the gate judges them as text, as for any untyped source); `conform` types them."""
    fields = []
    for f in contracts.arrow_schema(contract):
        kind = f.type
        if pa.types.is_date(kind) or pa.types.is_timestamp(kind) or pa.types.is_time(kind):
            kind = pa.string()
        fields.append(pa.field(f.name, kind, nullable=True))
    return pa.schema(fields)


def _typed(values: list[str | None], kind: pa.DataType, name: str) -> pa.Array[Any]:
    """Landed text (JSON spelling for numbers and booleans) as Arrow `kind`, vectorised; a
    column with a value the cast refuses (an integer spelled `1.0` or `1e3`, as JSON allows)
    is read value by value instead, exactly, never through a float column."""
    text = pa.array(values, pa.string())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return text
    typed: pa.Array[Any]
    try:
        typed = pc.cast(text, kind)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        try:
            typed = pa.array([None if v is None else _json_value(v, kind) for v in values], kind)
        except (ValueError, TypeError, OverflowError, pa.ArrowException):
            msg = f"landed column '{name}' cannot be read back as {kind}"
            raise FatalError(msg) from None
    return typed


def _json_value(text: str, kind: pa.DataType) -> Any:
    value = json.loads(text)
    if pa.types.is_integer(kind) and isinstance(value, float):
        if not value.is_integer():
            msg = f"{text} is not an integer"
            raise ValueError(msg)
        return int(value)
    return value


def _latest_rows(
    table: sa.Table, key: tuple[str, ...], after: int, upto: int
) -> sa.Select[Any]:
    """Rows not superseded by a newer row of the same record within the range. The record is
    its key columns (`_govex_key` alone, joined by ',' and cut at 500 characters, could
    confuse two); matching `_govex_key` as well lets the database use its index."""
    newer = table.alias("newer")
    superseded = sa.exists(
        sa.select(sa.literal(1)).where(
            newer.c._govex_key == table.c._govex_key,
            *(newer.c[k] == table.c[k] for k in key),
            newer.c._govex_seq > table.c._govex_seq,
            newer.c._govex_seq <= upto,
        )
    )
    return sa.select(table).where(
        table.c._govex_seq > after, table.c._govex_seq <= upto, ~superseded
    )


def _highest_committed(store: sa.Engine, table: sa.Table) -> int | None:
    """The highest landing sequence below which every row is committed.

    On PostgreSQL a sequence value is taken when a row is inserted but seen only when its
    transaction commits, so with two ingest workers seq 200 may be visible while seq 150 is
    still in flight; a run reading up to 200 would move the watermark past 150 for good. A
    SHARE lock waits for every transaction writing the table to end (and new writers take
    their sequence values after it), so the maximum read under it has no gaps below it.
    SQLite writes one transaction at a time: nothing to wait for."""
    with store.begin() as conn:
        if conn.dialect.name == "postgresql":
            name = conn.dialect.identifier_preparer.quote(table.name)
            conn.execute(sa.text(f"LOCK TABLE {name} IN SHARE MODE"))
        highest = conn.execute(sa.select(sa.func.max(table.c._govex_seq))).scalar()
    return None if highest is None else int(highest)


def read_landing(
    store: sa.Engine,
    code: str,
    contract: contracts.Contract,
    key: tuple[str, ...],
    *,
    after: int,
    batch_rows: int,
) -> Iterator[LandingBatch]:
    """The latest landed row per key with a sequence after `after`, in sequence order, in
    batches of at most `batch_rows` rows. Nothing when nothing has landed yet."""
    if not sa.inspect(store).has_table(landing_table(code, contract).name):
        return
    table = landing_table(code, contract)
    schema = landing_schema(contract)
    upto = _highest_committed(store, table)
    if upto is None or upto <= after:
        return
    with store.connect() as conn:
        last = after
        while True:
            rows = conn.execute(
                _latest_rows(table, key, after, upto)
                .where(table.c._govex_seq > last)
                .order_by(table.c._govex_seq)
                .limit(batch_rows)
            ).mappings().all()
            if not rows:
                return
            last = int(rows[-1][SEQ_COLUMN])
            upserts = [r for r in rows if r["_govex_op"] == "upsert"]
            deletes = [r for r in rows if r["_govex_op"] == "delete"]
            yield LandingBatch(
                upserts=_columns(upserts, schema),
                deletes=_columns(deletes, pa.schema([schema.field(k) for k in key])),
                last_seq=last,
                upsert_seq=pa.array([int(r[SEQ_COLUMN]) for r in upserts], pa.int64()),
                delete_seq=pa.array([int(r[SEQ_COLUMN]) for r in deletes], pa.int64()),
            )


def _columns(rows: list[Any], schema: pa.Schema) -> pa.Table:
    return pa.table(
        [_typed([r[f.name] for r in rows], f.type, f.name) for f in schema],
        schema=schema,
    )


def landing_progress(store: sa.Engine, code: str) -> tuple[int, int]:
    """(highest landed sequence, highest sequence delivered by a successful run) of a
    Kafka-fed resource; (0, 0) before anything landed. The Airflow landing watcher fires when
    the first passes the second."""
    name = landing_table_name(code)
    if not sa.inspect(store).has_table(name):
        return 0, 0
    seq = sa.table(name, sa.column(SEQ_COLUMN)).c[SEQ_COLUMN]
    with store.connect() as conn:
        landed = conn.execute(sa.select(sa.func.max(seq))).scalar()
        cursor = bookkeeping.read_watermark(conn, code)
    try:
        delivered = seq_after(cursor)
    except FatalError:
        delivered = 0  # not a landing sequence (declared otherwise before): all is new
    return int(landed or 0), delivered
