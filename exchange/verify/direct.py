"""Statements a verification call sends straight through psycopg, on a PostgreSQL store.

Why: a single-record call is a few statements of little work each, and SQLAlchemy's part of
each (its execution context, result wrapping, and the cursor and type handling around them)
cost more of the server's CPU than the database's own. So each statement here is an
SQLAlchemy construct compiled once for psycopg, sent as text through the pooled connection's
psycopg connection and prepared on the server the first time that connection sends it.

It runs in the caller's transaction (`store.begin()`: psycopg opens it with the first
statement, SQLAlchemy commits or rolls it back), and a failure comes back as SQLAlchemy's
own does: `sqlalchemy.exc.DBAPIError` (or the subclass matching psycopg's error), with the
pooled connection invalidated when the server connection was lost, so the next checkout
opens a new one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

import psycopg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg

__all__ = ["Statement", "applies"]

_DIALECT: sa.Dialect = pg_psycopg.dialect()  # type: ignore[no-untyped-call]


def applies(conn: sa.Connection) -> bool:
    """Whether `conn` is a PostgreSQL store reached through psycopg 3, which these statements
    need; another driver (psycopg2, pg8000) takes the SQLAlchemy path, as SQLite does."""
    return conn.dialect.name == "postgresql" and conn.dialect.driver == "psycopg"


class Statement:
    """One SQLAlchemy construct as psycopg's text, with the values its compilation bound
    itself (literals such as a separator)."""

    def __init__(self, construct: sa.ClauseElement) -> None:
        compiled = construct.compile(dialect=_DIALECT)
        self.sql = str(compiled)
        self._bound = {k: v for k, v in compiled.params.items() if v is not None}
        self.names = tuple(getattr(construct, "selected_columns", {}).keys())

    def execute(self, conn: sa.Connection, params: Mapping[str, Any]) -> None:
        """Send the statement in `conn`'s transaction (a write returning nothing)."""
        self._run(conn, params)

    def row(self, conn: sa.Connection, params: Mapping[str, Any]) -> tuple[Any, ...]:
        """The one row the statement returns (an aggregate, or a write's RETURNING)."""
        found: tuple[Any, ...] | None = self._run(conn, params).fetchone()
        if found is None:
            msg = f"the statement returned no row: {self.sql}"
            raise LookupError(msg)
        return found

    def mappings(self, conn: sa.Connection, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every row as {column label: value}."""
        return [dict(zip(self.names, row, strict=True))
                for row in self._run(conn, params).fetchall()]

    def _run(self, conn: sa.Connection, params: Mapping[str, Any]) -> psycopg.Cursor[Any]:
        values = {**self._bound, **params} if self._bound else params
        driver: psycopg.Connection[Any] = conn.connection.driver_connection  # type: ignore[assignment]
        try:
            return driver.execute(self.sql, values, prepare=True)  # type: ignore[arg-type]
        except psycopg.Error as error:
            lost = conn.dialect.is_disconnect(cast("Any", error), conn.connection, None)
            if lost:
                conn.invalidate(error)
            raise sa.exc.DBAPIError.instance(
                self.sql, dict(values), error, psycopg.Error, connection_invalidated=lost,
                dialect=conn.dialect) from error
