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

Writes are bulk: PostgreSQL stores take binary COPY (`connectors.sql.pgcopy`), SQLite stores one
`INSERT … SELECT … FROM json_each(?)` per 100k rows, others one executemany of plain tuples,
all in the caller's transaction: the engine writes a batch's provenance in one store
transaction right after the target committed the batch. A crash between the two leaves the
batch delivered without provenance, but then the run did not finish, the watermark stayed, and
the rerun delivers (and records) those records again.

On PostgreSQL the table is partitioned by month of `delivered_at` and old months are dropped
by retention (`records.partitions`). A batch goes into its month's partition (created when
missing); reads of one record probe only the partitions that can hold it. What retention
dropped survives as each record's last delivery to each subscription
(`lineage_provenance_latest`): every read here returns those too, marked
`beyond_retention`, so a dispute, a disclosure or a leak trace still knows what each consumer
last received; the deliveries before that last one are gone.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as _pc
import sqlalchemy as sa

from records import partitions
from records.provenance_tables import HASH_LENGTH, latest, metadata, provenance

pc: Any = _pc  # pyarrow-stubs cannot follow kernels that are generic over types

__all__ = [
    "DELETED",
    "HASH_LENGTH",
    "delivered_hashes",
    "delivered_keys",
    "deliveries_of",
    "deliveries_of_keys",
    "latest_deliveries",
    "latest_hashes",
    "live_keys",
    "metadata",
    "provenance",
    "record_keys",
    "record_provenance",
    "split_key",
    "value_hashes",
]

DELETED = "deleted"  # the fingerprint of a delete (see the module docstring)

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
    returns the rows written. On PostgreSQL the rows go straight into the partition of
    `delivered_at`'s month (`records.partitions.partition_for`, which creates it if needed and
    holds it against sealing and dropping until the transaction ends). `delivered_at` must
    carry its time zone: a naive time would mean one instant to the month's partition and
    another to the stored row, whichever the store session's zone is."""
    if delivered_at.tzinfo is None or delivered_at.utcoffset() is None:
        msg = f"delivered_at {delivered_at.isoformat()} has no time zone"
        raise ValueError(msg)
    n = len(keys)
    if n != len(hashes):
        msg = f"{n} record keys but {len(hashes)} value hashes"
        raise ValueError(msg)
    if n == 0:
        return 0
    part = partitions.partition_for(conn, delivered_at)
    driver = conn.connection.driver_connection
    if _has_copy(driver):
        table = part.name if part is not None else provenance.name
        _copy_rows(driver, table, resource, subscription, run_id, delivered_at, keys, hashes)
    else:
        _insert_rows(conn, resource, subscription, run_id, delivered_at, keys, hashes)
    if part is not None and part.sealed:  # a late delivery: rare, see records.partitions
        partitions.index_late_keys(
            conn, resource, cast("list[str]", _flat(keys).to_pylist()), delivered_at)
    return n


def _has_copy(driver: Any) -> bool:
    """A psycopg 3 connection (PostgreSQL with COPY); other drivers take executemany."""
    return type(driver).__module__.split(".")[0] == "psycopg"


def _copy_rows(
    driver: Any, table: str, resource: str, subscription: str, run_id: str,
    delivered_at: dt.datetime, keys: pa.Array[Any], hashes: pa.Array[Any],
) -> None:
    from connectors.sql import pgcopy

    n = len(keys)
    rows = pa.table({
        "resource": pa.repeat(pa.scalar(resource, pa.string()), n),
        "record_key": keys,
        "subscription": pa.repeat(pa.scalar(subscription, pa.string()), n),
        "run_id": pa.repeat(pa.scalar(run_id, pa.string()), n),
        "value_hash": hashes,
        "delivered_at": pa.repeat(pa.scalar(delivered_at, pa.timestamp("us", tz="UTC")), n),
    })
    # The COPY runs on the DBAPI connection under SQLAlchemy's open transaction: it commits
    # or rolls back with the caller's work. `table` is a name govex made (a partition's).
    # Binary where exact (the server then parses no text: a third less time), else CSV.
    with driver.cursor() as cur:
        pgcopy.copy_into(cur, table, ", ".join(_COLUMNS), rows)


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


