"""Soft deletes at a table or query source (`source: {deleted: is_deleted}`).

An incremental read sees only rows that are still there, so a department that deletes rows
marks them instead: a row read with its deleted column true is a delete, staged as its record
key in the run's `deletes` area, exactly where a Kafka-fed resource stages its `op: delete`
messages. From there it takes the one delivery path: upsert and snapshot targets lose the row
(with a provenance entry saying so), append targets keep their history.

What counts as true, by the column's type: a boolean true; a number other than 0 (MariaDB's
TINYINT(1), SQLite's 0/1); text `1`, `true`, `t`, `y` or `yes` (any case, blanks ignored); any
date or timestamp (a `deleted_at` column: set means deleted). NULL is never deleted.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as _pc

from govex.errors import DeclarationError

pc: Any = _pc  # pyarrow-stubs cannot follow kernels that are generic over types

__all__ = ["TRUE_TEXT", "deleted_mask", "split_deleted"]

TRUE_TEXT = ("1", "true", "t", "y", "yes")


def deleted_mask(column: Any, name: str) -> Any:
    """A boolean array, true where the row is marked deleted (never null)."""
    kind = column.type
    if pa.types.is_boolean(kind):
        marked = column
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        marked = pc.not_equal(column, pa.scalar(0).cast(kind))
    elif pa.types.is_string(kind) or pa.types.is_large_string(kind):
        marked = pc.is_in(pc.utf8_lower(pc.utf8_trim_whitespace(column)),
                          value_set=pa.array(TRUE_TEXT, kind))
    elif pa.types.is_temporal(kind):
        return pc.is_valid(column)
    elif pa.types.is_null(kind):
        return pa.repeat(pa.scalar(False), len(column))
    else:
        msg = (
            f"the deleted column '{name}' is {kind}; declare a boolean, number, text or "
            "timestamp column as source.deleted"
        )
        raise DeclarationError(msg, field="source.deleted", value=name)
    return pc.fill_null(marked, False)


def split_deleted(batch: pa.Table, name: str, key: tuple[str, ...]) -> tuple[pa.Table, pa.Table]:
    """(the live rows, the record keys of the rows marked deleted) of one source batch."""
    if name not in batch.column_names:
        msg = (
            f"the source has no column '{name}', which source.deleted names; add it to the "
            "table (or the query's select list) or remove source.deleted"
        )
        raise DeclarationError(msg, field="source.deleted", value=name)
    marked = deleted_mask(batch.column(name), name)
    return batch.filter(pc.invert(marked)), batch.filter(marked).select(list(key))
