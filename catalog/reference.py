"""A workspace's reference lists: its additions to the GB/T 2260 division codes govex ships.

`reference/division_codes.csv` (header `code,name,valid_from,valid_until`; a 6-digit code, a
name, dates YYYY-MM-DD or empty; `valid_until` is the first day the code no longer applies)
is checked and stored by `govex apply`, in the apply's transaction, because a run reads the
store and never the workspace. The stored rows are the file's, normalised; what they mean to a
check (they replace the shipped rows of the codes they name) is `quality.divisions`'s business.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from govex.errors import DeclarationError
from govex.files import read_declaration

from . import tables
from .plan import KindPlan, Plan, canonical

DIVISION_CODES = "division_codes"
DIVISION_CODES_FILE = "reference/division_codes.csv"
COLUMNS = ("code", "name", "valid_from", "valid_until")
_CODE = re.compile(r"[0-9]{6}", re.ASCII)
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


@dataclass(frozen=True)
class StoredReference:
    """A reference list as the last apply stored it."""

    rows: list[dict[str, str]]
    file: str
    workspace: str
    applied_at: dt.datetime


def _date(text: str, column: str, file: str, line: int) -> dt.date | None:
    if not text:
        return None
    msg = f"line {line}: {column} {text!r} is not a date YYYY-MM-DD (or empty)"
    if not _DATE.fullmatch(text):
        raise DeclarationError(msg, file=file, value=text)
    try:
        return dt.date.fromisoformat(text)
    except ValueError as error:
        raise DeclarationError(msg, file=file, value=text) from error


def read_division_codes(root: Path) -> list[dict[str, str]] | None:
    """The workspace's division code rows, checked; None when it has no such file.

    Raises DeclarationError naming the file, the line and what is wrong with it.
    """
    path = root / DIVISION_CODES_FILE
    if not path.is_file():
        return None
    file = DIVISION_CODES_FILE
    text = read_declaration(path, file, "a reference list")
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != COLUMNS:
        msg = f"line 1: the header must be {','.join(COLUMNS)}, got {','.join(header or [])!r}"
        raise DeclarationError(msg, file=file)
    rows: list[dict[str, str]] = []
    for line, cells in enumerate(reader, start=2):
        if not cells:
            continue
        if len(cells) != len(COLUMNS):
            msg = f"line {line}: has {len(cells)} columns, needs {','.join(COLUMNS)}"
            raise DeclarationError(msg, file=file, value=cells)
        code, name, start, end = (c.strip() for c in cells)
        if not _CODE.fullmatch(code):
            msg = f"line {line}: code {code!r} is not a 6-digit GB/T 2260 code"
            raise DeclarationError(msg, file=file, value=code)
        if not name:
            msg = f"line {line}: code {code} has no name"
            raise DeclarationError(msg, file=file, value=code)
        begins, ends = _date(start, "valid_from", file, line), _date(end, "valid_until", file, line)
        if begins is not None and ends is not None and ends <= begins:
            msg = f"line {line}: valid_until {end} is not after valid_from {start}"
            raise DeclarationError(msg, file=file, value=end)
        rows.append({"code": code, "name": name, "valid_from": start, "valid_until": end})
    return rows


def read_stored(conn: sa.Connection, name: str = DIVISION_CODES) -> StoredReference | None:
    """The list `name` as the last apply stored it, or None."""
    row = conn.execute(
        sa.select(tables.reference_lists).where(tables.reference_lists.c.name == name)
    ).mappings().first()
    if row is None:
        return None
    return StoredReference(list(row["rows"]), row["file"], row["workspace"], row["applied_at"])


def plan_with_reference(
    plan: Plan, desired: list[dict[str, str]] | None, stored: StoredReference | None
) -> Plan:
    """`plan` plus a `reference` kind when the workspace or the store has a list."""
    if desired is None and stored is None:
        return plan
    key = DIVISION_CODES
    if stored is None:
        kind = KindPlan(added=(key,))
    elif desired is None:
        kind = KindPlan(removed=(key,))
    elif canonical(desired) != canonical(stored.rows):
        kind = KindPlan(changed=(key,))
    else:
        kind = KindPlan()
    return Plan({**plan.kinds, "reference": kind})


def write_reference(
    conn: sa.Connection, root: Path, desired: list[dict[str, str]] | None, plan: Plan
) -> None:
    """Store (or drop) the workspace's list as the plan says, in the apply's transaction."""
    kind = plan.kinds.get("reference")
    if kind is None or kind.empty:
        return
    t = tables.reference_lists
    conn.execute(sa.delete(t).where(t.c.name == DIVISION_CODES))
    if desired is not None:
        values: dict[str, Any] = {
            "name": DIVISION_CODES, "rows": desired, "file": DIVISION_CODES_FILE,
            "workspace": str(root), "applied_at": dt.datetime.now(dt.UTC),
        }
        conn.execute(sa.insert(t), values)
