"""Record-level provenance: for each delivered record, which value (as a hash) went where, when.

`lineage_provenance` holds one row per delivered record and subscription: the resource, the
record key (key values as text joined by ',', the same form as quarantine and `govex trace`),
the subscription, the run, a 64-bit fingerprint of the values the consumer received and the
delivery time. Values themselves never land here, only their hashes: the store is not a second
copy of every department's data.

The fingerprint (`value_hashes`) is computed for a whole batch without a Python loop: every
column is rendered as text by Arrow (so the hash does not depend on whether a batch happened to
hold a null, which would turn an int64 column into float64 in pandas), the columns are joined
per row with a unit separator (nulls as NUL, so null and "" and "None" differ), and pandas'
SipHash (`hash_array`, a fixed key: stable across processes and machines) hashes each row. The
uint64s become 16 lowercase hex characters with a byte lookup table, also vectorised.

A delete that reached a target (a Kafka `op: delete`, a row marked deleted at its source, a key
reconciliation found gone) is recorded like a delivery, with `DELETED` for its fingerprint: a
word no 16-hex-character hash can equal, so the record's history says when it left the
consumer's copy, and `live_keys` leaves it out.

Writes are bulk: PostgreSQL stores take COPY (CSV written by Arrow), SQLite stores one
`INSERT … SELECT … FROM json_each(?)` per 100k rows, others one executemany of plain tuples,
all in the caller's transaction: the engine writes a batch's provenance in one store
transaction right after the target committed the batch. A crash between the two leaves the
batch delivered without provenance, but then the run did not finish, the watermark stayed, and
the rerun delivers (and records) those records again.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator, Sequence
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as _pc
import sqlalchemy as sa

pc: Any = _pc  # pyarrow-stubs cannot follow kernels that are generic over types

__all__ = [
    "DELETED",
    "HASH_LENGTH",
    "deliveries_of",
    "latest_hashes",
    "live_keys",
    "metadata",
    "provenance",
    "record_keys",
    "record_provenance",
    "split_key",
    "value_hashes",
]

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)
# SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid); elsewhere 64 bits.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
HASH_LENGTH = 16  # hex characters of a 64-bit fingerprint
DELETED = "deleted"  # the fingerprint of a delete (see the module docstring)

provenance = sa.Table(
    "lineage_provenance",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("resource", sa.String(64), nullable=False),
    sa.Column("record_key", sa.String(500), nullable=False),
    sa.Column("subscription", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("value_hash", sa.String(HASH_LENGTH), nullable=False),
    sa.Column("delivered_at", TS, nullable=False),
    # The one query that must stay fast on hundreds of millions of rows: a record's history.
    sa.Index("ix_lineage_provenance_record", "resource", "record_key"),
)

_SEPARATOR = "\x1f"  # ASCII unit separator between a row's fields
_NULL = "\x00"  # stands for null, so that null, "" and "None" hash differently
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_COLUMNS = ("resource", "record_key", "subscription", "run_id", "value_hash", "delivered_at")


def record_keys(batch: pa.Table, key_fields: Sequence[str]) -> pa.Array[Any]:
    """Record keys, vectorised: key values as text joined by ',' (INTERFACES' KEY form; a null
    key value reads 'None', as in quarantine)."""
    parts = [pc.fill_null(pc.cast(batch.column(k), pa.string()), "None") for k in key_fields]
    joined = parts[0] if len(parts) == 1 else pc.binary_join_element_wise(*parts, ",")
    return _flat(joined)


def split_key(key: str, key_fields: Sequence[str]) -> dict[str, str]:
    """`KEY` (values joined by ',') as {field: value}; the last field keeps any further commas.
    A wrong number of parts is bad input."""
    from govex.errors import DeclarationError

    parts = key.split(",", len(key_fields) - 1) if len(key_fields) > 1 else [key]
    if len(parts) != len(key_fields) or any(p == "" for p in parts):
        msg = (
            f"key '{key}' does not match the record key ({', '.join(key_fields)}): give "
            f"{len(key_fields)} value(s) joined by ','"
        )
        raise DeclarationError(msg, field="KEY", value=key)
    return dict(zip(key_fields, parts, strict=True))


def _flat(values: Any) -> pa.Array[Any]:
    result: Any = values
    if isinstance(values, pa.ChunkedArray):
        result = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return cast("pa.Array[Any]", result)


def value_hashes(batch: pa.Table, columns: Sequence[str] | None = None) -> pa.Array[Any]:
    """One 16-hex-character fingerprint per row of `batch` over `columns` (default: all, in
    the batch's order). Equal values in equal columns give equal hashes in any batch."""
    import pandas as pd

    names = list(columns) if columns is not None else batch.column_names
    if batch.num_rows == 0:
        return pa.array([], pa.string())
    parts = [pc.cast(batch.column(name), pa.string()) for name in names]
    if len(parts) == 1:
        joined = pc.fill_null(parts[0], _NULL)
    else:
        joined = pc.binary_join_element_wise(
            *parts, _SEPARATOR, null_handling="replace", null_replacement=_NULL
        )
    # As bytes, not str: pandas hashes a str's UTF-8 encoding, which is exactly these bytes, so
    # the hashes are the same, without decoding every row into a str only to encode it again
    # (5x less CPU; most of it was that round trip, for Chinese text especially).
    flat = _flat(joined)
    raw = pa.large_binary() if pa.types.is_large_string(flat.type) else pa.binary()
    text = flat.cast(raw).to_numpy(zero_copy_only=False)
    return _hex(pd.util.hash_array(text, categorize=False))


def _hex(hashes: np.ndarray[Any, np.dtype[np.uint64]]) -> pa.Array[Any]:
    """uint64s as 16 lowercase hex characters each, without a per-row Python step."""
    n = len(hashes)
    octets = hashes.astype(">u8").view(np.uint8).reshape(n, 8)
    chars = np.empty((n, 2 * 8), dtype=np.uint8)
    chars[:, 0::2] = _HEX[octets >> 4]
    chars[:, 1::2] = _HEX[octets & 0x0F]
    offsets = np.arange(0, HASH_LENGTH * (n + 1), HASH_LENGTH, dtype=np.int32)
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(chars.tobytes())
    )


