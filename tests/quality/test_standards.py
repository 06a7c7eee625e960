"""National-standard checks: the standards' own published examples pass, hand-made bad ones fail."""

from __future__ import annotations

import datetime as dt

import pytest

from quality.standards import (
    RESIDENT_ID_CHECK_CHARS,
    USCC_ALPHABET,
    birth_date_from_resident_id,
    gender_from_resident_id,
    is_known_division_code,
    is_valid_cn_mobile_phone,
    is_valid_org_code,
    is_valid_resident_id,
    is_valid_uscc,
    org_code_check_char,
    resident_id_check_digit,
    uscc_check_char,
)

# GB 11643-1999, appendix examples.
GB11643_EXAMPLES = ["11010519491231002X", "440524188001010014"]
# GB 32100-2015, appendix example; its organisation code is M000100Y-4.
GB32100_EXAMPLE = "91350100M000100Y43"


def _other(chars: str, right: str) -> str:
    return next(c for c in chars if c != right)


# --- resident ID -------------------------------------------------------------------------------


@pytest.mark.parametrize("id_no", GB11643_EXAMPLES)
def test_published_resident_ids_are_valid(id_no: str) -> None:
    assert resident_id_check_digit(id_no[:17]) == id_no[17]
    assert is_valid_resident_id(id_no)


def test_resident_id_birth_date_and_gender() -> None:
    assert birth_date_from_resident_id("11010519491231002X") == dt.date(1949, 12, 31)
    assert gender_from_resident_id("11010519491231002X") == "F"  # 17th digit 2: even
    assert birth_date_from_resident_id("440524188001010014") == dt.date(1880, 1, 1)
    assert gender_from_resident_id("440524188001010014") == "M"  # 17th digit 1: odd


@pytest.mark.parametrize("id_no", GB11643_EXAMPLES)
def test_every_wrong_check_character_is_rejected(id_no: str) -> None:
    for c in RESIDENT_ID_CHECK_CHARS:
        if c != id_no[17]:
            assert not is_valid_resident_id(id_no[:17] + c)


def _with_check(first17: str) -> str:
    return first17 + resident_id_check_digit(first17)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "11010519491231002",  # 17 characters
        "11010519491231002X0",  # 19 characters
        "11010519491231002x",  # lower-case x
        " 11010519491231002X",
        "1101051949123100AX",  # letter in the body
        "110105194912310027",  # wrong check digit
        _with_check("11010519490230002"),  # 30 February
        _with_check("11010519491301002"),  # month 13
        _with_check("11010517991231002"),  # before 1800
        _with_check("11010520991231002"),  # born in the future
    ],
)
def test_malformed_resident_ids_are_rejected(bad: str) -> None:
    assert not is_valid_resident_id(bad)


def test_future_birth_date_is_relative_to_today() -> None:
    id_no = _with_check("11010520261127002")
    assert is_valid_resident_id(id_no, today=dt.date(2026, 11, 27))
    assert not is_valid_resident_id(id_no, today=dt.date(2026, 11, 26))


def test_non_string_input_is_rejected_not_raised() -> None:
    assert not is_valid_resident_id(None)  # type: ignore[arg-type]
    assert birth_date_from_resident_id(None) is None  # type: ignore[arg-type]
    assert gender_from_resident_id(12345) is None  # type: ignore[arg-type]
    assert not is_valid_uscc(None)  # type: ignore[arg-type]
    assert not is_valid_org_code(None)  # type: ignore[arg-type]


def test_extractors_reject_malformed_ids() -> None:
    assert birth_date_from_resident_id("110105194902300020") is None  # no 30 February
    assert birth_date_from_resident_id("1101051949") is None
    assert gender_from_resident_id("1101051949123100") is None


@pytest.mark.parametrize(
    "bad_prefix", ["", "1101051949123100", "110105194912310022", "1101051949123100X"]
)
def test_resident_id_check_digit_rejects_bad_prefix(bad_prefix: str) -> None:
    with pytest.raises(ValueError, match="17 digits"):
        resident_id_check_digit(bad_prefix)


