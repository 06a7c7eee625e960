"""The national-standard checks and record key uniqueness on Arrow, without Great Expectations.

A suite holds these checks as GE expectations (`quality.expectations`: they render in Data
Docs like any other), but importing GE costs seconds and a 10-row increment should not pay
that for checks that are vectorised anyway. So the gate runs them here, on the batch's Arrow
columns, with the same `quality.standards` functions GE's pandas metrics call and the same
verdicts, row for row (tests/quality/test_national_agreement.py holds both paths to it):

- a missing value passes a national check (`required` judges it), as `_NullsPass` does;
- pair checks judge every row (`ignore_row_if="neither"`, what the gate gives GE too);
- key uniqueness fails every row whose key occurs more than once; a single-column key ignores
  null keys, a compound key ignores rows whose key values are all missing (GE's defaults).

An expectation with arguments this module does not model (`mostly`, `row_condition`, …) is
left to GE (`failing_rows` answers None).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as _compute

from quality import standards

__all__ = ["CHECKS", "DATED_DIVISION", "PAIRS", "NationalCheck", "failing_rows", "handles"]

pc: Any = _compute
Mask = npt.NDArray[np.bool_]
Rows = npt.NDArray[np.int64]

# Values a gender column may hold, by what they say: GB/T 2261.1 names and codes, and M/F.
_MALE = ("男", "1", "M", "m", "male", "Male")
_FEMALE = ("女", "2", "F", "f", "female", "Female")


@dataclass(frozen=True)
class NationalCheck:
    """A national check as the suite names it: its GE expectation class (by name, so that
    naming it costs no GE import) and the options that class takes besides its columns."""

    expectation: str
    options: tuple[str, ...] = ()

    @property
    def type(self) -> str:
        """GE's snake-case expectation type, as its configuration says it."""
        return "".join(f"_{c.lower()}" if c.isupper() else c for c in self.expectation)[1:]


#: Single-column checks (the same names as `quality.expectations.CHECK_EXPECTATIONS`).
CHECKS: dict[str, NationalCheck] = {
    "cn_resident_id": NationalCheck(
        "ExpectColumnValuesToBeValidCnResidentId", ("as_of", "check_division")),
    "cn_uscc": NationalCheck("ExpectColumnValuesToBeValidCnUscc", ("check_org_code",)),
    "cn_mobile_phone": NationalCheck("ExpectColumnValuesToBeValidCnMobilePhone"),
    "cn_division_code": NationalCheck("ExpectColumnValuesToBeValidCnDivisionCode", ("as_of",)),
    "not_future_date": NationalCheck("ExpectColumnValuesToNotBeInTheFuture", ("as_of",)),
    "max_age_150": NationalCheck(
        "ExpectColumnValuesToBeBirthDateWithinMaxAge", ("max_age", "as_of")),
}
#: Cross-field checks against the record's resident ID (as `PAIR_CHECKS`).
PAIRS: dict[str, NationalCheck] = {
    "id_birth_date_consistency": NationalCheck(
        "ExpectColumnPairValuesToBeConsistentIdBirthDate", ("ignore_row_if",)),
    "id_gender_consistency": NationalCheck(
        "ExpectColumnPairValuesToBeConsistentIdGender", ("ignore_row_if",)),
}
#: `cn_division_code` dated by a field of the record.
DATED_DIVISION = NationalCheck(
    "ExpectColumnPairValuesToBeValidCnDivisionCodeOnDate", ("as_of", "ignore_row_if"))


def _as_of(kwargs: Mapping[str, Any]) -> dt.date | None:
    value = kwargs.get("as_of")
    return None if value is None else dt.date.fromisoformat(str(value))


def _column(batch: pa.Table, name: str) -> Any:
    """The column as GE's pandas view hands it back to Arrow: integers with nulls became
    floats there, which only `_stated_gender` can tell apart."""
    if name not in batch.column_names:
        return pa.nulls(batch.num_rows)
    return batch.column(name).combine_chunks()


def _present(values: Any) -> Mask:
    return np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)


def _stated_gender(values: Any) -> npt.NDArray[np.int64]:
    """1 male, 0 female, -1 neither (or missing), from what the gender column says. Numbers
    are judged as pandas' text of them (GE's path): "1" for an integer column without nulls,
    "1.0" (neither) for floats and integers with nulls."""
    text = standards.as_text(values)
    if text is None:
        kind = values.type
        if pa.types.is_floating(kind) or (pa.types.is_integer(kind) and values.null_count):
            return np.full(len(values), -1, dtype=np.int64)
        text = pc.cast(values, pa.string())
    said = (pc.is_in(text, value_set=pa.array(v, text.type)) for v in (_MALE, _FEMALE))
    male, female = (np.asarray(m.fill_null(False).to_numpy(zero_copy_only=False)) for m in said)
    return np.where(male, 1, np.where(female, 0, -1))


