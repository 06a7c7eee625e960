"""OpenLineage dataset names for govex sources and targets: the single source of this naming.

Naming follows the OpenLineage naming conventions where they exist:

| connection                 | namespace                    | name                          |
|----------------------------|------------------------------|-------------------------------|
| PostgreSQL URL             | ``postgres://host:5432``     | ``database.schema.table``     |
| MySQL / MariaDB URL        | ``mysql://host:3306``        | ``database.table``            |
| other SQLAlchemy URL       | ``<backend>://host:port``    | ``database.table``            |
| SQLite URL (no host)       | ``sqlite://<absolute path>`` | ``main.table``                |
| file directory (``path``)  | ``file``                     | ``<directory>/<table>.<fmt>`` |
| Kafka                      | ``kafka://<first broker>``   | ``<topic>``                   |

A ``query`` source has no table: its dataset is named after the resource code.
Credentials never appear in a namespace (only scheme, host and port are kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    import catalog

__all__ = [
    "DatasetName",
    "connection_dataset",
    "file_dataset",
    "kafka_dataset",
    "source_dataset",
    "sql_dataset",
    "target_dataset",
]

_DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306, "mssql": 1433, "oracle": 1521}
_SCHEMES = {"postgresql": "postgres", "mariadb": "mysql"}


@dataclass(frozen=True)
class DatasetName:
    """An OpenLineage dataset identity: (namespace, name)."""

    namespace: str
    name: str


def sql_dataset(url: str, table: str) -> DatasetName:
    """The dataset of `table` in the database at SQLAlchemy `url`."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    scheme = _SCHEMES.get(backend, backend)
    if scheme == "sqlite":
        database = parsed.database or ":memory:"
        path = database if database == ":memory:" else str(Path(database).resolve())
        return DatasetName(f"sqlite://{path}", f"main.{table}")
    port = parsed.port or _DEFAULT_PORTS.get(scheme)
    authority = f"{parsed.host or 'localhost'}:{port}" if port else (parsed.host or "localhost")
    database = parsed.database or ""
    if scheme == "postgres" and "." not in table:
        table = f"public.{table}"
    name = f"{database}.{table}" if database else table
    return DatasetName(f"{scheme}://{authority}", name)


def file_dataset(directory: str, table: str, fmt: str | None = None) -> DatasetName:
    """The file `<directory>/<table>.<fmt>` (CSV unless said otherwise), by absolute path."""
    return DatasetName("file", str(Path(directory).resolve() / f"{table}.{fmt or 'csv'}"))


def kafka_dataset(bootstrap: str, topic: str) -> DatasetName:
    """A Kafka topic; the namespace names the first broker of the bootstrap list."""
    broker = bootstrap.split(",")[0].strip()
    return DatasetName(f"kafka://{broker}", topic)


def connection_dataset(connection: catalog.ResolvedConnection, table: str) -> DatasetName:
    """The dataset of `table` (a table, file stem or topic) behind a resolved connection."""
    if connection.kind == "url":
        return sql_dataset(connection.target, table)
    if connection.kind == "path":
        return file_dataset(connection.target, table, connection.format)
    return kafka_dataset(connection.target, table)


def source_dataset(
    resource: catalog.Resource, connection: catalog.ResolvedConnection
) -> DatasetName:
    """The dataset a resource is read from."""
    source = resource.source
    if source.kafka is not None:
        return connection_dataset(connection, source.kafka.topic or f"govex.ingest.{resource.code}")
    return connection_dataset(connection, source.table or resource.code)


def target_dataset(
    subscription: catalog.Subscription, connection: catalog.ResolvedConnection
) -> DatasetName:
    """The dataset a subscription is delivered into."""
    return connection_dataset(connection, subscription.sink.table)
