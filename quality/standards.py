"""National-standard identifier checks: pure functions over one value each.

- GB 11643-1999 citizen identity number (公民身份号码): 17 digits (6 area code, 8 birth date
  YYYYMMDD, 3 sequence whose last digit is odd for men), then an ISO 7064 MOD 11-2 check
  character.
- GB 32100-2015 unified social credit code (统一社会信用代码): 18 characters from a 31-character
  alphabet (no I, O, S, V, Z); characters 9-17 are a GB 11714 organisation code (组织机构代码)
  whose last character is its own check; character 18 is a MOD 31 check over the first 17.
- Mainland mobile phone numbers (11 digits, 1[3-9]…), as used by the `cn_mobile_phone` check.

Every function takes one `str` and never raises on bad *data*: the `is_valid_*` predicates answer
False, the extractors answer None. The `*_check_*` functions compute a check character from a
prefix and raise `ValueError` for a malformed prefix, because that is a programming error.
The module keeps its tables as constants so a vectorised implementation (Arrow compute, pandas)
can reuse them unchanged.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as _pc

from quality import divisions

__all__ = [
    "ORG_CODE_CHARS",
    "ORG_CODE_WEIGHTS",
    "RESIDENT_ID_CHECK_CHARS",
    "RESIDENT_ID_WEIGHTS",
    "USCC_ALPHABET",
    "USCC_WEIGHTS",
    "birth_date_from_resident_id",
    "gender_from_resident_id",
    "is_known_division_code",
    "is_valid_cn_mobile_phone",
    "is_valid_org_code",
    "is_valid_resident_id",
    "is_valid_uscc",
    "was_division_code",
    "org_code_check_char",
    "resident_id_check_digit",
    "uscc_check_char",
    # vectorised
    "ages_at_most",
    "as_text",
    "date_keys",
    "dates_not_future",
    "division_codes_known",
    "division_codes_valid_on",
    "mobile_phones_valid",
    "resident_id_birth_keys",
    "resident_id_male",
    "resident_ids_valid",
    "usccs_valid",
]

# China Standard Time has had no daylight saving since 1991: a fixed UTC+8 offset is exact.
CHINA_TZ = dt.timezone(dt.timedelta(hours=8), "CST")

# ---------------------------------------------------------------------------------------------
# GB 11643-1999 resident identity number
# ---------------------------------------------------------------------------------------------

#: W_i = 2^(17-i) mod 11 for i = 1..17 (ISO 7064 MOD 11-2).
RESIDENT_ID_WEIGHTS: tuple[int, ...] = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
#: Check character indexed by (sum of digit * weight) mod 11.
RESIDENT_ID_CHECK_CHARS = "10X98765432"
# The earliest birth year a living record can plausibly carry (GB 11643's own example is 1880).
_MIN_BIRTH_YEAR = 1800

_RESIDENT_ID_RE = re.compile(r"[0-9]{17}[0-9X]")
_DIGITS17_RE = re.compile(r"[0-9]{17}")


def resident_id_check_digit(first17: str) -> str:
    """The GB 11643 check character ('0'-'9' or 'X') for the first 17 digits of an ID number.

    Raises ValueError unless `first17` is exactly 17 ASCII digits.
    """
    if not _DIGITS17_RE.fullmatch(first17):
        msg = f"a resident ID prefix must be 17 digits, got {first17!r}"
        raise ValueError(msg)
    total = sum(int(c) * w for c, w in zip(first17, RESIDENT_ID_WEIGHTS, strict=True))
    return RESIDENT_ID_CHECK_CHARS[total % 11]


def _birth_date(s: str) -> dt.date | None:
    try:
        born = dt.date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        return None
    return born if born.year >= _MIN_BIRTH_YEAR else None


def is_valid_resident_id(s: str, *, today: dt.date | None = None) -> bool:
    """True when `s` is an 18-character GB 11643 number with a correct check character and a
    real birth date (positions 7-14, YYYYMMDD) not after `today` (default: today in China).

    Strict on format: no spaces, and the check character X must be upper case.
    """
    if not isinstance(s, str) or not _RESIDENT_ID_RE.fullmatch(s):
        return False
    if resident_id_check_digit(s[:17]) != s[17]:
        return False
    born = _birth_date(s)
    if born is None:
        return False
    return born <= (today or dt.datetime.now(CHINA_TZ).date())


def birth_date_from_resident_id(s: str) -> dt.date | None:
    """The birth date encoded in an 18-character ID number, or None if there is no real date.

    Does not verify the check character: the date of a number with a bad check digit is still
    the best evidence of what the holder's record says.
    """
    if not isinstance(s, str) or not _RESIDENT_ID_RE.fullmatch(s):
        return None
    return _birth_date(s)


def gender_from_resident_id(s: str) -> Literal["M", "F"] | None:
    """'M' when the 17th digit (the last of the sequence code) is odd, 'F' when even, None for
    a string that is not shaped like an 18-character ID number."""
    if not isinstance(s, str) or not _RESIDENT_ID_RE.fullmatch(s):
        return None
    return "M" if int(s[16]) % 2 == 1 else "F"


# ---------------------------------------------------------------------------------------------
# GB 11714-1997 organisation code
# ---------------------------------------------------------------------------------------------

#: Weights of the 8 body characters.
ORG_CODE_WEIGHTS: tuple[int, ...] = (3, 7, 9, 10, 5, 8, 4, 2)
#: Body characters and their values: '0'-'9' = 0-9, 'A'-'Z' = 10-35 (the whole Latin alphabet).
ORG_CODE_CHARS = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ORG_VALUES = {c: i for i, c in enumerate(ORG_CODE_CHARS)}
_ORG_BODY_RE = re.compile(r"[0-9A-Z]{8}")
_ORG_CODE_RE = re.compile(r"([0-9A-Z]{8})-?([0-9X])")


def org_code_check_char(first8: str) -> str:
    """The GB 11714 check character for an 8-character organisation code body:
    C9 = 11 - (sum of value * weight) mod 11, written 'X' for 10 and '0' for 11.

    Raises ValueError unless `first8` is 8 characters from 0-9, A-Z.
    """
    if not _ORG_BODY_RE.fullmatch(first8):
        msg = f"an organisation code body must be 8 characters 0-9/A-Z, got {first8!r}"
        raise ValueError(msg)
    c9 = 11 - sum(_ORG_VALUES[c] * w for c, w in zip(first8, ORG_CODE_WEIGHTS, strict=True)) % 11
    return "X" if c9 == 10 else "0" if c9 == 11 else str(c9)


def is_valid_org_code(s: str) -> bool:
    """True for a 9-character organisation code with a correct check character; the printed
    form with a hyphen before the check character (e.g. 'M0001000-4' style) is accepted too."""
    if not isinstance(s, str):
        return False
    m = _ORG_CODE_RE.fullmatch(s)
    return m is not None and org_code_check_char(m.group(1)) == m.group(2)


# ---------------------------------------------------------------------------------------------
# GB 32100-2015 unified social credit code
# ---------------------------------------------------------------------------------------------

#: The 31 code characters in value order (I, O, S, V, Z are never used).
USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
#: W_i = 3^(i-1) mod 31 for i = 1..17.
USCC_WEIGHTS: tuple[int, ...] = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
_USCC_VALUES = {c: i for i, c in enumerate(USCC_ALPHABET)}
_USCC_CLASS = "[0-9A-HJ-NP-RTUWXY]"
# Characters 1-2: registering authority and entity type; 3-8: the administrative division code
# (digits); 9-17: organisation code; 18: check.
_USCC_RE = re.compile(rf"{_USCC_CLASS}{{2}}[0-9]{{6}}{_USCC_CLASS}{{10}}")
_USCC17_RE = re.compile(rf"{_USCC_CLASS}{{17}}")


def uscc_check_char(first17: str) -> str:
    """The GB 32100 check character for the first 17 characters of a credit code:
    C18 = 31 - (sum of value * weight) mod 31, where 31 is written '0'.

    Raises ValueError unless `first17` is 17 characters of the code alphabet.
    """
    if not _USCC17_RE.fullmatch(first17):
        msg = f"a credit code prefix must be 17 characters of {USCC_ALPHABET!r}, got {first17!r}"
        raise ValueError(msg)
    total = sum(_USCC_VALUES[c] * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def is_valid_uscc(s: str, *, check_org_code: bool = True) -> bool:
    """True when `s` is an 18-character GB 32100 code with a correct check character, digits in
    the division-code positions 3-8 and (unless `check_org_code=False`) a correct GB 11714
    check character at position 17 of the embedded organisation code (positions 9-17)."""
    if not isinstance(s, str) or not _USCC_RE.fullmatch(s):
        return False
    if uscc_check_char(s[:17]) != s[17]:
        return False
    return not check_org_code or is_valid_org_code(s[8:17])


# ---------------------------------------------------------------------------------------------
# Phones and division codes
# ---------------------------------------------------------------------------------------------

_MOBILE_RE = re.compile(r"1[3-9][0-9]{9}")


def is_valid_cn_mobile_phone(s: str) -> bool:
    """True for an 11-digit mainland mobile number (1, then 3-9, then nine digits), written
    without spaces, dashes or a +86 prefix."""
    return isinstance(s, str) and _MOBILE_RE.fullmatch(s) is not None


_DIVISION_RE = re.compile(r"[0-9]{6}")


def is_known_division_code(code: str, *, on: dt.date | None = None) -> bool:
    """True when `code` is a 6-digit GB/T 2260 administrative division code valid on `on`
    (default: today in China), by the code history of `quality.divisions`."""
    if not isinstance(code, str) or not _DIVISION_RE.fullmatch(code):
        return False
    day = np.array([_yyyymmdd(_today(on))], dtype=np.int64)
    return bool(divisions.active().valid_on(np.array([int(code)], dtype=np.int64), day)[0])


def was_division_code(code: str) -> bool:
    """True when `code` was a GB/T 2260 code at any time since the first list (1980): the test
    for the area code of an identity number, which keeps its code for life."""
    if not isinstance(code, str) or not _DIVISION_RE.fullmatch(code):
        return False
    return bool(divisions.active().ever_valid(np.array([int(code)], dtype=np.int64))[0])


# ---------------------------------------------------------------------------------------------
# Vectorised variants: Arrow arrays in, one numpy bool per element out
# ---------------------------------------------------------------------------------------------
#
# The same rules as the predicates above, over a whole column at once: the values' bytes are
# viewed as a fixed-width uint8 matrix straight from the Arrow buffers, the shape checked with a
# byte class per position and the check characters computed with numpy. A null, or a value
# that is not a string, is never valid here; callers that skip nulls (Great Expectations does)
# mask them out themselves.

_vc: Any = _pc  # pyarrow-stubs' overloads do not follow generic column code
Mask = npt.NDArray[np.bool_]

_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


ByteClass = tuple[tuple[int, int], ...]


def _byte_class(chars: str) -> ByteClass:
    """The ASCII characters `chars` as runs of consecutive byte values (lo, hi), inclusive."""
    runs: list[tuple[int, int]] = []
    for code in sorted(set(chars.encode("ascii"))):
        if runs and runs[-1][1] == code - 1:
            runs[-1] = (runs[-1][0], code)
        else:
            runs.append((code, code))
    return tuple(runs)


# Each shape is one byte class per position, i.e. the fixed-width regexes of the predicates
# (`[0-9]{17}[0-9X]`, ...). A value matches when it is exactly that many bytes long and every
# byte is in its class: the classes hold ASCII only, so a multi-byte UTF-8 character (every one
# of its bytes is >= 0x80) never matches, exactly as with the regex over code points.
_DIGIT = _byte_class("0123456789")
_USCC_BYTE = _byte_class(USCC_ALPHABET)
_RESIDENT_ID_SHAPE = (_DIGIT,) * 17 + (_byte_class("0123456789X"),)
_USCC_SHAPE = (_USCC_BYTE,) * 2 + (_DIGIT,) * 6 + (_USCC_BYTE,) * 10
_MOBILE_SHAPE = (_byte_class("1"), _byte_class("3456789")) + (_DIGIT,) * 9
_DATE_SHAPE = (_DIGIT,) * 4 + (_byte_class("-"),) + (_DIGIT,) * 2 + (_byte_class("-"),) + (
    _DIGIT,
) * 2


def _in_shape(chars: npt.NDArray[np.uint8], shape: tuple[ByteClass, ...]) -> Mask:
    """Whether each value's bytes (position-major) are in the shape's classes. A run test is
    one wrapping uint8 subtraction and compare over a contiguous vector: SIMD, no table."""
    ok = np.ones(chars.shape[1], dtype=np.bool_)
    for position, runs in zip(chars, shape, strict=True):
        (lo, hi), *more = runs
        member = (position - np.uint8(lo)) <= np.uint8(hi - lo)
        for lo, hi in more:
            member |= (position - np.uint8(lo)) <= np.uint8(hi - lo)
        ok &= member
    return ok


def as_text(values: Any) -> Any:
    """A string or large_string array of `values` (chunked arrays combined, dictionaries and
    string views decoded); None when not text at all. Arrow-backed pandas strings are
    large_string: kept as they are, so the hand-over is zero-copy and the buffers (the parse
    cache's key) are the column's own."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    elif not isinstance(values, pa.Array):
        values = pa.array(values, from_pandas=True)
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return values
    if pa.types.is_string_view(values.type):
        return _vc.cast(values, pa.large_string())
    if pa.types.is_null(values.type):
        return pa.array([None] * len(values), pa.string())
    return None


def _shape_matrix(
    text: Any, shape: tuple[ByteClass, ...], *, prefix: bool = False
) -> tuple[Mask, npt.NDArray[np.uint8]]:
    """(which values of the string/large_string array `text` have `shape`, the ASCII bytes of
    those values position-major: `chars[j]` holds byte j of every matching value, in order).

    `prefix=True` matches values that start with the shape (longer values allowed). Reads the
    offsets and data buffers directly: no regex and no per-row Python. Position-major because
    every later step works one position at a time: a contiguous vector per position is several
    times faster to look up and add than a strided column of a row-major matrix.
    """
    n, width = len(text), len(shape)
    empty = np.zeros((width, 0), dtype=np.uint8)
    _validity, offsets_buf, data_buf = text.buffers()
    if n == 0 or data_buf is None:
        return np.zeros(n, dtype=np.bool_), empty
    kind = np.int64 if pa.types.is_large_string(text.type) else np.int32
    offsets = np.frombuffer(offsets_buf, dtype=kind)[text.offset : text.offset + n + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8)
    lengths = np.diff(offsets)
    sized = lengths >= width if prefix else lengths == width
    if text.null_count:
        sized &= np.asarray(text.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
    if sized.all() and not prefix:
        # Every value is `width` bytes and they sit back to back: the buffer is the matrix.
        start = int(offsets[0])
        rows = data[start : start + n * width].reshape(n, width)
    else:
        starts = offsets[:-1][sized]
        if not len(starts):
            return np.zeros(n, dtype=np.bool_), empty
        # Every byte offset viewed as the start of a `width`-byte item: one gather copies
        # each value's bytes as a single item (twice as fast as gathering rows of a
        # sliding_window_view, which copies byte by byte).
        items = np.ndarray(
            (len(data) - width + 1,), dtype=np.dtype((np.void, width)), buffer=data, strides=(1,)
        )
        rows = items[starts].view(np.uint8).reshape(len(starts), width)
    chars = np.ascontiguousarray(rows.T)
    ok = _in_shape(chars, shape)
    shaped = sized
    if not ok.all():
        shaped = sized.copy()
        shaped[sized] = ok
        chars = chars.take(np.flatnonzero(ok), axis=1)
    return shaped, chars


def _digits_value(chars: npt.NDArray[np.uint8]) -> npt.NDArray[np.int64]:
    """Decimal value of ASCII digit bytes given position-major (`chars[j]`: digit j of every
    value)."""
    out = np.zeros(chars.shape[1], dtype=np.int64)
    for digit in chars:
        out *= 10
        out += digit
        out -= 48
    return out


# Leap years among the years four digits can write: a lookup instead of three int64 divisions
# per value.
_YEARS = np.arange(10_000)
_LEAP = (_YEARS % 4 == 0) & ((_YEARS % 100 != 0) | (_YEARS % 400 == 0))


def _real_dates(year: npt.NDArray[np.int64], month: npt.NDArray[np.int64],
                day: npt.NDArray[np.int64]) -> Mask:
    """Real calendar dates; `year` comes from four digits (0-9999)."""
    leap = _LEAP[year]
    month_ok = (month >= 1) & (month <= 12)
    days = _DAYS_IN_MONTH[np.where(month_ok, month, 0)] + ((month == 2) & leap)
    return np.asarray(month_ok & (day >= 1) & (day <= days))


def _today(today: dt.date | None) -> dt.date:
    return today or dt.datetime.now(CHINA_TZ).date()


def today() -> dt.date:
    """Today in China: the default date of the date-dependent checks."""
    return _today(None)


def _yyyymmdd(day: dt.date) -> int:
    return day.year * 10_000 + day.month * 100 + day.day


# The ID-based checks (cn_resident_id and the two consistency checks) each parse the same ID
# column of the same batch. Keep the last parses, keyed by the identity of the array's buffers;
# holding the array keeps those buffers (and so the key) from being reused meanwhile.
_ID_PARSES: list[tuple[tuple[int, ...], Any, tuple[Mask, npt.NDArray[np.uint8]]]] = []


def _parsed_ids(text: Any) -> tuple[Mask, npt.NDArray[np.uint8]]:
    """(shaped like an ID, their bytes position-major), parsed once per array."""
    key: tuple[int, ...] | None = None
    if isinstance(text, pa.Array):
        key = (text.offset, len(text), *(b.address if b is not None else 0
                                         for b in text.buffers()))
        for cached_key, _array, parsed in _ID_PARSES:
            if cached_key == key:
                return parsed
    parsed = _shape_matrix(text, _RESIDENT_ID_SHAPE)
    if key is not None:
        _ID_PARSES.insert(0, (key, text, parsed))
        del _ID_PARSES[2:]
    return parsed


def resident_ids_valid(
    values: Any, *, today: dt.date | None = None, check_division: bool = True
) -> Mask:
    """`is_valid_resident_id` over a column, plus (unless `check_division=False`) the area
    prefix (positions 1-6) being a GB/T 2260 code that was ever valid (`was_division_code`)."""
    text = as_text(values)
    if text is None:
        return np.zeros(len(values), dtype=np.bool_)
    shaped, chars = _parsed_ids(text)
    total = np.zeros(chars.shape[1], dtype=np.int64)
    for weight, digit in zip(RESIDENT_ID_WEIGHTS, chars[:17], strict=True):
        total += weight * digit.astype(np.int64)
    total -= 48 * sum(RESIDENT_ID_WEIGHTS)
    expected = np.frombuffer(RESIDENT_ID_CHECK_CHARS.encode(), dtype=np.uint8)[total % 11]
    ok = expected == chars[17]
    year, month, day = (_digits_value(chars[a:b]) for a, b in ((6, 10), (10, 12), (12, 14)))
    ok &= _real_dates(year, month, day) & (year >= _MIN_BIRTH_YEAR)
    ok &= year * 10_000 + month * 100 + day <= _yyyymmdd(_today(today))
    if check_division:
        ok &= divisions.active().ever_valid(_digits_value(chars[:6]))
    out = np.zeros(len(text), dtype=np.bool_)
    out[shaped] = ok
    return out


def resident_id_birth_keys(values: Any) -> npt.NDArray[np.int64]:
    """YYYYMMDD (as an int) encoded in each ID-shaped value; -1 where the value is not shaped
    like an 18-character ID number (the check character is not verified, as in
    `birth_date_from_resident_id`)."""
    text = as_text(values)
    out = np.full(len(values), -1, dtype=np.int64)
    if text is None:
        return out
    shaped, chars = _parsed_ids(text)
    out[shaped] = _digits_value(chars[6:14])
    return out


def resident_id_male(values: Any) -> npt.NDArray[np.int8]:
    """1 where the ID number says male (odd 17th digit), 0 female, -1 not shaped like an ID."""
    text = as_text(values)
    out = np.full(len(values), -1, dtype=np.int8)
    if text is None:
        return out
    shaped, chars = _parsed_ids(text)
    out[shaped] = (chars[16] - 48) % 2
    return out


_USCC_LOOKUP = np.full(256, -1, dtype=np.int64)
_USCC_LOOKUP[np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)] = np.arange(31)
_ORG_LOOKUP = np.full(256, -1, dtype=np.int64)
_ORG_LOOKUP[np.frombuffer(ORG_CODE_CHARS.encode(), dtype=np.uint8)] = np.arange(36)
# Check character of an organisation code indexed by C9 = 11 - (sum mod 11), i.e. 1..11.
_ORG_CHECK_CHARS = np.frombuffer(b"?123456789X0", dtype=np.uint8)


def usccs_valid(values: Any, *, check_org_code: bool = True) -> Mask:
    """`is_valid_uscc` over a column."""
    text = as_text(values)
    if text is None:
        return np.zeros(len(values), dtype=np.bool_)
    shaped, chars = _shape_matrix(text, _USCC_SHAPE)
    total = np.array(USCC_WEIGHTS, dtype=np.int64) @ _USCC_LOOKUP[chars[:17]]
    alphabet = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)
    ok = alphabet[(31 - total % 31) % 31] == chars[17]
    if check_org_code:
        body = np.array(ORG_CODE_WEIGHTS, dtype=np.int64) @ _ORG_LOOKUP[chars[8:16]]
        ok &= _ORG_CHECK_CHARS[11 - body % 11] == chars[16]
    out = np.zeros(len(text), dtype=np.bool_)
    out[shaped] = ok
    return out


