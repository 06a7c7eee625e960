"""Arrow helpers shared by SQL and file connectors: cursors, de-duplication, conformance.

Everything here is vectorised; no per-row Python on the hot path except where a driver
demands Python objects (the caller decides that).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as _pc

from govex.errors import DeclarationError, FatalError

from .base import Cursor, ReadSpec, TargetSpec

pc: Any = _pc
UTC_US = pa.timestamp("us", tz="UTC")


def order_columns(spec: ReadSpec) -> tuple[str, ...]:
    """The columns a read is ordered by and resumes after: (watermark, key...) or the key."""
    return ((spec.watermark,) if spec.watermark else ()) + tuple(
        k for k in spec.key if k != spec.watermark
    )


def wanted_columns(spec: ReadSpec, available: list[str]) -> list[str]:
    """The columns to select: the wanted ones, plus ordering columns a cursor is built from."""
    chosen = list(available) if spec.columns is None else list(dict.fromkeys(spec.columns))
    for name in order_columns(spec):
        if name not in chosen:
            chosen.append(name)
    missing = [c for c in chosen if c not in available]
    if missing:
        msg = (
            f"source {spec.table or 'query'} has no column {', '.join(map(repr, missing))}; "
            f"it has {', '.join(available)}"
        )
        raise DeclarationError(
            msg,
            field=missing[0],
        )
    return chosen


def check_after(spec: ReadSpec) -> None:
    """A cursor must be over exactly the columns this read is ordered by."""
    if spec.after is not None and tuple(spec.after.columns) != order_columns(spec):
        msg = (
            f"cursor over {list(spec.after.columns)} does not match the read order "
            f"{list(order_columns(spec))}; reset the watermark after changing key or watermark"
        )
        raise DeclarationError(
            msg
        )


def json_value(value: Any) -> Any:
    """A cursor value as JSON: datetimes as ISO-8601 with offset (UTC), dates ISO, decimals text."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # naive values are UTC by convention in govex
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


def cursor_from_batch(spec: ReadSpec, batch: pa.Table) -> Cursor:
    """The cursor just past the last row of `batch`."""
    if batch.num_rows == 0:
        msg = "cursor_after needs a non-empty batch"
        raise ValueError(msg)
    columns = order_columns(spec)
    if not columns:
        msg = "a read without watermark or key has no cursor"
        raise DeclarationError(msg)
    last = batch.num_rows - 1
    return Cursor(columns, tuple(json_value(_value_at(batch.column(c), last)) for c in columns))


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _value_at(column: Any, index: int) -> Any:
    """One value as Python. A UTC timestamp is built from its integer here: pyarrow's `as_py`
    of a zoned timestamp imports pandas (half a second and ~100 MiB), which an extract task
    otherwise never needs."""
    if column.type == UTC_US:
        micros = pc.cast(column.slice(index, 1), pa.int64())[0].as_py()
        return None if micros is None else _EPOCH + dt.timedelta(microseconds=micros)
    return column[index].as_py()


def python_value(value: Any, type_: pa.DataType) -> Any:
    """A JSON cursor value back as the Python value of `type_` (for binding or comparing)."""
    if value is None:
        return None
    if pa.types.is_timestamp(type_):
        parsed = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC)
    if pa.types.is_date(type_):
        return dt.date.fromisoformat(value) if isinstance(value, str) else value
    if pa.types.is_decimal(type_):
        return decimal.Decimal(value)
    return value


def utc_timestamps(array: Any) -> Any:
    """Any timestamp array as timestamp('us', 'UTC'); naive values are taken as UTC."""
    if array.type.tz is None:
        array = pc.assume_timezone(array, "UTC")
    return pc.cast(array, UTC_US)


def dedupe_last(batch: pa.Table, key: tuple[str, ...]) -> pa.Table:
    """`batch` with one row per key, the last occurrence winning (as a sequence of upserts)."""
    if not key or batch.num_rows < 2 or _strictly_increasing(batch, key):
        return batch
    indexed = batch.select(list(key)).append_column(
        "__govex_i", pa.array(range(batch.num_rows), pa.int64())
    )
    last = indexed.group_by(list(key), use_threads=False).aggregate([("__govex_i", "max")])
    if last.num_rows == batch.num_rows:
        return batch
    positions = last.column("__govex_i_max")
    return batch.take(pc.take(positions, pc.sort_indices(positions)))  # keep batch order


def _strictly_increasing(batch: pa.Table, key: tuple[str, ...]) -> bool:
    """Whether a one-column integer key strictly increases down the batch, so no key repeats:
    a check of microseconds that spares the hash aggregation when a source is read in key
    order (append-only tables, whose watermark grows with the key)."""
    if len(key) != 1:
        return False
    column = batch.column(key[0])
    if not pa.types.is_integer(column.type) or column.null_count:
        return False
    values = column.to_numpy()
    return bool((values[1:] > values[:-1]).all())


