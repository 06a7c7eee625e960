"""API token roles and lifetimes: plain constants, so that `govex token --help` can name them
without loading the store (SQLAlchemy, Alembic, pydantic: seconds). `tokens` re-exports them."""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["DEFAULT_DAYS", "MAX_DAYS", "ROLES", "Role"]

Role = Literal[
    "admin", "authority", "provider", "consumer", "checklist_owner", "auditor", "lineage_producer"
]
ROLES: tuple[Role, ...] = get_args(Role)

DEFAULT_DAYS = 90  # a token's lifetime unless `govex token create --days N` says otherwise
MAX_DAYS = 3650  # ten years: past that "expires" means nothing, so ask for a revocation plan
