"""How verification compares values: both sides typed as the contract types them, then one text.

Why one function for both sides: the index is built from the source's batches (contract-typed
by the run) and a call's values arrive as JSON. Each asked value is first parsed into its
field's contract Arrow type (`parse`), and from there both sides go through the same
vectorised `canonical_text`, so they agree by construction: a date is a date (2024-01-05 and
"2024-01-05" are one value), a number a number (12.5 and "12.50" are one float64), an integer
an integer, a boolean a boolean, a date-time one UTC instant. Text compares exactly, after the
normalisation the contract declares for the field (`x-govex-normalize`: fullwidth, nfc, trim,
in that order) and, for a field marked `x-govex-pii: id_number`, in upper case (the check
digit X in either case). Nulls stay null: a value the source does not hold matches nothing.
"""

from __future__ import annotations

import datetime as dt
import math
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as _pc

import contracts

pc: Any = _pc  # pyarrow-stubs cannot follow kernels that are generic over types

__all__ = ["BadValue", "FieldRule", "canonical_text", "field_rules", "normalised", "parse",
           "plain_text"]

# fullwidth: U+FF01–U+FF5E are ASCII U+0021–U+007E shifted by 0xFEE0; U+3000 is a space.
_FULLWIDTH = {code: code - 0xFEE0 for code in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_INT64 = (-(2**63), 2**63 - 1)
_DATE_LENGTH = len("2024-01-05")


class BadValue(ValueError):
    """A value that is not of its field's type; `index` is its place in the values parsed."""

    def __init__(self, index: int, reason: str) -> None:
        super().__init__(reason)
        self.index = index
        self.reason = reason


@dataclass(frozen=True)
class FieldRule:
    """How one field's values compare: its contract Arrow type, the normalisation steps of
    text (in the order they apply), and whether it compares in upper case (an ID number)."""

    name: str
    type: pa.DataType
    normalize: tuple[str, ...] = ()
    upper: bool = False


def field_rules(contract: contracts.Contract) -> dict[str, FieldRule]:
    """Every field's rule, from the contract version the resource pins."""
    schema = contracts.arrow_schema(contract)
    return {
        name: FieldRule(name, schema.field(name).type, contract.normalize(name),
                        contract.pii(name) == "id_number")
        for name in contract.fields
    }


def normalised(values: pa.Array[Any] | pa.ChunkedArray[Any], rule: FieldRule) -> Any:
    """`values` in their own type, text normalised as `rule` says (other types unchanged)."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return values
    text: Any = values
    if "fullwidth" in rule.normalize:
        text = _per_distinct(text, lambda s: s.translate(_FULLWIDTH))
    if "nfc" in rule.normalize:
        text = pc.utf8_normalize(text, form="NFC")
    if "trim" in rule.normalize:
        text = pc.utf8_trim_whitespace(text)
    if rule.upper:
        text = pc.utf8_upper(text)
    return text


def canonical_text(values: pa.Array[Any] | pa.ChunkedArray[Any], rule: FieldRule) -> Any:
    """One text per value, equal exactly when the values are equal as the contract types
    them; null stays null. Both the index build and a call's values come through here."""
    typed: Any = normalised(values, rule)
    if pa.types.is_floating(typed.type):
        typed = pc.add(typed, 0.0)  # -0.0 + 0.0 is 0.0: one zero
    if pa.types.is_timestamp(typed.type) and typed.type.tz is not None:
        typed = pc.cast(typed, pa.timestamp("us", tz="UTC"))  # one unit, one zone
    if pa.types.is_string(typed.type):
        return typed
    return pc.cast(typed, pa.string())


def plain_text(value: Any, rule: FieldRule, *, key: bool = False) -> str | None:
    """The canonical text of one JSON value asked about (`parse` then `canonical_text`) in
    plain Python, for a call of a few records, where Arrow's fixed cost per column and kernel
    was most of the call's work; with `key`, the text `normalised` gives it instead (a record
    key's, where a float keeps the sign of its zero). None wherever plain Python is not
    certain to give Arrow's text, or the value is not of its field's type: the caller then
    takes Arrow's path, which also names the value at fault."""
    kind = rule.type
    kinds = type(value)
    try:
        if pa.types.is_string(kind):
            return _plain_string(value, rule) if kinds is str else None
        if pa.types.is_integer(kind):
            return str(value) if kinds is int and _INT64[0] <= value <= _INT64[1] else None
        if pa.types.is_floating(kind):
            number = float(value) if kinds is int or kinds is float else math.nan
            if not math.isfinite(number):
                return None
            return _float_text(number if key else number + 0.0)
        if pa.types.is_boolean(kind):
            return ("true" if value else "false") if kinds is bool else None
        if pa.types.is_date(kind):
            if kinds is str and len(value) == _DATE_LENGTH and _DATE.fullmatch(value):
                return dt.date.fromisoformat(value).isoformat()
            return None
        if pa.types.is_timestamp(kind) and kind.unit == "us" and kind.tz == "UTC":
            moment = _moment(value)
            return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d} "
                    f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}."
                    f"{moment.microsecond:06d}Z")
    except (TypeError, ValueError, OverflowError):
        return None
    return None


