"""The connector contract: what the exchange engine asks of a department system.

A base class owns the lifecycle (open, batch loop, close); a connector fills in the hooks. Batches
are Arrow tables, never lists of dicts: the hot path stays columnar end to end.

Ordering and resumption: an incremental source yields rows ordered by (watermark column, key
columns) strictly after a `Cursor`, so a run can stop between any two batches and resume
without loss or duplication, even when many rows share one watermark value.

Exactly-once delivery: a sink writes each batch *and* the subscription's ledger entry (which run
committed how many rows) in one transaction of the target system. The ledger names runs, never
a cursor: a cursor is watermark and key values, record values the consumer may not be approved
to see (a statistics bureau that receives district and date must not find ID numbers there).
How far each subscription holds its resource is kept in the metadata store; after a crash the
run is unfinished, the rerun re-reads from the old watermark, upserts converge by key and append
targets first discard the unfinished run's rows by `_govex_run_id`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

WriteMode = Literal["upsert", "append"]


@dataclass(frozen=True)
class Capabilities:
    """What a dialect can do, as data: the engine never branches on dialect names."""

    dialect: str
    max_identifier_length: int
    native_upsert: Literal["on_conflict", "on_duplicate_key", "none"]
    bulk_load: Literal["copy", "executemany", "file"]
    transactional_ddl: bool
    row_value_comparison: bool
    # Whether text may hold U+0000 (PostgreSQL's may not: it refuses the whole COPY).
    text_holds_nul: bool = True


@dataclass(frozen=True)
class Cursor:
    """Resume position of an incremental read: the last (watermark, key...) values delivered.

    `values` are JSON-serialisable (datetimes as ISO-8601 strings with offset); the source
    that produced the cursor knows how to bind them back.
    """

    columns: tuple[str, ...]
    values: tuple[Any, ...]

    def to_json(self) -> dict[str, Any]:
        return {"columns": list(self.columns), "values": list(self.values)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cursor:
        return cls(tuple(data["columns"]), tuple(data["values"]))


@dataclass(frozen=True)
class ReadSpec:
    """What to read: the source's table or query, the wanted columns, the ordering."""

    table: str | None
    query: str | None
    columns: tuple[str, ...] | None  # None: every column of the table/query
    key: tuple[str, ...]
    watermark: str | None  # None: a full snapshot ordered by key
    after: Cursor | None = None
    batch_rows: int = 50_000
    # For formats without types of their own (CSV): read these columns as these types instead
    # of guessing. SQL sources ignore it: their columns are typed by the database.
    types: Mapping[str, pa.DataType] | None = None


@dataclass(frozen=True)
class TargetColumn:
    """One column of a target table. A column with a `default` (a bool, int or str) is
    created with it, and an existing table that lacks the column gets it added (every
    existing row takes the default) instead of being refused: how govex adds a column to
    targets that predate it (`_govex_disputed`)."""

    name: str
    type: pa.DataType
    nullable: bool = True
    default: bool | int | str | None = None


@dataclass(frozen=True)
class TargetSpec:
    """A target table: typed columns and the primary key (empty: none)."""

    table: str
    columns: tuple[TargetColumn, ...]
    primary_key: tuple[str, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.type, nullable=c.nullable) for c in self.columns])


