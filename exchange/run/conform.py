"""Casting source batches to the contract's Arrow types.

Sources differ (SQLite keeps dates as text, MariaDB has no time zones); after the gate has
accepted a row its values are known to fit the contract, so the cast is safe and happens once,
vectorised, before anything is delivered.
"""

from __future__ import annotations

from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as _pc

from govex.errors import FatalError

pc: Any = _pc


def contract_columns(batch: pa.Table, schema: pa.Schema) -> pa.Table:
    """The contract's columns in contract order; a column the source lacks is all null."""
    arrays: list[Any] = []
    for field in schema:
        if field.name in batch.column_names:
            arrays.append(batch.column(field.name))
        else:
            arrays.append(pa.nulls(batch.num_rows, type=cast(Any, field.type)))
    return pa.table(arrays, names=schema.names)


def _cast(column: Any, target: pa.DataType, name: str) -> Any:
    if column.type == target:
        return column
    if pa.types.is_null(column.type):
        return pa.nulls(len(column), type=cast(Any, target))
    try:
        return pc.cast(column, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        if pa.types.is_timestamp(target) and target.tz is not None:
            # Text without an offset, or a naive timestamp: govex stores UTC.
            try:
                naive = pc.cast(column, pa.timestamp(target.unit))
                return pc.cast(naive, target)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                pass
        msg = f"column '{name}' of type {column.type} cannot be converted to {target}: {error}"
        raise FatalError(
            msg
        ) from error


def conform(batch: pa.Table, schema: pa.Schema) -> pa.Table:
    """`batch` (already holding the contract's columns) cast to the contract's types."""
    arrays = [_cast(batch.column(f.name), f.type, f.name) for f in schema]
    return pa.table(arrays, schema=pa.schema([pa.field(f.name, f.type) for f in schema]))
