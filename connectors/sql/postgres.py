"""PostgreSQL through psycopg 3: COPY both ways, parsed and written by pyarrow.csv.

Reading: `COPY (SELECT …) TO STDOUT (FORMAT csv)` streams one ordered result; pyarrow parses it
in blocks with the column types taken from the result description, so no value passes through
Python objects. Text is parsed as bytes and decoded per batch: a database in SQL_ASCII may
hold bytes that are not UTF-8, and they must cost only the records holding them (quarantined by
the gate), not the read. In PostgreSQL CSV a NULL is an unquoted empty field and an empty string
is `""`, hence `quoted_strings_can_be_null=False`. timestamptz arrives with an offset (the
session is UTC anyway); timestamp without time zone is UTC by govex convention.

Writing: binary COPY (`pgcopy`: vectorised, no text to format or parse) whenever every column
has an exact binary form for its target column; otherwise pyarrow.csv.write_csv produces the
dialect above (nulls unquoted-empty, strings quoted), which `COPY … FROM STDIN (FORMAT csv)`
loads. Upserts go through a temporary staging table and one
`INSERT … SELECT … ON CONFLICT … DO UPDATE`.
"""

from __future__ import annotations

import gc
import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any, cast

import pyarrow as pa
import pyarrow.csv as pacsv

from govex.errors import FatalError, TransientError

from ..base import Capabilities
from ..naming import SQL_IDENTIFIER_LENGTH
from .dialects import ColumnInfo, Dialect, TableInfo, simple_ddl

_OID_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(),
    20: pa.int64(), 21: pa.int64(), 23: pa.int64(), 26: pa.int64(),
    700: pa.float64(), 701: pa.float64(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),  # without time zone: no offset on the wire
    1184: pa.timestamp("us", tz="UTC"),
}
_NUMERIC = 1700

_FAMILIES = {
    "smallint": "integer", "integer": "integer", "bigint": "integer",
    "real": "float", "double precision": "float", "numeric": "decimal",
    "text": "string", "character varying": "string", "character": "string", "name": "string",
    "boolean": "boolean", "date": "date",
    "timestamp without time zone": "timestamp", "timestamp with time zone": "timestamp",
    "bytea": "binary",
}