def test_resident_id_single_digit_change_is_caught() -> None:
    # MOD 11-2 detects every single-character substitution.
    id_no = GB11643_EXAMPLES[1]
    for i in range(17):
        for d in "0123456789":
            if d != id_no[i]:
                changed = id_no[:i] + d + id_no[i + 1 :]
                assert resident_id_check_digit(changed[:17]) != id_no[17]


# --- organisation code and USCC ----------------------------------------------------------------


def test_published_uscc_is_valid() -> None:
    assert uscc_check_char(GB32100_EXAMPLE[:17]) == "3"
    assert org_code_check_char("M000100Y") == "4"
    assert is_valid_org_code("M000100Y4")
    assert is_valid_org_code("M000100Y-4")
    assert is_valid_uscc(GB32100_EXAMPLE)


def test_org_code_check_char_maps_10_and_11() -> None:
    # sum % 11 == 1 -> C9 = 10 -> 'X'; sum % 11 == 0 -> C9 = 11 -> '0'.
    assert org_code_check_char("00000006") == "X"  # 6 * 2 = 12, 12 % 11 = 1
    assert org_code_check_char("00000000") == "0"  # 0 % 11 = 0
    assert org_code_check_char("00000001") == "9"  # 1 * 2 = 2


def test_every_wrong_uscc_check_character_is_rejected() -> None:
    for c in USCC_ALPHABET:
        if c != GB32100_EXAMPLE[17]:
            assert not is_valid_uscc(GB32100_EXAMPLE[:17] + c)


def test_uscc_with_bad_embedded_org_code_is_rejected() -> None:
    # Org check character 4 -> 5, then the USCC check recomputed so only GB 11714 can tell.
    body = GB32100_EXAMPLE[:16] + "5"
    forged = body + uscc_check_char(body)
    assert not is_valid_uscc(forged)
    assert is_valid_uscc(forged, check_org_code=False)
    assert not is_valid_org_code(forged[8:17])


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "91350100M000100Y4",  # 17 characters
        "91350100M000100Y430",  # 19 characters
        "91350100m000100Y43",  # lower case
        "91350100I000100Y43",  # I is not in the alphabet
        "913501O0M000100Y43",  # letter in the division code
        "91350100M000100Y44",  # wrong check character
    ],
)
def test_malformed_usccs_are_rejected(bad: str) -> None:
    assert not is_valid_uscc(bad)


@pytest.mark.parametrize(
    "bad", ["", "M000100Y", "M000100Y5", "M000100Y-5", "m000100Y4", "M000100Y--4"]
)
def test_malformed_org_codes_are_rejected(bad: str) -> None:
    assert not is_valid_org_code(bad)


@pytest.mark.parametrize("bad", ["", "91350100M000100Y", "91350100M000100Y4I", "91350100m000100Y4"])
def test_uscc_check_char_rejects_bad_prefix(bad: str) -> None:
    with pytest.raises(ValueError, match="credit code prefix"):
        uscc_check_char(bad)


@pytest.mark.parametrize("bad", ["", "M000100", "M000100Y4", "m000100Y", "M000100-"])
def test_org_code_check_char_rejects_bad_body(bad: str) -> None:
    with pytest.raises(ValueError, match="organisation code body"):
        org_code_check_char(bad)


# --- phones and division codes ------------------------------------------------------------------


def test_mobile_phones() -> None:
    assert is_valid_cn_mobile_phone("13912345678")
    for bad in ["", "1391234567", "139123456789", "12912345678", "139-1234-5678", "+8613912345678"]:
        assert not is_valid_cn_mobile_phone(bad)


def test_division_codes() -> None:
    assert is_known_division_code("350102")
    assert is_known_division_code("110105")
    for bad in ["", "999999", "35010", "3501020"]:
        assert not is_known_division_code(bad)
