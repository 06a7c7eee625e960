"""National-standard checks: vectorised functions agree with the scalar ones, and every custom
GE expectation passes good data and fails bad data (published examples + hand-made cases)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from quality import expectations as qe
from quality import standards as s

TODAY = dt.date(2026, 11, 27)
GOOD_ID = "11010519491231002X"  # GB 11643-1999's own example (female, born 1949-12-31)
GOOD_USCC = "91350100M000100Y43"  # a published GB 32100 code (check char 3, org code check Y)
IDS = [
    GOOD_ID,
    "110105194912310021",  # wrong check digit
    "11010519491331002X",  # no 13th month
    "990105194912310029",  # area 990105 is not a GB/T 2260 code (check digit made right below)
    "11010520261231002X",  # born after TODAY
    "11010519491231002x",  # lower-case x
    "1101051949123100",  # short
    None,
]


def _fix_check(first17: str) -> str:
    return first17 + s.resident_id_check_digit(first17)


IDS[3] = _fix_check("99010519491231002")
IDS[4] = _fix_check("11010520261231002")


def test_vectorised_resident_id_agrees_with_scalar() -> None:
    got = s.resident_ids_valid(pa.array(IDS), today=TODAY).tolist()
    assert got == [True, False, False, False, False, False, False, False]
    # Without the division list, the scalar predicate is the reference.
    no_div = s.resident_ids_valid(pa.array(IDS), today=TODAY, check_division=False).tolist()
    assert no_div == [v is not None and s.is_valid_resident_id(v, today=TODAY) for v in IDS]


def test_vectorised_uscc_agrees_with_scalar() -> None:
    body = GOOD_USCC[:16] + "1"  # org code check char 'Y' -> '1', credit check recomputed
    org_bad = body + s.uscc_check_char(body)
    values = [GOOD_USCC, GOOD_USCC[:17] + "4", org_bad, "91350100M000100I43", "abc", None]
    got = s.usccs_valid(pa.array(values)).tolist()
    assert got == [v is not None and s.is_valid_uscc(v) for v in values]
    assert got == [True, False, False, False, False, False]
    assert s.usccs_valid(pa.array([org_bad]), check_org_code=False).tolist() == [True]


def test_vectorised_phone_division_dates() -> None:
    phones = ["13800138000", "12800138000", "1380013800", "138-0013-8000", None]
    assert s.mobile_phones_valid(pa.array(phones)).tolist() == [True, False, False, False, False]
    assert s.division_codes_known(pa.array(["350102", "999999", "35010"])).tolist() == [
        True, False, False,
    ]
    dates = pa.array([dt.date(2026, 11, 27), dt.date(2026, 11, 28), None])
    assert s.dates_not_future(dates, today=TODAY).tolist() == [True, False, True]
    text = pa.array(["1876-11-26", "1876-11-27", "2000-02-30"])
    assert s.ages_at_most(text, 150, today=TODAY).tolist() == [False, True, True]
    assert s.date_keys(text).tolist() == [18761126, 18761127, -1]


def test_vectorised_shapes_agree_with_the_scalar_regexes() -> None:
    # The vectorised checks read the Arrow buffers as fixed-width bytes instead of running a
    # regex: every length, a multi-byte character, nulls, and offsets into a sliced array.
    phone, uscc = "13800138000", GOOD_USCC
    values = [GOOD_ID, phone, uscc, "2000-02-29", "2000-02-29T10:00", "1949-12-31 ", None, ""]
    values += [GOOD_ID[:k] for k in (1, 17)] + [GOOD_ID + "1", "男" + GOOD_ID[3:], phone + "男"]
    values += [v[:i] + c + v[i + 1:] for v in (GOOD_ID, phone, uscc, "1876-11-26")
               for i in range(len(v)) for c in "0X-aI男"]
    whole = pa.array(values, pa.string())
    large = whole.cast(pa.large_string())  # what Arrow-backed pandas strings hold
    for arr in (whole, whole.slice(3), large, large.slice(5), pa.array([GOOD_ID] * 3),
                pa.array([phone, phone], pa.large_string())):
        py = arr.to_pylist()
        assert s.resident_ids_valid(arr, today=TODAY, check_division=False).tolist() == [
            v is not None and s.is_valid_resident_id(v, today=TODAY) for v in py]
        assert s.usccs_valid(arr).tolist() == [v is not None and s.is_valid_uscc(v) for v in py]
        assert s.mobile_phones_valid(arr).tolist() == [
            v is not None and s.is_valid_cn_mobile_phone(v) for v in py]
        assert s.resident_id_birth_keys(arr).tolist() == [_id_birth_key(v) for v in py]
        assert s.date_keys(arr).tolist() == [_date_key(v) for v in py]


def _id_birth_key(value: str | None) -> int:
    # The reference is the regex: the birth digits of anything shaped like an ID number.
    import re

    shaped = value is not None and re.fullmatch(r"[0-9]{17}[0-9X]", value)
    return int(value[6:14]) if shaped and value is not None else -1


def _date_key(value: str | None) -> int:
    import re

    if value is None or not re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return -1
    try:
        day = dt.date.fromisoformat(value[:10])
    except ValueError:
        return -1
    return day.year * 10_000 + day.month * 100 + day.day


@pytest.fixture(scope="module")
def batch_definition() -> Any:
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_pandas(name="t")
    return source.add_dataframe_asset(name="t").add_batch_definition_whole_dataframe("t")


def _unexpected(batch_definition: Any, frame: pd.DataFrame, expectation: Any) -> list[int]:
    batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(expectation, result_format={"result_format": "COMPLETE"})
    assert not result.exception_info.get("raised_exception"), result.exception_info
    return sorted(result.result["unexpected_index_list"])


def test_resident_id_expectation(batch_definition: Any) -> None:
    frame = pd.DataFrame({"id": IDS})
    expectation = qe.ExpectColumnValuesToBeValidCnResidentId(column="id", as_of=TODAY.isoformat())
    assert _unexpected(batch_definition, frame, expectation) == [1, 2, 3, 4, 5, 6]


def test_uscc_expectation(batch_definition: Any) -> None:
    frame = pd.DataFrame({"u": [GOOD_USCC, GOOD_USCC[:17] + "4", None]})
    expectation = qe.ExpectColumnValuesToBeValidCnUscc(column="u")
    assert _unexpected(batch_definition, frame, expectation) == [1]


def test_phone_division_expectations(batch_definition: Any) -> None:
    frame = pd.DataFrame({"p": ["13800138000", "1380013800"], "d": ["350102", "350199"]})
    phone = qe.ExpectColumnValuesToBeValidCnMobilePhone(column="p")
    assert _unexpected(batch_definition, frame, phone) == [1]
    division = qe.ExpectColumnValuesToBeValidCnDivisionCode(column="d")
    assert _unexpected(batch_definition, frame, division) == [1]


def test_date_expectations(batch_definition: Any) -> None:
    frame = pa.table(
        {"d": pa.array([dt.date(1870, 1, 1), dt.date(2000, 1, 1), dt.date(2027, 1, 1)])}
    ).to_pandas(date_as_object=False)
    future = qe.ExpectColumnValuesToNotBeInTheFuture(column="d", as_of=TODAY.isoformat())
    assert _unexpected(batch_definition, frame, future) == [2]
    age = qe.ExpectColumnValuesToBeBirthDateWithinMaxAge(column="d", as_of=TODAY.isoformat())
    assert _unexpected(batch_definition, frame, age) == [0]


@pytest.mark.parametrize("as_text", [False, True])
def test_id_consistency_expectations(batch_definition: Any, as_text: bool) -> None:
    born = [dt.date(1949, 12, 31), dt.date(1949, 12, 30), dt.date(1949, 12, 31), None]
    frame = pd.DataFrame(
        {
            "id": [GOOD_ID, GOOD_ID, "not an id", GOOD_ID],
            "birth": [b.isoformat() if as_text and b else b for b in born],
            "gender": ["女", "男", "男", "女"],
        }
    )
    birth = qe.ExpectColumnPairValuesToBeConsistentIdBirthDate(column_A="id", column_B="birth")
    assert _unexpected(batch_definition, frame, birth) == [1]
    gender = qe.ExpectColumnPairValuesToBeConsistentIdGender(column_A="id", column_B="gender")
    assert _unexpected(batch_definition, frame, gender) == [1]


def test_pairs_without_row_dropping_fail_the_same_rows(batch_definition: Any) -> None:
    # The gate runs the ID pairs with ignore_row_if="neither" (no copy of the frame per metric);
    # on rows missing either value that must change nothing.
    male_id = _fix_check("11010519491231001")
    frame = pd.DataFrame(
        {
            "id": [GOOD_ID, GOOD_ID, None, male_id, male_id, None, "not an id", GOOD_ID],
            "birth": ["1949-12-31", "1949-12-30", "1949-12-30", None, "1950-01-01", None,
                      "2000-01-01", "1949-12-31"],
            "gender": ["女", "男", "男", "女", None, None, "男", "男"],
        }
    ).astype("string[pyarrow]")
    for cls in (qe.ExpectColumnPairValuesToBeConsistentIdBirthDate,
                qe.ExpectColumnPairValuesToBeConsistentIdGender):
        column_b = "birth" if "Birth" in cls.__name__ else "gender"
        declared = cls(column_A="id", column_B=column_b)
        fast = qe.without_row_dropping(declared)
        assert fast.ignore_row_if == "neither"
        assert declared.ignore_row_if == "either_value_is_missing"
        assert _unexpected(batch_definition, frame, fast) == _unexpected(
            batch_definition, frame, declared
        )
        assert _unexpected(batch_definition, frame, fast)  # the frame does hold failures
        # With `mostly` the denominator matters: the expectation is left as declared.
        loose = cls(column_A="id", column_B=column_b, mostly=0.5)
        assert qe.without_row_dropping(loose) is loose
