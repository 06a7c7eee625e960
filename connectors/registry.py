"""Which connector serves a connection: a small registry keyed by dialect or file format.

Entries name a module and a factory as strings, imported on first use, so that importing
`connectors` (and so `govex --help`) loads no database driver. A SQL connection's dialect is
the SQLAlchemy URL's backend name (`postgresql+psycopg://…` → `postgresql`).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Literal, get_args

from govex.errors import DeclarationError

from .base import SinkConnector, SourceConnector

Kind = Literal["url", "path"]
FileFormat = Literal["csv", "jsonl"]

# backend name in a SQLAlchemy URL → (module, Dialect class)
DIALECTS: dict[str, tuple[str, str]] = {
    "postgresql": ("connectors.sql.postgres", "PostgresDialect"),
    "postgres": ("connectors.sql.postgres", "PostgresDialect"),
    "mysql": ("connectors.sql.mariadb", "MariaDBDialect"),
    "mariadb": ("connectors.sql.mariadb", "MariaDBDialect"),
    "sqlite": ("connectors.sql.sqlite", "SQLiteDialect"),
}

# file format → (module, source class, sink class)
FORMATS: dict[str, tuple[str, str, str]] = {
    "csv": ("connectors.files", "FileSource", "FileSink"),
    "jsonl": ("connectors.files", "FileSource", "FileSink"),
}


def _load(module: str, name: str) -> Any:
    return getattr(import_module(module), name)


def backend_of(url: str) -> str:
    """`postgresql+psycopg://u@h/db` → `postgresql` (no SQLAlchemy import needed)."""
    scheme, sep, _ = url.partition("://")
    if not sep and not url.startswith("sqlite:"):
        msg = f"{url!r} is not a database URL (expected scheme://…)"
        raise DeclarationError(msg, value=url)
    return scheme.partition("+")[0].lower() if sep else "sqlite"


def _dialect(target: str) -> Any:
    backend = backend_of(target)
    if backend not in DIALECTS:
        msg = f"no connector for database '{backend}'; supported: {', '.join(sorted(DIALECTS))}"
        raise DeclarationError(
            msg,
            value=backend,
        )
    return _load(*DIALECTS[backend])(target)


def _file_format(fmt: str | None) -> tuple[str, str, str]:
    fmt = fmt or "csv"
    if fmt not in FORMATS:
        msg = f"no connector for file format '{fmt}'; supported: {', '.join(get_args(FileFormat))}"
        raise DeclarationError(
            msg,
            value=fmt,
        )
    return FORMATS[fmt]


def _check_kind(kind: str) -> None:
    if kind not in get_args(Kind):
        msg = (
            f"connections of kind '{kind}' cannot be read or written here; "
            f"supported: {', '.join(get_args(Kind))}"
        )
        raise DeclarationError(
            msg,
            value=kind,
        )


def open_source(kind: str, target: str, fmt: str | None = None) -> SourceConnector:
    """A source for a connection: kind `url` (SQLAlchemy URL) or `path` (directory + format)."""
    _check_kind(kind)
    if kind == "url":
        from .sql.source import SqlSource

        return SqlSource(_dialect(target))
    module, source, _ = _file_format(fmt)
    return _load(module, source)(target, fmt or "csv")  # type: ignore[no-any-return]


def open_sink(kind: str, target: str, fmt: str | None = None) -> SinkConnector:
    """A sink for a connection; see `open_source` for the arguments."""
    _check_kind(kind)
    if kind == "url":
        from .sql.sink import SqlSink

        return SqlSink(_dialect(target))
    module, _, sink = _file_format(fmt)
    return _load(module, sink)(target, fmt or "csv")  # type: ignore[no-any-return]
