"""National-standard checks as Great Expectations 1.x custom expectations.

Each check is a GE map metric (a `ColumnMapMetricProvider` or `ColumnPairMapMetricProvider`
with a pandas partial) and an expectation class using it, so a suite holding them runs, reports
and renders (Data Docs) like any built-in expectation. The pandas partials hand the column to
the vectorised functions of `quality.standards` (Arrow + numpy over the whole column; pandas
string columns are Arrow-backed, so the hand-over costs no per-row Python).

| govex check | expectation | domain |
|---|---|---|
| `cn_resident_id` | `ExpectColumnValuesToBeValidCnResidentId` | the ID column |
| `cn_uscc` | `ExpectColumnValuesToBeValidCnUscc` | the credit code column |
| `cn_mobile_phone` | `ExpectColumnValuesToBeValidCnMobilePhone` | the phone column |
| `cn_division_code` | `ExpectColumnValuesToBeValidCnDivisionCode` | the division code column |
| `cn_division_code` dated by field F | `ExpectColumnPairValuesToBeValidCnDivisionCodeOnDate` | F |
| `not_future_date` | `ExpectColumnValuesToNotBeInTheFuture` | a date column |
| `max_age_150` | `ExpectColumnValuesToBeBirthDateWithinMaxAge` | a birth date column |
| `id_birth_date_consistency` | `ExpectColumnPairValuesToBeConsistentIdBirthDate` | ID, birth |
| `id_gender_consistency` | `ExpectColumnPairValuesToBeConsistentIdGender` | (ID, gender) |

`as_of` (ISO date, default: today in China) fixes "today" for the date-dependent checks, so
tests and replays do not depend on the clock.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as _pc
from great_expectations.execution_engine import (  # type: ignore[attr-defined]
    PandasExecutionEngine,
)
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
)
from great_expectations.expectations.metrics.map_metric_provider import (  # type: ignore[attr-defined]
    ColumnMapMetricProvider,
    ColumnPairMapMetricProvider,
    column_condition_partial,
    column_pair_condition_partial,
)

from quality import standards

__all__ = [
    "CHECK_EXPECTATIONS",
    "PAIR_CHECKS",
    "ExpectColumnPairValuesToBeConsistentIdBirthDate",
    "ExpectColumnPairValuesToBeConsistentIdGender",
    "ExpectColumnPairValuesToBeValidCnDivisionCodeOnDate",
    "ExpectColumnValuesToBeBirthDateWithinMaxAge",
    "ExpectColumnValuesToBeValidCnDivisionCode",
    "ExpectColumnValuesToBeValidCnMobilePhone",
    "ExpectColumnValuesToBeValidCnResidentId",
    "ExpectColumnValuesToBeValidCnUscc",
    "ExpectColumnValuesToNotBeInTheFuture",
    "without_row_dropping",
]

# Values a gender column may hold, by what they say: GB/T 2261.1 names and codes, and M/F.
pc: Any = _pc  # pyarrow-stubs' overloads do not follow generic column code
_MALE = ("男", "1", "M", "m", "male", "Male")
_FEMALE = ("女", "2", "F", "f", "female", "Female")


def _arrow(column: pd.Series) -> Any:  # type: ignore[type-arg]
    """The column as one Arrow array (zero-copy for Arrow-backed pandas columns)."""
    return pa.Array.from_pandas(column)


def _series(column: pd.Series, mask: npt.NDArray[np.bool_]) -> pd.Series:  # type: ignore[type-arg]
    """The metric's answer: `mask`, and True (expected) wherever the value is missing."""
    if column.hasnans:
        mask = mask | np.asarray(column.isna(), dtype=np.bool_)
    return pd.Series(mask, index=column.index, dtype=bool)


class _NullsPass(ColumnMapMetricProvider):  # type: ignore[misc]
    """A column map metric that answers True for a missing value itself.

    GE's default (`filter_column_isnull = True`) drops the rows where the column is null before
    each metric of the expectation (the condition, the unexpected values, the unexpected
    indices): a copy of every column of the batch, three times per expectation, when a single
    value is null. Missing values are the business of `required`, never of a national check, so
    the metric passes them instead and GE leaves the frame alone. The expectation's results do
    not change: the same rows are unexpected, and GE takes the nonnull count for `mostly` from
    its own `column_values.nonnull` metric either way.
    """

    filter_column_isnull = False


