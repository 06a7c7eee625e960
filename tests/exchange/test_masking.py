"""Masking: the rules on hand-made values, the promises on generated ones, the keys, the errors."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import catalog
from exchange.run import masking
from govex.errors import DeclarationError, FatalError

MASTER = bytes(range(32))
KEY = masking.subscription_key(MASTER, "SUB-GSC-001")
TEXT_MASKS = ("mask_name", "mask_id_number", "mask_phone", "mask_address")
LENGTH_PRESERVING = ("mask_name", "mask_id_number", "mask_phone")


def run(function: str, values: list[object], type_: pa.DataType | None = None) -> list[object]:
    return masking.mask(function, pa.array(values, type_), key=KEY).to_pylist()


def hmac_hex(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


# --- the rules, by example ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("张三", "张*"), ("欧阳娜娜", "欧***"), ("王", "*"), ("", ""), ("John Smith", "J*********"),
     ("𠀋𠀌𠀍", "𠀋**")],
)
def test_mask_name(value: str, expected: str) -> None:
    assert run("mask_name", [value]) == [expected]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("11010519491231002X", "110105********002X"),  # 18-digit resident ID
        ("110105491231002", "110105*****1002"),  # 15-digit first-generation ID
        ("91350100M000100Y43", "913501********0Y43"),  # unified social credit code
        ("G12345678", "G*******8"),  # passport: too short for 6+4, first and last only
        ("AB", "A*"),
        ("A", "*"),
        ("", ""),
    ],
)
def test_mask_id_number(value: str, expected: str) -> None:
    assert run("mask_id_number", [value]) == [expected]


def test_mask_id_number_keeps_six_and_four_at_eleven_characters() -> None:
    assert run("mask_id_number", ["12345678901"]) == ["123456*8901"]
    assert run("mask_id_number", ["1234567890"]) == ["1********0"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("13812341234", "138****1234"),  # mobile
        ("19900001111", "199****1111"),
        ("010-62345678", "********5678"),  # landline: last 4 only
        ("02112345678", "*******5678"),  # 11 digits but not a mobile (no leading 1)
        ("+8613812341234", "**********1234"),
        ("１３８１２３４１２３４", "*******１２３４"),  # full-width digits are not \d in RE2
        ("12345", "*2345"),
        ("1234", "****"),
        ("", ""),
    ],
)
def test_mask_phone(value: str, expected: str) -> None:
    assert run("mask_phone", [value]) == [expected]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("北京市朝阳区建国路88号", "北京市朝阳区******"),  # 12 characters: 6 kept, 6 stars
        ("北京市朝阳区建国路88号院3号楼2单元1201室", "北京市朝阳区******"),  # capped
        ("北京市朝阳区建国", "北京市朝阳区**"),
        ("北京市朝阳区", "北京市朝阳*"),  # nothing beyond the prefix: hide the last character
        ("某路1号", "某路1*"),
        ("甲", "*"),
        ("", ""),
    ],
)
def test_mask_address(value: str, expected: str) -> None:
    assert run("mask_address", [value]) == [expected]


def test_long_addresses_of_different_lengths_look_alike() -> None:
    short, long = run(
        "mask_address", ["上海市浦东新区世纪大道1号", "上海市浦东新区世纪大道100号环球金融中心99层"]
    )
    assert short == long


def test_hash_is_keyed_hmac_sha256_hex_of_the_utf8_text() -> None:
    assert run("hash", ["张三", "11010519491231002X"]) == [
        hmac_hex(KEY, "张三"), hmac_hex(KEY, "11010519491231002X")
    ]


def test_hash_casts_non_strings_to_their_text() -> None:
    assert run("hash", [42, None]) == [hmac_hex(KEY, "42"), None]
    assert run("hash", [dt.date(2026, 1, 2)]) == [hmac_hex(KEY, "2026-01-02")]
    assert run("hash", [b"\xe5\xbc\xa0"], pa.binary()) == [hmac_hex(KEY, "张")]


def test_text_masks_cast_non_strings() -> None:
    assert run("mask_phone", [13812341234], pa.int64()) == ["138****1234"]
    assert run("mask_id_number", [dt.date(1990, 3, 7)]) == ["1********7"]


def test_none_keeps_values_and_type() -> None:
    values = pa.array([1, None, 3], pa.int32())
    out = masking.mask("none", values, key=KEY)
    assert out.type == pa.int32()
    assert out.to_pylist() == [1, None, 3]


# --- keys -----------------------------------------------------------------------------------


def test_same_subscription_same_hash_other_subscription_other_hash() -> None:
    ids = pa.array(["11010519491231002X", "110105194912310037"])
    again = masking.subscription_key(MASTER, "SUB-GSC-001")
    other = masking.subscription_key(MASTER, "SUB-HRSS-002")
    assert again == KEY
    first = masking.mask("hash", ids, key=KEY).to_pylist()
    assert masking.mask("hash", ids, key=again).to_pylist() == first
    second = masking.mask("hash", ids, key=other).to_pylist()
    assert not set(first) & set(second)


def test_subscription_key_depends_on_the_master() -> None:
    assert masking.subscription_key(bytes(32), "SUB-1") != masking.subscription_key(MASTER, "SUB-1")
    assert len(KEY) == 32
    assert KEY != MASTER


@pytest.mark.parametrize("bad", [b"", b"short"])
def test_short_keys_are_refused(bad: bytes) -> None:
    with pytest.raises(FatalError, match="at least 16"):
        masking.subscription_key(bad, "SUB-1")
    with pytest.raises(FatalError, match="at least 16"):
        masking.mask("hash", pa.array(["x"]), key=bad)


# --- the API around the functions -----------------------------------------------------------


def test_vocabulary_is_the_catalogs() -> None:
    assert masking.MASKING_FUNCTIONS == catalog.MASKING_FUNCTIONS
    for function in masking.MASKING_FUNCTIONS:
        masking.mask(function, pa.array(["x"]), key=KEY)  # every name has an implementation


def test_unknown_function_is_a_declaration_error() -> None:
    with pytest.raises(DeclarationError, match="unknown masking function 'scramble'"):
        masking.mask("scramble", pa.array(["x"]), key=KEY)
    with pytest.raises(DeclarationError, match="scramble"):
        masking.output_type("scramble", pa.string())
    table = pa.table({"name": ["张三"]})
    with pytest.raises(DeclarationError, match=r"masking\.name.*scramble"):
        masking.mask_table(table, {"name": "scramble"}, key=KEY)


def test_nested_values_cannot_be_masked() -> None:
    with pytest.raises(DeclarationError, match="cannot mask"):
        masking.output_type("mask_name", pa.list_(pa.string()))
    table = pa.table({"tags": pa.array([["a"]], pa.list_(pa.string()))})
    with pytest.raises(DeclarationError, match=r"masking\.tags"):
        masking.mask_table(table, {"tags": "hash"}, key=KEY)
    assert masking.output_type("none", pa.list_(pa.string())) == pa.list_(pa.string())


@pytest.mark.parametrize("function", masking.MASKING_FUNCTIONS)
def test_output_type(function: str) -> None:
    expected = pa.int64() if function == "none" else pa.string()
    assert masking.output_type(function, pa.int64()) == expected
    assert masking.mask(function, pa.array([1, None]), key=KEY).type == expected


def test_mask_table_masks_named_columns_and_keeps_the_rest() -> None:
    schema = pa.schema([
        pa.field("id_no", pa.string(), nullable=False, metadata={b"x-govex-pii": b"id_number"}),
        pa.field("name", pa.string()),
        pa.field("phone", pa.int64()),
        pa.field("age", pa.int32()),
    ])
    table = pa.table(
        [["11010519491231002X", "110105194912310037"], ["张三", None], [13812341234, None],
         [30, 40]],
        schema=schema,
    )
    out = masking.mask_table(
        table, {"id_no": "mask_id_number", "name": "mask_name", "phone": "hash", "age": "none"},
        key=KEY,
    )
    assert out.column_names == table.column_names
    assert out.schema.field("id_no").nullable is False
    assert out.schema.field("id_no").metadata == {b"x-govex-pii": b"id_number"}
    assert out.schema.field("phone").type == pa.string()
    assert out.schema.field("age").type == pa.int32()
    assert out.to_pydict() == {
        "id_no": ["110105********002X", "110105********0037"],
        "name": ["张*", None],
        "phone": [hmac_hex(KEY, "13812341234"), None],
        "age": [30, 40],
    }


def test_mask_table_refuses_a_field_that_is_not_a_column() -> None:
    with pytest.raises(DeclarationError, match=r"masked field 'phone' is not a column"):
        masking.mask_table(pa.table({"name": ["张三"]}), {"phone": "mask_phone"}, key=KEY)


def test_chunked_and_dictionary_inputs_give_the_same_result_as_plain_arrays() -> None:
    values = ["张三", "李四", None, "张三", "欧阳娜娜", "王"]
    plain = pa.array(values)
    chunked = pa.chunked_array([values[:2], values[2:4], values[4:], []], pa.string())
    dictionary = pa.chunked_array(
        [pa.array(values[:3]).dictionary_encode(), pa.array(values[3:]).dictionary_encode()]
    )
    for function in masking.MASKING_FUNCTIONS:
        expected = masking.mask(function, plain, key=KEY)
        assert masking.mask(function, chunked, key=KEY).equals(expected), function
        if function != "none":
            assert masking.mask(function, dictionary, key=KEY).equals(expected), function
    empty = pa.chunked_array([], pa.dictionary(pa.int32(), pa.string()))
    assert len(masking.mask("hash", empty, key=KEY)) == 0


def test_large_string_input() -> None:
    out = masking.mask("mask_name", pa.array(["张三", None], pa.large_string()), key=KEY)
    assert out.type == pa.string()
    assert out.to_pylist() == ["张*", None]


# --- the promises, on generated data ---------------------------------------------------------

# Any Unicode text except surrogates (not encodable as UTF-8) and the star itself (so that what
# shows through can be told from the mask), with CJK and astral planes likely.
_chars = st.one_of(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="*"),
    st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
    st.characters(min_codepoint=0x20000, max_codepoint=0x2A6DF),
    st.sampled_from("0123456789"),
)
_texts = st.text(_chars, max_size=30)
_columns = st.lists(st.one_of(st.none(), _texts), max_size=40)


@settings(max_examples=200, deadline=None)
@given(values=_columns, function=st.sampled_from(masking.MASKING_FUNCTIONS))
def test_nulls_stay_null_and_rows_stay_in_place(values: list[str | None], function: str) -> None:
    out = run(function, values, pa.string())
    assert len(out) == len(values)
    assert [v is None for v in out] == [v is None for v in values]


@settings(max_examples=200, deadline=None)
@given(values=_columns, function=st.sampled_from(LENGTH_PRESERVING))
def test_lengths_in_code_points_are_preserved(values: list[str | None], function: str) -> None:
    out = run(function, values, pa.string())
    assert [None if v is None else len(v) for v in out] == [
        None if v is None else len(v) for v in values
    ]


@settings(max_examples=200, deadline=None)
@given(values=_columns, function=st.sampled_from(TEXT_MASKS))
def test_masks_hide_something_and_reveal_only_original_characters(
    values: list[str | None], function: str
) -> None:
    for before, after in zip(values, run(function, values, pa.string()), strict=True):
        if before is None or before == "":
            assert after == before
            continue
        assert after is not None
        assert "*" in after  # never revealed whole
        # What shows through is a prefix and a suffix of the original, stars in between.
        head, _, rest = after.partition("*")
        tail = rest.lstrip("*")
        assert "*" not in tail
        assert before.startswith(head)
        assert before.endswith(tail)
        assert len(head) + len(tail) < len(before)


@settings(max_examples=200, deadline=None)
@given(values=_columns)
def test_mask_address_keeps_six_and_caps_stars(values: list[str | None]) -> None:
    for before, after in zip(values, run("mask_address", values, pa.string()), strict=True):
        if before is None or len(before) <= 6:
            continue
        assert after == before[:6] + "*" * min(len(before) - 6, 6)


@settings(max_examples=100, deadline=None)
@given(values=_columns)
def test_hash_is_one_to_one_stable_and_keyed(values: list[str | None]) -> None:
    out = run("hash", values, pa.string())
    for before, after in zip(values, out, strict=True):
        assert after == (None if before is None else hmac_hex(KEY, before))
    present = [(v, h) for v, h in zip(values, out, strict=True) if v is not None]
    assert len({v for v, _ in present}) == len({h for _, h in present})
    assert run("hash", values, pa.string()) == out


@settings(max_examples=100, deadline=None)
@given(subscription=_texts, other=_texts)
def test_subscription_keys_are_deterministic_and_distinct(subscription: str, other: str) -> None:
    a = masking.subscription_key(MASTER, subscription)
    assert a == masking.subscription_key(MASTER, subscription)
    assert (a == masking.subscription_key(MASTER, other)) == (subscription == other)


_phones = st.one_of(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), _texts)


@settings(max_examples=200, deadline=None)
@given(values=st.lists(st.one_of(st.none(), _phones), max_size=40),
       function=st.sampled_from(masking.MASKING_FUNCTIONS))
def test_a_column_is_masked_as_each_of_its_values_alone(
    values: list[str | None], function: str
) -> None:
    """Forms are computed only for the rows that take them, and a column mixing every form
    (mobile numbers and other text, long and short, nulls) gets each row's own form."""
    alone = [run(function, [value], pa.string())[0] for value in values]
    assert run(function, values, pa.string()) == alone
