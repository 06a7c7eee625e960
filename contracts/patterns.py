"""Python `re` patterns (what jsonschema uses) rewritten, when exactly possible, for RE2 (Arrow).

JSON Schema's `pattern` is evaluated by jsonschema with `re.search`. Arrow's vectorised
`match_substring_regex` uses RE2, whose syntax looks the same but differs where it matters:
`\\d`, `\\w`, `\\s` are ASCII-only in RE2 but Unicode in Python (so '٣' is a Python digit), and
Python's `$` also matches before one trailing newline. We therefore translate from Python's own
parse tree, spelling every class as explicit code point ranges computed from this interpreter's
Unicode tables. Anything without an exact RE2 equivalent (lookaround, backreferences, `\\b`,
case-insensitive matching, `$` not at the end) has no RE2 form.

Every contract pattern runs on RE2, which takes time linear in the text whatever the pattern;
Python `re` backtracks, and `^(a+)+$` against 35 `a`s and a `!` takes it minutes. So a pattern
without an RE2 form is refused (`govex apply` names it, with `re2_problem`'s reason), never
evaluated with Python `re` instead.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as _compute

try:  # Python 3.11+ names; the parser is private, so any surprise means "not translatable"
    from re import _constants as sre  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    sre = sre_parse = None

MAX_CODE_POINT = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)  # cannot occur in Arrow's UTF-8 strings
_RE2_MAX_REPEAT = 1000
Ranges = list[tuple[int, int]]
pc: Any = _compute


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
        msg = f"it uses the class {name}, which RE2 does not have"
        raise _Untranslatable(msg)
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
        msg = "it has a character class that matches nothing"
        raise _Untranslatable(msg)
    return "[" + "".join(parts) + "]"


class _Translator:
    def __init__(self, flags: int) -> None:
        allowed = sre.SRE_FLAG_UNICODE | sre.SRE_FLAG_DOTALL | sre.SRE_FLAG_VERBOSE
        allowed |= sre.SRE_FLAG_ASCII
        if flags & ~allowed:  # IGNORECASE, MULTILINE, LOCALE: semantics differ in detail
            msg = "it uses a case-insensitive, multi-line or locale flag"
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
                msg = "it sets flags for part of the pattern"
                raise _Untranslatable(msg)
            return "(?:" + self.sequence(pattern, tail) + ")"
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT):
            low, high, pattern = av
            if low > _RE2_MAX_REPEAT or (high != sre.MAXREPEAT and high > _RE2_MAX_REPEAT):
                msg = f"it repeats something more than {_RE2_MAX_REPEAT} times"
                raise _Untranslatable(msg)
            count = f"{{{low},}}" if high == sre.MAXREPEAT else f"{{{low},{high}}}"
            lazy = "?" if op is sre.MIN_REPEAT else ""
            return "(?:" + self.sequence(pattern, False) + ")" + count + lazy
        raise _Untranslatable(_WHY_NOT.get(str(op), f"it uses {op}"))

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
                msg = f"it uses {op} in a character class"
                raise _Untranslatable(msg)
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
        if at in (sre.AT_BOUNDARY, sre.AT_NON_BOUNDARY):
            msg = "it uses \\b or \\B, whose word characters differ between Python and RE2"
            raise _Untranslatable(msg)
        msg = "it has a '$' that is not at the end"
        raise _Untranslatable(msg)


_WHY_NOT = {
    "ASSERT": "it uses a lookahead or lookbehind",
    "ASSERT_NOT": "it uses a lookahead or lookbehind",
    "GROUPREF": "it uses a backreference",
    "GROUPREF_EXISTS": "it uses a conditional group",
    "POSSESSIVE_REPEAT": "it uses a possessive repeat",
    "ATOMIC_GROUP": "it uses an atomic group",
}


@functools.cache
def _translate(pattern: str) -> tuple[str | None, str | None]:
    """(the RE2 pattern, None), or (None, why there is none)."""
    if sre is None:  # pragma: no cover
        return None, "this Python cannot parse patterns"
    try:
        parsed = sre_parse.parse(pattern)
        translated = _Translator(parsed.state.flags).sequence(parsed, True)
    except _Untranslatable as error:
        return None, str(error)
    except re.error as error:
        return None, f"it is not a valid regular expression ({error})"
    except RecursionError:
        return None, "it is nested too deeply"
    except (TypeError, ValueError, AttributeError):
        return None, "it has no exact RE2 form"
    try:  # RE2 has size limits Python lacks (a long pattern of Unicode classes, say)
        pc.match_substring_regex(pa.array([""], pa.string()), pattern=translated)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None, "it is too large for RE2"
    return translated, None


def to_re2(pattern: str) -> str | None:
    """An RE2 pattern with exactly `re.search(pattern, s)` semantics on every str, that RE2
    accepts; None when there is none (`re2_problem` says why)."""
    return _translate(pattern)[0]


def re2_problem(pattern: str) -> str | None:
    """Why `pattern` cannot run on RE2 with its JSON Schema meaning ("it uses a backreference"),
    or None when it can."""
    return _translate(pattern)[1]


def pattern_refusal(pattern: object) -> str | None:
    """The sentence refusing `pattern` (not text, or no RE2 form), or None when it can run."""
    problem = re2_problem(pattern) if isinstance(pattern, str) else "it is not text"
    if problem is None:
        return None
    shown = repr(pattern if not isinstance(pattern, str) or len(pattern) <= 80 else
                 pattern[:80] + "…")
    return (
        f"pattern {shown} cannot run on RE2, the linear-time engine every contract pattern "
        f"runs on: {problem}"
    )


def re2_search(pattern: str, texts: list[str]) -> list[bool]:
    """`re.search(pattern, text) is not None` for each text, evaluated on RE2 in one call.

    Raises ValueError (naming the reason) for a pattern without an RE2 form: there is no
    fallback to Python `re`. A text Arrow cannot hold (a lone surrogate, which no UTF-8 data
    can contain) matches nothing.
    """
    translated = to_re2(pattern)
    if translated is None:
        raise ValueError(pattern_refusal(pattern))
    encodable = [_is_utf8(text) for text in texts]
    array = pa.array(
        [text if ok else None for text, ok in zip(texts, encodable, strict=True)], pa.string()
    )
    hits = pc.match_substring_regex(array, pattern=translated).to_pylist()
    return [bool(hit) and ok for hit, ok in zip(hits, encodable, strict=True)]


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Keywords of JSON Schema 2020-12 (and the draft-7 spellings jsonschema still reads) whose value
# is a schema, a list of schemas, or a mapping of names to schemas.
_ONE_SCHEMA = (
    "not", "if", "then", "else", "items", "contains", "additionalProperties",
    "unevaluatedProperties", "unevaluatedItems", "propertyNames", "additionalItems",
)
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")


def schema_patterns(schema: Any) -> Iterator[tuple[str, str, Any]]:
    """Every regular expression a schema holds: (JSON pointer, keyword, pattern), where keyword
    is `pattern` (the value is the pattern) or `patternProperties` (each key is one).

    Walks schema positions only (a `pattern` inside an `enum` value is data), iteratively.
    """
    stack: list[tuple[str, Any]] = [("", schema)]
    while stack:
        pointer, node = stack.pop()
        if not isinstance(node, dict):
            continue
        if "pattern" in node:
            yield f"{pointer}/pattern", "pattern", node["pattern"]
        for key in _ONE_SCHEMA:
            if key in node:
                stack.append((f"{pointer}/{_escape(key)}", node[key]))
        for key in _SCHEMA_LISTS:
            if isinstance(node.get(key), list):
                stack += [(f"{pointer}/{key}/{i}", sub) for i, sub in enumerate(node[key])]
        for key in _SCHEMA_MAPS:
            members = node.get(key)
            if not isinstance(members, dict):
                continue
            for name, sub in members.items():
                where = f"{pointer}/{_escape(key)}/{_escape(str(name))}"
                if key == "patternProperties":
                    yield where, key, name
                stack.append((where, sub))


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")
