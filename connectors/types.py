"""Type families: how an Arrow type and a database column type are judged compatible.

A family is the coarse kind of a value. A target column can take a spec column when the
column's family is among those the Arrow type accepts; widths are not compared (an existing
INTEGER column receiving int64 values fails loudly at write time if a value does not fit).
"""

from __future__ import annotations

import pyarrow as pa

ANY = "any"  # SQLite columns without a declared type take every value


def arrow_family(type_: pa.DataType) -> str:
    """The family of an Arrow type."""
    checks = (
        (pa.types.is_boolean, "boolean"),
        (pa.types.is_integer, "integer"),
        (pa.types.is_floating, "float"),
        (pa.types.is_decimal, "decimal"),
        (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "string"),
        (pa.types.is_date, "date"),
        (pa.types.is_timestamp, "timestamp"),
        (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), "binary"),
    )
    for check, family in checks:
        if check(type_):
            return family
    return "string"


_ACCEPTS: dict[str, frozenset[str]] = {
    "boolean": frozenset({"boolean"}),
    "integer": frozenset({"integer", "decimal"}),
    "float": frozenset({"float", "decimal"}),
    "decimal": frozenset({"decimal", "float"}),
    "string": frozenset({"string"}),
    "date": frozenset({"date"}),
    "timestamp": frozenset({"timestamp"}),
    "binary": frozenset({"binary"}),
}


def accepts(column_family: str, type_: pa.DataType, *, booleans_are_integers: bool) -> bool:
    """Whether a column of `column_family` can store values of Arrow `type_`."""
    if column_family == ANY:
        return True
    wanted = arrow_family(type_)
    if wanted == "boolean" and booleans_are_integers and column_family == "integer":
        return True
    return column_family in _ACCEPTS[wanted]
