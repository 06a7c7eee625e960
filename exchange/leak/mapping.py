"""Which column of a leaked file holds which of a subscription's fields.

By name first: a column named as the field (exactly, else ignoring case, spaces, '_' and '-'),
provided its values fit the field. The fields left are matched with the columns left by trying
whole assignments: a row's fingerprint covers all of the subscription's fields at once, so it
matches only when every field sits on its column, and there is no evidence field by field.
The search stays bounded:

- a column is a candidate for a field only where it fits (`values.fits`: its sampled values
  parse as the field's delivered type and have the shape its masking leaves), so dates,
  numbers, hashes and starred values each narrow a field's candidates to a few columns;
- the assignments (each field its own column) are enumerated up to `MAX_ASSIGNMENTS`, 8! =
  40,320, as many as eight renamed text columns with nothing else to tell them apart; with
  more, the subscription is not ranked and the answer says why (rename the file's columns
  after the subscription's fields and ask again).

Names can mislead (headers swapped on purpose): the assignments that ignore names are tried
too when they are within the bound, and on equal scores the one keeping more names wins.
`identify` scores every assignment on the same sample of rows at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

__all__ = ["MAX_ASSIGNMENTS", "Assignment", "Candidates", "candidates"]

MAX_ASSIGNMENTS = 40_320


@dataclass(frozen=True)
class Assignment:
    """Field → file column, and how many of those pairs their names agree on."""

    columns: dict[str, str]
    named: int


@dataclass(frozen=True)
class Candidates:
    """The assignments worth scoring; `missing` fields no column can hold (nothing to score);
    `too_many` when even the name-first search passed the bound."""

    assignments: list[Assignment]
    missing: tuple[str, ...] = ()
    too_many: int = 0  # assignments counted before giving up (more than MAX_ASSIGNMENTS)


def _plain(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).casefold()


def _by_name(columns: Sequence[str], fields: Sequence[str],
             fit: Callable[[str, str], bool]) -> dict[str, str]:
    found: dict[str, str] = {}
    for exact in (True, False):
        taken = set(found.values())
        for field in fields:
            if field in found:
                continue
            for column in columns:
                same = column == field if exact else _plain(column) == _plain(field)
                if same and column not in taken and fit(column, field):
                    found[field] = column
                    taken.add(column)
                    break
    return found


def _assign(
    columns: Sequence[str], fields: Sequence[str], fit: Callable[[str, str], bool],
    fixed: dict[str, str], limit: int,
) -> tuple[list[dict[str, str]], int]:
    """Every assignment extending `fixed`, or ([], n > limit) once there are more than
    `limit`."""
    taken = set(fixed.values())
    left = [f for f in fields if f not in fixed]
    options = {f: [c for c in columns if c not in taken and fit(c, f)] for f in left}
    left.sort(key=lambda f: len(options[f]))  # the most constrained field first
    found: list[dict[str, str]] = []
    count = 0

    def walk(i: int, chosen: dict[str, str], used: set[str]) -> Iterator[dict[str, str]]:
        if i == len(left):
            yield dict(chosen)
            return
        field = left[i]
        for column in options[field]:
            if column in used:
                continue
            chosen[field] = column
            used.add(column)
            yield from walk(i + 1, chosen, used)
            used.discard(column)
            del chosen[field]

    for assignment in walk(0, dict(fixed), set(taken)):
        count += 1
        if count > limit:
            return [], count
        found.append(assignment)
    return found, count


def candidates(
    columns: Sequence[str], fields: Sequence[str], fit: Callable[[str, str], bool],
    *, limit: int = MAX_ASSIGNMENTS,
) -> Candidates:
    """The assignments of `fields` to `columns` to score (see the module docstring)."""
    missing = tuple(f for f in fields if not any(fit(c, f) for c in columns))
    if missing:
        return Candidates([], missing=missing)
    named = _by_name(columns, fields, fit)
    first, counted = _assign(columns, fields, fit, named, limit)
    if counted > limit:
        return Candidates([], too_many=counted)
    chosen = {tuple(sorted(a.items())): a for a in first}
    if named:  # the same search ignoring names, when it stays within the bound
        unnamed, counted = _assign(columns, fields, fit, {}, limit)
        if counted <= limit:
            for a in unnamed:
                chosen.setdefault(tuple(sorted(a.items())), a)
    return Candidates([
        Assignment(a, sum(1 for f, c in a.items() if named.get(f) == c))
        for a in chosen.values()
    ])
