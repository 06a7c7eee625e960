"""Realistic identifiers for the demo city: GB/T 2260 division codes, GB 11643 ID numbers and
GB 32100 credit codes with correct check characters, all drawn from a caller's seeded RNG."""

from __future__ import annotations

import datetime as dt
import random
from functools import lru_cache

from quality import divisions
from quality.standards import (
    USCC_ALPHABET,
    org_code_check_char,
    resident_id_check_digit,
    uscc_check_char,
)

#: The demo city uses Fuzhou's real GB/T 2260 codes (prefix 3501) so division-code checks pass;
#: the people and companies in it are invented.
CITY_NAME = "福州市"
CITY_PROVINCE = "福建省"
CITY_CODE = "350100"
DISTRICTS: dict[str, str] = {
    "350102": "鼓楼区",
    "350103": "台江区",
    "350104": "仓山区",
    "350105": "马尾区",
    "350111": "晋安区",
    "350121": "闽侯县",
    "350122": "连江县",
    "350123": "罗源县",
    "350124": "闽清县",
    "350125": "永泰县",
    "350128": "平潭县",
    "350181": "福清市",
    "350112": "长乐区",  # 长乐市 (350182) until 2017: households registered now carry 350112
}
#: Retired codes some residents' ID numbers still carry (an ID keeps its area code for life):
#: 长乐市 before it became 长乐区, and Beijing's 崇文区 and 宣武区 (merged in 2010).
RETIRED_ID_AREAS = ("350182", "110103", "110104")
RETIRED_ID_SHARE = 0.02
# Residents' ID numbers carry the code where they were first registered: most locally, the rest
# anywhere in the country.
LOCAL_ID_SHARE = 0.85


@lru_cache(maxsize=1)
def county_codes() -> tuple[str, ...]:
    """County-level GB/T 2260 codes (not ending in 00) valid at any time since 1980."""
    return tuple(f"{int(c):06d}" for c in divisions.builtin().ever if int(c) % 100)


def pick_id_area(rng: random.Random) -> str:
    draw = rng.random()
    if draw < RETIRED_ID_SHARE:
        return rng.choice(RETIRED_ID_AREAS)
    if draw < LOCAL_ID_SHARE:
        return rng.choice(sorted(DISTRICTS))
    return rng.choice(county_codes())


def make_resident_id(rng: random.Random, area: str, birth: dt.date, male: bool) -> str:
    """A GB 11643 number: area + YYYYMMDD + 3-digit sequence (odd last digit for men) + check."""
    seq = rng.randrange(0, 100) * 10 + rng.choice((1, 3, 5, 7, 9) if male else (0, 2, 4, 6, 8))
    first17 = f"{area}{birth:%Y%m%d}{seq:03d}"
    return first17 + resident_id_check_digit(first17)


# Organisation-code bodies issued since 2015 start with MA and use the credit-code alphabet.
_BODY_CHARS = USCC_ALPHABET


def make_uscc(rng: random.Random, authority_type: str, area: str) -> str:
    """A GB 32100 code: 2 chars authority/type (e.g. '91'), 6-digit division code, a GB 11714
    organisation code (8-char body + its check char), then the MOD 31 check char."""
    if rng.random() < 0.6:
        body = "MA" + "".join(rng.choice(_BODY_CHARS) for _ in range(6))
    else:
        body = "".join(rng.choice("0123456789") for _ in range(8))
    first17 = f"{authority_type}{area}{body}{org_code_check_char(body)}"
    return first17 + uscc_check_char(first17)
