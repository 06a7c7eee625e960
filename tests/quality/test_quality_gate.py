"""QualityGate on the demo city: every planted defect caught under its check name, no clean
record flagged; suite compilation; blocking; lineage facts; Data Docs."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import quality
from govex.errors import DeclarationError, FatalError
from quality.gate import FAILURE_SCHEMA

from .conftest import contract_of, to_table

GATED = ["PSB-RES-001", "AMR-RES-001", "HRSS-RES-001", "CIVIL-RES-001", "HEALTH-RES-001",
         "HEALTH-RES-002"]
_GATES: dict[str, Any] = {}


def gate_for(resource: dict[str, Any]) -> Any:
    code = resource["code"]
    if code not in _GATES:  # one gate (GE context + suite) per resource for the whole module
        _GATES[code] = quality.QualityGate(
            contract_of(resource), resource.get("quality"), key=resource["key"]
        )
    return _GATES[code]


def _failed_by_key(result: Any, keys: list[str]) -> dict[str, set[tuple[str, str]]]:
    out: dict[str, set[tuple[str, str]]] = {}
    for item in result.failures.to_pylist():
        out.setdefault(keys[item["row"]], set()).add((item["check"], item["column"]))
    return out


@pytest.mark.parametrize("code", GATED)
def test_planted_defects_caught_and_clean_rows_pass(
    code: str, demo: Any, city_resources: Any
) -> None:
    generated, resource = demo[code], city_resources[code]
    contract = contract_of(resource)
    gate = gate_for(resource)
    batch = to_table(generated.rows, contract)
    result = gate.evaluate(batch)
    assert result.failures.schema == FAILURE_SCHEMA
    keys = [generated.key_of(row) for row in generated.rows]
    failed = _failed_by_key(result, keys)
    planted = {d.key: d for d in generated.defects}
    for key, defect in planted.items():
        assert (defect.check, defect.column) in failed.get(key, set()), (key, defect)
    assert set(failed) == set(planted)  # no clean record is flagged
    assert result.num_failed == len(planted)
    assert np.array_equal(~result.passed, np.isin(np.arange(len(keys)), result.failures.column(
        "row").to_numpy()))
    # schema_visible defects are caught by the contract's checks too, the others only by the
    # national-standard (GE) checks.
    contract_checks = {c.check for c in gate.compiled.checks if c.engine == "contract"}
    for defect in generated.defects:
        by_contract = any(check in contract_checks for check, _ in failed[defect.key])
        assert by_contract == defect.schema_visible, defect
    # per check counts agree with the manifest
    counts = {(c.check, c.column): c.failed for c in result.checks}
    for (check, column), n in _manifest_counts(generated.defects).items():
        assert counts[(check, column)] >= n


def _manifest_counts(defects: Any) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for d in defects:
        out[(d.check, d.column)] = out.get((d.check, d.column), 0) + 1
    return out


def test_every_failing_row_lists_every_failed_check(demo: Any, city_resources: Any) -> None:
    resource = city_resources["PSB-RES-001"]
    contract = contract_of(resource)
    rows = copy.deepcopy(demo["PSB-RES-001"].rows[:50])
    clean = [r for r in rows if r["name"] and quality.standards.is_valid_resident_id(r["id_no"])]
    row = clean[0]
    row["id_no"] = row["id_no"][:17] + ("0" if row["id_no"][17] != "0" else "1")  # bad check
    row["gender"] = "未知"  # enum
    row["phone"] = "123"  # pattern + cn_mobile_phone
    result = gate_for(resource).evaluate(to_table([row], contract))
    got = {(f["check"], f["column"]) for f in result.failures.to_pylist()}
    assert {("cn_resident_id", "id_no"), ("enum", "gender"), ("pattern", "phone"),
            ("cn_mobile_phone", "phone")} <= got
    assert result.passed.tolist() == [False]


def test_dirty_batch_exceeds_max_error_rate(demo: Any, city_resources: Any) -> None:
    resource = city_resources["CIVIL-RES-001"]
    contract = contract_of(resource)
    gate = gate_for(resource)
    rows = copy.deepcopy(demo["CIVIL-RES-001"].rows)
    for row in rows[: len(rows) // 5]:
        row["monthly_allowance"] = -1.0
    result = gate.evaluate(to_table(rows, contract))
    rate = result.num_failed / result.num_rows
    assert rate > gate.max_error_rate == resource["quality"]["max_error_rate"]
    minimum = next(
        c for c in result.checks if (c.check, c.column) == ("minimum", "monthly_allowance")
    )
    assert minimum.failed >= len(rows) // 5
    assert not minimum.success


def test_declared_expectation_runs_in_ge(demo: Any, city_resources: Any) -> None:
    resource = city_resources["HRSS-RES-001"]  # monthly_base between 0 and 100000
    contract = contract_of(resource)
    rows = copy.deepcopy(demo["HRSS-RES-001"].rows[:30])
    clean = [i for i, r in enumerate(rows) if r["employer_name"] and r["phone"] is not None]
    rows[clean[0]]["monthly_base"] = 250_000.0
    result = gate_for(resource).evaluate(to_table(rows, contract))
    got = [(f["row"], f["check"]) for f in result.failures.to_pylist()]
    assert (clean[0], "expect_column_values_to_be_between") in got


def test_duplicate_key_fails_unique(demo: Any, city_resources: Any) -> None:
    resource = city_resources["AMR-RES-001"]
    rows = copy.deepcopy(demo["AMR-RES-001"].rows[:10])
    rows.append(dict(rows[0]))
    result = gate_for(resource).evaluate(to_table(rows, contract_of(resource)))
    unique_rows = {f["row"] for f in result.failures.to_pylist() if f["check"] == "unique"}
    assert unique_rows == {0, 10}


def test_aggregate_expectation_failure_fails_the_batch(demo: Any, city_resources: Any) -> None:
    resource = copy.deepcopy(city_resources["CIVIL-RES-001"])
    resource["quality"]["expectations"] = [
        {"type": "ExpectColumnMeanToBeBetween",
         "kwargs": {"column": "household_size", "min_value": 50, "max_value": 60}},
    ]
    gate = quality.QualityGate(contract_of(resource), resource["quality"], key=resource["key"])
    rows = demo["CIVIL-RES-001"].rows[:20]
    result = gate.evaluate(to_table(rows, contract_of(resource)))
    assert not result.passed.any()
    check = next(c for c in result.checks if c.check == "expect_column_mean_to_be_between")
    assert check.failed == 20
    assert check.observed is not None


def test_suite_compilation_tags_every_expectation(city_resources: Any) -> None:
    resource = city_resources["PSB-RES-001"]
    compiled = quality.compile_suite(contract_of(resource), resource["quality"], key=["id_no"])
    names = {(e.meta["govex_check"], e.meta["column"]) for e in compiled.suite.expectations}
    assert {("required", "id_no"), ("pattern", "id_no"), ("enum", "gender"),
            ("cn_resident_id", "id_no"), ("id_birth_date_consistency", "birth_date"),
            ("id_gender_consistency", "gender"), ("cn_division_code", "household_area_code"),
            ("cn_mobile_phone", "phone"), ("unique", "id_no"), ("maxLength", "name"),
            ("format", "birth_date")} <= names
    types = {e.expectation_type for e in compiled.suite.expectations}
    assert "expect_column_values_to_be_valid_cn_resident_id" in types
    assert "expect_column_pair_values_to_be_consistent_id_gender" in types


def test_bad_declarations_are_named(city_resources: Any) -> None:
    resource = city_resources["PSB-RES-001"]
    contract = contract_of(resource)
    with pytest.raises(DeclarationError, match="ExpectNothing"):
        quality.compile_suite(contract, {"expectations": [{"type": "ExpectNothing"}]})
    schema = copy.deepcopy(contract.schema)
    schema["properties"]["name"]["x-govex-checks"] = ["cn_nonsense"]
    bad = type(contract)(name=contract.name, version=contract.version, schema=schema)
    with pytest.raises(DeclarationError, match="cn_nonsense"):
        quality.compile_suite(bad, {})


def test_ge_exception_is_not_a_pass(demo: Any, city_resources: Any) -> None:
    resource = copy.deepcopy(city_resources["CIVIL-RES-001"])
    resource["quality"]["expectations"] = [
        {"type": "ExpectColumnValuesToBeBetween",
         "kwargs": {"column": "status", "min_value": 0, "max_value": 1}},  # text vs numbers
    ]
    gate = quality.QualityGate(contract_of(resource), resource["quality"])
    with pytest.raises(FatalError, match="could not be evaluated"):
        gate.evaluate(to_table(demo["CIVIL-RES-001"].rows[:5], contract_of(resource)))


def test_lineage_facts_and_run_merge(demo: Any, city_resources: Any) -> None:
    resource = city_resources["PSB-RES-001"]
    contract = contract_of(resource)
    rows = demo["PSB-RES-001"].rows
    gate = gate_for(resource)
    first = gate.evaluate(to_table(rows[:400], contract))
    second = gate.evaluate(to_table(rows[400:], contract))
    run = first.report.merge(second.report)
    assert run.row_count == len(rows)
    whole = gate.evaluate(to_table(rows, contract))
    assert {(c.check, c.column, c.failed) for c in run.checks} == {
        (c.check, c.column, c.failed) for c in whole.checks
    }
    assertions = whole.assertions()
    assert {"assertion": "cn_resident_id", "success": False, "column": "id_no"} in assertions
    assert {"assertion": "unique", "success": True, "column": "id_no"} in assertions
    metrics = run.data_quality_metrics()
    assert metrics["rowCount"] == len(rows)
    assert metrics["columnMetrics"]["name"]["nullCount"] == sum(r["name"] is None for r in rows)
    assert metrics["columnMetrics"]["gender"]["distinctCount"] == 2


def test_data_docs_name_the_failing_checks(
    demo: Any, city_resources: Any, tmp_path: Path
) -> None:
    resource = city_resources["PSB-RES-001"]
    result = gate_for(resource).evaluate(to_table(demo["PSB-RES-001"].rows,
                                                  contract_of(resource)))
    index = quality.build_data_docs(result, tmp_path / "docs", run_id="run-1")
    assert index.name == "index.html"
    assert index.exists()
    pages = [p.read_text(encoding="utf-8") for p in (tmp_path / "docs").rglob("*.html")]
    text = "\n".join(pages)
    assert "cn_resident_id" in text or "valid_cn_resident_id" in text
    assert "id_gender_consistency" in text or "consistent_id_gender" in text