def record_provenance(
    conn: sa.Connection,
    *,
    resource: str,
    subscription: str,
    run_id: str,
    delivered_at: dt.datetime,
    keys: pa.Array[Any],
    hashes: pa.Array[Any],
) -> int:
    """Store one batch's provenance (keys and hashes row-aligned) in the caller's transaction;
    returns the rows written."""
    n = len(keys)
    if n != len(hashes):
        msg = f"{n} record keys but {len(hashes)} value hashes"
        raise ValueError(msg)
    if n == 0:
        return 0
    driver = conn.connection.driver_connection
    if _has_copy(driver):
        _copy_rows(driver, resource, subscription, run_id, delivered_at, keys, hashes)
    else:
        _insert_rows(conn, resource, subscription, run_id, delivered_at, keys, hashes)
    return n


def _has_copy(driver: Any) -> bool:
    """A psycopg 3 connection (PostgreSQL with COPY); other drivers take executemany."""
    return type(driver).__module__.split(".")[0] == "psycopg"


def _copy_rows(
    driver: Any, resource: str, subscription: str, run_id: str,
    delivered_at: dt.datetime, keys: pa.Array[Any], hashes: pa.Array[Any],
) -> None:
    import pyarrow.csv as pacsv

    n = len(keys)
    table = pa.table({
        "resource": pa.repeat(pa.scalar(resource, pa.string()), n),
        "record_key": keys,
        "subscription": pa.repeat(pa.scalar(subscription, pa.string()), n),
        "run_id": pa.repeat(pa.scalar(run_id, pa.string()), n),
        "value_hash": hashes,
        # Text with an explicit offset: PostgreSQL reads it into timestamptz unambiguously.
        "delivered_at": pa.repeat(pa.scalar(delivered_at.isoformat(), pa.string()), n),
    })
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=False))
    columns = ", ".join(_COLUMNS)
    # The COPY runs on the DBAPI connection under SQLAlchemy's open transaction: it commits
    # or rolls back with the caller's work.
    with driver.cursor() as cur, cur.copy(
        f"COPY lineage_provenance ({columns}) FROM STDIN (FORMAT csv)"
    ) as copy:
        copy.write(buffer.getbuffer())


_PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def _insert_rows(
    conn: sa.Connection, resource: str, subscription: str, run_id: str,
    delivered_at: dt.datetime, keys: pa.Array[Any], hashes: pa.Array[Any],
) -> None:
    """executemany with the batch's constants written into the statement as literals (quoted
    by SQLAlchemy for the store's dialect) and only key and hash bound per row, straight on
    the driver's cursor (same connection, same transaction): SQLAlchemy's per-row parameter
    handling, and binding six values per row, cost more than the inserts themselves."""
    column_type = provenance.c.delivered_at.type
    processor = column_type.dialect_impl(conn.dialect).bind_processor(conn.dialect)
    at = processor(delivered_at) if processor else delivered_at
    mark = _PLACEHOLDERS.get(conn.dialect.paramstyle)
    if mark is None or not isinstance(at, str):  # pragma: no cover - no store of ours
        conn.execute(sa.insert(provenance), [
            {"resource": resource, "record_key": k, "subscription": subscription,
             "run_id": run_id, "value_hash": h, "delivered_at": delivered_at}
            for k, h in zip(keys.to_pylist(), hashes.to_pylist(), strict=True)
        ])
        return

    def literal(value: str) -> str:
        return str(sa.literal(value, sa.String()).compile(
            dialect=conn.dialect, compile_kwargs={"literal_binds": True}))

    constants = (literal(resource), literal(subscription), literal(run_id), literal(at))
    cursor: Any = conn.connection.cursor()
    if _json_each_insert(conn, cursor, constants, keys, hashes):
        cursor.close()
        return
    sql = (
        f"INSERT INTO lineage_provenance ({', '.join(_COLUMNS)}) VALUES ("
        f"{constants[0]}, {mark}, {constants[1]}, {constants[2]}, {mark}, {constants[3]})"
    )
    try:
        # A generator, not a list: each row's tuple is freed as soon as it is bound.
        cursor.executemany(sql, zip(keys.to_pylist(), hashes.to_pylist(), strict=True))
    finally:
        cursor.close()


# Rows per INSERT … SELECT: bounds the JSON text and the hash blob bound to one statement.
_JSON_ROWS = 100_000


def _json_each_insert(
    conn: sa.Connection, cursor: Any, constants: tuple[str, ...],
    keys: pa.Array[Any], hashes: pa.Array[Any],
) -> bool:
    """SQLite: one `INSERT … SELECT … FROM json_each(?)` per 100k rows instead of an
    executemany. The keys travel as one JSON array (decoded in C by SQLite), the hashes as one
    blob of fixed-width hex, cut by array index with a byte `substr` (O(1) on a blob): no
    per-row Python step, and about half the CPU of binding two values per row. Falls back
    (False) where that would not store exactly the same text: no json_each (SQLite before
    3.38), a null or NUL-bearing key, or hashes that are not HASH_LENGTH ASCII characters."""
    import sqlite3

    if conn.dialect.name != "sqlite" or sqlite3.sqlite_version_info < (3, 38):
        return False
    keys, hashes = _flat(keys), _flat(hashes)
    if not _plain_text(keys) or not _plain_text(hashes):
        return False
    lengths = pc.min_max(pc.binary_length(hashes))
    if lengths["min"].as_py() != HASH_LENGTH or lengths["max"].as_py() != HASH_LENGTH:
        return False
    if pc.any(pc.match_substring(keys, "\x00")).as_py() or not pc.all(
        pc.string_is_ascii(hashes)
    ).as_py():
        return False
    resource, subscription, run_id, at = constants
    sql = (
        f"INSERT INTO lineage_provenance ({', '.join(_COLUMNS)}) "
        f"SELECT {resource}, value, {subscription}, {run_id}, "
        f"CAST(substr(?, key * {HASH_LENGTH} + 1, {HASH_LENGTH}) AS TEXT), {at} "
        "FROM json_each(?)"
    )
    for start in range(0, len(keys), _JSON_ROWS):
        part_keys = keys.slice(start, _JSON_ROWS)
        part_hashes = hashes.slice(start, _JSON_ROWS)
        cursor.execute(sql, (_data_bytes(part_hashes), _json_array(part_keys)))
    return True