def _stated_gender(column: pd.Series) -> npt.NDArray[np.int64]:  # type: ignore[type-arg]
    """1 male, 0 female, -1 neither (or missing), from what the gender column says."""
    try:
        text = standards.as_text(_arrow(column))
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects
        text = None
    if text is None:  # e.g. GB/T 2261.1 codes stored as integers: judged as their text
        text = pa.array(column.astype("string"), pa.large_string(), from_pandas=True)
    said = (pc.is_in(text, value_set=pa.array(values, text.type)) for values in (_MALE, _FEMALE))
    male, female = (np.asarray(m.fill_null(False).to_numpy(zero_copy_only=False)) for m in said)
    return np.where(male, 1, np.where(female, 0, -1))


def _as_of(value: str | None) -> dt.date | None:
    return None if value is None else dt.date.fromisoformat(value)


# ---------------------------------------------------------------------------------------------
# metrics (pandas engine)
# ---------------------------------------------------------------------------------------------


class ColumnValuesValidCnResidentId(_NullsPass):
    condition_metric_name = "column_values.govex_valid_cn_resident_id"
    condition_value_keys = ("as_of", "check_division")

    @column_condition_partial(engine=PandasExecutionEngine)  # type: ignore[misc,untyped-decorator]
    def _pandas(
        cls, column: pd.Series, as_of: str | None = None, check_division: bool = True,  # type: ignore[type-arg]
        **_kwargs: Any,
    ) -> pd.Series:  # type: ignore[type-arg]
        mask = standards.resident_ids_valid(
            _arrow(column), today=_as_of(as_of), check_division=check_division
        )
        return _series(column, mask)


class ColumnValuesValidCnUscc(_NullsPass):
    condition_metric_name = "column_values.govex_valid_cn_uscc"
    condition_value_keys = ("check_org_code",)

    @column_condition_partial(engine=PandasExecutionEngine)  # type: ignore[misc,untyped-decorator]
    def _pandas(
        cls, column: pd.Series, check_org_code: bool = True, **_kwargs: Any  # type: ignore[type-arg]
    ) -> pd.Series:  # type: ignore[type-arg]
        return _series(column, standards.usccs_valid(_arrow(column), check_org_code=check_org_code))


class ColumnValuesValidCnMobilePhone(_NullsPass):
    condition_metric_name = "column_values.govex_valid_cn_mobile_phone"

    @column_condition_partial(engine=PandasExecutionEngine)  # type: ignore[misc,untyped-decorator]
    def _pandas(cls, column: pd.Series, **_kwargs: Any) -> pd.Series:  # type: ignore[type-arg]
        return _series(column, standards.mobile_phones_valid(_arrow(column)))


class ColumnValuesValidCnDivisionCode(_NullsPass):
    condition_metric_name = "column_values.govex_valid_cn_division_code"
    condition_value_keys = ("as_of",)

    @column_condition_partial(engine=PandasExecutionEngine)  # type: ignore[misc,untyped-decorator]
    def _pandas(
        cls, column: pd.Series, as_of: str | None = None, **_kwargs: Any  # type: ignore[type-arg]
    ) -> pd.Series:  # type: ignore[type-arg]
        mask = standards.division_codes_known(_arrow(column), on=_as_of(as_of))
        return _series(column, mask)


class ColumnValuesNotFutureDate(_NullsPass):
    condition_metric_name = "column_values.govex_not_future_date"
    condition_value_keys = ("as_of",)

    @column_condition_partial(engine=PandasExecutionEngine)  # type: ignore[misc,untyped-decorator]
    def _pandas(
        cls, column: pd.Series, as_of: str | None = None, **_kwargs: Any  # type: ignore[type-arg]
    ) -> pd.Series:  # type: ignore[type-arg]
        return _series(column, standards.dates_not_future(_arrow(column), today=_as_of(as_of)))


class ColumnValuesBirthDateWithinMaxAge(_NullsPass):
    condition_metric_name = "column_values.govex_birth_date_within_max_age"
    condition_value_keys = ("max_age", "as_of")

    @column_condition_partial(engine=PandasExecutionEngine)  # type: ignore[misc,untyped-decorator]
    def _pandas(
        cls, column: pd.Series, max_age: int = 150, as_of: str | None = None,  # type: ignore[type-arg]
        **_kwargs: Any,
    ) -> pd.Series:  # type: ignore[type-arg]
        mask = standards.ages_at_most(_arrow(column), max_age, today=_as_of(as_of))
        return _series(column, mask)


_PAIR_DOMAIN_KEYS = (
    "batch_id",
    "table",
    "column_A",
    "column_B",
    "row_condition",
    "condition_parser",
    "ignore_row_if",
)


