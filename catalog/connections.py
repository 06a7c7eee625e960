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

from govex.errors import DeclarationError

from .declarations import Connection
from .envsubst import substitute


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
    """Substitute `${VAR}`s and anchor relative sqlite/file paths at the workspace directory."""
    env = os.environ if env is None else env
    field = f"connections.{name}.{connection.kind}"
    raw = {"url": connection.url, "kafka": connection.kafka, "path": connection.path}[
        connection.kind
    ]
    assert raw is not None  # noqa: S101 - guaranteed by the model's one-kind check
    value = substitute(raw, env, file=file, field=field)
    if connection.kind == "url":
        return ResolvedConnection(name, "url", _anchor_sqlite(value, workspace, file, field))
    if connection.kind == "path":
        path = Path(value)
        directory = path if path.is_absolute() else workspace / path
        return ResolvedConnection(name, "path", str(directory), connection.format or "csv")
    return ResolvedConnection(name, "kafka", value)


def _anchor_sqlite(url: str, workspace: Path, file: str, field: str) -> str:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as error:
        msg = "is not a valid SQLAlchemy URL"
        raise DeclarationError(
            msg, file=file, field=field, value=url
        ) from error
    if parsed.get_backend_name() != "sqlite":
        return url
    database = parsed.database
    if not database or database == ":memory:" or Path(database).is_absolute():
        return url
    return parsed.set(database=str((workspace / database).resolve())).render_as_string(
        hide_password=False
    )
