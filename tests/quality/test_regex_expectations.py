"""Regexes a resource declares in `quality.expectations` run on RE2 with GE's meaning: refused
at apply when they have no RE2 form, linear in time on hostile values, and failing exactly the
rows GE itself would fail."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import quality
from contracts import Contract
from govex.errors import DeclarationError
from quality.regex_expectations import failing_rows

CONTRACT = Contract(
    "c", "1.0.0",
    {"type": "object", "properties": {"code": {"type": ["string", "null"]},
                                      "n": {"type": ["integer", "null"]}}},
)


def _gate(expectation_type: str, **kwargs: Any) -> Any:
    declaration = {"expectations": [{"type": expectation_type, "kwargs": kwargs}]}
    return quality.QualityGate(CONTRACT, declaration)


def test_a_regex_without_an_re2_form_is_refused_at_declaration() -> None:
    with pytest.raises(DeclarationError, match="cannot run on RE2") as caught:
        _gate("ExpectColumnValuesToMatchRegex", column="code", regex=r"^(a)\1$")
    assert "quality.expectations[0].kwargs" in str(caught.value.render())
    with pytest.raises(DeclarationError, match="cannot run on RE2"):
        _gate("ExpectColumnValuesToNotMatchRegexList", column="code",
              regex_list=["^ok$", r"(?<=x)y"])


def test_a_catastrophic_pattern_meets_a_hostile_value_in_linear_time() -> None:
    # On Python `re` (GE's engine) this value takes minutes against this pattern.
    gate = _gate("ExpectColumnValuesToMatchRegex", column="code", regex=r"^(a+)+$")
    batch = pa.table({"code": ["a" * 40 + "!", "aaa"], "n": [1, 2]})
    started = time.monotonic()
    result = gate.evaluate(batch)
    assert time.monotonic() - started < 5
    assert result.passed.tolist() == [False, True]
    assert {(f["check"], f["column"]) for f in result.failures.to_pylist()} == {
        ("expect_column_values_to_match_regex", "code")
    }


VALUES = ["AB-12", "ab-12", "XY-99", None, "AB-1", "", "ZZ", "ab-99\n", "Ｘ-1", "AB-12 tail"]
CASES: list[tuple[str, dict[str, Any]]] = [
    ("ExpectColumnValuesToMatchRegex", {"regex": r"^[A-Z]{2}-\d+$"}),
    ("ExpectColumnValuesToMatchRegex", {"regex": r"\d"}),
    ("ExpectColumnValuesToNotMatchRegex", {"regex": r"^ab"}),
    ("ExpectColumnValuesToMatchRegexList", {"regex_list": [r"^AB", r"9$"]}),
    ("ExpectColumnValuesToMatchRegexList", {"regex_list": [r"^AB", r"2"], "match_on": "all"}),
    ("ExpectColumnValuesToNotMatchRegexList", {"regex_list": [r"^Z", r"^$"]}),
    ("ExpectColumnValuesToMatchRegex", {"regex": r"^[A-Z]{2}-\d+$", "mostly": 0.2}),
    ("ExpectColumnValuesToMatchRegex", {"regex": r"^[A-Z]{2}-\d+$", "mostly": 0.9}),
]


def _ge_failing_rows(expectation_type: str, kwargs: dict[str, Any], frame: Any) -> list[int]:
    """What Great Expectations itself (Python `re`) fails, for the agreement check."""
    import great_expectations as gx
    import great_expectations.expectations as gxe

    context = gx.get_context(mode="ephemeral")
    asset = context.data_sources.add_pandas("p").add_dataframe_asset("a")
    batch = asset.add_batch_definition_whole_dataframe("b").get_batch(
        batch_parameters={"dataframe": frame}
    )
    expectation = getattr(gxe, expectation_type)(column="code", **kwargs)
    result = batch.validate(expectation, result_format={
        "result_format": "COMPLETE", "return_unique_unexpected": False})
    if result.success:
        return []
    return sorted(int(i) for i in result.result["unexpected_index_list"])


@pytest.mark.parametrize(("expectation_type", "kwargs"), CASES)
def test_re2_fails_exactly_the_rows_ge_fails(expectation_type: str, kwargs: dict[str, Any]) -> None:
    batch = pa.table({"code": pa.array(VALUES, pa.string())})
    ours = failing_rows(expectation_type, {"column": "code", **kwargs}, batch).tolist()
    assert ours == _ge_failing_rows(expectation_type, kwargs, batch.to_pandas())


def test_non_text_columns_are_compared_as_text_like_ge() -> None:
    batch = pa.table({"n": pa.array([10, 7, None, 123], pa.int64())})
    kwargs = {"column": "n", "regex": r"^\d{2,}$"}
    ours = failing_rows("ExpectColumnValuesToMatchRegex", kwargs, batch)
    assert np.array_equal(ours, [1])
