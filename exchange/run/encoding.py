"""Text no target can hold: a NUL character, or bytes that are not UTF-8.

Sources hold such values: SQLite and MariaDB keep U+0000 inside text, SQLite keeps any bytes in
a text column, a CSV or JSONL file may hold any bytes, a PostgreSQL database in SQL_ASCII
holds any bytes but NUL. Targets do not: PostgreSQL refuses U+0000 in text (and with it the
whole COPY, so the whole delivery), and no target takes text that is not UTF-8. So one such
value is a quality failure of its record, never of the run: the connectors read text undecoded
(a column that is not all UTF-8 stays binary, `connectors.arrowutil.as_text`), and before the
gate judges a batch, `check_encoding` finds the offending values, vectorised:

- `nul_character` on a column: a text value holds U+0000;
- `invalid_utf8` on a column: a text value is bytes that are not UTF-8.

Their records fail the gate and are quarantined like any other failing record, the check and
the column named. What the gate and the quarantine see of such a value is its text with each
offending character spelled out — U+0000 as `\\u0000` (as `govex ingest` spells it), an
undecodable byte as `\\xff` (Python's `backslashreplace`) — so the provider sees what to fix at
the source, and every store can hold the quarantined record. The spelled-out text never reaches
a target: its record has failed. Nothing is silently altered: every record whose text is
spelled out fails, and says why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as _pc

from connectors.arrowutil import holds_nul
from quality import FAILURE_SCHEMA, CheckResult, GateResult
from quality.report import SAMPLE_SIZE

pc: Any = _pc

NUL_CHARACTER = "nul_character"
INVALID_UTF8 = "invalid_utf8"
NUL_SHOWN = "\\u0000"
# The part of the check that failed, as the quarantine's `detail` says it.
_DETAIL = {NUL_CHARACTER: "NUL character", INVALID_UTF8: "bytes that are not UTF-8"}

__all__ = ["INVALID_UTF8", "NUL_CHARACTER", "EncodingCheck", "check_encoding", "storable"]

# What no store column holds: NUL, and the surrogates, which no UTF-8 encoder takes.
_UNHOLDABLE = re.compile("[\x00\ud800-\udfff]")

Rows = npt.NDArray[np.int64]


@dataclass(frozen=True)
class EncodingCheck:
    """What `check_encoding` found in one batch.

    `batch` is the batch to judge, quarantine and (its passing rows) deliver: every text
    column as valid UTF-8 text, an offending value spelled out. `passed[i]` is False when row
    i holds an offending value; `failures` (FAILURE_SCHEMA) names the check and column of each;
    `checks` are the per column counts for the run's quality report."""

    batch: pa.Table
    passed: npt.NDArray[np.bool_]
    failures: pa.Table
    checks: tuple[CheckResult, ...]

    def judged(self, result: GateResult) -> GateResult:
        """The gate's `result` on `batch` with these failures added to it."""
        if result.report is None and not self.failures.num_rows:
            return result
        failures = result.failures
        if self.failures.num_rows:
            failures = pa.concat_tables(
                [self.failures, result.failures.cast(FAILURE_SCHEMA)]
            ).sort_by([("row", "ascending")])
        report = result.report
        if report is not None:
            report = replace(report, checks=report.checks + self.checks)
        return GateResult(np.asarray(result.passed, np.bool_) & self.passed, failures, report)


