"""Reading a leaked file: CSV or JSON Lines, every column as text.

A leaked file is hostile input: it may be anything, so every way it can fail ends in one
sentence naming the file and what is wrong (a `DeclarationError`, exit 2), never a traceback.
Values stay text here (CSV has no types, and a JSON number is read back from its spelling):
`values` types them as each subscription's target received them.

The format is the extension's (`.csv`, `.jsonl`/`.ndjson`/`.json`), else the first character:
`{` is JSON Lines, anything else CSV, separated by whichever of comma, tab, semicolon and
vertical bar its header line uses most (comma when none). Text is UTF-8 (a byte-order mark is
skipped), else GB18030, which Chinese spreadsheet programs write by default. An empty CSV cell
is null (a cell cannot say whether it was null or empty; sources rarely hold empty personal
data).
At most `MAX_ROWS` rows are read (a sample that size decides as well as the whole file) and a
single value may not exceed `MAX_FIELD_BYTES`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from govex.errors import DeclarationError

__all__ = ["MAX_FIELD_BYTES", "MAX_ROWS", "Leaked", "read_leaked"]

MAX_ROWS = 1_000_000
MAX_FIELD_BYTES = 1 << 20  # 1 MiB: no delivered value comes near it
_SNIFF_BYTES = 8192
_JSON_SUFFIXES = (".jsonl", ".ndjson", ".json")
_DELIMITERS = (",", "\t", ";", "|")  # the first wins a tie: comma

Format = Literal["csv", "jsonl"]


@dataclass(frozen=True)
class Leaked:
    """The file's rows as text columns (in the file's column order), and how it was read."""

    table: pa.Table
    format: Format
    encoding: str
    truncated: bool  # more than MAX_ROWS rows: only the first were read


def _bad(path: Path, what: str) -> DeclarationError:
    return DeclarationError(f"{path} {what}", value=str(path))


def _encoding(path: Path, head: bytes) -> str:
    if b"\x00" in head:
        msg = "is a binary file, not CSV or JSON Lines text"
        raise _bad(path, msg)
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            with path.open(encoding=encoding, newline="") as text:
                while text.read(1 << 20):
                    pass
        except UnicodeDecodeError:
            continue
        return encoding
    msg = "is neither UTF-8 nor GB18030 text"
    raise _bad(path, msg)


def _format(path: Path, head: bytes) -> Format:
    if path.suffix.lower() == ".csv":
        return "csv"
    if path.suffix.lower() in _JSON_SUFFIXES:
        return "jsonl"
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return "jsonl" if first == b"{" else "csv"


def read_leaked(path: Path, *, max_rows: int = MAX_ROWS) -> Leaked:
    """Every column of `path` as a string column, at most `max_rows` rows."""
    if not path.is_file():
        msg = "is not a file"
        raise _bad(path, msg)
    with path.open("rb") as raw:
        head = raw.read(_SNIFF_BYTES)
    if not head.strip():
        msg = "is empty: there is nothing to trace"
        raise _bad(path, msg)
    encoding = _encoding(path, head)
    fmt = _format(path, head)
    with path.open(encoding=encoding, newline="") as text:
        names, columns, truncated = (
            _csv(path, text, max_rows) if fmt == "csv" else _jsonl(path, text, max_rows)
        )
    if not columns or not columns[0]:
        msg = "holds no rows, only a header" if fmt == "csv" and names else "holds no rows"
        raise _bad(path, msg)
    table = pa.table({name: pa.array(values, pa.string()) for name, values in
                      zip(names, columns, strict=True)})
    return Leaked(table, fmt, encoding.removesuffix("-sig"), truncated)


def _unique_names(path: Path, names: list[str]) -> list[str]:
    cleaned = [name.strip() for name in names]
    if not cleaned or all(not name for name in cleaned):
        msg = "has no header row naming its columns"
        raise _bad(path, msg)
    seen: set[str] = set()
    for name in cleaned:
        if not name:
            msg = "has a column without a name in its header"
            raise _bad(path, msg)
        if name in seen:
            msg = f"names column '{name}' twice in its header"
            raise _bad(path, msg)
        seen.add(name)
    return cleaned


def _csv(
    path: Path, text: io.TextIOBase, max_rows: int
) -> tuple[list[str], list[list[str | None]], bool]:
    header = text.readline(MAX_FIELD_BYTES)
    text.seek(0)
    delimiter = max(_DELIMITERS, key=header.count)
    previous = csv.field_size_limit(MAX_FIELD_BYTES)  # process-wide: put back below
    reader: Iterator[list[str]] = csv.reader(text, delimiter=delimiter)  # type: ignore[arg-type]
    try:
        names = _unique_names(path, next(reader, []))
        columns: list[list[str | None]] = [[] for _ in names]
        for line, row in enumerate(reader, start=2):
            if not row:
                continue  # a blank line
            if len(row) != len(names):
                msg = (f"is not a CSV table: line {line} has {len(row)} values, the header "
                       f"{len(names)}")
                raise _bad(path, msg)
            if len(columns[0]) == max_rows:
                return names, columns, True
            for column, value in zip(columns, row, strict=True):
                column.append(value if value != "" else None)
    except csv.Error as error:
        msg = f"is not a CSV file govex can read ({error}; a value may be at most " \
              f"{MAX_FIELD_BYTES} bytes)"
        raise _bad(path, msg) from error
    finally:
        csv.field_size_limit(previous)
    return names, columns, False


def _text(value: Any) -> str | None:
    """A JSON value as the text a CSV export would hold."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False)  # nested: matches no delivered field


def _jsonl(
    path: Path, text: io.TextIOBase, max_rows: int
) -> tuple[list[str], list[list[str | None]], bool]:
    names: list[str] = []
    index: dict[str, int] = {}
    columns: list[list[str | None]] = []
    rows = 0
    line_number = 0
    while True:
        line = text.readline(MAX_FIELD_BYTES * 4 + 1)
        if not line:
            return names, columns, False
        line_number += 1
        if len(line) > MAX_FIELD_BYTES * 4 and not line.endswith("\n"):
            msg = f"has a line ({line_number}) longer than {MAX_FIELD_BYTES * 4} characters"
            raise _bad(path, msg)
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            msg = f"is not JSON Lines: line {line_number} is not JSON ({error.msg})"
            raise _bad(path, msg) from error
        if not isinstance(record, dict):
            msg = f"is not JSON Lines of objects: line {line_number} is not an object"
            raise _bad(path, msg)
        if rows == max_rows:
            return names, columns, True
        for name in record:
            key = str(name).strip()
            if key and key not in index:  # a column first seen now: null in earlier rows
                index[key] = len(names)
                names.append(key)
                columns.append([None] * rows)
        for column in columns:
            column.append(None)
        for name, value in record.items():
            key = str(name).strip()
            if key:
                columns[index[key]][rows] = _text(value)
        rows += 1