def conform_batch(spec: TargetSpec, batch: pa.Table, where: str) -> pa.Table:
    """`batch` with exactly the spec's columns, cast to the spec's types; NULL in a NOT NULL
    column is refused here so that no system sees half a batch."""
    missing = [c for c in spec.column_names if c not in batch.column_names]
    if missing:
        msg = f"{where}: the batch lacks column {', '.join(map(repr, missing))}"
        raise DeclarationError(
            msg, field=missing[0]
        )
    arrays = []
    for column in spec.columns:
        data = batch.column(column.name)
        if data.type != column.type:
            try:
                if pa.types.is_timestamp(column.type) and pa.types.is_timestamp(data.type):
                    data = pc.cast(utc_timestamps(data), column.type)
                else:
                    data = pc.cast(data, column.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                msg = (
                    f"{where}: column '{column.name}' of type {data.type} cannot be stored as "
                    f"{column.type}: {error}"
                )
                raise FatalError(
                    msg
                ) from error
        if not column.nullable and data.null_count:
            msg = (
                f"{where}: column '{column.name}' is NOT NULL but {data.null_count} row(s) of "
                "the batch have no value; nothing of this batch was written"
            )
            raise FatalError(
                msg
            )
        arrays.append(data)
    return pa.table(arrays, schema=spec.arrow_schema())


def rebatch(parts: Iterator[pa.RecordBatch | pa.Table], batch_rows: int) -> Iterator[pa.Table]:
    """Re-cut a stream of Arrow pieces into tables of exactly `batch_rows` rows (the last may
    be shorter). Holds at most one output batch plus one input piece."""
    if batch_rows < 1:
        msg = f"batch_rows must be at least 1, not {batch_rows}"
        raise DeclarationError(msg)
    pending: list[pa.Table] = []
    held = 0
    for part in parts:
        table = part if isinstance(part, pa.Table) else pa.Table.from_batches([part])
        while table.num_rows:
            take = min(batch_rows - held, table.num_rows)
            pending.append(table.slice(0, take))
            held += take
            table = table.slice(take)
            if held == batch_rows:
                yield pa.concat_tables(pending).combine_chunks()
                pending, held = [], 0
    if held:
        yield pa.concat_tables(pending).combine_chunks()


def as_text(values: Any) -> Any:
    """Text read as bytes (binary, or a string array no one has validated) as a string array
    when every value is UTF-8; otherwise as binary, byte for byte.

    Sources hold what they hold: one undecodable value must not stop a read. So text is read
    undecoded, and a column that is not all UTF-8 stays bytes; the gate then quarantines the
    records holding the undecodable values (`exchange.run.encoding`), naming the column. One
    validation pass per column (vectorised), no copy."""
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        values = pc.cast(values, pa.binary() if pa.types.is_string(values.type)
                         else pa.large_binary())  # a view: no copy, no check
    if not (pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type)):
        return values
    text = pa.string() if pa.types.is_binary(values.type) else pa.large_string()
    try:
        return pc.cast(values, text)  # validates UTF-8
    except pa.ArrowInvalid:
        return values


def holds_nul(values: Any) -> bool:
    """Whether some text or binary value holds a 0x00 byte (in UTF-8, only U+0000 encodes
    to one): one pass over the data buffer (numpy's `min`, well under a millisecond per
    million values), where a substring search per value costs some 30 ms."""
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    for chunk in chunks:
        if not len(chunk) or chunk.null_count == len(chunk):
            continue
        large = pa.types.is_large_string(chunk.type) or pa.types.is_large_binary(chunk.type)
        width = 8 if large else 4
        buffers: list[Any] = chunk.buffers()
        offsets_buffer, data_buffer = buffers[1], buffers[2]
        if data_buffer is None:
            continue
        offsets = np.frombuffer(offsets_buffer, dtype=np.int64 if large else np.int32,
                                count=len(chunk) + 1, offset=chunk.offset * width)
        data = np.frombuffer(data_buffer, dtype=np.uint8)[int(offsets[0]):int(offsets[-1])]
        if len(data) and int(data.min()) == 0:
            return True
    return False


def decoded(table: pa.Table, names: Iterable[str]) -> pa.Table:
    """`table` with each of the named text columns through `as_text`."""
    for name in names:
        if name in table.column_names:
            i = table.column_names.index(name)
            table = table.set_column(i, name, as_text(table.column(i)))
    return table


def normalise(table: pa.Table) -> pa.Table:
    """Wire types to govex types: every timestamp becomes timestamp('us', 'UTC')."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type != UTC_US:
            table = table.set_column(i, field.name, utc_timestamps(table.column(i)))
    return table
