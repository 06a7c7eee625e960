"""Benchmark: vectorised contract validation vs jsonschema record by record.

Builds N rows (default 1,000,000) for a 10-property resident contract with a few per cent of
invalid rows, times `BatchValidator.validate` on the whole batch (best of --repeat runs), times
the jsonschema reference (Arrow -> Python rows -> json_projection -> iter_errors) on a sample and
scales it up, checks both agree on that sample, and prints rows/s for both and the ratio.

    govex bench validate [--rows N] [--sample N] [--invalid 0.03]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as _compute

from contracts import BatchValidator, reference_violations

pc: Any = _compute  # pyarrow-stubs' overloads do not follow string-building code

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "id_no": {"type": "string", "pattern": "^[0-9]{17}[0-9X]$", "x-govex-pii": "id_number"},
        "name": {"type": "string", "minLength": 1, "maxLength": 50, "x-govex-pii": "name"},
        "gender": {"type": "string", "enum": ["男", "女"]},
        "birth_date": {"type": "string", "format": "date"},
        "phone": {"type": ["string", "null"], "pattern": r"^1[3-9]\d{9}$", "x-govex-pii": "phone"},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "income": {"type": ["number", "null"], "minimum": 0},
        "district": {"type": "string", "pattern": "^[0-9]{6}$"},
        "married": {"type": "boolean"},
        "updated_at": {"type": "string", "format": "date-time"},
    },
    "required": ["id_no", "name", "gender", "birth_date", "age", "district"],
    "additionalProperties": False,
}


def _digits(rng: np.random.Generator, rows: int, width: int) -> Any:
    """Random zero-padded decimal strings of a fixed width, built without a Python loop."""
    numbers = pa.array(rng.integers(0, 10**width, rows, dtype=np.int64))
    return pc.utf8_lpad(pc.cast(numbers, pa.string()), width, "0")


def build_table(rows: int, invalid: float, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    surnames = pa.array(["王", "李", "张", "刘", "陈", "杨", "赵", "黄"])
    given = pa.array(["伟", "芳", "娜", "敏", "静", "丽强", "磊", "军"])
    check_char = pa.array(list("0123456789X"))
    birth = pa.array(rng.integers(-20000, 19000, rows).astype("datetime64[D]"))
    columns: dict[str, pa.Array[Any]] = {
        "id_no": pc.binary_join_element_wise(
            _digits(rng, rows, 17), check_char.take(rng.integers(0, 11, rows)), ""
        ),
        "name": pc.binary_join_element_wise(
            surnames.take(rng.integers(0, 8, rows)), given.take(rng.integers(0, 8, rows)), ""
        ),
        "gender": pa.array(np.where(rng.random(rows) < 0.5, "男", "女")),
        "birth_date": pc.strftime(birth, format="%Y-%m-%d"),
        "phone": pc.binary_join_element_wise(
            pa.array(np.full(rows, "13")), _digits(rng, rows, 9), ""
        ),
        "age": pa.array(rng.integers(0, 100, rows)),
        "income": pa.array(rng.gamma(2.0, 5000.0, rows)),
        "district": _digits(rng, rows, 6),
        "married": pa.array(rng.random(rows) < 0.5),
        "updated_at": pa.array(
            np.datetime64("2026-01-01T00:00:00", "us") + rng.integers(0, 10**12, rows),
            pa.timestamp("us", tz="UTC"),
        ),
    }
    # Corrupt a few per cent of rows, one field each, in ways real extracts go wrong.
    bad = rng.random(rows) < invalid
    which = rng.integers(0, 6, rows)
    corruptions = {
        "id_no": pa.scalar("11010119900101123x"),
        "gender": pa.scalar("未知"),
        "birth_date": pa.scalar("2023-02-30"),
        "phone": pa.scalar("1391234567"),
        "age": pa.scalar(-1),
        "district": pa.scalar("11010"),
    }
    for i, (name, value) in enumerate(corruptions.items()):
        columns[name] = pc.if_else(pa.array(bad & (which == i)), value, columns[name])
    # Some optional NULLs, which are fine.
    columns["phone"] = pc.if_else(
        pa.array(rng.random(rows) < 0.1), pa.scalar(None, pa.string()), columns["phone"]
    )
    return pa.table(columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the batch")
    parser.add_argument("--sample", type=int, default=20_000, help="rows validated by jsonschema")
    parser.add_argument("--invalid", type=float, default=0.03, help="fraction of corrupted rows")
    parser.add_argument("--repeat", type=int, default=3, help="vectorised runs; best is kept")
    args = parser.parse_args()

    table = build_table(args.rows, args.invalid)
    validator = BatchValidator(SCHEMA)
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = validator.validate(table)
        best = min(best, time.perf_counter() - start)

    sample = table.slice(0, min(args.sample, args.rows))
    start = time.perf_counter()
    expected = reference_violations(SCHEMA, sample.to_pylist())
    reference_seconds = time.perf_counter() - start
    agree = result.valid[: sample.num_rows].tolist() == [not e for e in expected]

    vector_rate = args.rows / best
    reference_rate = sample.num_rows / reference_seconds
    print(
        f"rows: {args.rows:,}  properties: {len(SCHEMA['properties'])}  "
        f"invalid rows: {result.num_invalid:,} ({result.error_rate:.2%})  "
        f"violations: {result.violations.num_rows:,}"
    )
    print(f"vectorised (BatchValidator):   {best:8.3f} s  {vector_rate:12,.0f} rows/s")
    print(
        f"jsonschema per record, {sample.num_rows:,} rows scaled: "
        f"{reference_seconds * args.rows / sample.num_rows:8.3f} s  {reference_rate:12,.0f} rows/s"
    )
    print(f"speed-up: {vector_rate / reference_rate:,.1f}x   agreement on sample: {agree}")
    if not agree:
        message = "the vectorised validator disagrees with jsonschema on the sample"
        raise SystemExit(message)


if __name__ == "__main__":
    main()
