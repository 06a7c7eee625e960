"""Multi-row `INSERT … VALUES (…), (…)` statements for MariaDB, rendered by Arrow a column at a
time instead of by PyMySQL a value at a time.

PyMySQL's executemany escapes and formats every value in Python (about 7 µs a value: a 1M-row,
9-column load spent most of its minute there). Here each column becomes SQL literal text with
Arrow kernels, the columns are joined into row tuples, and the rows into statements of at
most `STATEMENT_BYTES`, the size PyMySQL itself batches to.

Literals, exactly as PyMySQL writes them for the same connection:

- text: in single quotes; with the server's default escaping, backslash, quote and the
  characters PyMySQL escapes (NUL, newline, carriage return, Ctrl-Z) are backslash-escaped;
  when the session runs with NO_BACKSLASH_ESCAPES (the server tells every client so in its
  status flags), only quotes are doubled. The connection is utf8mb4, so no multi-byte
  character can hide a quote;
- integers, decimals, floats: Arrow's shortest round-trip text (a NaN or an infinity has no
  SQL literal: such a batch goes through executemany, which fails on it as before);
- dates, timestamps, booleans: as `driver_columns` already converted them (text, 0/1);
- NULL: the word.

Anything else (binary columns above all) returns None and the caller uses executemany.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pyarrow as pa

from ..arrowutil import pc

__all__ = ["STATEMENT_BYTES", "values_bodies"]

STATEMENT_BYTES = 1024 * 1024  # PyMySQL's own executemany batch size

# (character, escape) in the order applied: the backslash first, so no escape is escaped again.
_BACKSLASH_ESCAPES = (("\\", "\\\\"), ("'", "\\'"), ("\x00", "\\0"), ("\n", "\\n"),
                      ("\r", "\\r"), ("\x1a", "\\Z"))


def values_bodies(
    columns: list[Any], *, backslash_escapes: bool, max_bytes: int = STATEMENT_BYTES
) -> Iterator[str] | None:
    """The `(…), (…)` part of each statement for `columns` (driver-converted, row-aligned), or
    None when a column has no literal form here."""
    rendered = []
    for column in columns:
        text = _literal(column, backslash_escapes=backslash_escapes)
        if text is None:
            return None
        rendered.append(text)
    if not rendered or len(rendered[0]) == 0:
        return iter(())
    joined = rendered[0] if len(rendered) == 1 else pc.binary_join_element_wise(*rendered, ",")
    rows = pc.binary_join_element_wise("(", joined, ")", "")
    return _statements(_flat(rows), max_bytes)


def _literal(column: Any, *, backslash_escapes: bool) -> Any:
    t = column.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        text = column
        if backslash_escapes:
            for raw, escaped in _BACKSLASH_ESCAPES:
                text = pc.replace_substring(text, raw, escaped)
        else:
            text = pc.replace_substring(text, "'", "''")
        quoted = pc.binary_join_element_wise("'", text, "'", "")
        return pc.fill_null(pc.cast(quoted, pa.string()), "NULL")
    if pa.types.is_floating(t):
        if not pc.all(pc.fill_null(pc.is_finite(column), True)).as_py():
            return None
    elif not (pa.types.is_integer(t) or pa.types.is_decimal(t)):
        return None
    return pc.fill_null(pc.cast(column, pa.string()), "NULL")


def _flat(values: Any) -> pa.Array[Any]:
    flat: Any = values
    if isinstance(values, pa.ChunkedArray):
        flat = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return flat  # type: ignore[no-any-return]


def _statements(rows: pa.Array[Any], max_bytes: int) -> Iterator[str]:
    """Rows joined by ',' into bodies of at most `max_bytes` (a row longer than that is a
    statement of its own)."""
    sizes = np.asarray(pc.binary_length(rows).to_numpy(zero_copy_only=False), dtype=np.int64) + 1
    ends = np.cumsum(sizes)
    start, first = 0, 0
    while start < len(rows):
        # The last row whose running size stays within the budget, at least one row.
        stop = int(np.searchsorted(ends, first + max_bytes, side="right"))
        stop = max(stop, start + 1)
        part = rows.slice(start, stop - start)
        whole = pa.ListArray.from_arrays(pa.array([0, len(part)], pa.int32()), part)
        yield str(pc.binary_join(whole, ",")[0].as_py())
        first = int(ends[stop - 1])
        start = stop