def _single(check: str, values: Any, kwargs: Mapping[str, Any]) -> Mask:
    today = _as_of(kwargs)
    if check == "cn_resident_id":
        return standards.resident_ids_valid(
            values, today=today, check_division=bool(kwargs.get("check_division", True)))
    if check == "cn_uscc":
        return standards.usccs_valid(values, check_org_code=bool(kwargs.get("check_org_code",
                                                                           True)))
    if check == "cn_mobile_phone":
        return standards.mobile_phones_valid(values)
    if check == "cn_division_code":
        return standards.division_codes_known(values, on=today)
    if check == "not_future_date":
        return standards.dates_not_future(values, today=today)
    return standards.ages_at_most(values, int(kwargs.get("max_age", 150)), today=today)


def _id_birth(a: Any, b: Any, _kwargs: Mapping[str, Any]) -> Mask:
    in_id = standards.resident_id_birth_keys(a)
    stated = standards.date_keys(b)
    return np.asarray((in_id < 0) | (stated < 0) | (in_id == stated))


def _id_gender(a: Any, b: Any, _kwargs: Mapping[str, Any]) -> Mask:
    male = standards.resident_id_male(a)
    stated = _stated_gender(b)
    return np.asarray((male < 0) | (stated < 0) | (male == stated))


def _dated_division(a: Any, b: Any, kwargs: Mapping[str, Any]) -> Mask:
    return standards.division_codes_valid_on(a, b, today=_as_of(kwargs))


_PAIR_RULES: dict[str, Callable[[Any, Any, Mapping[str, Any]], Mask]] = {
    PAIRS["id_birth_date_consistency"].type: _id_birth,
    PAIRS["id_gender_consistency"].type: _id_gender,
    DATED_DIVISION.type: _dated_division,
}
_SINGLE_RULES = {spec.type: check for check, spec in CHECKS.items()}
_UNIQUE = ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique")


def handles(type_name: str, kwargs: Mapping[str, Any]) -> bool:
    """Whether this module judges the expectation, every argument as GE would."""
    if type_name not in _SINGLE_RULES and type_name not in _PAIR_RULES \
            and type_name not in _UNIQUE:
        return False
    allowed = {"column", "column_A", "column_B", "column_list"}
    for spec in (*CHECKS.values(), *PAIRS.values(), DATED_DIVISION):
        if spec.type == type_name:
            allowed |= set(spec.options)
    if kwargs.get("ignore_row_if", "neither") != "neither":
        return False
    return set(kwargs) <= allowed


def _rows(failed: Mask) -> Rows:
    return np.flatnonzero(failed).astype(np.int64)


def _duplicates(batch: pa.Table, columns: list[str]) -> Rows:
    """Rows whose key occurs more than once in the batch (see the module's rules on nulls)."""
    keys = [_column(batch, c) for c in columns]
    present = np.zeros(batch.num_rows, dtype=np.bool_)
    for key in keys:
        present |= _present(key)
    if len(columns) == 1:
        present = _present(keys[0])
    index = np.flatnonzero(present).astype(np.int64)
    if not len(index):
        return index
    table = pa.table([*(k.take(pa.array(index)) for k in keys), pa.array(index)],
                     names=[*(f"k{i}" for i in range(len(keys))), "row"])
    groups = table.group_by([f"k{i}" for i in range(len(keys))], use_threads=False).aggregate(
        [("row", "list"), ("row", "count")])
    shared = groups.filter(pc.greater(groups.column("row_count"), 1))
    if not shared.num_rows:
        return np.zeros(0, dtype=np.int64)
    rows = pc.list_flatten(shared.column("row_list").combine_chunks())
    return np.sort(np.asarray(rows.to_numpy(zero_copy_only=False), dtype=np.int64))


def failing_rows(type_name: str, kwargs: Mapping[str, Any], batch: pa.Table) -> Rows | None:
    """The sorted row numbers of `batch` that fail the expectation `type_name` with `kwargs`,
    or None when it is not one of govex's national checks or key uniqueness as modelled here
    (GE then runs it)."""
    if not handles(type_name, kwargs):
        return None
    if type_name in _SINGLE_RULES:
        values = _column(batch, str(kwargs["column"]))
        ok = _single(_SINGLE_RULES[type_name], values, kwargs)
        return _rows(~ok & _present(values))
    if type_name in _PAIR_RULES:
        a, b = _column(batch, str(kwargs["column_A"])), _column(batch, str(kwargs["column_B"]))
        ok = _PAIR_RULES[type_name](a, b, kwargs)
        return _rows(~ok & _present(a))
    if type_name == _UNIQUE[0]:
        return _duplicates(batch, [str(kwargs["column"])])
    if type_name == _UNIQUE[1]:
        return _duplicates(batch, [str(c) for c in kwargs["column_list"]])
    return None
