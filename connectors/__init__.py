"""Reading from and writing to department systems: SQL databases and files.

Public API: `open_source(kind, target, fmt)` and `open_sink(kind, target, fmt)` return a
`SourceConnector` / `SinkConnector` (see `connectors.base` for the contract). `kind` is `url`
(a SQLAlchemy URL: PostgreSQL, MariaDB/MySQL, SQLite) or `path` (a directory of `csv` or
`jsonl` files). Drivers load only when a connector is opened.

To add a connector: a SQL database is a `Dialect` in `connectors/sql/` (its capabilities are
data on the class) registered in `registry.DIALECTS`; another kind of system is a
`SourceConnector`/`SinkConnector` pair registered in `registry.FORMATS`. Every connector must
pass the shared conformance class in tests/connectors/test_conformance.py.
"""

from .base import (
    Capabilities,
    Cursor,
    LedgerEntry,
    ReadSpec,
    SinkConnector,
    SourceConnector,
    TargetColumn,
    TargetSpec,
    WriteMode,
)
from .registry import open_sink, open_source

__all__ = [
    "Capabilities",
    "Cursor",
    "LedgerEntry",
    "ReadSpec",
    "SinkConnector",
    "SourceConnector",
    "TargetColumn",
    "TargetSpec",
    "WriteMode",
    "open_sink",
    "open_source",
]