_LIVE_COLUMNS = "record_key, subscription, run_id, delivered_at, value_hash, id"
_KEPT = (
    f"SELECT {_LIVE_COLUMNS}, true AS beyond_retention FROM lineage_provenance_latest "
    "WHERE resource = :resource AND record_key IN :keys"
)
# PostgreSQL: provenance read only within the ranges that can hold the records (see
# records.partitions: their months, and the partitions not sealed yet). OFFSET 0 keeps the
# subquery apart, evaluated once per range, so that PostgreSQL prunes the partitions outside
# each range as it runs (run-time pruning, also under a cached generic plan): those are never
# probed. One statement, whatever the ranges, so that its plan is prepared once.
_DELIVERIES_PG = (
    f"WITH ranges AS ({partitions.RANGES}) "
    f"SELECT p.*, false AS beyond_retention FROM ranges AS r CROSS JOIN LATERAL ("
    f"SELECT {_LIVE_COLUMNS} FROM lineage_provenance WHERE resource = :resource "
    "AND record_key IN :keys AND delivered_at >= r.starts AND delivered_at < r.ends "
    f"OFFSET 0) AS p UNION ALL {_KEPT} ORDER BY delivered_at DESC, id DESC"
)
_DELIVERIES = (
    f"SELECT {_LIVE_COLUMNS}, false AS beyond_retention FROM lineage_provenance "
    f"WHERE resource = :resource AND record_key IN :keys UNION ALL {_KEPT} "
    "ORDER BY delivered_at DESC, id DESC"
)


def _typed(sql: str) -> Any:
    """`sql` as a statement built once (a trace must not parse it again each time)."""
    return sa.text(sql).bindparams(sa.bindparam("keys", expanding=True)).columns(
        sa.column("record_key"), sa.column("subscription"), sa.column("run_id"),
        sa.column("delivered_at", provenance.c.delivered_at.type), sa.column("value_hash"),
        sa.column("id"), sa.column("beyond_retention", sa.Boolean),
    )


_QUERIES = {"postgresql": _typed(_DELIVERIES_PG), "other": _typed(_DELIVERIES)}


def _deliveries(conn: sa.Connection, resource: str, keys: Sequence[str]) -> list[Any]:
    """Every delivery of records `keys` of `resource`, newest first (then highest id):
    the provenance rows, read only from the partitions that can hold them, and the last
    deliveries kept from the months retention dropped (`beyond_retention` true)."""
    wanted = list(dict.fromkeys(keys))
    if not wanted:
        return []
    query = _QUERIES["postgresql" if conn.dialect.name == "postgresql" else "other"]
    return list(conn.execute(query, {"resource": resource, "keys": wanted}))


def deliveries_of(conn: sa.Connection, resource: str, key: str) -> list[dict[str, Any]]:
    """Every delivery of one record, newest first: [{subscription, run_id, delivered_at
    (aware datetime), hash, beyond_retention}]. `beyond_retention`: the delivery is from a
    month retention dropped, kept because it was the subscription's last one then; earlier
    ones of those months are gone."""
    return [
        {"subscription": r.subscription, "run_id": r.run_id, "delivered_at": _aware(r.delivered_at),
         "hash": r.value_hash, "beyond_retention": bool(r.beyond_retention)}
        for r in _deliveries(conn, resource, [key])
    ]


def deliveries_of_keys(
    conn: sa.Connection, resource: str, keys: Sequence[str]
) -> list[dict[str, Any]]:
    """`deliveries_of` for several records at once (disclosure): [{key, subscription, run_id,
    delivered_at, hash, id, beyond_retention}], newest first."""
    return [
        {"key": r.record_key, "subscription": r.subscription, "run_id": r.run_id,
         "delivered_at": _aware(r.delivered_at), "hash": r.value_hash, "id": int(r.id),
         "beyond_retention": bool(r.beyond_retention)}
        for r in _deliveries(conn, resource, keys)
    ]


def latest_hashes(conn: sa.Connection, resource: str, key: str) -> dict[str, dict[str, Any]]:
    """The last delivery of one record per subscription: {subscription: {run_id,
    delivered_at, hash, beyond_retention}}, whether or not retention dropped its month."""
    return latest_deliveries(conn, resource, [key]).get(key, {})