def _plain_string(text: str, rule: FieldRule) -> str | None:
    """`normalised` of one text in plain Python, where that is certain to be Arrow's result:
    NFC leaves ASCII and CJK unified ideographs as they are, trimming a text that starts and
    ends with a letter, digit or ASCII mark removes nothing, upper case of ASCII is ASCII's."""
    if "fullwidth" in rule.normalize:
        text = text.translate(_FULLWIDTH)
    if "nfc" in rule.normalize and not _NFC_INERT.fullmatch(text):
        return None
    if "trim" in rule.normalize and not (text and _kept_end(text[0]) and _kept_end(text[-1])):
        return None
    if rule.upper:
        if not text.isascii():
            return None
        text = text.upper()
    try:
        text.encode("utf-8")  # a lone surrogate has no UTF-8: Arrow's path refuses it
    except UnicodeEncodeError:
        return None
    return text


_NFC_INERT = re.compile("[\x00-\x7f\u4e00-\u9fff]*")


def _kept_end(char: str) -> bool:
    """A character no trimming removes: an ASCII letter, digit or mark, or any other letter
    or digit (whitespace is neither, in every Unicode version)."""
    if char.isascii():
        return "!" <= char <= "~"
    return unicodedata.category(char)[0] in "LN"


# Arrow's float64 → string cast (double-conversion's shortest digits, as Python's repr):
# positional notation for decimal exponents -6 to 9, else d.ddde±x.
_POSITIONAL = range(-6, 10)