CONNECT_TIMEOUT = 10  # seconds to reach a department's PostgreSQL (PyMySQL's default too)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The cyclic garbage collector off for one bounded read loop.

    psycopg allocates a few container objects (generators) per row it reads, so a million
    rows trigger well over a thousand collections, and each older-generation pass walks every
    object of the process (tens of thousands of modules' worth once the quality gate's
    libraries are loaded): 40% of a read's CPU was the collector. Nothing in the loop forms a
    cycle (every row's objects die by reference counting), so pausing it frees nothing later.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class _CopyOut(io.RawIOBase):
    """A COPY TO STDOUT stream as a readable file for pyarrow.

    The server sends one CopyData message per row; each `read` gathers as many rows as fit in
    the requested size and joins them once. (Handing rows over one `readinto` at a time, as
    a BufferedReader over a per-row stream does, cost about 0.8 s of CPU per million rows.)
    """

    def __init__(self, copy: Any) -> None:
        self._rows = iter(copy)
        self._left = b""  # the part of the last row that did not fit the previous read

    def readable(self) -> bool:
        return True

    def at_end(self) -> bool:
        """Whether the stream holds no data at all (pulls the first row, keeps it)."""
        if not self._left:
            self._left = bytes(next(self._rows, b""))
        return not self._left

    def read(self, size: int | None = -1) -> bytes:
        limit = size if size is not None and size >= 0 else None
        parts: list[Any] = [self._left] if self._left else []
        total = len(self._left)
        self._left = b""
        with _collector_paused():
            while limit is None or total < limit:
                row = next(self._rows, None)
                if row is None:
                    break
                parts.append(row)
                total += len(row)
        data = b"".join(parts)
        if limit is not None and total > limit:
            data, self._left = data[:limit], data[limit:]
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class PostgresDialect(Dialect):
    capabilities = Capabilities(
        dialect="postgresql",
        max_identifier_length=SQL_IDENTIFIER_LENGTH["postgresql"],
        native_upsert="on_conflict",
        bulk_load="copy",
        transactional_ddl=True,
        row_value_comparison=True,
        text_holds_nul=False,
    )
    stage_sql = "CREATE TEMPORARY TABLE {stage} (LIKE {table} INCLUDING DEFAULTS)"

    def connect(self) -> Any:
        import psycopg
        from psycopg.conninfo import make_conninfo
        from sqlalchemy.engine import make_url

        url = make_url(self.url)
        options = {k: v for k, v in url.query.items() if isinstance(v, str)}
        # libpq waits forever for a server that accepts and never answers: a department's
        # database must not hold a run that way (`?connect_timeout=N` in the URL overrides).
        options.setdefault("connect_timeout", str(CONNECT_TIMEOUT))
        conninfo = make_conninfo(
            "", host=url.host, port=url.port, user=url.username, password=url.password,
            dbname=url.database, **options,
        )
        try:
            conn = psycopg.connect(conninfo, autocommit=True)
            conn.execute("SET TimeZone = 'UTC'")
        except psycopg.OperationalError as error:
            msg = f"cannot connect to {self.where}: {error}"
            raise TransientError(msg) from error
        return conn

    def error_class(self, error: Exception) -> type[Exception]:
        import psycopg

        return TransientError if isinstance(error, psycopg.OperationalError) else FatalError

    def ddl_type(self, type_: pa.DataType, in_key: bool) -> str:
        if pa.types.is_timestamp(type_):
            return "TIMESTAMPTZ" if type_.tz else "TIMESTAMP"
        if pa.types.is_decimal(type_):
            return f"NUMERIC({type_.precision},{type_.scale})"
        if pa.types.is_integer(type_):
            return "BIGINT" if type_.bit_width > 32 or type_ == pa.uint32() else "INTEGER"
        return simple_ddl(type_, "DOUBLE PRECISION", "TEXT", "BOOLEAN", "BYTEA")

    def reflect(self, conn: Any, table: str) -> TableInfo | None:
        schema, name = _split(table)
        rows = conn.execute(
            "SELECT column_name, data_type, is_nullable, column_default "
            "FROM information_schema.columns "
            "WHERE table_schema = COALESCE(%s, current_schema()) AND table_name = %s "
            "ORDER BY ordinal_position",
            (schema, name),
        ).fetchall()
        if not rows:
            return None
        columns = {
            r[0]: ColumnInfo(r[0], _FAMILIES.get(r[1], "other"), r[1], r[2] == "YES",
                             r[3] is not None)
            for r in rows
        }
        key = conn.execute(
            "SELECT a.attname FROM pg_index i "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
            "WHERE i.indrelid = to_regclass(%s) AND i.indisprimary "
            "ORDER BY array_position(i.indkey::int2[], a.attnum)",
            (self.quote_table(table),),
        ).fetchall()
        return TableInfo(columns, tuple(r[0] for r in key))

    def describe(self, conn: Any, relation: str) -> list[tuple[str, pa.DataType]]:
        cur = conn.execute(f"SELECT * FROM {relation} LIMIT 0")
        out = []
        for column in cur.description or ():
            type_ = _OID_TYPES.get(column.type_code, pa.string())
            if column.type_code == _NUMERIC:
                precision, scale = column.precision, column.scale
                # Unconstrained NUMERIC has no precision: float64 (documented, lossy past 15
                # significant digits); constrained ones keep their exact decimal type.
                type_ = (pa.decimal128(precision, scale or 0)
                         if precision and precision <= 38 else pa.float64())
            out.append((column.name, type_))
        return out

    def stream(
        self, conn: Any, sql: str, params: Sequence[Any], schema: pa.Schema, batch_rows: int
    ) -> Iterator[pa.Table]:
        from ..arrowutil import decoded, rebatch

        read = pacsv.ReadOptions(column_names=schema.names, block_size=1 << 22)
        parse = pacsv.ParseOptions(newlines_in_values=True)
        # Text is parsed as bytes and decoded per batch (`decoded`): a database whose encoding
        # is SQL_ASCII holds whatever bytes it was given, and one value that is not UTF-8 must
        # not stop the read (its record is quarantined by the gate instead).
        text = [f.name for f in schema if pa.types.is_string(f.type)]
        convert = pacsv.ConvertOptions(
            column_types={f.name: pa.binary() if f.name in text else f.type for f in schema},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        )
        cur = conn.cursor()
        with cur.copy(f"COPY ({sql}) TO STDOUT (FORMAT csv)", params or None) as copy:
            raw = _CopyOut(copy)
            if raw.at_end():
                return
            reader = pacsv.open_csv(cast("IO[bytes]", raw), read_options=read, parse_options=parse,
                                    convert_options=convert)
            for batch in rebatch(reader, batch_rows):
                yield decoded(batch, text)

    def copy_in(self, cur: Any, table: str, batch: pa.Table) -> None:
        """COPY `batch` into `table` (columns named, so the table may have more): binary when
        every column has an exact binary form for its target column (see pgcopy), else CSV."""
        from . import pgcopy

        cols = ", ".join(self.quote(c) for c in batch.column_names)
        pgcopy.copy_into(cur, self.quote_table(table), cols, batch)

    def insert(self, cur: Any, table: str, batch: pa.Table) -> None:
        self.copy_in(cur, table, batch)

    def upsert_sql(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        return self._upsert(table, columns, key, f"VALUES ({self.param_list(len(columns))})")

    def _upsert(self, table: str, columns: Sequence[str], key: Sequence[str], rows: str) -> str:
        cols = ", ".join(self.quote(c) for c in columns)
        rest = [c for c in columns if c not in key]
        sets = ", ".join(f"{self.quote(c)} = EXCLUDED.{self.quote(c)}" for c in rest)
        action = f"DO UPDATE SET {sets}" if rest else "DO NOTHING"
        keys = ", ".join(self.quote(k) for k in key)
        into = f"INSERT INTO {self.quote_table(table)} ({cols})"
        return f"{into} {rows} ON CONFLICT ({keys}) {action}"

    def upsert(self, cur: Any, table: str, batch: pa.Table, key: Sequence[str]) -> None:
        stage = "_govex_upsert_stage"
        cols = ", ".join(self.quote(c) for c in batch.column_names)
        cur.execute(
            f"CREATE TEMPORARY TABLE {self.quote(stage)} ON COMMIT DROP AS "
            f"SELECT {cols} FROM {self.quote_table(table)} WITH NO DATA"
        )
        self.copy_in(cur, stage, batch)
        cur.execute(self._upsert(table, batch.column_names, key,
                                 f"SELECT {cols} FROM {self.quote(stage)}"))

    def datetime_param(self, value: Any) -> Any:
        return value


def _split(table: str) -> tuple[str | None, str]:
    schema, _, name = table.rpartition(".")
    return (schema or None), name
