"""CSV and JSON Lines files in a directory: dataset `NAME` is `NAME.csv` or `NAME.jsonl`.

Reading: a file is a full snapshot, streamed in file order in bounded batches. With a watermark
(or a cursor) the rows after the cursor are kept, sorted by (watermark, key) and then cut into
batches: that sort holds the remaining rows in memory, which is acceptable for files and is the
one place a file read is not bounded. In CSV an unquoted empty cell is NULL and `""` is the
empty string (what pyarrow writes). Types come from the sidecar when govex wrote the file;
otherwise every CSV column is inferred over the whole file (a first streaming pass), never from
its first block, and digits with a leading zero stay text ("0012" is an ID, not 12). Foreign
JSONL files are typed by pyarrow over the whole file, so they are read whole. Text is read as
bytes and decoded last, per output batch: a column that is not all UTF-8 stays binary, byte for
byte, and the gate quarantines the records holding the undecodable values
(`exchange.run.encoding`), so one bad cell never stops a read.

Writing: append appends to the file; upsert (merge by primary key) and replace write a
temporary file and rename it over the old one, so readers see the old or the new file, never a
half-written one. The ledger lives in the sidecar `NAME.govex-ledger.json` (with the table's
declared schema and the committed length of the data file), replaced atomically *right after*
the data. Crash window, honestly: a crash between the data and the sidecar leaves new data with
the old ledger. For upsert and replace the rerun rewrites the same rows (idempotent). For append,
the next write notices that the data file (same inode) is longer than the committed length and
truncates the uncommitted tail before appending, so the rerun does not duplicate; a reader in
between may see that tail. Files are not transactional: one writer per dataset at a time.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from govex.errors import DeclarationError, FatalError

from .arrowutil import (
    UTC_US,
    as_text,
    check_after,
    conform_batch,
    cursor_from_batch,
    decoded,
    dedupe_last,
    order_columns,
    pc,
    python_value,
    rebatch,
    wanted_columns,
)
from .base import (
    Capabilities,
    Cursor,
    LedgerEntry,
    ReadSpec,
    SinkConnector,
    SourceConnector,
    TargetColumn,
    TargetSpec,
    WriteMode,
)
from .naming import FILE_IDENTIFIER_LENGTH, check_name
from .types import accepts, arrow_family

_BLOCK = 1 << 22  # bytes per parsed block
_TYPES: dict[str, pa.DataType] = {
    str(t): t
    for t in (pa.int64(), pa.int32(), pa.float64(), pa.float32(), pa.string(), pa.bool_(),
              pa.date32(), UTC_US, pa.timestamp("us"), pa.binary())
}
_DECIMAL = re.compile(r"decimal128\((\d+), (\d+)\)")
_INTEGER_TEXT = r"^[-+]?(0|[1-9][0-9]*)$"  # no leading zeros: "0012" is an identifier
_LEADING_ZERO = r"^[-+]?0[0-9]"
_OFFSET = r"[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"


def _type_from(name: str) -> pa.DataType:
    if name in _TYPES:
        return _TYPES[name]
    if m := _DECIMAL.fullmatch(name):
        return pa.decimal128(int(m[1]), int(m[2]))
    msg = f"unknown column type {name!r} in a govex sidecar"
    raise FatalError(msg)


def _capabilities(fmt: str) -> Capabilities:
    return Capabilities(dialect=fmt, max_identifier_length=FILE_IDENTIFIER_LENGTH,
                        native_upsert="none", bulk_load="file", transactional_ddl=False,
                        row_value_comparison=False)


def _from_text(values: Any, type_: pa.DataType, name: str) -> Any:
    """A column read as text (bytes) as `type_` (timestamps with or without offset; naive ones
    are UTC). A `string` column stays bytes here: the reader decodes it last (`decoded`), so
    that one value that is not UTF-8 leaves only its column binary, for the gate to quarantine
    its record, instead of stopping the read."""
    if _is_text(type_):
        return pc.cast(values, pa.binary()) if not pa.types.is_binary(values.type) else values
    if values.type == type_:
        return values
    if pa.types.is_binary(values.type):
        values = as_text(values)
    try:
        if pa.types.is_timestamp(type_):
            # Text with an offset is an instant; text without one is UTC by convention.
            # Both spellings may share a column, so each part is parsed on its own.
            zoned = pc.match_substring_regex(values, _OFFSET)
            aware = pc.cast(pc.if_else(zoned, values, None), UTC_US)
            naive = pc.cast(pc.if_else(zoned, None, values), pa.timestamp("us"))
            return pc.coalesce(aware, pc.assume_timezone(naive, "UTC"))
        if pa.types.is_boolean(type_):
            return pc.cast(pc.utf8_lower(values), type_)
        return pc.cast(values, type_)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        msg = f"column '{name}' holds a value that is not {type_}: {error}"
        raise FatalError(msg) from error


def _fits(values: Any, type_: pa.DataType) -> bool:
    if pa.types.is_binary(values.type):
        return False  # not all UTF-8: only text (kept as bytes until the gate) holds it
    present = pc.drop_null(values)
    if len(present) == 0:
        return True
    if pa.types.is_integer(type_) and not pc.all(
            pc.match_substring_regex(present, _INTEGER_TEXT)).as_py():
        return False
    if pa.types.is_floating(type_) and pc.any(
            pc.match_substring_regex(present, _LEADING_ZERO)).as_py():
        return False
    try:
        _from_text(present, type_, "")
    except FatalError:
        return False
    return True


_CANDIDATES: tuple[pa.DataType, ...] = (pa.int64(), pa.float64(), pa.bool_(), pa.date32(), UTC_US)


class _Dataset:
    """One file and its sidecar."""

    def __init__(self, directory: str, fmt: str, name: str) -> None:
        check_name(name, "dataset", FILE_IDENTIFIER_LENGTH)
        self.fmt = fmt
        self.dir = Path(directory)
        self.path = self.dir / f"{name}.{fmt}"
        self.sidecar_path = self.dir / f"{name}.govex-ledger.json"
        self.name = name

    # -- sidecar ---------------------------------------------------------------------------
    def sidecar(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.sidecar_path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        return data

    def save_sidecar(self, data: dict[str, Any]) -> None:
        _atomic_write(self.sidecar_path,
                      json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8"))

    def declared(self) -> pa.Schema | None:
        table = self.sidecar().get("table")
        if not table:
            return None
        return pa.schema([pa.field(c["name"], _type_from(c["type"]), c["nullable"])
                          for c in table["columns"]])

    # -- reading ---------------------------------------------------------------------------
    def header(self) -> list[str]:
        if self.fmt == "csv":
            with self.path.open("rb") as f:
                first = f.readline()
            if not first.strip():
                return []
            return list(pacsv.read_csv(io.BytesIO(first)).column_names)
        schema = self.declared()
        return list(schema.names) if schema else list(self.read_whole_json().column_names)

    def read_whole_json(self) -> pa.Table:
        if self.path.stat().st_size == 0:
            return pa.table({})
        return pajson.read_json(self.path)

    def text_batches(self, names: list[str]) -> Iterator[pa.RecordBatch]:
        """CSV batches with every column as undecoded text, binary (NULL = unquoted empty
        cell): pyarrow would refuse the whole file for one cell that is not UTF-8."""
        if self.path.stat().st_size == 0:
            return
        reader = pacsv.open_csv(
            self.path,
            read_options=pacsv.ReadOptions(block_size=_BLOCK),
            parse_options=pacsv.ParseOptions(newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.binary()), null_values=[""],
                strings_can_be_null=True, quoted_strings_can_be_null=False,
            ),
        )
        yield from reader

    def infer(self, names: list[str]) -> pa.Schema:
        candidates = {n: list(_CANDIDATES) for n in names}
        for batch in self.text_batches(names):
            for n in names:
                column = as_text(batch.column(n))
                candidates[n] = [t for t in candidates[n] if _fits(column, t)]
        return pa.schema([(n, (candidates[n] or [pa.string()])[0]) for n in names])

    def schema(self) -> pa.Schema:
        declared = self.declared()
        if declared is not None:
            return declared
        if self.fmt == "csv":
            return self.infer(self.header())
        return self.read_whole_json().schema

    def read(
        self, schema: pa.Schema | None = None, hints: Mapping[str, pa.DataType] | None = None
    ) -> tuple[pa.Schema, Iterator[pa.Table]]:
        """The file's schema (`schema`, else declared or inferred, with `hints` overriding
        column types) and its blocks, whose text columns are still bytes (binary): pyarrow
        would refuse a whole file for one value that is not UTF-8, so the caller decodes text
        last (`decoded`) and a column that is not all UTF-8 stays binary, for the gate."""
        if not self.path.exists():
            msg = f"file {self.path} does not exist"
            raise DeclarationError(msg, value=str(self.path))
        if self.fmt == "jsonl" and self.declared() is None:
            # A foreign JSONL file is typed by pyarrow over the whole file (hints unused);
            # its reader does not check UTF-8, so its text too is bytes until decoded.
            whole = _normalised(self.read_whole_json())
            blocks = iter([pa.table(
                [_from_text(c, f.type, f.name) for f, c in zip(whole.schema, whole.columns,
                                                               strict=True)],
                names=whole.column_names,
            )])
            return whole.schema, blocks
        schema = schema or self.schema()
        if hints:
            schema = pa.schema([(f.name, hints.get(f.name, f.type)) for f in schema])
        return schema, self._blocks(schema)

    def batches(self, schema: pa.Schema | None = None) -> Iterator[pa.Table]:
        """The file in blocks, typed by `schema` (default: declared or inferred)."""
        schema, blocks = self.read(schema)
        text = [f.name for f in schema if _is_text(f.type)]
        return (decoded(block, text) for block in blocks)

    def _blocks(self, schema: pa.Schema) -> Iterator[pa.Table]:
        if self.fmt == "csv":
            for batch in self.text_batches(self.header()):
                yield pa.table(
                    [_from_text(batch.column(f.name), f.type, f.name) if f.name in
                     batch.schema.names else pa.nulls(batch.num_rows, _wire(f.type))
                     for f in schema],
                    names=schema.names,
                )
            return
        if self.path.stat().st_size == 0:
            return
        wire = pa.schema([
            (f.name, pa.string() if _is_text_on_disk(f.type) else f.type) for f in schema
        ])
        reader = pajson.open_json(
            self.path, read_options=pajson.ReadOptions(block_size=_BLOCK),
            parse_options=pajson.ParseOptions(explicit_schema=wire,
                                              unexpected_field_behavior="ignore"),
        )
        for batch in reader:
            yield pa.table(
                [_from_text(batch.column(f.name), f.type, f.name) for f in schema],
                names=schema.names,
            )


def _is_text(type_: pa.DataType) -> bool:
    return pa.types.is_string(type_) or pa.types.is_large_string(type_)


def _wire(type_: pa.DataType) -> Any:
    """How a column travels until the reader decodes its text: text as bytes."""
    return pa.binary() if _is_text(type_) else type_


def _is_text_on_disk(type_: pa.DataType) -> bool:
    return pa.types.is_timestamp(type_) or pa.types.is_date(type_) or pa.types.is_decimal(type_)


def _normalised(table: pa.Table) -> pa.Table:
    from .arrowutil import normalise

    return normalise(table)


def _temp_beside(path: Path) -> tuple[int, str]:
    """A temporary file in `path`'s directory (same filesystem, so rename is atomic) with the
    permissions the replaced file had (mkstemp alone would make it owner-only)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    os.fchmod(fd, mode)
    return fd, tmp


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = _temp_beside(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _after_mask(table: pa.Table, columns: Sequence[str], values: Sequence[Any]) -> Any:
    """Rows where (c1, c2, …) > (v1, v2, …), vectorised; NULLs compare false."""
    mask = None
    equal_so_far = None
    for name, value in zip(columns, values, strict=True):
        column = table.column(name)
        scalar = pa.scalar(python_value(value, column.type), column.type)
        greater = pc.greater(column, scalar)
        term = greater if equal_so_far is None else pc.and_(equal_so_far, greater)
        mask = term if mask is None else pc.or_(mask, term)
        equal = pc.equal(column, scalar)
        equal_so_far = equal if equal_so_far is None else pc.and_(equal_so_far, equal)
    return pc.fill_null(mask, False)


class FileSource(SourceConnector):
    """A directory of CSV or JSONL files read as snapshots."""

    def __init__(self, directory: str, fmt: str) -> None:
        self.directory = directory
        self.fmt = fmt
        self.capabilities = _capabilities(fmt)

    def read_batches(self, spec: ReadSpec) -> Iterator[pa.Table]:
        if spec.query is not None or spec.table is None:
            msg = f"a {self.fmt} source reads a file by name (table); it cannot run a query"
            raise DeclarationError(
                msg
            )
        check_after(spec)
        dataset = _Dataset(self.directory, self.fmt, spec.table)
        schema, blocks = dataset.read(hints=spec.types)
        first = next(blocks, None)
        if first is None:
            return
        chosen = wanted_columns(spec, first.column_names)
        order = order_columns(spec)
        parts = (b.select(chosen) for b in _chain(first, blocks))
        # Text columns travel as bytes through cutting and sorting and are decoded last, per
        # output batch (see `_from_text`).
        text = [f.name for f in schema if _is_text(f.type)]
        if spec.watermark is None and spec.after is None:
            for batch in rebatch(parts, spec.batch_rows):
                yield decoded(batch, text)
            return
        kept = []
        for part in parts:
            if spec.watermark:
                part = part.filter(pc.is_valid(part.column(spec.watermark)))
            if spec.after is not None:
                part = part.filter(_after_mask(part, order, spec.after.values))
            kept.append(part)
        table = pa.concat_tables(kept).sort_by([(c, "ascending") for c in order])
        for batch in rebatch(iter([table]), spec.batch_rows):
            yield decoded(batch, text)

    def cursor_after(self, spec: ReadSpec, batch: pa.Table) -> Cursor:
        return cursor_from_batch(spec, batch)

    def describe(self, spec: ReadSpec) -> Mapping[str, pa.DataType] | None:
        if spec.table is None:
            return None
        dataset = _Dataset(self.directory, self.fmt, spec.table)
        if not dataset.path.exists():
            return None
        declared = dataset.declared()
        if declared is not None:
            return {f.name: f.type for f in declared}
        # A CSV file's header names its columns; their types are known only from the values.
        return dict.fromkeys(dataset.header(), pa.null())


def _chain(first: pa.Table, rest: Iterator[pa.Table]) -> Iterator[pa.Table]:
    yield first
    yield from rest


class FileSink(SinkConnector):
    """A directory of CSV or JSONL files written as targets."""

    def __init__(self, directory: str, fmt: str) -> None:
        self.directory = directory
        self.fmt = fmt
        self.capabilities = _capabilities(fmt)
        if not Path(directory).is_dir():
            msg = f"directory {directory} does not exist"
            raise DeclarationError(msg, value=directory)

    # -- encoding ----------------------------------------------------------------------------
    def _encode(self, table: pa.Table, header: bool) -> bytes:
        if self.fmt == "csv":
            buffer = io.BytesIO()
            if table.num_rows or header:
                pacsv.write_csv(table, buffer, pacsv.WriteOptions(include_header=header))
            return buffer.getvalue()
        columns = []
        for column in table.columns:
            if _is_text_on_disk(column.type):
                column = pc.cast(column, pa.string())
            columns.append(column.to_pylist())
        names = table.column_names
        # Python per row: pyarrow has no JSON writer; file targets are not the hot path.
        lines = [json.dumps(dict(zip(names, row, strict=True)), ensure_ascii=False)
                 for row in zip(*columns, strict=True)]
        return ("".join(line + "\n" for line in lines)).encode("utf-8")

    # -- tables ------------------------------------------------------------------------------
    def ensure_table(self, spec: TargetSpec) -> None:
        dataset = _Dataset(self.directory, self.fmt, spec.table)
        for name in spec.column_names:
            check_name(name, "column", FILE_IDENTIFIER_LENGTH)
        where = f"target file {dataset.path}"
        sidecar = dataset.sidecar()
        if not dataset.path.exists():
            self._publish(dataset, spec, spec.arrow_schema().empty_table(), None, 0)
            return
        declared = dataset.declared()
        problems = [message for _column, message in self._problems(dataset, spec)]
        if problems:
            raise DeclarationError(f"{where}: " + "; ".join(problems))
        if _lacking(dataset, spec):  # rewritten with the columns added, at their defaults
            self._publish(dataset, spec, self._existing(dataset, spec), None, 0)
            sidecar = dataset.sidecar()
        if declared is None or not set(spec.column_names) <= set(declared.names):
            # Adopt a foreign file, or record added columns: what govex now writes into it.
            sidecar["table"] = _table_json(spec)
            dataset.save_sidecar(sidecar)

    def table_problems(self, spec: TargetSpec) -> list[tuple[str | None, str]] | None:
        dataset = _Dataset(self.directory, self.fmt, spec.table)
        if not dataset.path.exists():
            return None
        return [(column, f"target file {dataset.path}: {message}")
                for column, message in self._problems(dataset, spec)]

    def columns_to_add(self, spec: TargetSpec) -> list[str]:
        dataset = _Dataset(self.directory, self.fmt, spec.table)
        if not dataset.path.exists():
            return []
        return [c.name for c in _lacking(dataset, spec)]

    @staticmethod
    def _problems(dataset: _Dataset, spec: TargetSpec) -> list[tuple[str | None, str]]:
        """What keeps the existing file from taking `spec`'s rows, per column."""
        sidecar = dataset.sidecar()
        declared = dataset.declared()
        problems: list[tuple[str | None, str]] = []
        if declared is None:
            present = set(dataset.header())
            problems = [(c.name, f"has no column '{c.name}'") for c in spec.columns
                        if c.name not in present and c.default is None]
        else:
            for column in spec.columns:
                if column.name not in declared.names:
                    if column.default is None:  # one with a default is added (ensure_table)
                        problems.append((column.name, f"has no column '{column.name}'"))
                    continue
                have = declared.field(column.name).type
                if not accepts(arrow_family(have), column.type, booleans_are_integers=False):
                    problems.append((column.name, f"column '{column.name}' is {have}, which "
                                     f"cannot hold {column.type} values"))
            key = tuple(sidecar.get("table", {}).get("primary_key", ()))
            if set(key) != set(spec.primary_key):
                problems.append((None, f"primary key is ({', '.join(key) or 'none'}) but the "
                                 f"subscription needs ({', '.join(spec.primary_key) or 'none'})"))
        return problems

    def _publish(self, dataset: _Dataset, spec: TargetSpec, table: pa.Table,
                 ledger: LedgerEntry | None, rows: int, *, accumulate: bool = True) -> None:
        """Replace the data file by `table` atomically, then the sidecar."""
        _atomic_write(dataset.path, self._encode(table, header=True))
        self._commit(dataset, spec, ledger, rows, accumulate=accumulate)

    def _commit(self, dataset: _Dataset, spec: TargetSpec, ledger: LedgerEntry | None,
                rows: int, *, accumulate: bool = True) -> None:
        sidecar = dataset.sidecar()
        sidecar.setdefault("table", _table_json(spec))
        stat = dataset.path.stat()
        sidecar["committed"] = {"inode": stat.st_ino, "bytes": stat.st_size}
        if ledger is not None:
            entries = sidecar.setdefault("ledger", {})
            previous = entries.get(ledger.subscription)
            total = ledger.rows + rows
            if accumulate and previous and previous["run_id"] == ledger.run_id:
                total = previous["rows"] + rows
            entries[ledger.subscription] = {
                "resource": ledger.resource, "run_id": ledger.run_id,
                "rows": total, "extra": ledger.extra,
            }
        for entry in sidecar.get("ledger", {}).values():
            # Earlier versions kept a cursor (record values) here: never again in a target.
            entry.pop("cursor", None)
        dataset.save_sidecar(sidecar)

    def _existing(self, dataset: _Dataset, spec: TargetSpec) -> pa.Table:
        """The file's rows in `spec`'s columns; a column with a default that the file lacks
        (written before govex added it) reads as its default."""
        lacking = _lacking(dataset, spec)
        parts = [conform_batch(spec, _with_defaults(b, lacking), str(dataset.path)) for b in
                 dataset.batches(spec.arrow_schema())]
        return pa.concat_tables(parts) if parts else spec.arrow_schema().empty_table()

    # -- writing -----------------------------------------------------------------------------
    def write(self, spec: TargetSpec, batch: pa.Table, mode: WriteMode, ledger: LedgerEntry) -> int:
        self.ensure_table(spec)
        dataset = _Dataset(self.directory, self.fmt, spec.table)
        data = conform_batch(spec, batch, f"target file {dataset.path}")
        if mode == "append":
            self._append(dataset, data)
            self._commit(dataset, spec, ledger, data.num_rows)
            return data.num_rows
        if not spec.primary_key:
            msg = f"target file {dataset.path}: upsert needs a primary key"
            raise DeclarationError(msg)
        data = dedupe_last(data, spec.primary_key)
        existing = self._existing(dataset, spec)
        keys = list(spec.primary_key)
        kept = existing.join(data.select(keys), keys=keys, join_type="left anti")
        merged = pa.concat_tables([kept.select(spec.column_names).cast(data.schema), data]).sort_by(
            [(k, "ascending") for k in keys])
        self._publish(dataset, spec, merged, ledger, data.num_rows)
        return data.num_rows

    def _append(self, dataset: _Dataset, data: pa.Table) -> None:
        committed = dataset.sidecar().get("committed")
        stat = dataset.path.stat()
        with dataset.path.open("r+b") as f:
            if committed and committed["inode"] == stat.st_ino and \
                    stat.st_size > committed["bytes"]:
                f.truncate(committed["bytes"])  # a crashed append's uncommitted tail
            f.seek(0, os.SEEK_END)
            f.write(self._encode(data, header=f.tell() == 0))
            f.flush()
            os.fsync(f.fileno())

    def replace(self, spec: TargetSpec, batches: Iterable[pa.Table], ledger: LedgerEntry) -> int:
        self.ensure_table(spec)
        dataset = _Dataset(self.directory, self.fmt, spec.table)
        fd, tmp = _temp_beside(dataset.path)
        total = 0
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(self._encode(spec.arrow_schema().empty_table(), header=True))
                for batch in batches:
                    data = conform_batch(spec, batch, f"target file {dataset.path}")
                    f.write(self._encode(data, header=False))
                    total += data.num_rows
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, dataset.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        _fsync_dir(dataset.dir)
        self._commit(dataset, spec, ledger, total, accumulate=False)
        return total

    def discard_runs(self, spec: TargetSpec, run_ids: Sequence[str],
                     column: str = "_govex_run_id") -> int:
        if not run_ids:
            return 0
        self.ensure_table(spec)
        dataset = _Dataset(self.directory, self.fmt, spec.table)
        existing = self._existing(dataset, spec)
        drop = pc.fill_null(pc.is_in(existing.column(column), pa.array(list(run_ids))), False)
        kept = existing.filter(pc.invert(drop))
        self._publish(dataset, spec, kept, None, 0)
        return existing.num_rows - kept.num_rows

    def delete_keys(self, spec: TargetSpec, keys: pa.Table, ledger: LedgerEntry) -> int:
        self.ensure_table(spec)
        dataset = _Dataset(self.directory, self.fmt, spec.table)
        existing = self._existing(dataset, spec)
        names = keys.column_names
        kept = existing.join(keys.cast(existing.select(names).schema), keys=names,
                             join_type="left anti").select(spec.column_names)
        self._publish(dataset, spec, kept.cast(existing.schema), ledger, 0)
        return existing.num_rows - kept.num_rows

    def flag_keys(self, spec: TargetSpec, keys: pa.Table, column: str, value: bool) -> int:
        self.ensure_table(spec)
        dataset = _Dataset(self.directory, self.fmt, spec.table)
        existing = self._existing(dataset, spec)
        hit = _rows_of(existing, keys)
        current = existing.column(column)
        changed = pc.sum(pc.cast(pc.and_(hit, pc.not_equal(current, value)), pa.int64())).as_py()
        if changed:
            flagged = pc.if_else(hit, pa.scalar(value, current.type), current)
            index = existing.schema.get_field_index(column)
            self._publish(dataset, spec, existing.set_column(index, column, flagged), None, 0)
        return int(changed or 0)

    def mark_rows(self, spec: TargetSpec, rows: pa.Table, present: bool) -> int:
        self.ensure_table(spec)
        dataset = _Dataset(self.directory, self.fmt, spec.table)
        existing = self._existing(dataset, spec)
        data = conform_batch(spec, rows, f"target file {dataset.path}")
        names = list(spec.column_names)
        if present:
            new = data.join(existing, keys=names, join_type="left anti").select(names)
            if new.num_rows:
                self._publish(dataset, spec, pa.concat_tables([existing, new.cast(
                    existing.schema)]), None, 0)
            return new.num_rows
        kept = existing.join(data, keys=names, join_type="left anti").select(names)
        if kept.num_rows != existing.num_rows:
            self._publish(dataset, spec, kept.cast(existing.schema), None, 0)
        return existing.num_rows - kept.num_rows

    def purge(self, spec: TargetSpec, resource: str) -> int:
        dataset = _Dataset(self.directory, self.fmt, spec.table)
        if not dataset.path.exists():  # never written: nothing was delivered
            return 0
        existing = self._existing(dataset, spec)
        drop = pc.fill_null(pc.equal(existing.column("_govex_resource"), resource), False)
        kept = existing.filter(pc.invert(drop))
        self._publish(dataset, spec, kept, None, 0)
        return existing.num_rows - kept.num_rows

    # -- reading -----------------------------------------------------------------------------
    def read_ledger(self, subscription: str) -> LedgerEntry | None:
        """The entry from whichever dataset's sidecar holds it (a subscription has one
        target, so at most one sidecar in the directory names it)."""
        for path in sorted(Path(self.directory).glob("*.govex-ledger.json")):
            entry = json.loads(path.read_text("utf-8")).get("ledger", {}).get(subscription)
            if entry is not None:
                return LedgerEntry(subscription, entry["resource"], entry["run_id"],
                                   int(entry["rows"]), entry.get("extra") or {})
        return None

    def read_table(self, spec: TargetSpec) -> pa.Table:
        dataset = _Dataset(self.directory, self.fmt, spec.table)
        if not dataset.path.exists():
            return spec.arrow_schema().empty_table()
        return self._existing(dataset, spec)


def _lacking(dataset: _Dataset, spec: TargetSpec) -> list[TargetColumn]:
    """The columns with a default that the file lacks (a CSV file's header says; a JSONL
    file's declaration): govex adds them."""
    schema = dataset.declared()
    names = set(dataset.header() if dataset.fmt == "csv" or schema is None else schema.names)
    return [c for c in spec.columns if c.default is not None and c.name not in names]


def _with_defaults(batch: pa.Table, columns: Sequence[TargetColumn]) -> pa.Table:
    """`batch` with each of `columns` (absent from the file) at its default."""
    for column in columns:
        default: Any = pa.scalar(column.default, column.type)
        filled = pa.repeat(default, batch.num_rows)
        if column.name in batch.column_names:  # read as nulls: the file has no such column
            index = batch.schema.get_field_index(column.name)
            batch = batch.set_column(index, column.name, filled)
        else:
            batch = batch.append_column(column.name, filled)
    return batch


def _rows_of(table: pa.Table, keys: pa.Table) -> Any:
    """A boolean mask of `table`'s rows whose values in `keys`' columns are a row of `keys`."""
    names = keys.column_names
    indexed = table.select(names).append_column(
        "__govex_row", pa.array(range(table.num_rows), pa.int64()))
    found = indexed.join(keys.cast(table.select(names).schema), keys=names, join_type="inner")
    return pc.is_in(indexed.column("__govex_row"), value_set=found.column("__govex_row"))


def _table_json(spec: TargetSpec) -> dict[str, Any]:
    return {
        "columns": [{"name": c.name, "type": str(c.type), "nullable": c.nullable}
                    for c in spec.columns],
        "primary_key": list(spec.primary_key),
    }

