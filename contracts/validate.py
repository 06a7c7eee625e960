"""Vectorised contract validation of Arrow batches, agreeing row for row with jsonschema.

`BatchValidator` compiles a contract once into per-property plans and checks a whole batch
with pyarrow.compute and numpy: the only Python loops run over columns, over the keywords of a
property, and, where no exact vectorised form exists (ISO text of timestamps), over the
*distinct* values of one column. Every pattern runs on RE2 (`contracts.patterns`); a pattern
RE2 cannot run is refused when the validator is built, never evaluated with Python `re`. Row
semantics, including what a NULL means, are those of `contracts.reference` (jsonschema on
`json_projection(row)`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as _compute

from contracts.model import ANNOTATION_KEYWORDS, Contract, property_types
from contracts.patterns import pattern_refusal, to_re2
from contracts.reference import to_json_scalar
from govex.errors import DeclarationError, FatalError

Mask = npt.NDArray[np.bool_]
# Column code is generic over Arrow types; pyarrow-stubs' per-type overloads cannot follow it.
ArrowArray = Any
pc: Any = _compute
Kind = Literal["int", "float", "bool", "string", "date", "timestamp", "null"]

SCALAR_TYPES = frozenset({"string", "integer", "number", "boolean", "null"})
_PROPERTY_KEYWORDS = (
    frozenset(
        {
            "type",
            "enum",
            "const",
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
            "multipleOf",
            "minLength",
            "maxLength",
            "pattern",
            "format",
        }
    )
    | ANNOTATION_KEYWORDS  # never reject a value: accepted and ignored
)
_TOP_LEVEL = "(top level)"  # the `field` of errors about the schema's top level
_TOP_KEYWORDS = (
    frozenset({"type", "properties", "required", "additionalProperties"}) | ANNOTATION_KEYWORDS
)
# ISO date shape that jsonschema's `date` format demands before `date.fromisoformat`.
_DATE_SHAPE = r"\A[0-9]{4}-[0-9]{2}-[0-9]{2}\z"
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


@dataclass(frozen=True)
class BatchValidation:
    """Outcome for one batch: a validity flag per row and one row per violation.

    `violations` has columns row (int64), field (string, null when no single field is at
    fault), check (the JSON Schema keyword that failed) and message, ordered by row.
    """

    valid: Mask
    violations: pa.Table

    @property
    def num_rows(self) -> int:
        return len(self.valid)

    @property
    def num_invalid(self) -> int:
        return int(np.count_nonzero(~self.valid))

    @property
    def error_rate(self) -> float:
        return self.num_invalid / self.num_rows if self.num_rows else 0.0


_VIOLATION_COLUMNS: dict[str, pa.DataType] = {
    "row": pa.int64(),
    "field": pa.string(),
    "check": pa.string(),
    "message": pa.string(),
}
VIOLATION_SCHEMA = pa.schema(_VIOLATION_COLUMNS)


def _unsupported(field: str, keyword: str, value: Any) -> DeclarationError:
    return DeclarationError(
        f"keyword {keyword!r} is not supported by the vectorised validator; contracts for "
        "columnar data use type, enum, const, ranges, lengths, pattern, format and multipleOf",
        field=field,
        value=value,
    )


@dataclass(frozen=True)
class _PropertyPlan:
    """One property's keywords, pre-digested for vectorised evaluation."""

    name: str
    schema: dict[str, Any]
    types: frozenset[str] | None
    nullable: bool
    pattern_re2: str | None = None
    string_keywords: bool = False
    messages: dict[str, str] = field(default_factory=dict)


