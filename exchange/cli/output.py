"""Printing helpers shared by the command modules: aligned tables and JSON."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Sequence
from typing import Any, TextIO


def width(text: str) -> int:
    """Display width in a terminal: CJK characters take two cells."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def visible(text: str) -> str:
    """`text` with its control characters escaped (`\\r`, `\\x1b`): a cell holds what
    departments wrote (a purpose, a name), and a carriage return or an ANSI sequence printed
    raw would rewrite the operator's terminal, e.g. blank the very row that names them."""
    if text.isprintable():
        return text
    return "".join(ch.encode("unicode_escape").decode("ascii")
                   if unicodedata.category(ch) == "Cc" else ch for ch in text)


def table(
    rows: Sequence[Sequence[Any]], headers: Sequence[str], out: TextIO | None = None
) -> None:
    out = out or sys.stdout  # looked up per call: tests and callers swap sys.stdout
    cells = [[visible(str(h)) for h in headers]] + [[visible(str(c)) for c in row]
                                                    for row in rows]
    widths = [max(width(row[i]) for row in cells) for i in range(len(headers))]
    for row in cells:
        padded = [c + " " * (widths[i] - width(c)) for i, c in enumerate(row)]
        out.write("  ".join(padded).rstrip() + "\n")


def print_json(value: Any, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    out.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")
