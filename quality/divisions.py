"""The GB/T 2260 administrative division codes, with their history: which codes were valid when.

An identity number keeps the area code it was issued under for life, and a record keeps the
division it was registered in, so a single snapshot of today's codes rejects good data. The
history ships as package data (`reference/gbt2260.csv`, the Ministry of Civil Affairs' yearly
lists; `reference/gbt2260.json` says where from and when it was last updated). A workspace may
add or replace codes (`reference/division_codes.csv`, stored by `govex apply`): the rows of a
code in the overrides replace every built-in row of that code.

A row is valid from `valid_from` (inclusive, empty: since before the first list) until
`valid_until` (exclusive, empty: still valid). Lookups are vectorised over integer codes and
YYYYMMDD integer dates, the form `quality.standards` parses columns into.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "BUILTIN_FILE",
    "DivisionCode",
    "DivisionTable",
    "active",
    "builtin",
    "builtin_info",
    "use_overrides",
]

BUILTIN_FILE = "reference/gbt2260.csv"
_INFO_FILE = "reference/gbt2260.json"
# Open bounds as YYYYMMDD keys: before any date, after any date.
_BEFORE_ALL = 0
_AFTER_ALL = 99_999_999
# A code and a date in one sortable int64: code * 10^8 + YYYYMMDD (at most ~10^14).
_SHIFT = 100_000_000

Ints = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class DivisionCode:
    """One period of one code: its name then, and the dates it was valid (None: open)."""

    code: str
    name: str
    valid_from: dt.date | None = None
    valid_until: dt.date | None = None

    def to_json(self) -> dict[str, str]:
        return {
            "code": self.code,
            "name": self.name,
            "valid_from": "" if self.valid_from is None else self.valid_from.isoformat(),
            "valid_until": "" if self.valid_until is None else self.valid_until.isoformat(),
        }

    @classmethod
    def from_json(cls, row: Mapping[str, Any]) -> DivisionCode:
        """A row as stored (the `to_json` form); the store only holds rows apply checked."""
        start, end = row.get("valid_from") or "", row.get("valid_until") or ""
        return cls(
            str(row["code"]),
            str(row.get("name") or ""),
            dt.date.fromisoformat(start) if start else None,
            dt.date.fromisoformat(end) if end else None,
        )


def _key(day: dt.date | None, open_value: int) -> int:
    return open_value if day is None else day.year * 10_000 + day.month * 100 + day.day


class DivisionTable:
    """A set of code periods, indexed for vectorised lookups by code and date."""

    def __init__(
        self, rows: Iterable[DivisionCode] = (), *, csv_text: str | None = None
    ) -> None:
        """From `rows`, or from the text of a CSV in the shipped form. The CSV is indexed
        straight from its text and its rows are built only when asked for: a run needs only
        the index, and a `DivisionCode` per row cost most of the gate of a small run."""
        self._text = csv_text
        self._rows: tuple[DivisionCode, ...] | None = None
        if csv_text is None:
            self._rows = tuple(rows)
            self._index([
                (int(r.code), _key(r.valid_from, _BEFORE_ALL), _key(r.valid_until, _AFTER_ALL))
                for r in self._rows
            ])
        else:
            self._index([
                (
                    int(code),
                    int(start.replace("-", "")) if start else _BEFORE_ALL,
                    int(end.replace("-", "")) if end else _AFTER_ALL,
                )
                for code, _name, start, end in _records(csv_text)
            ])

    @property
    def rows(self) -> tuple[DivisionCode, ...]:
        """Every code period of the table (read from the CSV on first use)."""
        if self._rows is None:
            self._rows = tuple(_read_csv(self._text or ""))
        return self._rows

    def _index(self, periods_of_rows: Iterable[tuple[int, int, int]]) -> None:
        rows = np.array(list(periods_of_rows), dtype=np.int64).reshape(-1, 3)
        self.ever: Ints = np.unique(rows[:, 0])
        rows = rows[rows[:, 1] <= rows[:, 2]]  # a period that ends before it starts holds no day
        order = np.lexsort((rows[:, 2], rows[:, 1], rows[:, 0]))  # by code, start, end
        codes, starts, ends = rows[order, 0], rows[order, 1], rows[order, 2]
        # Periods of one code that touch or overlap (a rename: the same code, a new name from
        # the year of the change) merge, so a date falls in at most one period. As code * 10^8
        # + day, a code's days all exceed the previous code's, so one running maximum of the
        # ends serves every code: a period opens a new one when it starts after that maximum.
        keyed_starts = codes * _SHIFT + starts
        reach = np.maximum.accumulate(codes * _SHIFT + ends)
        opens = np.ones(len(codes), dtype=np.bool_)
        opens[1:] = keyed_starts[1:] > reach[:-1]
        closes = np.ones(len(codes), dtype=np.bool_)
        closes[:-1] = opens[1:]
        self._codes = codes[opens]
        self._starts = keyed_starts[opens]
        self._ends = reach[closes] - self._codes * _SHIFT

    def ever_valid(self, codes: Ints) -> Mask:
        """Whether each code was valid at any time."""
        return np.asarray(np.isin(codes, self.ever))

    def valid_on(self, codes: Ints, days: Ints) -> Mask:
        """Whether each code was valid on its day (YYYYMMDD ints, one per code)."""
        if not len(self._starts):
            return np.zeros(len(codes), dtype=np.bool_)
        # The last period of any code starting at or before (code, day): the only candidate.
        at = np.searchsorted(self._starts, codes * _SHIFT + days, side="right") - 1
        found = at >= 0
        at = np.where(found, at, 0)
        return np.asarray(found & (self._codes[at] == codes) & (days < self._ends[at]))

    def valid_at(self, day: dt.date) -> frozenset[str]:
        """The codes valid on `day`, as 6-digit text."""
        key = _key(day, _BEFORE_ALL)
        return frozenset(
            f"{int(c):06d}"
            for c, s, e in zip(self._codes, self._starts % _SHIFT, self._ends, strict=True)
            if s <= key < e
        )

    def with_overrides(self, overrides: Sequence[DivisionCode]) -> DivisionTable:
        """This table with every code the overrides name replaced by their rows."""
        replaced = {row.code for row in overrides}
        return DivisionTable([*(r for r in self.rows if r.code not in replaced), *overrides])


def _records(text: str) -> Iterator[list[str]]:
    """The rows of a CSV in the shipped form (code, name, valid_from, valid_until), header
    skipped."""
    for record in csv.reader(io.StringIO(text)):
        if record[0] != "code":  # the header
            yield record


def _read_csv(text: str) -> list[DivisionCode]:
    rows = []
    for code, name, start, end in _records(text):
        rows.append(
            DivisionCode(
                code,
                name,
                dt.date.fromisoformat(start) if start else None,
                dt.date.fromisoformat(end) if end else None,
            )
        )
    return rows


@lru_cache(maxsize=1)
def builtin() -> DivisionTable:
    """The shipped history, read on first use (some 7,000 rows, indexed from the text)."""
    text = resources.files("quality").joinpath(BUILTIN_FILE).read_text(encoding="utf-8")
    return DivisionTable(csv_text=text)


@lru_cache(maxsize=1)
def builtin_info() -> dict[str, str]:
    """Where the shipped history comes from and when it was last updated."""
    text = resources.files("quality").joinpath(_INFO_FILE).read_text(encoding="utf-8")
    info: dict[str, str] = json.loads(text)
    return info


# The table the checks use: the built-in one, or it with the store's overrides. One store per
# process, so one list: the run sets it before it builds its gate (`use_overrides`).
_active: list[tuple[tuple[DivisionCode, ...], DivisionTable]] = []


def use_overrides(overrides: Sequence[DivisionCode]) -> None:
    """Make the checks of this process use the built-in codes with `overrides` (none: the
    built-in codes alone). Cheap when called again with the same rows."""
    key = tuple(overrides)
    if _active and _active[0][0] == key:
        return
    table = builtin().with_overrides(key) if key else builtin()
    _active[:] = [(key, table)]


def active() -> DivisionTable:
    """The table the checks use now."""
    return _active[0][1] if _active else builtin()