def _plan(name: str, prop: Any) -> _PropertyPlan:
    if not isinstance(prop, dict):
        raise _unsupported(name, "boolean schema", prop)
    for keyword in prop:
        if keyword not in _PROPERTY_KEYWORDS and not keyword.startswith("x-"):
            raise _unsupported(name, keyword, prop[keyword])
    types = property_types(prop)
    if types is not None and not types <= SCALAR_TYPES:
        raise _unsupported(name, "type", sorted(types - SCALAR_TYPES))
    pattern = prop.get("pattern")
    re2 = None
    if pattern is not None:
        refusal = pattern_refusal(pattern)
        if refusal is not None:
            raise DeclarationError(refusal, field=name, value=pattern)
        re2 = to_re2(pattern)
    messages = {
        "type": f"value is not of type {prop.get('type')!r}",
        "enum": f"value is not one of {prop.get('enum')!r}",
        "const": f"value is not {prop.get('const')!r}",
        "minimum": f"value is less than the minimum {prop.get('minimum')!r}",
        "maximum": f"value is greater than the maximum {prop.get('maximum')!r}",
        "exclusiveMinimum": f"value is not greater than {prop.get('exclusiveMinimum')!r}",
        "exclusiveMaximum": f"value is not less than {prop.get('exclusiveMaximum')!r}",
        "multipleOf": f"value is not a multiple of {prop.get('multipleOf')!r}",
        "minLength": f"text is shorter than {prop.get('minLength')!r} characters",
        "maxLength": f"text is longer than {prop.get('maxLength')!r} characters",
        "pattern": f"text does not match the pattern {pattern!r}",
        "format": f"text is not a valid {prop.get('format')!r}",
        "required": f"required property {name!r} is missing or null",
    }
    return _PropertyPlan(
        name=name,
        schema=prop,
        types=types,
        nullable=types is not None and "null" in types,
        pattern_re2=re2,
        string_keywords=any(
            k in prop for k in ("enum", "const", "minLength", "maxLength", "pattern")
        )
        or prop.get("format") == "date",
        messages=messages,
    )


