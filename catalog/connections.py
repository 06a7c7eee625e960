"""Turning a connection declaration into something a connector can open.

The store keeps the *template* (with `${VAR}` unresolved) and the workspace directory, so that
secrets passed through the environment are never written into the metadata store; resolution
happens where the connection is used.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import sqlalchemy as sa

from .declarations import Connection
from .envsubst import substitute
from .urls import check_url, substitute_url


@dataclass(frozen=True)
class ResolvedConnection:
    """A connection with its variables substituted and relative paths made absolute."""

    name: str
    kind: Literal["url", "kafka", "path"]
    target: str  # SQLAlchemy URL, bootstrap servers, or absolute directory
    format: str | None = None


def resolve_connection(
    name: str,
    connection: Connection,
    workspace: Path,
    env: Mapping[str, str] | None = None,
    *,
    file: str = "connections.yaml",
) -> ResolvedConnection:
    """Substitute `${VAR}`s and anchor relative sqlite/file paths at the workspace directory.

    A URL's variables are encoded for the part of the URL they land in (`catalog.urls`), and
    the result must be a database URL govex has a connector for; anything else is a
    DeclarationError naming the file and the connection, never repeating the resolved URL.
    """
    env = os.environ if env is None else env
    field = f"connections.{name}.{connection.kind}"
    if connection.kind == "url":
        assert connection.url is not None  # noqa: S101 - guaranteed by the model's one-kind check
        url = substitute_url(connection.url, env, file=file, field=field)
        parsed = check_url(url, file=file, field=field, template=connection.url)
        return ResolvedConnection(name, "url", _anchor_sqlite(url, parsed, workspace))
    raw = connection.path if connection.kind == "path" else connection.kafka
    assert raw is not None  # noqa: S101 - guaranteed by the model's one-kind check
    value = substitute(raw, env, file=file, field=field)
    if connection.kind == "path":
        path = Path(value)
        directory = path if path.is_absolute() else workspace / path
        return ResolvedConnection(name, "path", str(directory), connection.format or "csv")
    return ResolvedConnection(name, "kafka", value)


def _anchor_sqlite(url: str, parsed: sa.URL, workspace: Path) -> str:
    """A relative SQLite database path made absolute at the workspace directory."""
    if parsed.get_backend_name() != "sqlite":
        return url
    database = parsed.database
    if not database or database == ":memory:" or Path(database).is_absolute():
        return url
    return parsed.set(database=str((workspace / database).resolve())).render_as_string(
        hide_password=False
    )
