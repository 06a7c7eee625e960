"""The vectorised validator on hand-written bad data: every keyword must be able to fail.

Each case also asserts agreement with the jsonschema reference, row by row.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from contracts import (
    VIOLATION_SCHEMA,
    BatchValidator,
    Contract,
    json_projection,
    reference_violations,
    to_re2,
)
from govex.errors import DeclarationError, FatalError


def _schema(props: dict[str, Any], required: tuple[str, ...] = (), **top: Any) -> dict[str, Any]:
    return {"type": "object", "properties": props, "required": list(required), **top}


def _violations(schema: dict[str, Any], table: pa.Table) -> set[tuple[int, str | None, str]]:
    """Run the validator, check it agrees with jsonschema, return (row, field, check)."""
    result = BatchValidator(schema).validate(table)
    assert result.violations.schema == VIOLATION_SCHEMA
    got = {(r["row"], r["field"], r["check"]) for r in result.violations.to_pylist()}
    expected = reference_violations(schema, table.to_pylist())
    assert [{(f, c) for row, f, c in got if row == i} for i in range(table.num_rows)] == expected
    assert result.valid.tolist() == [not e for e in expected]
    return got


@pytest.mark.parametrize(
    ("prop", "values", "bad_rows", "check"),
    [
        pytest.param(
            {"type": "integer"},
            [1.0, 2.0, 2.5, float("inf")],
            [2, 3],
            "type",
            id="integer-float-column",
        ),
        pytest.param(
            {"type": "number"},
            pa.array([True, False], pa.bool_()),
            [0, 1],
            "type",
            id="bool-is-not-number",
        ),
        pytest.param({"type": "string"}, [1, 2], [0, 1], "type", id="string"),
        pytest.param(
            {"type": "boolean"},
            pa.array([1, 0], pa.int8()),
            [0, 1],
            "type",
            id="int-is-not-boolean",
        ),
        pytest.param({"type": ["integer", "string"]}, [1.5, 2.0], [0], "type", id="type-list"),
        pytest.param({"enum": ["m", "f"]}, ["m", "x", "f"], [1], "enum", id="enum"),
        pytest.param({"enum": [1, 2]}, [1.0, 3.0], [1], "enum", id="enum-1.0-is-1"),
        pytest.param({"enum": [1]}, [True], [0], "enum", id="enum-true-is-not-1"),
        pytest.param({"const": "CN"}, ["CN", "US"], [1], "const", id="const"),
        pytest.param({"minimum": 0}, [0, -1], [1], "minimum", id="minimum"),
        pytest.param({"maximum": 150}, [150, 151], [1], "maximum", id="maximum"),
        pytest.param(
            {"exclusiveMinimum": 0}, [1, 0], [1], "exclusiveMinimum", id="exclusiveMinimum"
        ),
        pytest.param(
            {"exclusiveMaximum": 1.5},
            [1, 2],
            [1],
            "exclusiveMaximum",
            id="exclusiveMaximum-float-bound-int-column",
        ),
        pytest.param({"minimum": 2**63}, [2**62], [0], "minimum", id="bound-beyond-int64"),
        pytest.param({"multipleOf": 3}, [9, 10], [1], "multipleOf", id="multipleOf-int"),
        pytest.param({"multipleOf": 0.5}, [1.5, 1.25], [1], "multipleOf", id="multipleOf-float"),
        pytest.param(
            {"minLength": 2}, ["中文", "中"], [1], "minLength", id="minLength-code-points"
        ),
        pytest.param({"maxLength": 2}, ["ab", "abc"], [1], "maxLength", id="maxLength"),
        pytest.param(
            {"pattern": "^[0-9]{17}[0-9X]$"},
            ["11010119900101123X", "1101011990010112"],
            [1],
            "pattern",
            id="pattern-resident-id",
        ),
        pytest.param(
            {"pattern": "^[A-Z]+$"},
            ["AB\n", "AB\n\n", "ab"],
            [1, 2],
            "pattern",
            id="dollar-allows-one-trailing-newline",
        ),
        pytest.param(
            {"pattern": r"^1[3-9]\d{9}$"},
            ["1391234567٣", "1391234567x"],
            [1],
            "pattern",
            id="backslash-d-is-unicode",
        ),
        pytest.param(
            {"pattern": "^(a+)+$"},
            ["aaa", "a" * 35 + "!"],
            [1],
            "pattern",
            id="catastrophic-for-python-re-is-linear-on-re2",
        ),
        pytest.param(
            {"format": "date"},
            [
                "2024-02-29",
                "2023-02-29",
                "2024-1-01",
                "2024-01-01\n",
                "０２０24-01-01",
                "0000-01-01",
            ],
            [1, 2, 3, 4, 5],
            "format",
            id="format-date",
        ),
    ],
)
def test_each_keyword_rejects_bad_values(
    prop: dict[str, Any], values: Any, bad_rows: list[int], check: str
) -> None:
    table = pa.table({"x": values})
    got = _violations(_schema({"x": prop}), table)
    assert {(row, c) for row, f, c in got if c == check} == {(row, check) for row in bad_rows}
    assert all(f == "x" for _, f, _ in got)


def test_required_null_and_missing_column() -> None:
    schema = _schema({"a": {"type": "string"}, "b": {"type": "string"}}, ("a", "b"))
    got = _violations(schema, pa.table({"a": ["x", None]}))
    assert got == {(0, "b", "required"), (1, "a", "required"), (1, "b", "required")}


def test_required_name_without_a_property_is_satisfied_by_any_value() -> None:
    schema = _schema({"a": {}}, ("b",))
    assert _violations(schema, pa.table({"b": [1, None]})) == {(1, "b", "required")}


def test_null_is_a_value_when_the_type_allows_it() -> None:
    schema = _schema(
        {"a": {"type": ["string", "null"], "enum": ["x"]}, "b": {"type": ["string", "null"]}},
        ("a", "b"),
    )
    got = _violations(schema, pa.table({"a": ["x", None], "b": [None, None]}))
    assert got == {(1, "a", "enum")}  # null present, so not `required`; but not in the enum


def test_additional_properties_only_for_non_null_values() -> None:
    schema = _schema({"a": {"type": "string"}}, additionalProperties=False)
    table = pa.table({"a": ["x", "y"], "extra": [None, 5], "empty": pa.nulls(2)})
    assert _violations(schema, table) == {(1, "extra", "additionalProperties")}
    assert _violations(_schema({"a": {}}), table) == set()


def test_dictionary_encoded_strings() -> None:
    values = pa.array(["AB", "ab", None, "AB", "ab"]).dictionary_encode()
    schema = _schema({"x": {"type": "string", "pattern": "^[A-Z]+$"}}, ("x",))
    got = _violations(schema, pa.table({"x": values}))
    assert got == {(1, "x", "pattern"), (2, "x", "required"), (4, "x", "pattern")}


def test_date32_column_is_always_a_valid_date_and_timestamp_never_is() -> None:
    prop = {"type": "string", "format": "date", "maxLength": 10}
    dates = pa.array([dt.date(2024, 2, 29), None], pa.date32())
    stamps = pa.array([dt.datetime(2024, 1, 1, tzinfo=dt.UTC)], pa.timestamp("us", tz="UTC"))
    assert _violations(_schema({"x": prop}), pa.table({"x": dates})) == set()
    got = _violations(_schema({"x": prop}), pa.table({"x": stamps}))
    assert got == {(0, "x", "format"), (0, "x", "maxLength")}


def test_timestamp_iso_text_for_patterns() -> None:
    stamps = pa.array(
        [
            dt.datetime(2024, 1, 1, 8, tzinfo=dt.UTC),
            dt.datetime(2024, 1, 1, 8, 0, 0, 5, tzinfo=dt.UTC),
        ],
        pa.timestamp("us", tz="Asia/Shanghai"),
    )
    prop = {"type": "string", "pattern": r"^2024-01-01T16:00:00\+08:00$"}
    assert _violations(_schema({"x": prop}), pa.table({"x": stamps})) == {(1, "x", "pattern")}


def test_chunked_columns_and_record_batches() -> None:
    schema = _schema({"n": {"type": "integer", "minimum": 0}})
    table = pa.concat_tables([pa.table({"n": [1, -1]}), pa.table({"n": [-2, 3]})])
    assert _violations(schema, table) == {(1, "n", "minimum"), (2, "n", "minimum")}
    batch = pa.record_batch({"n": [-1, 1]})
    result = BatchValidator(schema).validate(batch)
    assert result.valid.tolist() == [False, True]
    assert (result.num_rows, result.num_invalid, result.error_rate) == (2, 1, 0.5)


def test_decimal_and_float_special_values() -> None:
    schema = _schema(
        {"d": {"type": "integer", "maximum": 10}, "f": {"type": "number", "maximum": 10}}
    )
    table = pa.table(
        {
            "d": pa.array([decimal.Decimal("2.00"), decimal.Decimal("2.5")], pa.decimal128(5, 2)),
            "f": [float("inf"), float("nan")],
        }
    )
    assert _violations(schema, table) == {(1, "d", "type"), (0, "f", "maximum")}


def test_violations_are_ordered_by_row_and_valid_is_numpy() -> None:
    schema = _schema({"a": {"pattern": "^[0-9]$"}, "b": {"pattern": "^[0-9]$"}})
    result = BatchValidator(schema).validate(pa.table({"a": ["x", "1", "y"], "b": ["p", "q", "1"]}))
    assert isinstance(result.valid, np.ndarray)
    assert result.violations.column("row").to_pylist() == [0, 0, 1, 2]
    assert all(result.violations.column("message").to_pylist())


def test_empty_batch_and_contract_input() -> None:
    contract = Contract("c", "1.0.0", _schema({"a": {"type": "string"}}, ("a",)))
    result = BatchValidator(contract).validate(pa.table({"a": pa.array([], pa.string())}))
    assert result.num_rows == 0
    assert result.violations.num_rows == 0


@pytest.mark.parametrize(
    ("schema", "keyword"),
    [
        (_schema({"a": {"type": "object"}}), "type"),
        (_schema({"a": {"anyOf": [{"type": "string"}]}}), "anyOf"),
        (_schema({"a": {"type": "string"}}, patternProperties={"^x": {}}), "patternProperties"),
        (_schema({"a": {}}, additionalProperties={"type": "string"}), "additionalProperties"),
    ],
)
def test_unsupported_keywords_are_refused_up_front(schema: dict[str, Any], keyword: str) -> None:
    with pytest.raises(DeclarationError, match=f"keyword '{keyword}' is not supported"):
        BatchValidator(schema)


def test_unsupported_arrow_types_are_named() -> None:
    table = pa.table({"a": pa.array([[1]], pa.list_(pa.int64()))})
    with pytest.raises(FatalError, match="column 'a' has Arrow type list<item: int64>"):
        BatchValidator(_schema({"a": {}})).validate(table)


def test_json_projection_rules() -> None:
    schema = _schema({"a": {"type": "string"}, "b": {"type": ["string", "null"]}, "c": {}})
    row = {
        "a": None,
        "b": None,
        "c": dt.date(2024, 1, 2),
        "d": dt.datetime(2024, 1, 2, 3, tzinfo=dt.UTC),
        "e": decimal.Decimal("1.5"),
        "f": None,
        "g": 2.0,
    }
    assert json_projection(row, schema) == {
        "b": None,
        "c": "2024-01-02",
        "d": "2024-01-02T03:00:00+00:00",
        "e": 1.5,
        "g": 2.0,
    }


@pytest.mark.parametrize(
    ("pattern", "translatable"),
    [
        ("^[0-9]{17}[0-9X]$", True),
        (r"^1[3-9]\d{9}$", True),
        (r"[^\d\s-]+", True),
        (r"(?s)^.+$", True),
        ("a$|^b", True),
        (r"^(?!0)\d+$", False),  # lookahead
        (r"(a)\1", False),  # backreference
        (r"\bword", False),  # Unicode word boundary
        (r"(?i)abc", False),  # case folding rules differ
        (r"a$b", False),  # `$` not at the end
        (r"a{1001}", False),  # beyond RE2's repeat limit
    ],
)
def test_pattern_translation(pattern: str, translatable: bool) -> None:
    assert (to_re2(pattern) is not None) is translatable


@pytest.mark.parametrize(
    "pattern", [r"^\w+$", r"^\s*\S+$", r"[^\d\s-]", r"(?s)^.a", r"(?a)^\d+$", "^(ab|c)*d?$"]
)
def test_translated_patterns_match_like_python(pattern: str) -> None:
    samples = [
        "abc",
        "a_b٣",
        "  x",
        "\u00a0y",
        "-",
        "٣",
        "12",
        "1\n",
        "\na",
        "abab",
        "cd",
        "",
        "ab\n",
        "x\u2028",
        "中文",
        "é",
    ]
    table = pa.table({"x": samples})
    result = BatchValidator(_schema({"x": {"pattern": pattern}})).validate(table)
    assert result.valid.tolist() == [re.search(pattern, s) is not None for s in samples]
