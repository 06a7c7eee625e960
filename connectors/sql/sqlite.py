"""SQLite through the standard library's sqlite3.

SQLite is dynamically typed, so declared column types decide the Arrow type (SQLite's own
affinity rules, plus DATE/DATETIME/TIMESTAMP/BOOLEAN by name); columns of a query are typed
through a temporary view, whose columns keep the declared types of the columns they show.

Timestamps are text in SQLite and departments spell them differently ('2026-01-02 03:04:05',
'2026-01-02T03:04:05+08:00', '…Z'). Ordering and comparing that text would be wrong across
spellings, so reads order and compare through `govex_ts()`, a deterministic function that
rewrites any of them to one fixed-width UTC form; cursors are bound in that same form. It costs
a Python call per row on timestamp columns: fine at SQLite's scale, and only there.

SQLite stores whatever text it is given, U+0000 and bytes that are not UTF-8 included: text is
fetched undecoded and decoded by Arrow per column, and a column that is not all UTF-8 stays
binary, byte for byte, for the gate to quarantine its records (`exchange.run.encoding`).

govex writes timestamps as '2026-01-02 03:04:05.000006Z', dates as 'YYYY-MM-DD', booleans 0/1.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from govex.errors import FatalError

from ..arrowutil import as_text, pc
from ..base import Capabilities
from ..naming import SQL_IDENTIFIER_LENGTH
from ..types import ANY
from .dialects import ColumnInfo, Dialect, TableInfo, simple_ddl

_CANONICAL = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


def canonical_timestamp(value: Any) -> str | None:
    """Any SQLite timestamp spelling (ISO text with or without offset, or Unix seconds) as
    fixed-width naive UTC text, which sorts and compares like the instants it names."""
    if value is None:
        return None
    if isinstance(value, int | float):
        parsed = dt.datetime.fromtimestamp(value, dt.UTC)
    else:
        parsed = dt.datetime.fromisoformat(str(value).strip())
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(dt.UTC)
    return _CANONICAL % (parsed.year, parsed.month, parsed.day, parsed.hour, parsed.minute,
                         parsed.second, parsed.microsecond)


def declared_type(declared: str) -> tuple[str, pa.DataType]:
    """(family, Arrow type) of a declared SQLite column type."""
    t = declared.upper()
    rules: tuple[tuple[tuple[str, ...], str, pa.DataType], ...] = (
        (("BOOL",), "boolean", pa.bool_()),
        (("DATETIME", "TIMESTAMP"), "timestamp", pa.timestamp("us")),
        (("DATE",), "date", pa.date32()),
        (("INT",), "integer", pa.int64()),
        (("CHAR", "CLOB", "TEXT"), "string", pa.string()),
        (("BLOB",), "binary", pa.binary()),
        (("REAL", "FLOA", "DOUB"), "float", pa.float64()),
        (("NUMERIC", "DECIMAL"), "decimal", pa.float64()),
    )
    for needles, family, type_ in rules:
        if any(n in t for n in needles):
            return family, type_
    return ANY, pa.null()


class SQLiteDialect(Dialect):
    capabilities = Capabilities(
        dialect="sqlite",
        max_identifier_length=SQL_IDENTIFIER_LENGTH["sqlite"],
        native_upsert="on_conflict",
        bulk_load="executemany",
        transactional_ddl=True,
        row_value_comparison=True,
    )
    placeholder = "?"
    booleans_are_integers = True
    begin_sql = "BEGIN IMMEDIATE"  # take the write lock up front: no deadlock on upgrade
    stage_sql = "CREATE TEMPORARY TABLE {stage} AS SELECT * FROM {table} WHERE 0"

    def connect(self) -> Any:
        from sqlalchemy.engine import make_url

        database = make_url(self.url).database or ":memory:"
        try:
            conn = sqlite3.connect(database, isolation_level=None, timeout=30,
                                   check_same_thread=False)
        except sqlite3.Error as error:
            msg = f"cannot open the SQLite database {database} ({error})"
            raise FatalError(msg) from error
        conn.create_function("govex_ts", 1, canonical_timestamp, deterministic=True)
        return conn

    def prepare_target(self) -> None:
        """A consumer's SQLite file is created with its first table, directory included
        (`sqlite:///data/gsc.db` in a fresh workspace); a source's never is."""
        from sqlalchemy.engine import make_url

        database = make_url(self.url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)

    def database_exists(self) -> bool:
        from sqlalchemy.engine import make_url

        database = make_url(self.url).database
        if not database or database == ":memory:" or database.startswith("file:"):
            return True
        return Path(database).is_file()

    def error_class(self, error: Exception) -> type[Exception]:
        return FatalError

    def ddl_type(self, type_: pa.DataType, in_key: bool) -> str:
        if pa.types.is_timestamp(type_):
            return "TIMESTAMP"
        if pa.types.is_integer(type_):
            return "INTEGER"
        if pa.types.is_decimal(type_):
            return f"NUMERIC({type_.precision},{type_.scale})"
        return simple_ddl(type_, "REAL", "TEXT", "BOOLEAN", "BLOB")

    def reflect(self, conn: Any, table: str) -> TableInfo | None:
        schema, _, name = table.rpartition(".")
        pragma = f"PRAGMA {self.quote(schema)}.table_info" if schema else "PRAGMA table_info"
        rows = conn.execute(f"{pragma}({self.quote(name)})").fetchall()
        if not rows:
            return None
        columns = {
            r[1]: ColumnInfo(r[1], declared_type(r[2] or "")[0], r[2] or "(none)",
                             not r[3] and not r[5], r[4] is not None)
            for r in rows
        }
        key = tuple(r[1] for r in sorted((r for r in rows if r[5]), key=lambda r: r[5]))
        return TableInfo(columns, key)

    def describe(self, conn: Any, relation: str) -> list[tuple[str, pa.DataType]]:
        view = f"_govex_describe_{uuid.uuid4().hex[:12]}"
        conn.execute(f"CREATE TEMPORARY VIEW {view} AS SELECT * FROM {relation}")
        try:
            rows = conn.execute(f"PRAGMA temp.table_info({view})").fetchall()
        finally:
            conn.execute(f"DROP VIEW temp.{view}")
        return [(r[1], declared_type(r[2] or "")[1]) for r in rows]

    def select_expr(self, name: str, type_: pa.DataType) -> str:
        if pa.types.is_timestamp(type_):
            return f"govex_ts({self.quote(name)}) AS {self.quote(name)}"
        return self.quote(name)

    def order_expr(self, name: str, type_: pa.DataType) -> str:
        if pa.types.is_timestamp(type_):
            return f"govex_ts({self.quote(name)})"
        return self.quote(name)

    def bind(self, value: Any, type_: pa.DataType) -> Any:
        if pa.types.is_timestamp(type_):
            return canonical_timestamp(value)
        if pa.types.is_date(type_) or pa.types.is_decimal(type_):
            return value  # dates are ISO text in SQLite; decimals compare as numbers
        return super().bind(value, type_)

    def stream(
        self, conn: Any, sql: str, params: Sequence[Any], schema: pa.Schema, batch_rows: int
    ) -> Iterator[pa.Table]:
        # Text comes back undecoded: a value that is not UTF-8 (SQLite stores whatever it is
        # given) would otherwise stop the whole read in the driver's decoder. Arrow decodes
        # whole columns at once, and one that is not all UTF-8 stays bytes (`as_text`).
        text_factory = conn.text_factory
        conn.text_factory = bytes
        try:
            cur = conn.execute(sql, tuple(params))
        except BaseException:
            conn.text_factory = text_factory
            raise
        fields = list(schema)
        try:
            while rows := cur.fetchmany(batch_rows):
                arrays = [_column(values, field) for values, field in
                          zip(zip(*rows, strict=True), fields, strict=True)]
                # An untyped column (an expression in a query) takes the type of its first
                # values and keeps it, so that every batch of a read has one schema.
                fields = [
                    pa.field(f.name, a.type) if pa.types.is_null(f.type) and a.null_count < len(a)
                    else f for f, a in zip(fields, arrays, strict=True)
                ]
                yield pa.table(arrays, names=schema.names)
        finally:
            cur.close()
            conn.text_factory = text_factory

    def driver_columns(self, batch: pa.Table) -> list[Any]:
        out: list[Any] = []
        for column in batch.columns:
            if pa.types.is_timestamp(column.type):
                column = pc.cast(pc.cast(column, pa.timestamp("us", tz="UTC")), pa.string())
                out.append(column)  # '2026-01-02 03:04:05.000006Z'
            else:
                out.extend(super().driver_columns(pa.table([column], names=["c"])))
        return out

    def datetime_param(self, value: Any) -> Any:
        return value.astimezone(dt.UTC).isoformat(sep=" ")

    def upsert_sql(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        cols = ", ".join(self.quote(c) for c in columns)
        rest = [c for c in columns if c not in key]
        sets = ", ".join(f"{self.quote(c)} = excluded.{self.quote(c)}" for c in rest)
        action = f"DO UPDATE SET {sets}" if rest else "DO NOTHING"
        keys = ", ".join(self.quote(k) for k in key)
        return (
            f"INSERT INTO {self.quote_table(table)} ({cols}) "
            f"VALUES ({self.param_list(len(columns))}) ON CONFLICT ({keys}) {action}"
        )


def _column(values: Sequence[Any], field: Any) -> Any:
    """One column of SQLite values as Arrow; SQLite may hold any type in any column, so a
    value that does not fit the declared type fails here, naming the column. Text arrives as
    bytes (see `stream`): a text column that is not all UTF-8 stays binary, for the gate."""
    type_ = field.type
    try:
        if pa.types.is_null(type_):
            try:
                untyped = pa.array(values)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                return _text(values)
            return as_text(untyped) if pa.types.is_binary(untyped.type) else untyped
        if pa.types.is_timestamp(type_) or pa.types.is_date(type_):
            return pc.cast(pa.array(values, pa.string()), type_)
        if pa.types.is_boolean(type_):
            return pc.cast(pa.array(values, pa.int64()), type_)
        if pa.types.is_string(type_):
            return _text(values)
        return pa.array(values, type_)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as error:
        msg = f"SQLite column '{field.name}' holds a value that is not {type_}: {error}"
        raise FatalError(
            msg
        ) from error


def _text(values: Sequence[Any]) -> Any:
    """Text values (bytes, and a number or a BLOB where SQLite let one into a text column) as
    a string array, or as binary when some value is not UTF-8. A number becomes its text;
    bytes are never rewritten."""
    try:
        raw = pa.array(values, pa.binary())
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        raw = pa.array(
            [v if v is None or isinstance(v, bytes) else str(v).encode() for v in values],
            pa.binary(),
        )
    return as_text(raw)