@dataclass(frozen=True)
class LedgerEntry:
    """Which run last committed into this target for one subscription, and how many rows.

    No cursor and no record value of any kind: everything here lands in the consumer's
    database (see the module docstring)."""

    subscription: str
    resource: str
    run_id: str
    rows: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class SourceConnector(ABC):
    """Reads a department system in bounded, ordered Arrow batches."""

    capabilities: Capabilities

    @abstractmethod
    def read_batches(self, spec: ReadSpec) -> Iterator[pa.Table]:
        """Yield batches of at most `spec.batch_rows` rows, ordered, strictly after the cursor."""

    @abstractmethod
    def cursor_after(self, spec: ReadSpec, batch: pa.Table) -> Cursor:
        """The cursor just past the last row of `batch` (which must be non-empty)."""

    def describe(self, spec: ReadSpec) -> Mapping[str, pa.DataType] | None:
        """The columns a read of `spec` returns, by name (`pa.null()`: a type known only from
        the values), reading no rows; None when its table or file does not exist. Lets a run
        and `govex check` refuse a source that lost a column before anything is judged."""
        msg = f"{type(self).__name__} cannot describe a source without reading it"
        raise NotImplementedError(msg)

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections; the default has nothing to release."""


class SinkConnector(ABC):
    """Writes Arrow batches into a consumer's system, each batch with its ledger atomically."""

    capabilities: Capabilities

    @abstractmethod
    def ensure_table(self, spec: TargetSpec) -> None:
        """Create the target table when absent; otherwise check it can take `spec`'s columns
        (raise DeclarationError naming the table, column and the mismatch)."""

    def table_problems(self, spec: TargetSpec) -> list[tuple[str | None, str]] | None:
        """What keeps the existing target table from taking `spec`'s rows, as (column or None,
        one sentence naming the table) each, empty when it fits; None when there is no such
        table yet (`ensure_table` creates it). Changes nothing: `ensure_table`'s check, asked
        before a run reads anything and by `govex check`."""
        msg = f"{type(self).__name__} cannot inspect a target table"
        raise NotImplementedError(msg)

    def columns_to_add(self, spec: TargetSpec) -> list[str]:
        """The columns with a default that the existing target table lacks: `ensure_table`
        adds them (not a problem, `table_problems` leaves them out). Empty when there is no
        table yet or nothing to add; changes nothing."""
        return []

    @abstractmethod
    def write(self, spec: TargetSpec, batch: pa.Table, mode: WriteMode, ledger: LedgerEntry) -> int:
        """Upsert (by primary key) or append `batch`, and save `ledger`, in one transaction."""

    @abstractmethod
    def replace(self, spec: TargetSpec, batches: Iterable[pa.Table], ledger: LedgerEntry) -> int:
        """Snapshot: make the table hold exactly these rows, swapped in atomically with ledger."""

    @abstractmethod
    def read_ledger(self, subscription: str) -> LedgerEntry | None:
        """The last committed ledger entry of a subscription in this target, if any."""

    @abstractmethod
    def read_table(self, spec: TargetSpec) -> pa.Table:
        """The whole target table (for checks and tests; not a hot path)."""

    def discard_runs(
        self, spec: TargetSpec, run_ids: Sequence[str], column: str = "_govex_run_id"
    ) -> int:
        """Delete the rows appended by `run_ids` (unfinished earlier runs), so that a rerun
        appends its records exactly once; returns how many rows went."""
        msg = f"{type(self).__name__} cannot discard runs"
        raise NotImplementedError(msg)

    def delete_keys(self, spec: TargetSpec, keys: pa.Table, ledger: LedgerEntry) -> int:
        """Delete the rows whose primary key (without `_govex_run_id`) is one of `keys`' rows,
        and save `ledger`, in one transaction; returns how many rows went. Deletes pushed by
        a vertical system reach upsert targets this way."""
        msg = f"{type(self).__name__} cannot delete rows"
        raise NotImplementedError(msg)

    def flag_keys(self, spec: TargetSpec, keys: pa.Table, column: str, value: bool) -> int:
        """Set boolean `column` to `value` on the rows whose primary key (without
        `_govex_run_id`) is one of `keys`' rows, in one transaction; returns the rows the
        database reports changed (MariaDB counts only those whose value moved). A flag is no
        delivery (no run, no rows delivered), so the ledger stays as it is. A key the table
        does not hold changes nothing."""
        msg = f"{type(self).__name__} cannot flag rows"
        raise NotImplementedError(msg)

    def mark_rows(self, spec: TargetSpec, rows: pa.Table, present: bool) -> int:
        """Make the small bookkeeping table `spec` (every column in its primary key) hold
        `rows` (`present`) or not hold them, in one transaction: rows already there, or
        already gone, are left alone; returns how many rows changed. No ledger: like a flag,
        it is no delivery."""
        msg = f"{type(self).__name__} cannot mark rows"
        raise NotImplementedError(msg)

    def purge(self, spec: TargetSpec, resource: str) -> int:
        """Delete every row of `resource` (by `_govex_resource`) from the target table, in one
        transaction, when the subscription that received them has ended; returns how many rows
        went (0 when the table does not exist). The table itself stays."""
        msg = f"{type(self).__name__} cannot purge rows"
        raise NotImplementedError(msg)

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections; the default has nothing to release."""
