"""Declared regex expectations run on RE2, never on Python `re`.

Great Expectations evaluates `ExpectColumnValuesToMatchRegex` and its siblings with pandas'
`str.contains`, that is Python `re`, which backtracks: a provider's `^(a+)+$` against one hostile
value would hold a run for minutes. Contract patterns already run on RE2 (contracts.patterns);
this module gives the same treatment to the regexes a resource declares in
`quality.expectations`. `govex apply` refuses a regex without an exact RE2 form, and the gate
judges these expectations here, vectorised on Arrow, with GE's own meaning: values are compared
as text, nulls are not judged, `mostly` lets a batch pass with a share of misses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as _compute

from contracts import pattern_refusal, to_re2

__all__ = ["REGEX_EXPECTATIONS", "failing_rows", "regex_refusal"]

pc: Any = _compute

#: GE expectation type -> (kwargs key holding the regex(es), True when a match is the failure).
REGEX_EXPECTATIONS: dict[str, tuple[str, bool]] = {
    "ExpectColumnValuesToMatchRegex": ("regex", False),
    "ExpectColumnValuesToNotMatchRegex": ("regex", True),
    "ExpectColumnValuesToMatchRegexList": ("regex_list", False),
    "ExpectColumnValuesToNotMatchRegexList": ("regex_list", True),
}


def _regexes(type_name: str, kwargs: Mapping[str, Any]) -> list[Any]:
    field, _ = REGEX_EXPECTATIONS[type_name]
    value = kwargs.get(field)
    return list(value) if isinstance(value, list | tuple) else [value]


def regex_refusal(type_name: str, kwargs: Mapping[str, Any]) -> str | None:
    """The sentence refusing a declared regex expectation (a regex without an RE2 form), or
    None when every regex it holds can run on RE2."""
    for regex in _regexes(type_name, kwargs):
        refusal = pattern_refusal(regex)
        if refusal is not None:
            return refusal
    return None


def failing_rows(
    type_name: str, kwargs: Mapping[str, Any], batch: pa.Table
) -> npt.NDArray[np.int64]:
    """Row numbers of `batch` that fail the declared expectation (none when `mostly` is met)."""
    rows = batch.num_rows
    column_name = str(kwargs.get("column"))
    if column_name not in batch.column_names or rows == 0:
        return np.zeros(0, dtype=np.int64)
    column = batch.column(column_name)
    text = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
    _, match_fails = REGEX_EXPECTATIONS[type_name]
    hits = [
        pc.fill_null(pc.match_substring_regex(text, pattern=to_re2(regex)), False)
        for regex in _regexes(type_name, kwargs)
    ]
    if match_fails:  # not-match forms: any regex matching is a miss
        matched = hits[0]
        for hit in hits[1:]:
            matched = pc.or_(matched, hit)
        miss = matched
    else:  # match forms: the value must match one regex ("any", GE's default) or all of them
        combine = pc.and_ if kwargs.get("match_on") == "all" else pc.or_
        matched = hits[0]
        for hit in hits[1:]:
            matched = combine(matched, hit)
        miss = pc.invert(matched)
    miss = pc.and_(miss, pc.is_valid(column))
    failed = np.flatnonzero(np.asarray(miss)).astype(np.int64)
    judged = rows - column.null_count
    mostly = kwargs.get("mostly")
    if mostly is not None and judged and (judged - len(failed)) / judged >= float(mostly):
        return np.zeros(0, dtype=np.int64)
    return failed
