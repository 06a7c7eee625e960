"""The metadata store: one SQLAlchemy engine over SQLite or PostgreSQL, its schema managed by
Alembic migrations (`migrations/versions`, one linear chain), and the API tokens kept in it.

Every package owns its tables (`catalog.metadata`, `records.audit_metadata`, …); the
migrations create them and `migrations/env.py` lists them all.

The names below load on first use: importing `exchange.store.roles` (what `govex token --help`
shows) must not load SQLAlchemy, Alembic and pydantic (seconds).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from exchange.store.engine import (
        create_store_engine,
        current_revision,
        head_revision,
        open_store,
        upgrade,
    )
    from exchange.store.tokens import (
        InvalidToken,
        Principal,
        Role,
        TokenInfo,
        authenticate,
        check_role,
        create_token,
        list_tokens,
        revoke_token,
    )

__all__ = [
    "InvalidToken",
    "Principal",
    "Role",
    "TokenInfo",
    "authenticate",
    "check_role",
    "create_store_engine",
    "create_token",
    "current_revision",
    "head_revision",
    "list_tokens",
    "open_store",
    "revoke_token",
    "upgrade",
]

_ENGINE = frozenset({
    "create_store_engine", "current_revision", "head_revision", "open_store", "upgrade",
})


def __getattr__(name: str) -> Any:
    if name not in __all__:
        msg = f"module 'exchange.store' has no attribute {name!r}"
        raise AttributeError(msg)
    module = importlib.import_module(
        "exchange.store.engine" if name in _ENGINE else "exchange.store.tokens"
    )
    value = getattr(module, name)
    globals()[name] = value
    return value