def latest_deliveries(
    conn: sa.Connection, resource: str, keys: Sequence[str]
) -> dict[str, dict[str, dict[str, Any]]]:
    """The last delivery of each of records `keys` per subscription: {key: {subscription:
    {run_id, delivered_at, hash, beyond_retention}}}; a key never delivered is absent."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for r in _deliveries(conn, resource, keys):
        found.setdefault(r.record_key, {}).setdefault(r.subscription, {
            "run_id": r.run_id, "delivered_at": _aware(r.delivered_at), "hash": r.value_hash,
            "beyond_retention": bool(r.beyond_retention),
        })
    return found


def _latest_of_subscription(resource: str, subscription: str) -> Any:
    """Per record key, the latest entry `subscription` received: the provenance row with the
    highest id (ids grow with every insert), else the row kept beyond retention."""
    p, k = provenance, latest
    both = sa.union_all(
        sa.select(p.c.record_key, p.c.value_hash, p.c.id, sa.literal(1).label("live"))
        .where(p.c.resource == resource, p.c.subscription == subscription),
        sa.select(k.c.record_key, k.c.value_hash, k.c.id, sa.literal(0).label("live"))
        .where(k.c.resource == resource, k.c.subscription == subscription),
    ).subquery()
    ranked = sa.select(
        both.c.record_key, both.c.value_hash,
        sa.func.row_number().over(
            partition_by=both.c.record_key, order_by=(both.c.live.desc(), both.c.id.desc())
        ).label("n"),
    ).subquery()
    return sa.select(ranked.c.record_key).where(ranked.c.n == 1, ranked.c.value_hash != DELETED)


def live_keys(
    conn: sa.Connection, resource: str, subscription: str, *, batch: int = 50_000
) -> Iterator[list[str]]:
    """The record keys the subscription holds as far as provenance knows, in lists of at most
    `batch`: every key delivered to it whose latest entry is not a delete, beyond retention
    included. One query, streamed."""
    rows = conn.execute(
        _latest_of_subscription(resource, subscription).execution_options(yield_per=batch)
    )
    for part in rows.partitions(batch):
        yield [key for (key,) in part]


def delivered_keys(
    conn: sa.Connection, resource: str, subscription: str, *, batch: int = 50_000
) -> Iterator[list[str]]:
    """Every record key ever delivered to the subscription, each once, deletes and months
    beyond retention included, in lists of at most `batch`: what a consumer may name a record
    by (`live_keys` is what it still holds)."""
    p, k = provenance, latest
    keys = sa.union(
        sa.select(p.c.record_key).where(p.c.resource == resource, p.c.subscription == subscription),
        sa.select(k.c.record_key).where(k.c.resource == resource, k.c.subscription == subscription),
    ).subquery()
    rows = conn.execute(sa.select(keys.c.record_key).execution_options(yield_per=batch))
    for part in rows.partitions(batch):
        yield [key for (key,) in part]


def delivered_hashes(
    conn: sa.Connection, resource: str, subscriptions: Sequence[str], *, batch: int = 100_000
) -> Iterator[tuple[pa.Array[Any], pa.Array[Any]]]:
    """Every fingerprint delivered to `subscriptions` of `resource`, deletes left out,
    streamed as row-aligned (subscription, value_hash) string arrays of at most `batch` rows:
    what leak tracing compares a leaked file with. From months retention dropped only each
    record's last fingerprint per subscription is left, and is included."""
    if not subscriptions:
        return
    p, k = provenance, latest
    wanted = list(subscriptions)
    rows = conn.execute(
        sa.union_all(
            sa.select(p.c.subscription, p.c.value_hash)
            .where(p.c.resource == resource, p.c.subscription.in_(wanted),
                   p.c.value_hash != DELETED),
            sa.select(k.c.subscription, k.c.value_hash)
            .where(k.c.resource == resource, k.c.subscription.in_(wanted),
                   k.c.value_hash != DELETED),
        ).execution_options(yield_per=batch)
    )
    for part in rows.partitions(batch):
        subs, hashes = zip(*part, strict=True)
        yield pa.array(subs, pa.string()), pa.array(hashes, pa.string())
