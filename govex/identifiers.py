"""The one rule for names that reach SQL text and file paths: tables, columns, datasets.

Names are validated instead of escaped in many places: letters, digits and `_` only (optionally
one `schema.` prefix for a SQL table), within the system's identifier length. Anything else is a
declaration error the user fixes in YAML.

The connectors check every name they quote with these functions when a run reads or writes;
`govex apply` checks the names a workspace declares (source table, watermark, key, target
table, delivered fields) with the same functions and the same limits, so a workspace that
applies is one the run accepts. The rule lives here, below both, because the catalog may not
import the connectors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from govex.errors import DeclarationError

_NAME = re.compile(r"[A-Za-z0-9_]+")

# The longest name each SQL database takes, by SQLAlchemy backend name (`postgresql+psycopg://`
# → `postgresql`); the keys are exactly those of `connectors.registry.DIALECTS`, which a test
# checks. Each SQL dialect's capabilities read its limit from here, and `govex apply` looks a
# connection's limit up here: one number per database, for apply and run alike.
SQL_IDENTIFIER_LENGTH: Mapping[str, int] = MappingProxyType(
    {
        "postgresql": 63,  # NAMEDATALEN - 1; longer names are silently truncated
        "postgres": 63,
        "mysql": 64,
        "mariadb": 64,
        "sqlite": 128,  # SQLite has no limit; keep names portable
    }
)
# Dataset (file stem) and column names of a `path` connection's CSV / JSON Lines files.
FILE_IDENTIFIER_LENGTH = 200


def check_name(name: str, what: str, max_length: int) -> str:
    """`name` itself when it is a plain identifier no longer than `max_length`."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        msg = f"{what} name {name!r} is not allowed: use letters, digits and '_' only"
        raise DeclarationError(msg, value=name)
    if len(name) > max_length:
        msg = (
            f"{what} name {name!r} is {len(name)} characters long; this system allows "
            f"at most {max_length}"
        )
        raise DeclarationError(msg, value=name)
    return name


def check_table(name: str, max_length: int) -> tuple[str, ...]:
    """The parts of a SQL table name: `table` or `schema.table`."""
    parts = tuple(name.split(".")) if isinstance(name, str) else (name,)
    if len(parts) > 2:
        msg = f"table name {name!r} has more than one '.'"
        raise DeclarationError(msg, value=name)
    return tuple(check_name(p, "table", max_length) for p in parts)
