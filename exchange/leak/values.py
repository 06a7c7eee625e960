"""A leaked file's text, typed as a subscription's target received it.

Provenance fingerprints what a consumer received: each field typed as its target column (the
contract's Arrow type; text where masked), rendered as text by Arrow (`records.value_hashes`).
A leaked file spells the same values however its exporter did (a database client, a
spreadsheet), so each value is parsed back into the delivered type first; Arrow's rendering,
and so the fingerprint, is then the delivery's whatever the spelling: `2026-11-01T16:00:00+08:00`
and `2026-11-01 08:00:00` (a naive time is UTC, as govex writes it) are one instant, `1.50`
and `1.5` one number, `t` and `true` one boolean.

A value that does not parse is not taken for null: its row is marked unusable for that field's
subscription (`ok` false), since no row of that delivery could hold it, and it never counts as
a match. `fits` says whether a column can hold a field at all (every sampled value parses, and
a masked field's values have the shape its masking leaves), which keeps the search for renamed
columns small.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as _pc

pc: Any = _pc  # pyarrow-stubs cannot follow kernels that are generic over types

__all__ = ["fits", "typed"]

_INTEGER = r"^[+-]?[0-9]+(\.0*)?$"
_NUMBER = r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?$|^(?i:[+-]?(inf|infinity|nan))$"
_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T]00:00(:00(\.0*)?)?(Z|[+-]00(:?00)?)?)?$"
_TIMESTAMP = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?"
              r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$")
_OFFSET = r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"
_TRUE = ("true", "t", "1", "yes", "y")
_FALSE = ("false", "f", "0", "no", "n")
# What each masking function leaves (`exchange.run.masking`): `hash` 64 lowercase hex digits;
# the others hide at least one character of any non-empty value behind '*'.
_HASHED = r"^[0-9a-f]{64}$"


def _flat(values: Any) -> pa.Array[Any]:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    result: pa.Array[Any] = values
    return result


def _matching(text: pa.Array[Any], pattern: str) -> pa.Array[Any]:
    return _flat(pc.fill_null(pc.match_substring_regex(text, pattern), False))


def _cast_where(text: pa.Array[Any], valid: pa.Array[Any], kind: pa.DataType
                ) -> tuple[pa.Array[Any], pa.Array[Any]]:
    """`text` cast to `kind` where `valid`, null elsewhere; a value the pattern let through
    but the cast refuses (a 13th month) is dropped from `valid` one value at a time."""
    candidates = pc.if_else(valid, text, pa.scalar(None, pa.string()))
    try:
        return _flat(pc.cast(candidates, kind)), valid
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    cast: list[Any] = []
    kept: list[bool] = []
    for value in candidates.to_pylist():
        try:
            cast.append(pc.cast(pa.array([value], pa.string()), kind)[0].as_py())
            kept.append(value is not None)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            cast.append(None)
            kept.append(False)
    return pa.array(cast, kind), pa.array(kept, pa.bool_())


def _timestamps(text: pa.Array[Any], kind: pa.TimestampType
                ) -> tuple[pa.Array[Any], pa.Array[Any]]:
    valid = _matching(text, _TIMESTAMP)
    # Arrow parses an offset after the time with no space, a 'T' or ' ', at most nanoseconds;
    # a delivered value has microseconds at most, so further digits are cut.
    text = pc.replace_substring_regex(text, r"(\.[0-9]{1,6})[0-9]*", r"\1")
    aware = pc.and_(valid, _matching(text, _OFFSET))
    naive = pc.and_(valid, pc.invert(aware))
    unit = kind.unit
    with_zone, aware_ok = _cast_where(text, aware, pa.timestamp(unit, tz="UTC"))
    without, naive_ok = _cast_where(text, naive, pa.timestamp(unit))
    # A naive time is UTC: govex delivers UTC instants and naive targets keep them as such.
    without = pc.cast(without, pa.timestamp(unit, tz="UTC"))
    values = pc.if_else(aware_ok, with_zone, without)
    return _flat(pc.cast(values, kind)), pc.or_(aware_ok, naive_ok)


def _parsed(text: pa.Array[Any], kind: pa.DataType) -> tuple[pa.Array[Any], pa.Array[Any]]:
    """(values as `kind`, which non-null texts parsed)."""
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _flat(pc.cast(text, kind)), pc.is_valid(text)
    text = pc.utf8_trim_whitespace(text)
    if pa.types.is_integer(kind):
        valid = _matching(text, _INTEGER)
        return _cast_where(pc.replace_substring_regex(text, r"\.0*$", ""), valid, kind)
    if pa.types.is_floating(kind):
        return _cast_where(text, _matching(text, _NUMBER), kind)
    if pa.types.is_boolean(kind):
        lower = pc.utf8_lower(text)
        true = pc.fill_null(pc.is_in(lower, value_set=pa.array(_TRUE)), False)
        false = pc.fill_null(pc.is_in(lower, value_set=pa.array(_FALSE)), False)
        values = pc.if_else(true, True, pc.if_else(false, False, pa.scalar(None, pa.bool_())))
        return _flat(values), pc.or_(true, false)
    if pa.types.is_date(kind):
        day = pc.utf8_slice_codeunits(text, 0, 10)
        return _cast_where(day, _matching(text, _DATE), kind)
    if pa.types.is_timestamp(kind):
        return _timestamps(text, kind)
    if pa.types.is_null(kind):
        return pa.nulls(len(text)), pa.array([False] * len(text), pa.bool_())
    return _cast_where(text, pc.is_valid(text), kind)


def typed(text: pa.Array[Any] | pa.ChunkedArray[Any], kind: pa.DataType
          ) -> tuple[pa.Array[Any], pa.Array[Any]]:
    """`text` (a string column of the file) as `kind`, and per row whether the row may be
    used: its value is null, or parsed as `kind`."""
    flat = _flat(text)
    values, parsed = _parsed(flat, kind)
    ok = pc.or_(pc.is_null(flat), pc.fill_null(parsed, False))
    return values, _flat(ok)


def fits(text: pa.Array[Any] | pa.ChunkedArray[Any], kind: pa.DataType, masking: str) -> bool:
    """Whether a column (a sample of it) can hold a field delivered as `kind` with `masking`:
    every value parses, and has the shape the masking leaves."""
    flat = _flat(text)
    _, ok = typed(flat, kind)
    if not pc.all(ok).as_py():
        return False
    present = pc.drop_null(flat)
    if len(present) == 0:
        return True  # an empty column holds any field (Arrow's `all` of nothing is null)
    if masking == "hash":
        return bool(pc.all(_matching(present, _HASHED)).as_py())
    if masking != "none":
        shown = pc.filter(present, pc.greater(pc.utf8_length(present), 0))
        return len(shown) == 0 or bool(pc.all(pc.match_substring(shown, "*")).as_py())
    return True