def check_encoding(batch: pa.Table) -> EncodingCheck:
    """Find the text values of `batch` no target can hold (see the module docstring)."""
    rows = batch.num_rows
    passed = np.ones(rows, dtype=np.bool_)
    arrays: list[Any] = []
    failures: list[pa.Table] = []
    checks: list[CheckResult] = []
    for name, column in zip(batch.column_names, batch.columns, strict=True):
        if not _is_textual(column.type):
            arrays.append(column)
            continue
        raw = _as_bytes(column)
        try:
            text = pc.cast(raw, _text_type(raw))  # validates UTF-8: one pass
            undecodable: Rows = np.zeros(0, dtype=np.int64)
        except pa.ArrowInvalid:
            undecodable = _undecodable_rows(raw)
            text = _decoded(raw, undecodable)
        nul: Rows = np.zeros(0, dtype=np.int64)
        if holds_nul(raw):
            hits = pc.fill_null(pc.match_substring(text, "\x00"), False)
            nul = np.flatnonzero(hits.to_numpy(zero_copy_only=False)).astype(np.int64)
            text = pc.replace_substring(text, "\x00", NUL_SHOWN)
        arrays.append(text)
        for check, hit, message in (
            (INVALID_UTF8, undecodable,
             f"a text value in '{name}' holds bytes that are not UTF-8 text; no target can "
             "store it (the quarantine shows each such byte as \\xNN)"),
            (NUL_CHARACTER, nul,
             f"a text value in '{name}' holds a NUL character (U+0000), which PostgreSQL "
             f"cannot store (the quarantine shows it as {NUL_SHOWN})"),
        ):
            passed[hit] = False
            checks.append(CheckResult(
                check=check, column=name, engine="contract", evaluated=rows, failed=len(hit),
                sample=tuple(text.take(pa.array(hit[:SAMPLE_SIZE])).to_pylist()),
            ))
            if len(hit):
                failures.append(_failures(hit, check, name, message))
    screened = pa.table(arrays, names=batch.column_names)
    found = (pa.concat_tables(failures).sort_by([("row", "ascending")]) if failures
             else FAILURE_SCHEMA.empty_table())
    return EncodingCheck(screened, passed, found, tuple(checks))


def storable(text: str) -> str:
    """`text` with each NUL or surrogate spelled as its JSON escape (`\\u0000`), as `govex
    ingest` spells them: for what govex writes into the store about a source (an error
    message may quote a source value: pyarrow's "Failed to parse string: '…'" does, NUL and
    all), so that recording a failure never fails itself on a PostgreSQL store."""
    if _UNHOLDABLE.search(text) is None:
        return text
    return _UNHOLDABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _is_textual(type_: pa.DataType) -> bool:
    return (pa.types.is_string(type_) or pa.types.is_large_string(type_)
            or pa.types.is_binary(type_) or pa.types.is_large_binary(type_))


def _as_bytes(column: Any) -> Any:
    """The column as one binary array (a view of a string one: its UTF-8 is not trusted,
    pyarrow's JSON reader for one does not check it)."""
    array = column
    if isinstance(column, pa.ChunkedArray):
        array = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    if pa.types.is_string(array.type):
        return pc.cast(array, pa.binary())
    if pa.types.is_large_string(array.type):
        return pc.cast(array, pa.large_binary())
    return array


def _text_type(raw: Any) -> pa.DataType:
    return pa.large_string() if pa.types.is_large_binary(raw.type) else pa.string()


def _undecodable_rows(raw: Any) -> Rows:
    """Indices of the values that are not UTF-8. Arrow validates a whole array at once, so the
    array is halved until each failing part is one value: clean data costs one validation
    pass, k bad values about k·log2(rows) passes over ever smaller slices (zero-copy)."""
    found: list[int] = []
    pending = [(0, len(raw))]
    target = _text_type(raw)
    while pending:
        start, length = pending.pop()
        try:
            pc.cast(raw.slice(start, length), target)
        except pa.ArrowInvalid:
            if length == 1:
                found.append(start)
                continue
            half = length // 2
            pending += [(start + half, length - half), (start, half)]
    return np.asarray(sorted(found), dtype=np.int64)


def _decoded(raw: Any, undecodable: Rows) -> Any:
    """`raw` as text; a value that is not UTF-8 spelled with `\\xNN` for each bad byte."""
    target = _text_type(raw)
    if not len(undecodable):
        return pc.cast(raw, target)
    mask = np.zeros(len(raw), dtype=np.bool_)
    mask[undecodable] = True
    hidden = pc.if_else(pa.array(mask), pa.scalar(None, raw.type), raw)
    # Python for the offending values only: there are few, and their spelling is Python's.
    shown = [raw[int(i)].as_py().decode("utf-8", "backslashreplace") for i in undecodable]
    return pc.replace_with_mask(pc.cast(hidden, target), pa.array(mask),
                                pa.array(shown, target))


def _failures(rows: Rows, check: str, column: str, message: str) -> pa.Table:
    n = len(rows)
    return pa.table(
        {
            "row": pa.array(rows, pa.int64()),
            "check": pa.array([check] * n, pa.string()),
            "column": pa.array([column] * n, pa.string()),
            "message": pa.array([message] * n, pa.string()),
            "detail": pa.array([_DETAIL[check]] * n, pa.string()),
        },
        schema=FAILURE_SCHEMA,
    )
