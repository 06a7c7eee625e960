"""Property test: the vectorised validator and jsonschema agree on every row.

Schemas are drawn from a fixed menu of keywords; columns are drawn independently of the schema
(so integers land in string properties, bools in number properties, dates in pattern
properties, …) and include NULLs, Unicode digits such as '٣', trailing newlines and floats
like 2.0. For each row both must give the same validity and the same set of (field, keyword).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contracts import BatchValidator, reference_violations

PATTERNS = [
    "^[0-9]{17}[0-9X]$",
    r"^1[3-9]\d{9}$",
    "^[A-Z]+$",
    r"\d",
    r"^\w+$",
    "^(A+)+$",  # exponential for Python `re`, linear on RE2 (lookarounds are refused)
    "^(AB|C)*$|^x",
]
TYPES: list[Any] = [
    None,
    "string",
    "integer",
    "number",
    "boolean",
    "null",
    ["string", "null"],
    ["integer", "null"],
    ["number", "null"],
    ["integer", "string"],
    ["boolean", "number"],
]
ENUMS: list[list[Any]] = [["男", "女"], [1, 2, 3], [1, "1", True, None], ["A", "AB", 2.0], [False]]
NUMBERS = [-5, 0, 1, 2.5, 10, 100, 150]

STRINGS = [
    "",
    "A",
    "AB",
    "ABC\n",
    "11010119900101123X\n",
    "X\n",
    "AB\n\n",
    "ab",
    "1",
    "0",
    "012",
    "٣",
    "12٣",
    "男",
    "女",
    "x",
    "11010119900101123X",
    "11010119900101123x",
    "110101199001011234\n",
    "13912345678",
    "1391234567٣",
    "13912345678\n",
    "12912345678",
    "2024-02-29",
    "2023-02-29",
    "2024-13-01",
    "2024-1-01",
    "2024-01-01\n",
    "٢٠٢٤-01-01",
    "0000-01-01",
]
ALPHABET = st.sampled_from(list("0123456789XABZax٣١\n _-男") + ["\u00a0", "\u2028", "é"])


@st.composite
def property_schemas(draw: st.DrawFn) -> dict[str, Any]:
    prop: dict[str, Any] = {}
    declared = draw(st.sampled_from(TYPES))
    if declared is not None:
        prop["type"] = declared
    if draw(st.booleans()):
        prop["enum"] = draw(st.sampled_from(ENUMS))
    elif draw(st.integers(0, 5)) == 0:
        prop["const"] = draw(st.sampled_from(["A", 1, True, None, 2.0]))
    for keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if draw(st.integers(0, 3)) == 0:
            prop[keyword] = draw(st.sampled_from(NUMBERS))
    if draw(st.integers(0, 4)) == 0:
        prop["multipleOf"] = draw(st.sampled_from([2, 5, 0.5]))
    if draw(st.integers(0, 3)) == 0:
        prop["minLength"] = draw(st.integers(0, 4))
    if draw(st.integers(0, 3)) == 0:
        prop["maxLength"] = draw(st.integers(0, 18))
    if draw(st.booleans()):
        prop["pattern"] = draw(st.sampled_from(PATTERNS))
    if draw(st.integers(0, 3)) == 0:
        prop["format"] = draw(st.sampled_from(["date", "date", "date-time"]))
    return prop


COLUMN_KINDS = [
    "int64",
    "int8",
    "float64",
    "bool",
    "string",
    "large_string",
    "string_view",
    "dictionary",
    "date32",
    "timestamp",
    "null",
]


def _values(kind: str) -> st.SearchStrategy[Any]:
    if kind == "int64":
        return st.one_of(st.integers(-10, 200), st.sampled_from([2**62, -(2**62)]))
    if kind == "int8":
        return st.integers(-128, 127)
    if kind == "float64":
        return st.one_of(
            st.sampled_from([2.0, 2.5, -0.0, 0.5, 1e20, 150.0, 100.0, 10.0, 1.0]),
            st.floats(-200, 200, allow_nan=False, allow_infinity=False),
        )
    if kind == "bool":
        return st.booleans()
    if kind in ("string", "large_string", "string_view", "dictionary"):
        return st.one_of(st.sampled_from(STRINGS), st.text(ALPHABET, max_size=20))
    if kind == "date32":
        return st.dates(dt.date(1900, 1, 1), dt.date(2100, 12, 31))
    if kind == "timestamp":
        # Hypothesis wants naive bounds; `timezones` makes every drawn value UTC-aware.
        return st.datetimes(
            dt.datetime(1990, 1, 1),  # noqa: DTZ001
            dt.datetime(2030, 1, 1),  # noqa: DTZ001
            timezones=st.just(dt.UTC),
        )
    return st.none()


def _array(kind: str, values: list[Any]) -> Any:
    arrow_types: dict[str, Any] = {
        "int64": pa.int64(),
        "int8": pa.int8(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "string": pa.string(),
        "large_string": pa.large_string(),
        "string_view": pa.string_view(),
        "dictionary": pa.string(),
        "date32": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "null": pa.null(),
    }
    array: Any = pa.array(values, arrow_types[kind])
    return array.dictionary_encode() if kind == "dictionary" else array


@st.composite
def cases(draw: st.DrawFn) -> tuple[dict[str, Any], pa.Table]:
    names = [f"p{i}" for i in range(draw(st.integers(1, 5)))]
    properties = {name: draw(property_schemas()) for name in names}
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": draw(st.lists(st.sampled_from([*names, "extra"]), unique=True)),
    }
    if draw(st.booleans()):
        schema["additionalProperties"] = draw(st.booleans())
    rows = draw(st.integers(0, 16))
    columns = [name for name in names if draw(st.integers(0, 5)) > 0]
    if draw(st.booleans()):
        columns.append("extra")
    data: dict[str, pa.Array[Any]] = {}
    for column in columns:
        kind = draw(st.sampled_from(COLUMN_KINDS))
        value = _values(kind)
        cells = draw(
            st.lists(st.one_of(st.none(), value, value, value), min_size=rows, max_size=rows)
        )
        data[column] = _array(kind, cells)
    # A batch without columns still has rows (every property absent).
    table = pa.table(data) if data else pa.table({"_": pa.nulls(rows)}).drop_columns(["_"])
    return schema, table


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_vectorised_validator_agrees_with_jsonschema(case: tuple[dict[str, Any], pa.Table]) -> None:
    schema, table = case
    result = BatchValidator(schema).validate(table)
    got: list[set[tuple[str | None, str]]] = [set() for _ in range(table.num_rows)]
    for violation in result.violations.to_pylist():
        got[violation["row"]].add((violation["field"], violation["check"]))
    expected = reference_violations(schema, table.to_pylist())
    assert got == expected
    assert result.valid.tolist() == [not e for e in expected]
