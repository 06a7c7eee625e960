"""The SQL sink: checked target tables, each batch and its ledger entry in one transaction.

`ensure_table` compares an existing table with the spec before anything is written (missing
column, incompatible type, NULLs the table would refuse, a different primary key, a NOT NULL
column the spec cannot fill) and raises one DeclarationError listing every problem.

Snapshots (`replace`) load a session-local staging table first (outside the swap, so a long
load holds no lock on the target), then swap in one short transaction: delete the target's
rows, insert from staging, save the ledger. A failure anywhere before COMMIT leaves the old
content and the old ledger. The swap uses DELETE, not TRUNCATE, so concurrent readers keep a
consistent view (TRUNCATE is not MVCC-safe in PostgreSQL and commits implicitly in MariaDB).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from govex.errors import DeclarationError, DeclarationErrors, FatalError, GovexError

from ..arrowutil import conform_batch, dedupe_last, holds_nul, pc
from ..base import LedgerEntry, ReadSpec, SinkConnector, TargetColumn, TargetSpec, WriteMode
from . import ledger as ledger_table
from .dialects import Dialect, TableInfo
from .source import read_stream

_READ_BATCH = 100_000


class SqlSink(SinkConnector):
    """A consumer database; holds one connection for its lifetime."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.capabilities = dialect.capabilities
        self._conn: Any = None
        self._checked: set[TargetSpec] = set()
        self._ledger_ready = False
        # Tables that were empty when this sink first wrote to them: see `write`.
        self._loading_empty: dict[str, bool] = {}

    # -- plumbing ----------------------------------------------------------------------------
    def _connection(self) -> Any:
        if self._conn is None:
            self.dialect.prepare_target()
            self._conn = self.dialect.connect()
        return self._conn

    @contextmanager
    def _cursor(self, what: str) -> Iterator[Any]:
        """A cursor outside any transaction (autocommit), driver errors mapped."""
        try:
            cur = self._connection().cursor()
            try:
                yield cur
            finally:
                cur.close()
        except GovexError:
            raise
        except Exception as error:
            raise self._mapped(error, what) from error

    @contextmanager
    def _transaction(self, what: str) -> Iterator[Any]:
        """One explicit transaction: COMMIT when the block ends, ROLLBACK on any error."""
        with self._cursor(what) as cur:
            cur.execute(self.dialect.begin_sql)
            try:
                yield cur
            except BaseException:
                with contextlib.suppress(Exception):  # the original error matters more
                    cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def _mapped(self, error: Exception, what: str) -> Exception:
        kind = self.dialect.error_class(error)
        return kind(f"{what} in {self.dialect.where} failed: {error}")

    def _ensure_ledger(self) -> None:
        # Created outside the data transaction: MariaDB commits implicitly on DDL.
        if not self._ledger_ready:
            try:
                with self._cursor("creating the delivery ledger") as cur:
                    cur.execute(ledger_table.create_sql(self.dialect))
            except GovexError:
                # Deliveries into one database may create the ledger at the same moment, and
                # PostgreSQL's IF NOT EXISTS is not atomic against that (the loser hits a
                # duplicate catalog row): the loser finds the winner's table and goes on.
                if self.dialect.reflect(self._connection(), ledger_table.LEDGER_TABLE) is None:
                    raise
            with self._cursor("creating the delivery ledger") as cur:
                # A ledger an earlier version created holds raw cursors (record values the
                # consumer may not be approved to see): emptied before anything else is written.
                info = self.dialect.reflect(self._connection(), ledger_table.LEDGER_TABLE)
                if info is not None and ledger_table.LEGACY_CURSOR in info.columns:
                    cur.execute(ledger_table.scrub_sql(self.dialect))
            self._ledger_ready = True

    # -- tables --------------------------------------------------------------------------
    def ensure_table(self, spec: TargetSpec) -> None:
        if spec in self._checked:
            return
        d = self.dialect
        d.quote_table(spec.table)
        for name in (*spec.column_names, *spec.primary_key):
            d.quote(name)
        if unknown := [k for k in spec.primary_key if k not in spec.column_names]:
            msg = (
                f"target table '{spec.table}': primary key column {unknown[0]!r} is not "
                "among its columns"
            )
            raise DeclarationError(
                msg, field=unknown[0],
            )
        with self._cursor(f"checking target table '{spec.table}'") as cur:
            info = d.reflect(self._connection(), spec.table)
            if info is None:
                cur.execute(self.create_sql(spec))
            else:
                if self._add_columns(spec, info):
                    info = d.reflect(self._connection(), spec.table) or info
                self._check(spec, info)
        self._ensure_ledger()
        self._checked.add(spec)

    def _column_sql(self, spec: TargetSpec, column: TargetColumn) -> str:
        d = self.dialect
        default = "" if column.default is None else f" DEFAULT {d.default_sql(column.default)}"
        required = not column.nullable or column.name in spec.primary_key
        return (f"{d.quote(column.name)} {d.ddl_type(column.type, column.name in spec.primary_key)}"
                f"{default}{' NOT NULL' if required else ''}")

    def _add_columns(self, spec: TargetSpec, info: TableInfo) -> bool:
        """Add the columns with a default that the existing table lacks (every row takes the
        default); returns whether any was added. Each ALTER stands alone (MariaDB commits
        DDL implicitly); a delivery racing this one may add the column first, which is fine."""
        missing = [c for c in spec.columns if c.default is not None and c.name not in info.columns]
        for column in missing:
            sql = (f"ALTER TABLE {self.dialect.quote_table(spec.table)} "
                   f"ADD COLUMN {self._column_sql(spec, column)}")
            try:
                with self._cursor(f"adding column '{column.name}' to '{spec.table}'") as cur:
                    cur.execute(sql)
            except GovexError:
                now = self.dialect.reflect(self._connection(), spec.table)
                if now is None or column.name not in now.columns:
                    raise
        return bool(missing)

    def create_sql(self, spec: TargetSpec) -> str:
        d = self.dialect
        parts = [self._column_sql(spec, c) for c in spec.columns]
        if spec.primary_key:
            parts.append(f"PRIMARY KEY ({', '.join(d.quote(k) for k in spec.primary_key)})")
        return f"CREATE TABLE {d.quote_table(spec.table)} ({', '.join(parts)}){d.table_suffix}"

    def table_problems(self, spec: TargetSpec) -> list[tuple[str | None, str]] | None:
        if not self.dialect.database_exists():
            return None  # created with the table, by the first delivery
        with self._cursor(f"checking target table '{spec.table}'"):
            info = self.dialect.reflect(self._connection(), spec.table)
        if info is None:
            return None
        return [(p.field, p.message) for p in self._problems(spec, info)]

    def columns_to_add(self, spec: TargetSpec) -> list[str]:
        if not self.dialect.database_exists():
            return []
        with self._cursor(f"checking target table '{spec.table}'"):
            info = self.dialect.reflect(self._connection(), spec.table)
        if info is None:
            return []
        return [c.name for c in spec.columns
                if c.default is not None and c.name not in info.columns]

    def _check(self, spec: TargetSpec, info: TableInfo) -> None:
        problems = self._problems(spec, info)
        if len(problems) == 1:
            raise problems[0]
        if problems:
            raise DeclarationErrors(problems)

    def _problems(self, spec: TargetSpec, info: TableInfo) -> list[DeclarationError]:
        where = f"target table '{spec.table}' in {self.dialect.where}"
        problems: list[DeclarationError] = []

        def problem(column: str | None, message: str) -> None:
            problems.append(DeclarationError(f"{where}: {message}", field=column))

        for column in spec.columns:
            existing = info.columns.get(column.name)
            if existing is None and column.default is not None:
                continue  # added by the first delivery (`_add_columns`): not a problem
            if existing is None:
                problem(column.name, f"has no column '{column.name}' ({column.type}); add it "
                        "or drop the table so govex creates it")
            elif not self.dialect.accepts(existing, column.type):
                problem(column.name, f"column '{column.name}' is {existing.declared}, which "
                        f"cannot hold {column.type} values")
            elif column.nullable and not existing.nullable:
                problem(column.name, f"column '{column.name}' is NOT NULL but the delivered "
                        "field may be empty")
        for name, existing in info.columns.items():
            if (name not in spec.column_names and not existing.nullable
                    and not existing.has_default):
                problem(name, f"column '{name}' is NOT NULL without a default and is not "
                        "delivered, so no row could be inserted")
        if set(info.primary_key) != set(spec.primary_key):
            problem(None, f"primary key is ({', '.join(info.primary_key) or 'none'}) but the "
                    f"subscription needs ({', '.join(spec.primary_key) or 'none'})")
        return problems

    # -- writing -------------------------------------------------------------------------
    def write(self, spec: TargetSpec, batch: pa.Table, mode: WriteMode, ledger: LedgerEntry) -> int:
        """Upsert or append one batch with its ledger entry, in one transaction.

        Initial loads take the bulk path: while a table that was empty when this sink first
        wrote to it receives only this sink's rows, an upsert cannot conflict (a run delivers
        each key once), so rows go in with the dialect's plain bulk insert (PostgreSQL: COPY
        straight into the table) instead of staging + ON CONFLICT. If a key does collide after
        all — another writer, or a query source repeating a key — the batch is rolled back and
        retried on the upsert path, and the sink stays there.
        """
        self.ensure_table(spec)
        data = self._holdable(conform_batch(spec, batch, f"target table '{spec.table}'"), spec)
        if mode == "upsert":
            self._need_key(spec)
            data = dedupe_last(data, spec.primary_key)
            if self._is_initial_load(spec.table):
                try:
                    return self._write_once(spec, data, "append", ledger)
                except GovexError:
                    self._loading_empty[spec.table] = False
        return self._write_once(spec, data, mode, ledger)

    def _holdable(self, data: pa.Table, spec: TargetSpec) -> pa.Table:
        """`data`, refused whole (naming the column) when it holds text this database cannot
        store. The gate quarantines such records (`exchange.run.encoding`); this says so
        plainly if one comes another way, where the database would name only a byte."""
        if self.capabilities.text_holds_nul:
            return data
        for name, column in zip(data.column_names, data.columns, strict=True):
            if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
                continue
            if holds_nul(column):
                held = pc.sum(pc.cast(pc.fill_null(pc.match_substring(column, "\x00"), False),
                                      pa.int64())).as_py()
                msg = (
                    f"target table '{spec.table}': column '{name}' holds a NUL character "
                    f"(U+0000) in {held} row(s), which {self.capabilities.dialect} text cannot "
                    "store; nothing of this batch was written (the quality gate quarantines "
                    "such records)"
                )
                raise FatalError(msg)
        return data

    def _is_initial_load(self, table: str) -> bool:
        if table not in self._loading_empty:
            with self._cursor(f"looking into '{table}'") as cur:
                cur.execute(f"SELECT 1 FROM {self.dialect.quote_table(table)} LIMIT 1")
                self._loading_empty[table] = cur.fetchone() is None
        return self._loading_empty[table]

    def _write_once(
        self, spec: TargetSpec, data: pa.Table, mode: WriteMode, ledger: LedgerEntry
    ) -> int:
        with self._transaction(f"writing {data.num_rows} rows to '{spec.table}'") as cur:
            if data.num_rows:
                if mode == "upsert":
                    self.dialect.upsert(cur, spec.table, data, spec.primary_key)
                else:
                    self.dialect.insert(cur, spec.table, data)
            ledger_table.save(self.dialect, cur, ledger, data.num_rows)
        return data.num_rows

    def replace(self, spec: TargetSpec, batches: Iterable[pa.Table], ledger: LedgerEntry) -> int:
        self.ensure_table(spec)
        d = self.dialect
        limit = d.capabilities.max_identifier_length
        stage_name = f"_govex_stage_{spec.table.rpartition('.')[2]}"[:limit]
        stage = d.quote(stage_name)
        names = {"stage": stage, "table": d.quote_table(spec.table)}
        cols = ", ".join(d.quote(c) for c in spec.column_names)
        total = 0
        with self._cursor(f"staging a snapshot of '{spec.table}'") as cur:
            cur.execute(d.drop_stage_sql.format(**names))
            cur.execute(d.stage_sql.format(**names))
            try:
                for batch in batches:
                    data = self._holdable(
                        conform_batch(spec, batch, f"target table '{spec.table}'"), spec
                    )
                    if data.num_rows:
                        with self._transaction(f"staging a snapshot of '{spec.table}'") as tx:
                            d.insert(tx, stage_name, data)
                        total += data.num_rows
                with self._transaction(f"swapping the snapshot into '{spec.table}'") as tx:
                    tx.execute(f"DELETE FROM {names['table']}")
                    tx.execute(f"INSERT INTO {names['table']} ({cols}) SELECT {cols} FROM {stage}")
                    ledger_table.save(d, tx, ledger, total, accumulate=False)
            finally:
                cur.execute(d.drop_stage_sql.format(**names))
        return total

    def discard_runs(self, spec: TargetSpec, run_ids: Sequence[str],
                     column: str = "_govex_run_id") -> int:
        """Delete the rows earlier, unfinished runs appended (so a rerun appends them once)."""
        if not run_ids:
            return 0
        self.ensure_table(spec)
        d = self.dialect
        with self._transaction(f"discarding runs from '{spec.table}'") as cur:
            cur.execute(
                f"DELETE FROM {d.quote_table(spec.table)} "
                f"WHERE {d.quote(column)} IN ({d.param_list(len(run_ids))})",
                tuple(run_ids),
            )
            return int(cur.rowcount)

    def delete_keys(self, spec: TargetSpec, keys: pa.Table, ledger: LedgerEntry) -> int:
        self.ensure_table(spec)
        d = self.dialect
        names = keys.column_names
        where = " AND ".join(f"{d.quote(n)} = {d.placeholder}" for n in names)
        rows = list(zip(*(keys.column(n).to_pylist() for n in names), strict=True))
        with self._transaction(f"deleting {len(rows)} keys from '{spec.table}'") as cur:
            deleted = 0
            if rows:  # every driver here sums rowcount over an executemany of DELETEs
                cur.executemany(f"DELETE FROM {d.quote_table(spec.table)} WHERE {where}", rows)
                deleted = max(int(cur.rowcount), 0)
            ledger_table.save(d, cur, ledger, 0)
        return deleted

    def flag_keys(self, spec: TargetSpec, keys: pa.Table, column: str, value: bool) -> int:
        self.ensure_table(spec)
        d = self.dialect
        names = keys.column_names
        where = " AND ".join(f"{d.quote(n)} = {d.placeholder}" for n in names)
        rows = [(value, *row) for row in d.driver_rows(keys)]
        with self._transaction(f"flagging {len(rows)} keys in '{spec.table}'") as cur:
            if not rows:
                return 0
            cur.executemany(
                f"UPDATE {d.quote_table(spec.table)} SET {d.quote(column)} = {d.placeholder} "
                f"WHERE {where}", rows,
            )
            return max(int(cur.rowcount), 0)

    def mark_rows(self, spec: TargetSpec, rows: pa.Table, present: bool) -> int:
        self.ensure_table(spec)
        d = self.dialect
        data = conform_batch(spec, rows, f"table '{spec.table}'")
        params = d.driver_rows(data)
        with self._transaction(f"marking {len(params)} rows in '{spec.table}'") as cur:
            if not params:
                return 0
            if present:  # every column is the key: an existing row is left as it is
                cur.executemany(d.upsert_sql(spec.table, data.column_names, data.column_names),
                                params)
            else:
                where = " AND ".join(f"{d.quote(n)} = {d.placeholder}"
                                     for n in data.column_names)
                cur.executemany(f"DELETE FROM {d.quote_table(spec.table)} WHERE {where}", params)
            return max(int(cur.rowcount), 0)

    def purge(self, spec: TargetSpec, resource: str) -> int:
        if self.table_problems(spec) is None:  # never created: nothing was delivered
            return 0
        d = self.dialect
        with self._transaction(f"purging {resource} from '{spec.table}'") as cur:
            cur.execute(
                f"DELETE FROM {d.quote_table(spec.table)} "
                f"WHERE {d.quote('_govex_resource')} = {d.placeholder}",
                (resource,),
            )
            return max(int(cur.rowcount), 0)

    def _need_key(self, spec: TargetSpec) -> None:
        if not spec.primary_key:
            msg = (
                f"target table '{spec.table}': upsert needs a primary key; declare a key or "
                "use append"
            )
            raise DeclarationError(
                msg
            )

    # -- reading -------------------------------------------------------------------------
    def read_ledger(self, subscription: str) -> LedgerEntry | None:
        self._ensure_ledger()
        with self._cursor("reading the delivery ledger") as cur:
            return ledger_table.load(self.dialect, cur, subscription)

    def read_table(self, spec: TargetSpec) -> pa.Table:
        read = ReadSpec(table=spec.table, query=None, columns=spec.column_names,
                        key=spec.primary_key, watermark=None, batch_rows=_READ_BATCH)
        try:
            parts = [
                conform_batch(spec, b.select(list(spec.column_names)), spec.table)
                for b in read_stream(self.dialect, self._connection(), read)
            ]
        except GovexError:
            raise
        except Exception as error:
            raise self._mapped(error, f"reading '{spec.table}'") from error
        return pa.concat_tables(parts) if parts else spec.arrow_schema().empty_table()

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
