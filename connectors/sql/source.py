"""The SQL source: one ordered query per read, streamed in bounded Arrow batches.

A read is `SELECT <columns> FROM <table | (query) AS _govex_q> [WHERE (wm, k…) > (…)]
ORDER BY wm, k…`, executed once and streamed (PostgreSQL COPY, MariaDB unbuffered cursor,
SQLite stepping cursor). One query, not keyset pages: without an index on (watermark, key),
every page of a paged read would sort the whole table again. Ordering and the resume
comparison both happen in the database, so they agree on collation and NULL handling.

Incremental reads skip rows whose watermark is NULL: such a row has no place in the order and
could never be resumed after; declare the watermark column NOT NULL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa

from govex.errors import DeclarationError, GovexError

from ..arrowutil import check_after, cursor_from_batch, normalise, order_columns, wanted_columns
from ..base import Cursor, ReadSpec, SourceConnector
from .dialects import Dialect


def relation_sql(dialect: Dialect, spec: ReadSpec) -> str:
    """The FROM clause of a read: a validated table name or the query as a subquery."""
    if (spec.table is None) == (spec.query is None):
        msg = "a SQL source needs exactly one of table or query"
        raise DeclarationError(msg)
    if spec.table is not None:
        return dialect.quote_table(spec.table)
    query = (spec.query or "").strip().rstrip(";").strip()
    if not query:
        msg = "the source query is empty"
        raise DeclarationError(msg)
    return f"({query}) AS _govex_q"


def build_read(
    dialect: Dialect, conn: Any, spec: ReadSpec
) -> tuple[str, list[Any], pa.Schema]:
    """The SQL, its parameters and the wire schema of one read."""
    relation = relation_sql(dialect, spec)
    try:
        described = dialect.describe(conn, relation)
    except GovexError:
        raise
    except Exception as error:
        msg = f"cannot read {spec.table or 'the source query'} in {dialect.where}: {error}"
        raise DeclarationError(
            msg
        ) from error
    types = dict(described)
    chosen = wanted_columns(spec, [name for name, _ in described])
    check_after(spec)
    order = order_columns(spec)
    select = ", ".join(dialect.select_expr(c, types[c]) for c in chosen)
    sql = f"SELECT {select} FROM {relation}"
    conditions: list[str] = []
    params: list[Any] = []
    if spec.watermark:
        watermark = dialect.order_expr(spec.watermark, types[spec.watermark])
        conditions.append(f"{watermark} IS NOT NULL")
    if spec.after is not None:
        exprs = [dialect.order_expr(c, types[c]) for c in order]
        values = [dialect.bind(v, types[c]) for c, v in zip(order, spec.after.values, strict=True)]
        condition, params = _after(dialect, exprs, values)
        conditions.append(condition)
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    if order:
        sql += " ORDER BY " + ", ".join(dialect.order_expr(c, types[c]) for c in order)
    return sql, params, pa.schema([(c, types[c]) for c in chosen])


def _after(dialect: Dialect, exprs: list[str], values: list[Any]) -> tuple[str, list[Any]]:
    """`(e1, e2, …) > (v1, v2, …)`, spelled out where row values are not supported."""
    p = dialect.placeholder
    if len(exprs) == 1:
        return f"{exprs[0]} > {p}", values
    if dialect.capabilities.row_value_comparison:
        return f"({', '.join(exprs)}) > ({dialect.param_list(len(exprs))})", values
    terms, params = [], []
    for i, expr in enumerate(exprs):
        equal = [f"{e} = {p}" for e in exprs[:i]]
        terms.append("(" + " AND ".join([*equal, f"{expr} > {p}"]) + ")")
        params.extend([*values[:i], values[i]])
    return "(" + " OR ".join(terms) + ")", params


def read_stream(dialect: Dialect, conn: Any, spec: ReadSpec) -> Iterator[pa.Table]:
    """Batches of one read, normalised to govex types (timestamps UTC)."""
    sql, params, schema = build_read(dialect, conn, spec)
    for batch in dialect.stream(conn, sql, params, schema, spec.batch_rows):
        yield normalise(batch)


class SqlSource(SourceConnector):
    """A department database read in bounded, ordered batches; one connection per read."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.capabilities = dialect.capabilities

    def read_batches(self, spec: ReadSpec) -> Iterator[pa.Table]:
        conn = self.dialect.connect()
        try:
            try:
                yield from read_stream(self.dialect, conn, spec)
            except GovexError:
                raise
            except Exception as error:
                kind = self.dialect.error_class(error)
                msg = (
                    f"reading {spec.table or 'the source query'} from {self.dialect.where} "
                    f"failed: {error}"
                )
                raise kind(
                    msg
                ) from error
        finally:
            with contextlib.suppress(Exception):  # already closed after an abandoned read
                conn.close()

    def cursor_after(self, spec: ReadSpec, batch: pa.Table) -> Cursor:
        return cursor_from_batch(spec, batch)

    def describe(self, spec: ReadSpec) -> Mapping[str, pa.DataType] | None:
        if not self.dialect.database_exists():
            return None
        conn = self.dialect.connect()
        try:
            if spec.table is not None and self.dialect.reflect(conn, spec.table) is None:
                return None
            return dict(self.dialect.describe(conn, relation_sql(self.dialect, spec)))
        except GovexError:
            raise
        except Exception as error:
            msg = (f"describing {spec.table or 'the source query'} in {self.dialect.where} "
                   f"failed: {error}")
            raise self.dialect.error_class(error)(msg) from error
        finally:
            with contextlib.suppress(Exception):
                conn.close()