class ColumnPairIdBirthDateConsistent(ColumnPairMapMetricProvider):  # type: ignore[misc]
    """column_A: resident ID number; column_B: birth date (date, timestamp or ISO text)."""

    condition_metric_name = "column_pair_values.govex_id_birth_date_consistent"
    condition_domain_keys = _PAIR_DOMAIN_KEYS

    @column_pair_condition_partial(engine=PandasExecutionEngine)  # type: ignore[misc,untyped-decorator]
    def _pandas(
        cls, column_A: pd.Series, column_B: pd.Series, **_kwargs: Any  # type: ignore[type-arg]  # noqa: N803
    ) -> pd.Series:  # type: ignore[type-arg]
        in_id = standards.resident_id_birth_keys(_arrow(column_A))
        stated = standards.date_keys(_arrow(column_B))
        # Judged only where both sides are readable: a malformed ID or date is the business of
        # cn_resident_id / format, not of this cross-field check.
        ok = (in_id < 0) | (stated < 0) | (in_id == stated)
        return _series(column_A, np.asarray(ok))


class ColumnPairDivisionCodeValidOnDate(ColumnPairMapMetricProvider):  # type: ignore[misc]
    """column_A: division code; column_B: the record's date it must be valid on."""

    condition_metric_name = "column_pair_values.govex_valid_cn_division_code_on_date"
    condition_domain_keys = _PAIR_DOMAIN_KEYS
    condition_value_keys = ("as_of",)

    @column_pair_condition_partial(engine=PandasExecutionEngine)  # type: ignore[misc,untyped-decorator]
    def _pandas(
        cls, column_A: pd.Series, column_B: pd.Series, as_of: str | None = None,  # type: ignore[type-arg]  # noqa: N803
        **_kwargs: Any,
    ) -> pd.Series:  # type: ignore[type-arg]
        mask = standards.division_codes_valid_on(
            _arrow(column_A), _arrow(column_B), today=_as_of(as_of)
        )
        return _series(column_A, mask)


class ColumnPairIdGenderConsistent(ColumnPairMapMetricProvider):  # type: ignore[misc]
    """column_A: resident ID number; column_B: gender (男/女, GB/T 2261.1 code 1/2, or M/F)."""

    condition_metric_name = "column_pair_values.govex_id_gender_consistent"
    condition_domain_keys = _PAIR_DOMAIN_KEYS

    @column_pair_condition_partial(engine=PandasExecutionEngine)  # type: ignore[misc,untyped-decorator]
    def _pandas(
        cls, column_A: pd.Series, column_B: pd.Series, **_kwargs: Any  # type: ignore[type-arg]  # noqa: N803
    ) -> pd.Series:  # type: ignore[type-arg]
        male = standards.resident_id_male(_arrow(column_A))
        stated = _stated_gender(column_B)
        ok = (male < 0) | (stated < 0) | (male == stated)
        return _series(column_A, np.asarray(ok))


# ---------------------------------------------------------------------------------------------
# expectations
# ---------------------------------------------------------------------------------------------


class ExpectColumnValuesToBeValidCnResidentId(ColumnMapExpectation):  # type: ignore[misc]
    """Expect GB 11643-1999 citizen identity numbers: check character, a real birth date not in
    the future, and (unless check_division is False) a GB/T 2260 area code prefix."""

    as_of: str | None = None
    check_division: bool = True
    map_metric = "column_values.govex_valid_cn_resident_id"
    success_keys = ("mostly", "as_of", "check_division")
    library_metadata: ClassVar[dict[str, Any]] = {"tags": ["govex", "GB 11643"]}


class ExpectColumnValuesToBeValidCnUscc(ColumnMapExpectation):  # type: ignore[misc]
    """Expect GB 32100-2015 unified social credit codes, including the GB 11714 check of the
    embedded organisation code (unless check_org_code is False)."""

    check_org_code: bool = True
    map_metric = "column_values.govex_valid_cn_uscc"
    success_keys = ("mostly", "check_org_code")
    library_metadata: ClassVar[dict[str, Any]] = {"tags": ["govex", "GB 32100", "GB 11714"]}


class ExpectColumnValuesToBeValidCnMobilePhone(ColumnMapExpectation):  # type: ignore[misc]
    """Expect 11-digit mainland mobile numbers (1, then 3-9, then nine digits)."""

    map_metric = "column_values.govex_valid_cn_mobile_phone"
    success_keys = ("mostly",)
    library_metadata: ClassVar[dict[str, Any]] = {"tags": ["govex"]}


class ExpectColumnValuesToBeValidCnDivisionCode(ColumnMapExpectation):  # type: ignore[misc]
    """Expect GB/T 2260 administrative division codes valid today (China) or on `as_of`."""

    as_of: str | None = None
    map_metric = "column_values.govex_valid_cn_division_code"
    success_keys = ("mostly", "as_of")
    library_metadata: ClassVar[dict[str, Any]] = {"tags": ["govex", "GB/T 2260"]}


