"""Values compare as the contract types them, after the declared normalisation: both sides go
through one function, so a value sent equals the source's exactly when they are equal."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Any

import pyarrow as pa
import pytest

from exchange.verify.canonical import BadValue, FieldRule, parse
from exchange.verify.digests import Digester

KEY = b"k" * 32
TEXT = FieldRule("name", pa.string(), ("fullwidth", "nfc", "trim"))
RAW_TEXT = FieldRule("note", pa.string())
ID = FieldRule("id_no", pa.string(), (), upper=True)
NUMBER = FieldRule("score", pa.float64())
INTEGER = FieldRule("children", pa.int64())
DATE = FieldRule("birth_date", pa.date32())
BOOL = FieldRule("married", pa.bool_())
MOMENT = FieldRule("seen_at", pa.timestamp("us", tz="UTC"))


def same(rule: FieldRule, source: pa.Array[Any], asked: list[Any]) -> list[bool]:
    """Per asked value, whether its digest equals the source value's (as the index holds)."""
    digester = Digester(KEY)
    held = digester.field_digests(source, rule)
    sent = digester.field_digests(parse(asked, rule), rule)
    return [h is not None and h == s for h, s in zip(held, sent, strict=True)]


def test_text_is_normalised_as_declared() -> None:
    source = pa.array(["张三", "张三", "张三", "Ａｌｉｃｅ Ｗａｎｇ", "é", "李　四"])
    asked = ["张三", " 张三\t", "张三 ", "Alice Wang", "e\u0301", "李 四"]
    assert same(TEXT, source, asked) == [True] * 6
    # Without normalisation the same pairs differ, except the identical one.
    assert same(RAW_TEXT, source, asked) == [True, False, False, False, False, False]
    assert same(TEXT, pa.array(["张三"]), ["张 三"]) == [False]  # inner space is meaningful


def test_an_id_numbers_check_digit_compares_in_either_case() -> None:
    source = pa.array(["11010519900307002X", "11010519900307002x", "110105199003070021"])
    assert same(ID, source, ["11010519900307002x", "11010519900307002X",
                             "11010519900307002x"]) == [True, True, False]


def test_numbers_compare_as_numbers() -> None:
    source = pa.array([12.5, 12.5, 12.5, 3.0, 0.0, 0.1 + 0.2], pa.float64())
    assert same(NUMBER, source, [12.50, "12.50", "1.25e1", 3, -0.0, 0.3]) == [
        True, True, True, True, True, False]
    assert same(INTEGER, pa.array([3, 3, 3, 4]), [3, 3.0, "3", "3"]) == [True] * 3 + [False]


def test_dates_booleans_and_moments_compare_as_their_type() -> None:
    days = pa.array([dt.date(1990, 1, 5), dt.date(1990, 1, 5)])
    assert same(DATE, days, ["1990-01-05", "1990-05-01"]) == [True, False]
    assert same(BOOL, pa.array([True, False, True]), [True, "false", False]) == [
        True, True, False]
    moment = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    moments = pa.array([moment] * 3, MOMENT.type)
    assert same(MOMENT, moments, ["2024-01-01T08:00:00+08:00", "2024-01-01T00:00:00Z",
                                  "2024-01-01T00:00:01+00:00"]) == [True, True, False]


def test_a_source_null_matches_nothing() -> None:
    assert same(RAW_TEXT, pa.array([None, None], pa.string()), ["", "None"]) == [False, False]


@pytest.mark.parametrize(("rule", "value", "says"), [
    (NUMBER, "twelve", "must be a number"),
    (NUMBER, True, "not a boolean"),
    (NUMBER, "nan", "must be a number"),
    (INTEGER, 1.5, "must be an integer"),
    (INTEGER, 2**64, "64-bit"),
    (DATE, "1990-1-5", "YYYY-MM-DD"),
    (DATE, "1990-02-30", "not a calendar date"),
    (DATE, 19900105, "YYYY-MM-DD"),
    (BOOL, "yes", "true or false"),
    (RAW_TEXT, 12, "must be a string"),
    (MOMENT, "yesterday", "ISO-8601"),
    (RAW_TEXT, None, "is null"),
])
def test_a_value_not_of_its_fields_type_is_refused(rule: FieldRule, value: Any, says: str) -> None:
    with pytest.raises(BadValue) as refused:
        parse([value], rule)
    assert says in refused.value.reason
    assert refused.value.index == 0


def test_the_index_of_the_bad_value_is_reported() -> None:
    with pytest.raises(BadValue) as refused:
        parse(["1990-01-05", "1990-01-06", "soon"], DATE)
    assert refused.value.index == 2


def test_digests_are_hmac_sha256_truncated_with_the_field_in_the_message() -> None:
    digester = Digester(KEY)
    [digest] = digester.field_digests(pa.array(["张三"]), RAW_TEXT)
    message = b"govex/verify/v1/field\0note\0" + "张三".encode()
    assert digest == hmac.new(KEY, message, hashlib.sha256).hexdigest()[:32]
    # Another field, another key or the key digest of the same text: unrelated digests.
    [other_field] = digester.field_digests(pa.array(["张三"]), FieldRule("name", pa.string()))
    [other_key] = Digester(b"j" * 32).field_digests(pa.array(["张三"]), RAW_TEXT)
    [as_key] = digester.key_digests(pa.table({"note": ["张三"]}), [RAW_TEXT])
    assert len({digest, other_field, other_key, as_key}) == 4


def test_a_compound_key_cannot_be_spelled_two_ways() -> None:
    rules = [FieldRule("a", pa.string()), FieldRule("b", pa.string())]
    digests = Digester(KEY).key_digests(
        pa.table({"a": ["1,2", "1", "1:2", None], "b": ["3", "2,3", "3", "1"]}), rules)
    assert len(set(digests)) == 4
