"""A call of a few records makes its canonical texts and digests in plain Python
(`canonical.plain_text`, `Digester.field_digests_of` / `key_digests_of`) instead of Arrow: held
here, over random values of every type, to give exactly Arrow's texts and digests, or nothing
(None, and the call takes Arrow's path), never a different text."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from exchange.verify.canonical import BadValue, FieldRule, canonical_text, normalised, parse
from exchange.verify.canonical import plain_text as plain
from exchange.verify.digests import Digester

STEPS = ("fullwidth", "nfc", "trim")
TEXT_RULES = [FieldRule("name", pa.string(), steps, upper)
              for n in range(len(STEPS) + 1) for steps in itertools.combinations(STEPS, n)
              for upper in (False, True)]
INTEGER = FieldRule("children", pa.int64())
NUMBER = FieldRule("score", pa.float64())
BOOLEAN = FieldRule("married", pa.bool_())
DATE = FieldRule("birth_date", pa.date32())
MOMENT = FieldRule("seen_at", pa.timestamp("us", tz="UTC"))
NOTHING = FieldRule("gone", pa.null())

# Characters where normalisation differs between engines if anywhere: full-width forms and
# the ideographic space, combining marks, whitespace of every kind, case-changing letters
# with no one-character upper case, CJK, and an ID number's check character.
TRICKY = ("Ａｚ０９！～\u3000 \t\n\r\x0b\x0c\x1c\x1f\x85\xa0\u1680\u180e\u2000\u2007\u200b"
          "\u2028\u2029\u202f\u205f\ufeff" "e\u0301\u0301\u0327\u1e0a\u0323\u212b\u2126"
          "ßſıİǅﬁŉ" "张三李四居民陈\u9fff\u4e00\u3400\uf900\U00020000" "xX0123456789-,")
texts = st.text(alphabet=st.sampled_from(TRICKY) | st.characters(codec="utf-8"),
                max_size=12)
json_values = st.none() | st.booleans() | st.integers() | st.floats(
    allow_nan=False, allow_infinity=False) | texts | st.lists(st.integers(), max_size=2)
numbers = (st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=False, allow_infinity=False)
           | st.floats(min_value=-1e-300, max_value=1e-300)
           | st.decimals(places=4, allow_nan=False, allow_infinity=False).map(float)
           | st.integers(-10**9, 10**9).map(lambda n: n / 100))
dates = st.dates().map(dt.date.isoformat) | st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}",
                                                          fullmatch=True)
moments = st.datetimes(timezones=st.none() | st.timezones()).map(
    lambda m: m.isoformat()) | st.from_regex(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.+Z-]{2,20}",
                                             fullmatch=True)


def arrow_text(value: Any, rule: FieldRule, *, key: bool = False) -> str | None:
    """What the Arrow path makes of `value`: `canonical_text` of it parsed (or, with `key`,
    `normalised` cast to text, as a record key); None where `parse` refuses it."""
    try:
        typed = parse([value], rule)
    except BadValue:
        return None
    text = pc.cast(normalised(typed, rule), pa.string()) if key else canonical_text(typed, rule)
    found: str | None = text[0].as_py()
    return found


def check(value: Any, rule: FieldRule) -> None:
    for key in (False, True):
        made = plain(value, rule, key=key)
        if made is not None:  # plain Python may decline, but never give another text
            assert made == arrow_text(value, rule, key=key), (value, rule, key)


@settings(max_examples=3000, deadline=None)
@given(texts, st.sampled_from(TEXT_RULES))
@example("ａｂ１２３４５６７８９０１２３４５６ｘ", TEXT_RULES[-1])
def test_texts_are_arrows_in_every_normalisation(value: str, rule: FieldRule) -> None:
    check(value, rule)


@settings(max_examples=3000, deadline=None)
@given(numbers | json_values, st.sampled_from([INTEGER, NUMBER]))
@example(-0.0, NUMBER)
@example(5e-324, NUMBER)
@example(1.7976931348623157e308, NUMBER)
@example(2**53 + 1, NUMBER)
@example(2**63 - 1, INTEGER)
@example(2**63, INTEGER)
@example(1e15, NUMBER)
@example(1e-7, NUMBER)
def test_numbers_are_arrows(value: Any, rule: FieldRule) -> None:
    check(value, rule)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(st.tuples(dates | dates | json_values, st.just(DATE)),
                 st.tuples(moments | moments | json_values, st.just(MOMENT)),
                 st.tuples(st.booleans() | json_values, st.just(BOOLEAN)),
                 st.tuples(json_values, st.just(NOTHING))))
@example(("0000-01-01", DATE))
@example(("2024-02-30", DATE))
@example(("2024-W01-1", DATE))
@example(("0001-01-01T00:00:00+08:00", MOMENT))
@example(("9999-12-31T23:59:59.999999-01:00", MOMENT))
def test_dates_moments_and_booleans_are_arrows(asked: tuple[Any, FieldRule]) -> None:
    check(*asked)


@pytest.mark.parametrize(("value", "rule", "text"), [
    ("居民12", FieldRule("name", pa.string(), STEPS), "居民12"),
    ("Ａｌｉｃｅ", FieldRule("name", pa.string(), STEPS), "Alice"),
    ("11010519900101001x", FieldRule("id_no", pa.string(), (), upper=True),
     "11010519900101001X"),
    (12.5, NUMBER, "12.5"), (3, NUMBER, "3"), (-0.0, NUMBER, "0"), (1e21, NUMBER, "1e+21"),
    (-7, INTEGER, "-7"), (True, BOOLEAN, "true"), ("1980-02-03", DATE, "1980-02-03"),
    ("2024-01-05T08:00:00+08:00", MOMENT, "2024-01-05 00:00:00.000000Z"),
])
def test_the_usual_values_are_made_in_plain_python(value: Any, rule: FieldRule,
                                                   text: str) -> None:
    """What calls send every day does not fall back to Arrow (where the speed-up is)."""
    assert plain(value, rule) == text == arrow_text(value, rule)


@pytest.mark.parametrize(("value", "rule"), [
    (" 张三", FieldRule("name", pa.string(), ("trim",))),  # Arrow trims what it calls space
    ("e\u0301", FieldRule("name", pa.string(), ("nfc",))),  # Arrow's Unicode tables compose
    ("straße", FieldRule("id_no", pa.string(), (), upper=True)),
    (None, NUMBER), ("12.5", NUMBER), (2**63, INTEGER), (5.0, INTEGER), ("2024-2-1", DATE),
    ("true", BOOLEAN), (1, NOTHING),
])
def test_what_plain_python_cannot_be_sure_of_goes_to_arrow(value: Any, rule: FieldRule) -> None:
    assert plain(value, rule) is None


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(texts, st.integers(-(2**63), 2**63 - 1)), min_size=1, max_size=16),
       st.binary(min_size=1, max_size=80))
def test_digests_of_texts_are_the_arrow_digests(rows: list[tuple[str, int]],
                                                key: bytes) -> None:
    digester = Digester(key)
    name = FieldRule("name", pa.string())
    number = FieldRule("number", pa.int64())
    names = [n for n, _ in rows]
    numbers = [str(i) for _, i in rows]
    keys = pa.table({"name": pa.array(names), "number": pa.array([i for _, i in rows])})
    assert digester.field_digests_of(names, name) == digester.field_digests(
        pa.array(names), name)
    assert digester.key_digests_of(list(zip(names, numbers, strict=True))) == \
        digester.key_digests(keys, [name, number])