def _float_text(number: float) -> str:
    """`pc.cast(float64, string)` of one finite float, exactly."""
    if number == 0:
        return "-0" if math.copysign(1.0, number) < 0 else "0"
    sign = "-" if number < 0 else ""
    mantissa, _, exponent = repr(abs(number)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    written = whole + fraction
    significant = written.lstrip("0")
    # The decimal point's place before the significant digits: 0.<digits> × 10^point.
    point = len(whole) + int(exponent or 0) - (len(written) - len(significant))
    digits = significant.rstrip("0")
    power = point - 1
    if power in _POSITIONAL:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        if point >= len(digits):
            return f"{sign}{digits}{'0' * (point - len(digits))}"
        return f"{sign}{digits[:point]}.{digits[point:]}"
    tail = f".{digits[1:]}" if len(digits) > 1 else ""
    return f"{sign}{digits[0]}{tail}e{'-' if power < 0 else '+'}{abs(power)}"


def parse(values: Sequence[Any], rule: FieldRule) -> pa.Array[Any]:
    """JSON values asked about, as an array of the field's contract type; BadValue naming the
    first one that is not a value of that type (null included: ask with a value)."""
    fast = _all_at_once(values, rule.type)
    if fast is not None:
        return fast
    kind = rule.type
    convert: Callable[[Any], Any]
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        convert = _text
    elif pa.types.is_integer(kind):
        convert = _integer
    elif pa.types.is_floating(kind):
        convert = _number
    elif pa.types.is_boolean(kind):
        convert = _boolean
    elif pa.types.is_date(kind):
        convert = _date
    elif pa.types.is_timestamp(kind):
        convert = _moment
    else:
        convert = _nothing
    out = []
    for index, value in enumerate(values):
        if value is None:
            raise BadValue(index, "is null; ask with a value (a field the source holds no "
                                  "value for matches nothing)")
        try:
            out.append(convert(value))
        except (TypeError, ValueError, OverflowError) as error:
            raise BadValue(index, str(error)) from None
    return pa.array(out, type=kind)


def _all_at_once(values: Sequence[Any], kind: pa.DataType) -> pa.Array[Any] | None:
    """The common case without a Python step per value: every value already of the JSON type
    the field takes (dates as text Arrow reads as YYYY-MM-DD). None: go value by value, which
    also finds the one at fault."""
    try:
        if pa.types.is_string(kind) and all(type(v) is str for v in values):
            return pa.array(values, kind)
        if pa.types.is_integer(kind) and all(type(v) is int for v in values):
            return pa.array(values, kind)
        if pa.types.is_floating(kind) and all(type(v) in (int, float) for v in values):
            numbers = pa.array(values, kind)
            return numbers if pc.all(pc.is_finite(numbers)).as_py() else None
        if pa.types.is_boolean(kind) and all(type(v) is bool for v in values):
            return pa.array(values, kind)
        if pa.types.is_date(kind) and all(type(v) is str and len(v) == _DATE_LENGTH
                                           for v in values):
            dates: pa.Array[Any] = pc.cast(pa.array(values, pa.string()), kind)
            return dates
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OverflowError):
        return None
    return None


def _per_distinct(values: Any, change: Any) -> Any:
    """A Python string function applied once per distinct value, spread back with `take`."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    encoded = values.dictionary_encode()
    changed = pa.array([change(v) for v in encoded.dictionary.to_pylist()], values.type)
    return pc.take(changed, encoded.indices)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        msg = f"must be a string, not {_json_type(value)}"
        raise TypeError(msg)
    return value


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        msg = "must be an integer, not a boolean"
        raise TypeError(msg)
    if (isinstance(value, float) and value.is_integer()) or (
            isinstance(value, str) and _INTEGER.fullmatch(value)):
        value = int(value)
    if not isinstance(value, int):
        msg = f"must be an integer, not {_json_type(value)}"
        raise TypeError(msg)
    if not _INT64[0] <= value <= _INT64[1]:
        msg = "is out of the 64-bit integer range"
        raise OverflowError(msg)
    return value


def _number(value: Any) -> float:
    if isinstance(value, bool):
        msg = "must be a number, not a boolean"
        raise TypeError(msg)
    if isinstance(value, str) and _NUMBER.fullmatch(value):
        value = float(value)
    if not isinstance(value, int | float):
        msg = f"must be a number, not {_json_type(value)}"
        raise TypeError(msg)
    number = float(value)
    if not math.isfinite(number):
        msg = "is not a finite number"
        raise ValueError(msg)
    return number


def _boolean(value: Any) -> bool:
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    if not isinstance(value, bool):
        msg = f"must be true or false, not {_json_type(value)}"
        raise TypeError(msg)
    return value


def _date(value: Any) -> dt.date:
    if not isinstance(value, str) or not _DATE.fullmatch(value):
        msg = "must be a date written YYYY-MM-DD"
        raise TypeError(msg)
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        msg = f"is not a calendar date ({value})"
        raise ValueError(msg) from None


def _moment(value: Any) -> dt.datetime:
    """ISO-8601 date and time; without an offset it is UTC, as govex stores every time."""
    if not isinstance(value, str):
        msg = "must be a date-time written as ISO-8601 text"
        raise TypeError(msg)
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        msg = "is not an ISO-8601 date-time (e.g. 2024-01-05T08:00:00+08:00)"
        raise ValueError(msg) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _nothing(value: Any) -> Any:
    msg = "is a field that holds no value in the contract (type null)"
    raise TypeError(msg)


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string",
             list: "an array", dict: "an object"}
    return names.get(type(value), type(value).__name__)
