"""The metadata store: one SQLAlchemy engine over SQLite or PostgreSQL, its schema managed by
Alembic migrations (`migrations/versions`, one linear chain), and the API tokens kept in it.

Every package owns its tables (`catalog.metadata`, `records.audit_metadata`, …); the
migrations create them and `migrations/env.py` lists them all.
"""

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