def _kind(column: str, arrow_type: pa.DataType) -> Kind:
    if pa.types.is_integer(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "float"  # JSON has one number type; decimals are compared as floats
    if pa.types.is_boolean(arrow_type):
        return "bool"
    if (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or (pa.types.is_string_view(arrow_type))
    ):
        return "string"
    if pa.types.is_date(arrow_type):
        return "date"
    if pa.types.is_timestamp(arrow_type):
        return "timestamp"
    if pa.types.is_null(arrow_type):
        return "null"
    msg = (
        f"column {column!r} has Arrow type {arrow_type}, which contract validation does not "
        "support; cast it to a string, number, boolean, date or timestamp column first"
    )
    raise FatalError(msg)


def _filled_numpy(values: ArrowArray, kind: Kind) -> npt.NDArray[Any]:
    """Values as numpy with nulls replaced (their results are masked out afterwards)."""
    if pa.types.is_decimal(values.type):
        values = pc.cast(values, pa.float64())
    filler = {"int": 0, "float": 0.0, "bool": False}[kind]
    return np.asarray(values.fill_null(filler).to_numpy(zero_copy_only=False))


def _bool_mask(result: ArrowArray) -> Mask:
    return np.asarray(result.fill_null(False).to_numpy(zero_copy_only=False), dtype=np.bool_)


def _iso_text(values: ArrowArray, kind: Kind) -> ArrowArray:
    """The ISO strings jsonschema sees for date/timestamp values (see json_projection)."""
    if kind == "string":
        # One string type for comparisons against enum value sets built as pa.string().
        return values if values.type == pa.string() else pc.cast(values, pa.string())
    if kind == "date":
        return pc.cast(values, pa.string())  # YYYY-MM-DD, as date.isoformat for years 1..9999
    # datetime.isoformat depends on the tz and drops zero microseconds: compute it in Python,
    # once per distinct timestamp.
    distinct = pc.unique(values)
    text: ArrowArray = pa.array(
        [None if v is None else to_json_scalar(v) for v in distinct.to_pylist()], pa.string()
    )
    return text.take(pc.index_in(values, value_set=distinct))


def _int_exact_bound(bound: float | int, op: str) -> int | None:
    """Rewrite `int OP bound` as `int OP' k` with an integer k (exact, unlike casting to float)."""
    if isinstance(bound, int):
        return bound
    if not math.isfinite(bound):
        return None
    return math.ceil(bound) if op in ("<", ">=") else math.floor(bound)


def _compare(values: npt.NDArray[Any], kind: Kind, op: str, bound: float | int) -> Mask:
    """Elementwise `values OP bound`, exact for integer columns."""
    if kind == "int":
        k = _int_exact_bound(bound, op)
        if k is None:  # ±infinity
            true = (op in ("<", "<=")) == (bound > 0)
            return np.full(len(values), true)
        info = np.iinfo(values.dtype)
        if k > info.max or k < info.min:
            below = k < info.min  # every value is above k
            true = (op in (">", ">=")) == below
            return np.full(len(values), true)
        rhs: Any = values.dtype.type(k)
    else:
        rhs = float(bound)
    with np.errstate(invalid="ignore"):
        if op == "<":
            return np.asarray(values < rhs)
        if op == "<=":
            return np.asarray(values <= rhs)
        if op == ">":
            return np.asarray(values > rhs)
        return np.asarray(values >= rhs)


def _multiple_of_fails(values: npt.NDArray[Any], kind: Kind, step: float | int) -> Mask:
    """jsonschema's multipleOf: `x % step` for an int step, `x / step` integral for a float."""
    with np.errstate(all="ignore"):
        if isinstance(step, int):
            if kind == "int":
                return np.asarray(values % step != 0)
            return np.asarray(np.mod(values, step) != 0)
        quotient = values / step
        fails = np.asarray(quotient != np.trunc(quotient))
        # Overflow to infinity: jsonschema falls back to exact fractions; so do we (rare values).
        for i in np.flatnonzero(np.isinf(quotient) & np.isfinite(values)):
            fails[i] = (Fraction(values[i].item()) / Fraction(step)).denominator != 1
        return fails


def _members(kind: Kind, candidates: list[Any], values: npt.NDArray[Any]) -> list[Any]:
    """Enum/const members that can equal a value of this column kind, in its representation."""
    out: list[Any] = []
    for m in candidates:
        if kind == "bool":
            if isinstance(m, bool):
                out.append(m)
        elif isinstance(m, bool) or not isinstance(m, int | float):
            continue  # JSON equality: True is not 1, "1" is not 1
        elif kind == "float":
            out.append(float(m))
        elif isinstance(m, int) or m.is_integer():
            k = int(m)
            info = np.iinfo(values.dtype)
            if info.min <= k <= info.max:
                out.append(k)
    return out


def _gather(mask: Mask, index: npt.NDArray[Any]) -> Mask:
    """Per-row result from a per-dictionary-entry result (null rows are masked by the caller)."""
    if not len(mask):  # an empty dictionary: every row is null
        return np.zeros(len(index), dtype=np.bool_)
    return np.asarray(mask[index], dtype=np.bool_)


def _date_fails(text: ArrowArray) -> Mask:
    """jsonschema's `date` format: YYYY-MM-DD with ASCII digits, and a real calendar date."""
    shaped = pc.match_substring_regex(text, pattern=_DATE_SHAPE).fill_null(False)
    safe = pc.if_else(shaped, text, pa.scalar("2000-01-01"))
    year = pc.cast(pc.utf8_slice_codeunits(safe, 0, 4), pa.int64()).to_numpy()
    month = pc.cast(pc.utf8_slice_codeunits(safe, 5, 7), pa.int64()).to_numpy()
    day = pc.cast(pc.utf8_slice_codeunits(safe, 8, 10), pa.int64()).to_numpy()
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_ok = (month >= 1) & (month <= 12)
    days = _DAYS_IN_MONTH[np.where(month_ok, month, 0)] + ((month == 2) & leap)
    ok = _bool_mask(shaped) & (year >= 1) & month_ok & (day >= 1) & (day <= days)
    return np.asarray(~ok)


class BatchValidator:
    """Checks Arrow batches against one contract, vectorised, with jsonschema's verdicts."""

    def __init__(self, contract_or_schema: Contract | Mapping[str, Any]) -> None:
        schema = (
            contract_or_schema.schema
            if isinstance(contract_or_schema, Contract)
            else dict(contract_or_schema)
        )
        for keyword in schema:
            if keyword not in _TOP_KEYWORDS and not keyword.startswith("x-"):
                raise _unsupported(_TOP_LEVEL, keyword, schema[keyword])
        if schema.get("type", "object") != "object":
            raise _unsupported(_TOP_LEVEL, "type", schema.get("type"))
        additional = schema.get("additionalProperties", True)
        if not isinstance(additional, bool):
            raise _unsupported(_TOP_LEVEL, "additionalProperties", additional)
        self.schema = schema
        self.closed = additional is False
        self.required: tuple[str, ...] = tuple(schema.get("required", ()))
        self.plans = {
            name: _plan(name, prop) for name, prop in schema.get("properties", {}).items()
        }

    def validate(self, batch: pa.Table | pa.RecordBatch) -> BatchValidation:
        """Validate every row of the batch; never raises for bad data, only reports it."""
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        rows = table.num_rows
        found: list[tuple[str | None, str, str, Mask]] = []
        present: dict[str, Mask] = {}
        for index, name in enumerate(table.column_names):
            if name in present or name in table.column_names[:index]:
                continue  # a duplicate column name cannot be one JSON property; first wins
            column = table.column(index)
            plan = self.plans.get(name)
            if plan is None:
                # Undeclared: a NULL is absent, a value is present (and may be refused).
                present[name] = has_value = ~_bool_mask(column.is_null())
                if self.closed:
                    message = f"column {name!r} is not a property of the contract"
                    found.append((name, "additionalProperties", message, has_value))
                continue
            present[name], checks = self._check_column(plan, column)
            found.extend((name, check, plan.messages[check], mask) for check, mask in checks)
        for name in self.required:
            missing = ~present[name] if name in present else np.ones(rows, dtype=np.bool_)
            plan = self.plans.get(name)
            message = plan.messages["required"] if plan else f"required property {name!r} missing"
            found.append((name, "required", message, missing))
        return self._assemble(rows, found)

    def _check_column(
        self, plan: _PropertyPlan, column: ArrowArray
    ) -> tuple[Mask, list[tuple[str, Mask]]]:
        """(row has the property, [(keyword, failing rows)]) for one column."""
        array: Any = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
        if pa.types.is_dictionary(array.type):
            # Evaluate on the distinct dictionary values, then gather by index.
            values = array.dictionary
            index = np.asarray(array.indices.fill_null(0).to_numpy(zero_copy_only=False))
            null_rows = _bool_mask(array.is_null()) | _gather(_bool_mask(values.is_null()), index)
        else:
            values, index = array, None
            null_rows = _bool_mask(array.is_null())
        kind = _kind(plan.name, values.type)
        non_null_values = ~_bool_mask(values.is_null())
        checks: list[tuple[str, Mask]] = []
        for keyword, fails in self._value_checks(plan, values, kind):
            mask = fails & non_null_values
            mask = _gather(mask, index) if index is not None else mask
            checks.append((keyword, mask & ~null_rows))
        if plan.nullable:
            # A NULL is the JSON value null here: `type` accepts it; enum/const must list it.
            if "enum" in plan.schema and not any(m is None for m in plan.schema["enum"]):
                checks.append(("enum", null_rows))
            if "const" in plan.schema and plan.schema["const"] is not None:
                checks.append(("const", null_rows))
            return np.ones(len(null_rows), dtype=np.bool_), checks
        return ~null_rows, checks

    def _value_checks(
        self, plan: _PropertyPlan, values: ArrowArray, kind: Kind
    ) -> list[tuple[str, Mask]]:
        """Failure masks over `values` (nulls are masked out by the caller)."""
        prop = plan.schema
        size = len(values)
        out: list[tuple[str, Mask]] = []
        if kind == "null":
            return out
        numeric = kind in ("int", "float")
        data = _filled_numpy(values, kind) if kind in ("int", "float", "bool") else None

        if plan.types is not None:
            out.append(("type", ~self._type_ok(plan.types, kind, data, size)))

        text = (
            _iso_text(values, kind)
            if kind in ("string", "date", "timestamp") and (plan.string_keywords)
            else None
        )
        for keyword in ("enum", "const"):
            if keyword not in prop:
                continue
            candidates = prop["enum"] if keyword == "enum" else [prop["const"]]
            if text is not None:
                strings = [m for m in candidates if isinstance(m, str)]
                member = pc.is_in(text, value_set=pa.array(strings, pa.string()))
                out.append((keyword, ~_bool_mask(member)))
            elif data is not None:
                members = _members(kind, candidates, data)
                out.append((keyword, ~np.isin(data, np.array(members, dtype=data.dtype))))
            else:
                out.append((keyword, np.ones(size, dtype=np.bool_)))

        if numeric and data is not None:
            for keyword, op in (
                ("minimum", "<"),
                ("maximum", ">"),
                ("exclusiveMinimum", "<="),
                ("exclusiveMaximum", ">="),
            ):
                if keyword in prop:
                    out.append((keyword, _compare(data, kind, op, prop[keyword])))
            if "multipleOf" in prop:
                out.append(("multipleOf", _multiple_of_fails(data, kind, prop["multipleOf"])))

        if text is not None:
            if "minLength" in prop or "maxLength" in prop:
                length = _filled_numpy(pc.utf8_length(text), "int")
                if "minLength" in prop:
                    out.append(("minLength", np.asarray(length < prop["minLength"])))
                if "maxLength" in prop:
                    out.append(("maxLength", np.asarray(length > prop["maxLength"])))
            if "pattern" in prop:
                out.append(("pattern", self._pattern_fails(plan, text)))
            if prop.get("format") == "date" and kind != "date":  # a date32 is always a date
                out.append(("format", _date_fails(text)))
        return out

    @staticmethod
    def _type_ok(
        types: frozenset[str], kind: Kind, data: npt.NDArray[Any] | None, size: int
    ) -> Mask:
        if kind == "int":
            ok = "integer" in types or "number" in types
        elif kind == "float":
            if "number" in types:
                ok = True
            elif "integer" in types and data is not None:
                # jsonschema counts 2.0 as an integer (draft 2020-12), but not NaN or infinity.
                with np.errstate(invalid="ignore"):
                    return np.asarray(np.isfinite(data) & (data == np.trunc(data)))
            else:
                ok = False
        elif kind == "bool":
            ok = "boolean" in types  # a JSON boolean is never an integer or a number
        else:
            ok = "string" in types
        return np.full(size, ok, dtype=np.bool_)

    @staticmethod
    def _pattern_fails(plan: _PropertyPlan, text: ArrowArray) -> Mask:
        assert plan.pattern_re2 is not None  # noqa: S101 - _plan refuses a pattern without one
        return ~_bool_mask(pc.match_substring_regex(text, pattern=plan.pattern_re2))

    @staticmethod
    def _assemble(rows: int, found: list[tuple[str | None, str, str, Mask]]) -> BatchValidation:
        valid = np.ones(rows, dtype=np.bool_)
        row_parts: list[npt.NDArray[np.int64]] = []
        code_parts: list[npt.NDArray[np.int64]] = []
        labels: list[tuple[str | None, str, str]] = []
        for field_name, check, message, mask in found:
            hit = np.flatnonzero(mask)
            if not len(hit):
                continue
            valid[hit] = False
            row_parts.append(hit.astype(np.int64))
            code_parts.append(np.full(len(hit), len(labels), dtype=np.int64))
            labels.append((field_name, check, message))
        if not row_parts:
            return BatchValidation(valid, VIOLATION_SCHEMA.empty_table())
        row_index = np.concatenate(row_parts)
        codes = np.concatenate(code_parts)
        order = np.argsort(row_index, kind="stable")
        row_index, codes = row_index[order], codes[order]
        take: Any = pa.array(codes)
        table = pa.table(
            {
                "row": pa.array(row_index, pa.int64()),
                "field": pa.array([lab[0] for lab in labels], pa.string()).take(take),
                "check": pa.array([lab[1] for lab in labels], pa.string()).take(take),
                "message": pa.array([lab[2] for lab in labels], pa.string()).take(take),
            },
            schema=VIOLATION_SCHEMA,
        )
        return BatchValidation(valid, table)
