"""Placing a leaked file's columns on a subscription's fields, and typing its text as
delivered: the pieces `identify` relies on, fed what they must refuse."""

from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from exchange.leak import mapping, values


def _any(column: str, field: str) -> bool:
    del column, field
    return True


def test_names_settle_what_they_can_and_the_rest_is_searched() -> None:
    found = mapping.candidates(["ID No", "x", "y"], ["id_no", "name", "phone"], _any)
    named = [a for a in found.assignments if a.named]
    assert named
    assert all(a.columns["id_no"] == "ID No" for a in named)
    # With names: 2 ways for the two renamed columns; without: 3! = 6, the same 2 among them.
    assert len(found.assignments) == 6
    assert max(found.assignments, key=lambda a: a.named).named == 1


def test_a_field_no_column_can_hold_is_named() -> None:
    def fit(column: str, field: str) -> bool:
        return field != "birth_date"

    found = mapping.candidates(["a", "b"], ["name", "birth_date"], fit)
    assert (found.assignments, found.missing) == ([], ("birth_date",))


def test_too_few_columns_for_the_fields() -> None:
    def fit(column: str, field: str) -> bool:
        return column == "a"  # one column fits both fields, the other fits none

    found = mapping.candidates(["a", "b"], ["name", "phone"], fit)
    assert (found.assignments, found.missing, found.too_many) == ([], (), 0)


def test_the_search_is_bounded() -> None:
    """Nine renamed columns that all fit nine fields: 9! assignments, more than the bound;
    the search gives up (counting one past it) instead of trying them all."""
    fields = [f"f{i}" for i in range(9)]
    columns = [f"c{i}" for i in range(9)]
    found = mapping.candidates(columns, fields, _any)
    assert found.assignments == []
    assert found.too_many == mapping.MAX_ASSIGNMENTS + 1
    # Eight are within it; named columns shrink the search to what is left.
    assert len(mapping.candidates(columns[:8], fields[:8], _any).assignments) == math.factorial(8)
    named = mapping.candidates([*fields[:7], "c7", "c8"], fields, _any)
    assert len(named.assignments) == 2


def test_typed_reads_every_spelling_of_a_delivered_value() -> None:
    stamps, ok = values.typed(pa.array([
        "2026-11-01 08:00:00+00:00", "2026-11-01T16:00:00+08:00", "2026-11-01 08:00:00",
        "2026-11-01 08:00:00.000000Z", "2026-11-01T08:00:00.0000001Z", None, "yesterday",
        "2026-13-01 08:00:00",
    ]), pa.timestamp("us", tz="UTC"))
    instant = dt.datetime(2026, 11, 1, 8, tzinfo=dt.UTC)
    assert stamps.to_pylist()[:5] == [instant] * 5
    assert ok.to_pylist() == [True] * 6 + [False, False]
    numbers, ok = values.typed(pa.array(["1.50", "1.5", " 2 ", "1e3", "abc"]), pa.float64())
    assert numbers.to_pylist()[:4] == [1.5, 1.5, 2.0, 1000.0]
    assert ok.to_pylist() == [True, True, True, True, False]
    counts, ok = values.typed(pa.array(["7", "7.0", "7.5", "99999999999999999999"]), pa.int64())
    assert counts.to_pylist()[:2] == [7, 7]
    assert ok.to_pylist() == [True, True, False, False]
    days, ok = values.typed(pa.array(["1990-01-02", "1990-01-02 00:00:00", "1990-02-30"]),
                            pa.date32())
    assert days.to_pylist()[:2] == [dt.date(1990, 1, 2)] * 2
    assert ok.to_pylist() == [True, True, False]
    flags, ok = values.typed(pa.array(["t", "FALSE", "1", "maybe"]), pa.bool_())
    assert flags.to_pylist()[:3] == [True, False, True]
    assert ok.to_pylist() == [True, True, True, False]


@pytest.mark.parametrize(("text", "masking", "fits"), [
    (["居*", "张**", None], "mask_name", True),
    (["居民", "张*"], "mask_name", False),  # an unmasked name was not delivered masked
    (["g" * 64, None], "hash", False),  # not hexadecimal
    (["0123456789abcdef" * 4], "hash", True),
    ([None, None], "hash", True),  # an empty column holds anything
    (["138****0001"], "none", True),
])
def test_fits_knows_what_masking_leaves(text: list[str | None], masking: str,
                                        fits: bool) -> None:
    assert values.fits(pa.array(text, pa.string()), pa.string(), masking) is fits


def test_typed_renders_as_the_delivery_did() -> None:
    """Parsed back, a value renders as Arrow rendered the delivered one: the fingerprint's
    text."""
    stamps, _ = values.typed(pa.array(["2026-11-01T16:00:00+08:00"]),
                             pa.timestamp("us", tz="UTC"))
    delivered = pa.array([dt.datetime(2026, 11, 1, 8, tzinfo=dt.UTC)],
                         pa.timestamp("us", tz="UTC"))
    assert pc.cast(stamps, pa.string()).equals(pc.cast(delivered, pa.string()))