def _json_array(values: pa.Array[Any]) -> str:
    """A JSON array of the strings in `values`. Keys rarely hold a character JSON escapes; then
    the array is the values joined by Arrow, with no Python object per row."""
    if pc.any(pc.match_substring_regex(values, r'["\\\x00-\x1f]')).as_py():
        return json.dumps(values.to_pylist(), ensure_ascii=False)
    whole = pa.ListArray.from_arrays(pa.array([0, len(values)], pa.int32()), values)
    return '["' + str(pc.binary_join(whole, '","')[0].as_py()) + '"]'


def _plain_text(values: pa.Array[Any]) -> bool:
    return pa.types.is_string(values.type) and values.null_count == 0


def _data_bytes(values: pa.Array[Any]) -> bytes:
    """The concatenated UTF-8 bytes of a (possibly sliced) string array."""
    offsets = np.frombuffer(
        cast(Any, values.buffers()[1]), dtype=np.int32, count=len(values) + 1,
        offset=values.offset * 4,
    )
    data = cast(Any, values.buffers()[2])
    return bytes(data[int(offsets[0]):int(offsets[-1])]) if data is not None else b""


def _aware(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)  # SQLite hands back naive UTC values
    return value


def deliveries_of(conn: sa.Connection, resource: str, key: str) -> list[dict[str, Any]]:
    """Every delivery of one record, newest first: [{subscription, run_id, delivered_at
    (aware datetime), hash}]."""
    p = provenance
    rows = conn.execute(
        sa.select(p.c.subscription, p.c.run_id, p.c.delivered_at, p.c.value_hash)
        .where(p.c.resource == resource, p.c.record_key == key)
        .order_by(p.c.delivered_at.desc(), p.c.id.desc())
    )
    return [
        {"subscription": s, "run_id": r, "delivered_at": _aware(at), "hash": h}
        for s, r, at, h in rows
    ]


def latest_hashes(conn: sa.Connection, resource: str, key: str) -> dict[str, dict[str, Any]]:
    """The last delivery of one record per subscription: {subscription: {run_id,
    delivered_at, hash}}."""
    latest: dict[str, dict[str, Any]] = {}
    for item in deliveries_of(conn, resource, key):
        latest.setdefault(item["subscription"], item)
    return latest


def live_keys(
    conn: sa.Connection, resource: str, subscription: str, *, batch: int = 50_000
) -> Iterator[list[str]]:
    """The record keys the subscription holds as far as provenance knows, in lists of at most
    `batch`: every key delivered to it whose latest entry is not a delete. One query, streamed
    (the latest entry of a key is its highest id: ids grow with every insert)."""
    p = provenance
    latest = (
        sa.select(sa.func.max(p.c.id).label("id"))
        .where(p.c.resource == resource, p.c.subscription == subscription)
        .group_by(p.c.record_key)
        .subquery()
    )
    rows = conn.execute(
        sa.select(p.c.record_key)
        .join(latest, p.c.id == latest.c.id)
        .where(p.c.value_hash != DELETED)
        .execution_options(yield_per=batch)
    )
    for part in rows.partitions(batch):
        yield [key for (key,) in part]
