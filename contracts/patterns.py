"""Python `re` patterns (what jsonschema uses) rewritten, when exactly possible, for RE2 (Arrow).

JSON Schema's `pattern` is evaluated by jsonschema with `re.search`. Arrow's vectorised
`match_substring_regex` uses RE2, whose syntax looks the same but differs where it matters:
`\\d`, `\\w`, `\\s` are ASCII-only in RE2 but Unicode in Python (so '٣' is a Python digit), and
Python's `$` also matches before one trailing newline. We therefore translate from Python's own
parse tree, spelling every class as explicit code point ranges computed from this interpreter's
Unicode tables. Anything without an exact RE2 equivalent (lookaround, backreferences, `\\b`,
case-insensitive matching, `$` not at the end) returns None, and the caller falls back to
Python `re` over the distinct values.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

try:  # Python 3.11+ names; the parser is private, so any surprise means "not translatable"
    from re import _constants as sre  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    sre = sre_parse = None

MAX_CODE_POINT = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)  # cannot occur in Arrow's UTF-8 strings
_RE2_MAX_REPEAT = 1000
Ranges = list[tuple[int, int]]


class _Untranslatable(Exception):
    """The pattern has no exact RE2 equivalent."""


def _normalise(ranges: Ranges) -> Ranges:
    merged: Ranges = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _complement(ranges: Ranges) -> Ranges:
    result: Ranges = []
    start = 0
    for lo, hi in _normalise(ranges):
        if lo > start:
            result.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CODE_POINT:
        result.append((start, MAX_CODE_POINT))
    return result


@functools.cache
def _unicode_ranges(predicate_name: str) -> tuple[tuple[int, int], ...]:
    """Code point ranges where this interpreter's `str.<predicate>()` is true (~0.2 s, cached)."""
    predicates: dict[str, Callable[[str], bool]] = {
        "digit": str.isdecimal,  # Python's \d is Unicode category Nd, i.e. str.isdecimal
        "space": str.isspace,
        "word": lambda c: c.isalnum() or c == "_",
    }
    test = predicates[predicate_name]
    ranges: Ranges = []
    start = None
    for code in range(MAX_CODE_POINT + 2):
        hit = code <= MAX_CODE_POINT and test(chr(code))
        if hit and start is None:
            start = code
        elif not hit and start is not None:
            ranges.append((start, code - 1))
            start = None
    return tuple(ranges)


def _category(category: Any, ascii_only: bool) -> Ranges:
    name = str(category)
    negate = name.startswith("CATEGORY_NOT_")
    base = name.removeprefix("CATEGORY_NOT_").removeprefix("CATEGORY_")
    ascii_sets: dict[str, Ranges] = {
        "DIGIT": [(0x30, 0x39)],
        "SPACE": [(0x09, 0x0D), (0x20, 0x20)],
        "WORD": [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)],
    }
    if base not in ascii_sets:
        raise _Untranslatable(name)
    ranges = ascii_sets[base] if ascii_only else list(_unicode_ranges(base.lower()))
    return _complement(ranges) if negate else ranges


def _class(ranges: Ranges) -> str:
    parts = []
    for lo, hi in _normalise(ranges):
        # Drop surrogates: they cannot appear in valid UTF-8, and RE2 need not see them.
        for a, b in ((lo, min(hi, _SURROGATES[0] - 1)), (max(lo, _SURROGATES[1] + 1), hi)):
            if a <= b:
                parts.append(f"\\x{{{a:x}}}" if a == b else f"\\x{{{a:x}}}-\\x{{{b:x}}}")
    if not parts:
        msg = "empty character class"
        raise _Untranslatable(msg)
    return "[" + "".join(parts) + "]"


class _Translator:
    def __init__(self, flags: int) -> None:
        allowed = sre.SRE_FLAG_UNICODE | sre.SRE_FLAG_DOTALL | sre.SRE_FLAG_VERBOSE
        allowed |= sre.SRE_FLAG_ASCII
        if flags & ~allowed:  # IGNORECASE, MULTILINE, LOCALE: semantics differ in detail
            msg = "flags"
            raise _Untranslatable(msg)
        self.dotall = bool(flags & sre.SRE_FLAG_DOTALL)
        self.ascii_only = bool(flags & sre.SRE_FLAG_ASCII)

    def sequence(self, items: Any, tail: bool) -> str:
        items = list(items)
        return "".join(
            self.item(op, av, tail and i == len(items) - 1) for i, (op, av) in enumerate(items)
        )

    def item(self, op: Any, av: Any, tail: bool) -> str:
        if op is sre.LITERAL:
            return _class([(av, av)])
        if op is sre.NOT_LITERAL:
            return _class(_complement([(av, av)]))
        if op is sre.ANY:
            return _class([(0, MAX_CODE_POINT)] if self.dotall else _complement([(10, 10)]))
        if op is sre.IN:
            return _class(self.charset(av))
        if op is sre.AT:
            return self.anchor(av, tail)
        if op is sre.BRANCH:
            return "(?:" + "|".join(self.sequence(branch, tail) for branch in av[1]) + ")"
        if op is sre.SUBPATTERN:
            _group, add_flags, del_flags, pattern = av
            if add_flags or del_flags:
                msg = "scoped flags"
                raise _Untranslatable(msg)
            return "(?:" + self.sequence(pattern, tail) + ")"
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, high, pattern = av
            if low > _RE2_MAX_REPEAT or (high != sre.MAXREPEAT and high > _RE2_MAX_REPEAT):
                msg = "repeat count above RE2's limit"
                raise _Untranslatable(msg)
            count = f"{{{low},}}" if high == sre.MAXREPEAT else f"{{{low},{high}}}"
            lazy = "?" if op is sre.MIN_REPEAT else ""
            return "(?:" + self.sequence(pattern, False) + ")" + count + lazy
        raise _Untranslatable(str(op))  # lookaround, backreference, possessive, atomic, …

    def charset(self, items: Any) -> Ranges:
        ranges: Ranges = []
        negate = False
        for op, av in items:
            if op is sre.NEGATE:
                negate = True
            elif op is sre.LITERAL:
                ranges.append((av, av))
            elif op is sre.RANGE:
                ranges.append(av)
            elif op is sre.CATEGORY:
                ranges.extend(_category(av, self.ascii_only))
            else:
                raise _Untranslatable(str(op))
        return _complement(ranges) if negate else ranges

    def anchor(self, at: Any, tail: bool) -> str:
        if at in (sre.AT_BEGINNING, sre.AT_BEGINNING_STRING):
            return r"\A"
        if at is sre.AT_END_STRING:
            return r"\z"
        if at is sre.AT_END and tail:
            # Python's `$` is zero-width "end, or before a final newline". Nothing follows it
            # here, and a search only asks whether a match exists, so consuming the newline
            # is equivalent.
            return r"(?:\n?\z)"
        raise _Untranslatable(str(at))  # \b, \B (Unicode in Python), `$` followed by more


@functools.cache
def to_re2(pattern: str) -> str | None:
    """An RE2 pattern with exactly `re.search(pattern, s)` semantics on every str, or None."""
    if sre is None:  # pragma: no cover
        return None
    try:
        parsed = sre_parse.parse(pattern)
        translator = _Translator(parsed.state.flags)
        return translator.sequence(parsed, True)
    except (_Untranslatable, re.error, TypeError, ValueError, AttributeError):
        return None
