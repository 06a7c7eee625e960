"""The `Dialect`: everything the shared SQL source and sink need to know about one database.

Capabilities are data (`Capabilities` plus a few class attributes); behaviour that genuinely
differs (how to stream a result, how to bulk-load, how to reflect a table) is an override in
the dialect's own module. Shared code never asks which database it is talking to.

Connections are plain DBAPI connections in autocommit mode; transactions are explicit
(`begin_sql` … COMMIT), so a batch and its ledger entry commit together and nothing else does.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

from ..arrowutil import pc, python_value
from ..base import Capabilities
from ..naming import check_name, check_table
from ..types import accepts


@dataclass(frozen=True)
class ColumnInfo:
    """One existing column of a target table, as the compatibility check sees it."""

    name: str
    family: str
    declared: str
    nullable: bool
    has_default: bool


@dataclass(frozen=True)
class TableInfo:
    columns: dict[str, ColumnInfo]
    primary_key: tuple[str, ...]


class Dialect(ABC):
    """One database's SQL, types, connection setup and bulk paths."""

    capabilities: ClassVar[Capabilities]
    quote_char: ClassVar[str] = '"'
    placeholder: ClassVar[str] = "%s"
    booleans_are_integers: ClassVar[bool] = False
    begin_sql: ClassVar[str] = "BEGIN"
    table_suffix: ClassVar[str] = ""
    # How a session-local staging table for a snapshot is made from the target and dropped.
    stage_sql: ClassVar[str] = "CREATE TEMPORARY TABLE {stage} AS SELECT * FROM {table} WHERE 1=0"
    drop_stage_sql: ClassVar[str] = "DROP TABLE IF EXISTS {stage}"

    def __init__(self, url: str) -> None:
        self.url = url

    @property
    def where(self) -> str:
        """The database, for messages: the URL without its password."""
        from sqlalchemy.engine import make_url

        return make_url(self.url).render_as_string(hide_password=True)

    # -- connections ---------------------------------------------------------------------
    @abstractmethod
    def connect(self) -> Any:
        """A DBAPI connection in autocommit mode with the session set to UTC; raises
        TransientError when the database cannot be reached."""

    def prepare_target(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Make what a sink needs before it first connects (a server database: nothing)."""

    def database_exists(self) -> bool:
        """Whether the database is there to connect to without creating it (a server database:
        assumed; connecting says otherwise). Lets a check look without leaving a file behind."""
        return True

    @abstractmethod
    def error_class(self, error: Exception) -> type[Exception]:
        """The govex error class a driver error maps to (TransientError when a retry helps)."""

    # -- names ---------------------------------------------------------------------------
    def quote(self, name: str) -> str:
        check_name(name, "column", self.capabilities.max_identifier_length)
        return f"{self.quote_char}{name}{self.quote_char}"

    def quote_table(self, name: str) -> str:
        parts = check_table(name, self.capabilities.max_identifier_length)
        return ".".join(f"{self.quote_char}{p}{self.quote_char}" for p in parts)

    def param_list(self, n: int) -> str:
        return ", ".join([self.placeholder] * n)

    # -- tables ----------------------------------------------------------------------------
    @abstractmethod
    def ddl_type(self, type_: pa.DataType, in_key: bool) -> str:
        """The column type this database stores an Arrow type as."""

    @abstractmethod
    def reflect(self, conn: Any, table: str) -> TableInfo | None:
        """The existing table's columns and primary key; None when there is no such table."""

    def default_sql(self, value: bool | int | str) -> str:
        """A column default as an SQL literal (booleans as 0/1 where they are integers)."""
        if isinstance(value, bool):
            if self.booleans_are_integers:
                return "1" if value else "0"
            return "TRUE" if value else "FALSE"
        if isinstance(value, int):
            return str(value)
        return "'" + value.replace("'", "''") + "'"

    def accepts(self, column: ColumnInfo, type_: pa.DataType) -> bool:
        return accepts(column.family, type_, booleans_are_integers=self.booleans_are_integers)

    # -- reading ---------------------------------------------------------------------------
    @abstractmethod
    def describe(self, conn: Any, relation: str) -> list[tuple[str, pa.DataType]]:
        """Names and wire types of a relation's columns. A timestamp's wire type says whether
        the database sends an offset (tz set) or not; `pa.null()` means "infer from values"."""

    def select_expr(self, name: str, type_: pa.DataType) -> str:
        return self.quote(name)

    def order_expr(self, name: str, type_: pa.DataType) -> str:
        """The expression a column is ordered and compared by (must agree with `bind`)."""
        return self.quote(name)

    def bind(self, value: Any, type_: pa.DataType) -> Any:
        """A JSON cursor value as the driver parameter comparing correctly with `order_expr`."""
        return python_value(value, type_)

    @abstractmethod
    def stream(
        self, conn: Any, sql: str, params: Sequence[Any], schema: pa.Schema, batch_rows: int
    ) -> Iterator[pa.Table]:
        """Run `sql` and yield its rows as Arrow tables of about `batch_rows` rows (wire types,
        normalised by the caller), holding at most a few batches in memory."""

    # -- writing ---------------------------------------------------------------------------
    def driver_columns(self, batch: pa.Table) -> list[Any]:
        """Columns converted (vectorised) to what the driver binds best."""
        out: list[Any] = []
        for column in batch.columns:
            if pa.types.is_timestamp(column.type):
                # Naive UTC text: every dialect here parses it; no driver time zone guessing.
                naive = pc.cast(column, pa.timestamp("us", tz="UTC")).cast(pa.timestamp("us"))
                column = pc.cast(naive, pa.string())  # 2026-01-02 03:04:05.000006
            elif pa.types.is_date(column.type):
                column = pc.cast(column, pa.string())
            elif pa.types.is_boolean(column.type):
                column = pc.cast(column, pa.int8())
            out.append(column)
        return out

    def driver_rows(self, batch: pa.Table) -> list[tuple[Any, ...]]:
        """Row tuples for executemany (the driver wants Python objects)."""
        return list(zip(*(c.to_pylist() for c in self.driver_columns(batch)), strict=True))

    def datetime_param(self, value: Any) -> Any:
        """A timezone-aware datetime as a driver parameter (the ledger's updated_at)."""
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def insert(self, cur: Any, table: str, batch: pa.Table) -> None:
        """Plain insert of every row of `batch` (one multi-row statement batch)."""
        cols = ", ".join(self.quote(c) for c in batch.column_names)
        sql = (
            f"INSERT INTO {self.quote_table(table)} ({cols}) "
            f"VALUES ({self.param_list(batch.num_columns)})"
        )
        cur.executemany(sql, self.driver_rows(batch))

    @abstractmethod
    def upsert_sql(self, table: str, columns: Sequence[str], key: Sequence[str]) -> str:
        """An INSERT of one row of parameters that updates the row with the same key."""

    def upsert(self, cur: Any, table: str, batch: pa.Table, key: Sequence[str]) -> None:
        """Insert-or-update every row of `batch` (keys unique within the batch)."""
        cur.executemany(
            self.upsert_sql(table, batch.column_names, key), self.driver_rows(batch)
        )


def simple_ddl(type_: pa.DataType, float_: str, text: str, bool_: str, binary: str) -> str:
    """The DDL type of the families whose spelling differs only by name between dialects."""
    if pa.types.is_floating(type_):
        return float_
    if pa.types.is_boolean(type_):
        return bool_
    if pa.types.is_date(type_):
        return "DATE"
    if pa.types.is_binary(type_) or pa.types.is_large_binary(type_):
        return binary
    return text