def mobile_phones_valid(values: Any) -> Mask:
    """`is_valid_cn_mobile_phone` over a column."""
    text = as_text(values)
    if text is None:
        return np.zeros(len(values), dtype=np.bool_)
    return _shape_matrix(text, _MOBILE_SHAPE)[0]


_DIVISION_SHAPE = (_DIGIT,) * 6


def division_codes_known(values: Any, *, on: dt.date | None = None) -> Mask:
    """`is_known_division_code` over a column: codes valid on `on` (default: today)."""
    text = as_text(values)
    if text is None:
        return np.zeros(len(values), dtype=np.bool_)
    shaped, chars = _shape_matrix(text, _DIVISION_SHAPE)
    codes = _digits_value(chars)
    day = np.full(len(codes), _yyyymmdd(_today(on)), dtype=np.int64)
    out = np.zeros(len(text), dtype=np.bool_)
    out[shaped] = divisions.active().valid_on(codes, day)
    return out


def division_codes_valid_on(
    values: Any, dates: Any, *, today: dt.date | None = None
) -> Mask:
    """Each code valid on the date beside it (`dates`: a date, timestamp or ISO text column of
    the same length); where that date is missing or unreadable, valid on `today` (China)."""
    text = as_text(values)
    if text is None:
        return np.zeros(len(values), dtype=np.bool_)
    days = date_keys(dates)
    days[days < 0] = _yyyymmdd(_today(today))
    shaped, chars = _shape_matrix(text, _DIVISION_SHAPE)
    out = np.zeros(len(text), dtype=np.bool_)
    out[shaped] = divisions.active().valid_on(_digits_value(chars), days[shaped])
    return out


