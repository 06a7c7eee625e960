"""The GB/T 2260 code history: retired, renamed and new codes, dated checks, overrides."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import contracts
import quality
from govex.errors import DeclarationError
from quality import divisions, standards

TODAY = dt.date(2026, 12, 1)


@pytest.fixture(autouse=True)
def _builtin_only() -> Iterator[None]:
    quality.use_division_overrides([])
    yield
    quality.use_division_overrides([])


def _id(area: str, birth: str = "19800101", seq: str = "123") -> str:
    first17 = area + birth + seq
    return first17 + standards.resident_id_check_digit(first17)


def test_new_codes_are_valid_today_and_retired_ones_not() -> None:
    for new in ("350112", "110118"):  # 长乐区 (2017), 密云区 (2015)
        assert standards.is_known_division_code(new, on=TODAY)
    for retired in ("110103", "110104", "110228", "350182"):
        assert not standards.is_known_division_code(retired, on=TODAY)
        assert standards.was_division_code(retired)
    for made_up in ("999999", "110199", "11010", "11010a"):
        assert not standards.is_known_division_code(made_up, on=TODAY)
        assert not standards.was_division_code(made_up)


def test_as_of_a_date_before_the_change() -> None:
    before = dt.date(2009, 6, 30)
    assert standards.is_known_division_code("110103", on=before)  # 崇文区, merged in 2010
    assert not standards.is_known_division_code("350112", on=before)  # 长乐区 came in 2017
    assert standards.is_known_division_code("350182", on=before)  # 长乐市 then
    # A renamed code (东郊区 -> 东丽区, 1992) is valid on both sides of the rename.
    assert standards.is_known_division_code("120110", on=dt.date(1985, 1, 1))
    assert standards.is_known_division_code("120110", on=TODAY)


def test_resident_ids_keep_their_retired_area_codes() -> None:
    ids = [_id("110103"), _id("110104"), _id("110228"), _id("350112", "20180101"),
           _id("999999"), _id("110199")]
    ok = standards.resident_ids_valid(pa.array(ids), today=TODAY)
    assert ok.tolist() == [True, True, True, True, False, False]


def test_vectorised_division_checks() -> None:
    codes = pa.array(["350112", "110103", "999999", None, "35011"])
    assert standards.division_codes_known(codes, on=TODAY).tolist() == [
        True, False, False, False, False]
    dates = pa.array(["2009-06-30", "2009-06-30", "2009-06-30", None, None])
    assert standards.division_codes_valid_on(codes, dates, today=TODAY).tolist() == [
        False, True, False, False, False]
    # A missing date is judged as of today.
    undated = pa.array([None, None], pa.string())
    assert standards.division_codes_valid_on(
        pa.array(["350112", "110103"]), undated, today=TODAY).tolist() == [True, False]


def test_overrides_add_and_replace_codes() -> None:
    assert not standards.is_known_division_code("830000", on=TODAY)
    quality.use_division_overrides([
        {"code": "830000", "name": "台湾居民", "valid_from": "2018-09-01", "valid_until": ""},
        {"code": "350112", "name": "长乐区", "valid_from": "2030-01-01", "valid_until": ""},
    ])
    assert standards.is_known_division_code("830000", on=TODAY)
    assert standards.was_division_code("830000")
    assert not standards.is_known_division_code("350112", on=TODAY)  # replaced
    quality.use_division_overrides([])
    assert not standards.is_known_division_code("830000", on=TODAY)


def test_shipped_history_and_its_source() -> None:
    info = quality.division_reference()
    assert "yescallop/areacodes" in info["source"]
    assert info["last_update"] == "2025-11-04"
    assert info["codes_ever_valid"] > 6000 > info["codes_valid_today"] > 3000



def test_the_shipped_history_indexed_from_its_text_is_the_one_of_its_rows() -> None:
    """A run indexes the shipped CSV straight from its text; its rows, parsed as dates, give
    the same table (and every date in the file is one)."""
    shipped = divisions.builtin()
    rows = shipped.rows
    assert len(rows) > 7000
    again = divisions.DivisionTable(rows)
    assert (again.ever == shipped.ever).all()
    codes = shipped.ever
    days = (dt.date(1990, 1, 1), dt.date(2009, 6, 30), dt.date(2020, 5, 1), dt.date(2026, 1, 2))
    for day in days:
        assert again.valid_at(day) == shipped.valid_at(day)
        keys = np.full(len(codes), day.year * 10_000 + day.month * 100 + day.day, dtype=np.int64)
        assert (again.valid_on(codes, keys) == shipped.valid_on(codes, keys)).all()


# --- the as_of parameter in a contract, through the gate -------------------------------------

def _contract(checks: list[Any]) -> contracts.Contract:
    schema = {
        "type": "object",
        "properties": {
            "area_code": {"type": "string", "x-govex-checks": checks},
            "registered_on": {"type": "string", "format": "date"},
        },
    }
    contracts.check_contract_schema(schema, file="test.json")
    return contracts.Contract(name="registration", version="1.0.0", schema=schema)


def _failed_rows(contract: contracts.Contract, table: pa.Table) -> list[int]:
    gate = quality.QualityGate(contract, {"max_error_rate": 1.0}, options={"as_of": "2026-12-01"})
    result = gate.evaluate(table)
    return [i for i, ok in enumerate(result.passed.tolist()) if not ok]


ROWS = pa.table({
    "area_code": ["350112", "110103", "110103", "350112", "999999"],
    "registered_on": ["2020-05-01", "2009-06-30", "2020-05-01", "2009-06-30", "2009-06-30"],
})


def test_gate_division_code_today() -> None:
    assert _failed_rows(_contract(["cn_division_code"]), ROWS) == [1, 2, 4]


def test_gate_division_code_as_of_a_fixed_date() -> None:
    contract = _contract([{"cn_division_code": {"as_of": "2009-06-30"}}])
    assert _failed_rows(contract, ROWS) == [0, 3, 4]


def test_gate_division_code_as_of_the_record_date() -> None:
    contract = _contract([{"cn_division_code": {"as_of": "record:registered_on"}}])
    assert _failed_rows(contract, ROWS) == [2, 3, 4]


@pytest.mark.parametrize(("checks", "message"), [
    ([{"cn_division_code": {"asof": "2009-06-30"}}], "no parameter 'asof'"),
    ([{"cn_uscc": {"as_of": "2009-06-30"}}], "takes no parameters"),
    ([{"cn_division_code": {"as_of": "2009-6-30"}}], "as_of must be a date"),
    ([{"cn_division_code": {"as_of": "record:nope"}}], "as_of must be a date"),
    ([{"cn_division_code": {"as_of": "record:area_code"}}], "as_of must be a date"),
    ([{"cn_division_code": {}, "cn_uscc": {}}], "x-govex-checks must be a list"),
    (["cn_division_code", {"cn_division_code": {}}], "x-govex-checks must be a list"),
])
def test_bad_check_parameters_are_declaration_errors(checks: list[Any], message: str) -> None:
    schema = {
        "type": "object",
        "properties": {
            "area_code": {"type": "string", "x-govex-checks": checks},
            "registered_on": {"type": "string", "format": "date"},
        },
    }
    with pytest.raises(DeclarationError, match=message):
        contracts.check_contract_schema(schema, file="contracts/x/1.0.0.json")


def test_changed_check_parameter_is_breaking() -> None:
    old = _contract(["cn_division_code"]).schema
    new = _contract([{"cn_division_code": {"as_of": "2009-06-30"}}]).schema
    kinds = {c.kind for c in contracts.compare(old, new)}
    assert "checks_added" in kinds


def test_data_files_ship_beside_the_module() -> None:
    here = Path(divisions.__file__).parent / "reference"
    assert (here / "gbt2260.csv").is_file()
    assert (here / "gbt2260.json").is_file()
