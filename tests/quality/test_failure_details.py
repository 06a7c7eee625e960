"""Failures that say what failed: the quarantine names the part of a check that failed
(`detail`) and shows the offending value masked by its column's `x-govex-pii`, per column, so
two columns with the same check stay apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

import contracts
import quality
from exchange.run.masking import provider_view
from quality import standards, tables

CONTRACT: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["key", "id_no"],
    "properties": {
        "key": {"type": "string"},
        "id_no": {"type": "string", "x-govex-pii": "id_number",
                  "x-govex-checks": ["cn_resident_id"]},
        "mother_id": {"type": ["string", "null"], "x-govex-pii": "id_number",
                      "x-govex-checks": ["cn_resident_id"]},
        "note": {"type": ["string", "null"], "maxLength": 3},
    },
}
GOOD = "11010519491231002X"


def _id(first17: str) -> str:
    return first17 + standards.resident_id_check_digit(first17)


BAD_CHECK_DIGIT = "110105194912310021"
UNKNOWN_AREA = _id("99010119900101001")
BAD_BIRTH_DATE = _id("11010519901332001")


@pytest.fixture
def held(tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    (tmp_path / "details").mkdir()
    (tmp_path / "details" / "1.0.0.json").write_text(json.dumps(CONTRACT))
    contract = contracts.load_contract(tmp_path / "details" / "1.0.0.json")
    gate = quality.QualityGate(contract, {"max_error_rate": 1.0}, key=["key"],
                               options={"as_of": "2026-11-27"})
    rows = [
        {"key": "ok", "id_no": GOOD, "mother_id": GOOD, "note": None},
        {"key": "digit", "id_no": BAD_CHECK_DIGIT, "mother_id": GOOD, "note": None},
        {"key": "area", "id_no": UNKNOWN_AREA, "mother_id": None, "note": None},
        {"key": "birth", "id_no": BAD_BIRTH_DATE, "mother_id": None, "note": None},
        {"key": "both", "id_no": BAD_CHECK_DIGIT, "mother_id": UNKNOWN_AREA, "note": "long"},
    ]
    batch = pa.Table.from_pylist(rows, schema=contracts.arrow_schema(contract))
    result = gate.evaluate(batch)
    engine = sa.create_engine("sqlite://")
    tables.metadata.create_all(engine)
    show = provider_view({name: contract.pii(name) for name in contract.fields})
    with engine.begin() as conn:
        tables.record_gate(conn, run_id="run-1", resource="R", key_fields=["key"],
                           batch=batch, result=result, show=show)
    with engine.connect() as conn:
        return {i["key"]: i["failed_checks"] for i in tables.quarantine(conn, "R")}


def test_bad_check_digit_is_named_and_the_id_shown_masked(held: Any) -> None:
    assert held["digit"] == [{"check": "cn_resident_id", "column": "id_no",
                              "detail": "check digit", "value": "110105********0021"}]


def test_unknown_area_code_and_bad_birth_date_are_named(held: Any) -> None:
    assert held["area"] == [{"check": "cn_resident_id", "column": "id_no",
                             "detail": "area code 990101 unknown",
                             "value": UNKNOWN_AREA[:6] + "*" * 8 + UNKNOWN_AREA[-4:]}]
    assert [c["detail"] for c in held["birth"]] == ["birth date"]
    assert "ok" not in held


def test_two_columns_with_the_same_check_are_told_apart(held: Any) -> None:
    both = {(c["check"], c["column"]): c for c in held["both"]}
    assert both[("cn_resident_id", "id_no")]["detail"] == "check digit"
    assert both[("cn_resident_id", "mother_id")]["detail"] == "area code 990101 unknown"
    # A contract keyword says its own bound; a column that is not personal data shows as is.
    assert both[("maxLength", "note")]["detail"] == "text is longer than 3 characters"
    assert both[("maxLength", "note")]["value"] == "long"


def test_reasons_are_computed_for_failing_values_only() -> None:
    reasons = standards.resident_id_reasons(
        pa.array(["123", "11010519491231002x", BAD_CHECK_DIGIT, UNKNOWN_AREA])
    )
    assert reasons == ["length", "pattern", "check digit", "area code 990101 unknown"]
    assert standards.uscc_reasons(pa.array(["91350100M000100Y4", "9135010OM000100Y43"])) == [
        "length", "pattern"]
    assert standards.mobile_phone_reasons(pa.array(["1381234123", "12812341234"])) == [
        "length", "pattern"]
    assert standards.division_code_reasons(pa.array(["990101", "1101"])) == [
        "code 990101 unknown", "length"]