def date_keys(values: Any) -> npt.NDArray[np.int64]:
    """Each value as a YYYYMMDD int: dates and timestamps (their calendar date in UTC for an
    aware timestamp, as stored), or ISO text starting YYYY-MM-DD; -1 where null or unreadable."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    elif not isinstance(values, pa.Array):
        values = pa.array(values, from_pandas=True)
    out = np.full(len(values), -1, dtype=np.int64)
    kind = values.type
    if pa.types.is_date(kind) or pa.types.is_timestamp(kind):
        present = np.asarray(values.is_valid().to_numpy(zero_copy_only=False), dtype=np.bool_)
        days = np.asarray(
            _vc.cast(_vc.cast(values, pa.date32()), pa.int32()).fill_null(0).to_numpy(
                zero_copy_only=False
            ),
            dtype="datetime64[D]",
        )
        years = days.astype("datetime64[Y]")
        months = days.astype("datetime64[M]")
        year = years.astype(np.int64) + 1970
        month = (months - years.astype("datetime64[M]")).astype(np.int64) + 1
        day = (days - months.astype("datetime64[D]")).astype(np.int64) + 1
        out[present] = (year * 10_000 + month * 100 + day)[present]
        return out
    text = as_text(values)
    if text is None:
        return out
    shaped, chars = _shape_matrix(text, _DATE_SHAPE, prefix=True)
    year, month, day = (_digits_value(chars[a:b]) for a, b in ((0, 4), (5, 7), (8, 10)))
    real = _real_dates(year, month, day)
    keys = np.where(real, year * 10_000 + month * 100 + day, -1)
    out[shaped] = keys
    return out


def dates_not_future(values: Any, *, today: dt.date | None = None) -> Mask:
    """True where the date is not after `today` (China); nulls and unreadable values are True:
    they are the business of `required` and `format`."""
    return np.asarray(date_keys(values) <= _yyyymmdd(_today(today)))


def ages_at_most(values: Any, years: int = 150, *, today: dt.date | None = None) -> Mask:
    """True where a birth date is no more than `years` years before `today`; nulls and
    unreadable values are True."""
    now = _today(today)
    keys = date_keys(values)
    oldest = (now.year - years) * 10_000 + now.month * 100 + now.day
    return np.asarray((keys < 0) | (keys >= oldest))


# ---------------------------------------------------------------------------------------------
# Why a value failed: the sub-check, for the failing values only
# ---------------------------------------------------------------------------------------------
#
# A check name alone ("cn_resident_id") does not tell the provider what to fix. These take the
# values that already failed (a handful next to the batch, so the gate's hot path is untouched)
# and name every part of the rule each one breaks, vectorised like the checks themselves. A
# value that breaks several parts gets them all, joined by ", ", in the order of the standard.


def _reasons(n: int, parts: list[tuple[Mask, Any]]) -> list[str]:
    """Per value, the labels of the parts whose mask is True, joined; "invalid" when none (the
    check and this explanation disagree only if the rule changed under us)."""
    out = np.full(n, "", dtype=object)
    for hit, label in parts:
        if not hit.any():
            continue
        chosen = out[hit]
        sep = np.where(chosen == "", "", ", ")
        out[hit] = chosen + sep + (label[hit] if isinstance(label, np.ndarray) else label)
    out[out == ""] = "invalid"
    return [str(r) for r in out]


def _lengths(text: Any) -> npt.NDArray[np.int64]:
    """Characters per value (code points, as a person counts them); -1 for null."""
    return np.asarray(
        _vc.utf8_length(text).fill_null(-1).to_numpy(zero_copy_only=False), dtype=np.int64
    )


def _spread(shaped: Mask, part: Mask) -> Mask:
    """A mask over the shaped values (`part`) as a mask over all values (False elsewhere)."""
    out = np.zeros(len(shaped), dtype=np.bool_)
    out[shaped] = part
    return out


def resident_id_reasons(
    values: Any, *, today: dt.date | None = None, check_division: bool = True
) -> list[str]:
    """Why each value fails `cn_resident_id`: `length` (not 18 characters), `pattern` (not 17
    digits then a digit or X), `check digit`, `birth date` (not a real date, before 1800 or in
    the future), `area code NNNNNN unknown` (not a GB/T 2260 code)."""
    text = as_text(values)
    if text is None:
        return ["not text"] * len(values)
    lengths = _lengths(text)
    shaped, chars = _shape_matrix(text, _RESIDENT_ID_SHAPE)
    total = np.zeros(chars.shape[1], dtype=np.int64)
    for weight, digit in zip(RESIDENT_ID_WEIGHTS, chars[:17], strict=True):
        total += weight * (digit.astype(np.int64) - 48)
    expected = np.frombuffer(RESIDENT_ID_CHECK_CHARS.encode(), dtype=np.uint8)[total % 11]
    year, month, day = (_digits_value(chars[a:b]) for a, b in ((6, 10), (10, 12), (12, 14)))
    date_ok = _real_dates(year, month, day) & (year >= _MIN_BIRTH_YEAR)
    date_ok &= year * 10_000 + month * 100 + day <= _yyyymmdd(_today(today))
    parts: list[tuple[Mask, Any]] = [
        (lengths != 18, "length"),
        ((lengths == 18) & ~shaped, "pattern"),
        (_spread(shaped, expected != chars[17]), "check digit"),
        (_spread(shaped, ~date_ok), "birth date"),
    ]
    if check_division and shaped.any():  # no shaped value: no area code to name
        area = _digits_value(chars[:6])
        codes = np.char.zfill(area.astype(str), 6)
        known = divisions.active().ever_valid(area)  # an ID keeps its code for life
        label = np.full(len(text), "", dtype=object)
        label[shaped] = np.char.add(np.char.add("area code ", codes), " unknown")
        parts.append((_spread(shaped, ~known), label))
    return _reasons(len(text), parts)


def uscc_reasons(values: Any, *, check_org_code: bool = True) -> list[str]:
    """Why each value fails `cn_uscc`: `length` (not 18 characters), `pattern` (a character
    outside the code alphabet, or a non-digit in the division positions 3-8), `check
    character`, `organisation code check character` (position 17)."""
    text = as_text(values)
    if text is None:
        return ["not text"] * len(values)
    lengths = _lengths(text)
    shaped, chars = _shape_matrix(text, _USCC_SHAPE)
    total = np.array(USCC_WEIGHTS, dtype=np.int64) @ _USCC_LOOKUP[chars[:17]]
    alphabet = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)
    parts: list[tuple[Mask, Any]] = [
        (lengths != 18, "length"),
        ((lengths == 18) & ~shaped, "pattern"),
        (_spread(shaped, alphabet[(31 - total % 31) % 31] != chars[17]), "check character"),
    ]
    if check_org_code:
        body = np.array(ORG_CODE_WEIGHTS, dtype=np.int64) @ _ORG_LOOKUP[chars[8:16]]
        parts.append((_spread(shaped, _ORG_CHECK_CHARS[11 - body % 11] != chars[16]),
                      "organisation code check character"))
    return _reasons(len(text), parts)


def mobile_phone_reasons(values: Any) -> list[str]:
    """Why each value fails `cn_mobile_phone`: `length` (not 11 characters) or `pattern` (not
    1, then 3-9, then nine digits)."""
    text = as_text(values)
    if text is None:
        return ["not text"] * len(values)
    lengths = _lengths(text)
    shaped = _shape_matrix(text, _MOBILE_SHAPE)[0]
    return _reasons(len(text), [(lengths != 11, "length"), ((lengths == 11) & ~shaped, "pattern")])


def division_code_reasons(values: Any) -> list[str]:
    """Why each value fails `cn_division_code`: `length` (not 6 characters), `pattern` (not
    digits) or `code NNNNNN unknown`."""
    text = as_text(values)
    if text is None:
        return ["not text"] * len(values)
    lengths = _lengths(text)
    shaped = _shape_matrix(text, (_DIGIT,) * 6)[0]
    known = division_codes_known(text)
    label = np.char.add(np.char.add("code ", np.asarray(
        text.fill_null("").to_numpy(zero_copy_only=False), dtype=str)), " unknown")
    return _reasons(len(text), [
        (lengths != 6, "length"),
        ((lengths == 6) & ~shaped, "pattern"),
        (shaped & ~known, label.astype(object)),
    ])