class ExpectColumnValuesToNotBeInTheFuture(ColumnMapExpectation):  # type: ignore[misc]
    """Expect dates not after today (China Standard Time) or `as_of`."""

    as_of: str | None = None
    map_metric = "column_values.govex_not_future_date"
    success_keys = ("mostly", "as_of")
    library_metadata: ClassVar[dict[str, Any]] = {"tags": ["govex"]}


class ExpectColumnValuesToBeBirthDateWithinMaxAge(ColumnMapExpectation):  # type: ignore[misc]
    """Expect birth dates at most `max_age` years (default 150) before today or `as_of`."""

    max_age: int = 150
    as_of: str | None = None
    map_metric = "column_values.govex_birth_date_within_max_age"
    success_keys = ("mostly", "max_age", "as_of")
    library_metadata: ClassVar[dict[str, Any]] = {"tags": ["govex"]}


_IgnoreRowIf = Literal["both_values_are_missing", "either_value_is_missing", "neither"]


class ExpectColumnPairValuesToBeConsistentIdBirthDate(ColumnPairMapExpectation):  # type: ignore[misc]
    """Expect the birth date (column_B) to be the one encoded in the ID number (column_A)."""

    ignore_row_if: _IgnoreRowIf = "either_value_is_missing"
    map_metric = "column_pair_values.govex_id_birth_date_consistent"
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")
    library_metadata: ClassVar[dict[str, Any]] = {"tags": ["govex", "GB 11643"]}


class ExpectColumnPairValuesToBeValidCnDivisionCodeOnDate(ColumnPairMapExpectation):  # type: ignore[misc]
    """Expect the GB/T 2260 code of column_A to have been valid on the record's date in
    column_B (`cn_division_code` with `as_of: record:<field>`); a record without that date is
    judged as of today (or `as_of`). Missing codes pass: they are `required`'s business."""

    as_of: str | None = None
    ignore_row_if: _IgnoreRowIf = "neither"
    map_metric = "column_pair_values.govex_valid_cn_division_code_on_date"
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly", "as_of")
    library_metadata: ClassVar[dict[str, Any]] = {"tags": ["govex", "GB/T 2260"]}


class ExpectColumnPairValuesToBeConsistentIdGender(ColumnPairMapExpectation):  # type: ignore[misc]
    """Expect the gender (column_B) to be the one encoded in the ID number's 17th digit
    (odd: male) of column_A."""

    ignore_row_if: _IgnoreRowIf = "either_value_is_missing"
    map_metric = "column_pair_values.govex_id_gender_consistent"
    success_keys = ("column_A", "column_B", "ignore_row_if", "mostly")
    library_metadata: ClassVar[dict[str, Any]] = {"tags": ["govex", "GB 11643"]}


def without_row_dropping(expectation: Any) -> Any:
    """`expectation` as the gate runs it: a copy of a govex ID-pair expectation with
    `ignore_row_if="neither"` when that cannot change its result, else `expectation` itself.

    The pair metrics judge a row only where both values are readable, so a missing ID or value
    is consistent already; GE's `either_value_is_missing` (the default) would in addition drop
    those rows from a copy of the whole frame before each of the expectation's four metrics.
    Dropping them only changes the denominator of `mostly`, so the copy is made only when
    `mostly` is 1 (the default): then success means no unexpected row, whatever the denominator.
    """
    pairs = (ExpectColumnPairValuesToBeConsistentIdBirthDate,
             ExpectColumnPairValuesToBeConsistentIdGender)
    if not isinstance(expectation, pairs) or expectation.ignore_row_if == "neither":
        return expectation
    mostly = getattr(expectation, "mostly", 1.0)
    if isinstance(mostly, bool) or not isinstance(mostly, int | float) or mostly != 1:
        return expectation
    return expectation.copy(update={"ignore_row_if": "neither"}, deep=True)


#: Single-column checks: govex check name -> expectation class.
CHECK_EXPECTATIONS: dict[str, type[ColumnMapExpectation]] = {
    "cn_resident_id": ExpectColumnValuesToBeValidCnResidentId,
    "cn_uscc": ExpectColumnValuesToBeValidCnUscc,
    "cn_mobile_phone": ExpectColumnValuesToBeValidCnMobilePhone,
    "cn_division_code": ExpectColumnValuesToBeValidCnDivisionCode,
    "not_future_date": ExpectColumnValuesToNotBeInTheFuture,
    "max_age_150": ExpectColumnValuesToBeBirthDateWithinMaxAge,
}
#: Cross-field checks against the record's resident ID: check name -> expectation class.
PAIR_CHECKS: dict[str, type[ColumnPairMapExpectation]] = {
    "id_birth_date_consistency": ExpectColumnPairValuesToBeConsistentIdBirthDate,
    "id_gender_consistency": ExpectColumnPairValuesToBeConsistentIdGender,
}
