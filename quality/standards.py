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
from functools import lru_cache
from typing import Literal

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
    "org_code_check_char",
    "resident_id_check_digit",
    "uscc_check_char",
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


@lru_cache(maxsize=1)
def _division_codes() -> frozenset[str]:
    # Faker ships the GB/T 2260 list with its zh_CN SSN provider; loaded on first use only.
    from faker.providers.ssn.zh_CN import Provider

    return frozenset(Provider.area_codes)


def is_known_division_code(code: str) -> bool:
    """True when `code` is a 6-digit GB/T 2260 administrative division code in the list Faker
    ships (a snapshot: codes abolished or created since then are not reflected)."""
    return isinstance(code, str) and len(code) == 6 and code in _division_codes()
