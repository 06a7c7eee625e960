"""API tokens: one per department and role, stored hashed, shown to their holder exactly once.

A token is `govex_` + 43 URL-safe characters (32 random bytes). The store keeps only its
SHA-256 digest: the secret has 256 bits of entropy, so a plain (unsalted, fast) hash is as
strong as a password hash here and lets `authenticate` find the row with one indexed lookup.
Whoever reads the store cannot recover a usable token.

Roles (what each may read is decided by the web app, `exchange.web.policy`):
- `admin`: everything;
- `checklist_owner`, `auditor`: read everything, quality and quarantine included;
- `provider`: the catalog, plus runs, quality and quarantined records of its own department's
  resources and the subscriptions to them;
- `consumer`: the catalog and its own department's subscriptions;
- `lineage_producer`: the catalog, and `POST /api/v1/lineage` for a system that reports its
  own OpenLineage events (an Airflow deployment's OpenLineage provider, say), never govex's.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import sqlalchemy as sa

from govex.errors import DeclarationError, GovexError

Role = Literal["admin", "provider", "consumer", "checklist_owner", "auditor", "lineage_producer"]
ROLES: tuple[Role, ...] = get_args(Role)

TOKEN_PREFIX = "govex_"  # noqa: S105 - a public prefix that marks govex tokens, not a secret
# Writing last_used_at on every request would turn each read into a write (and serialise
# readers on SQLite); once a minute per token is enough to tell live tokens from stale ones.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)

tokens = sa.Table(
    "exchange_tokens",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    # No foreign key to catalog_departments: re-applying a workspace must not be blocked by
    # tokens; a token of a department that no longer exists simply sees nothing of its own.
    sa.Column("department", sa.String(64), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("last_used_at", TS, nullable=True),
    sa.Column("revoked", sa.Boolean, nullable=False, default=False),
)

_departments = sa.table("catalog_departments", sa.column("code"))


class InvalidToken(GovexError):  # noqa: N818 - reads better at the raise site than ...Error
    """The token is missing, unknown or revoked (HTTP 401)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's department and role."""

    department: str
    role: Role
    token_id: str = ""


@dataclass(frozen=True)
class TokenInfo:
    id: str
    department: str
    role: Role
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked: bool


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; govex stores UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_role(role: str) -> Role:
    """`role` as a Role, or a DeclarationError naming the allowed ones."""
    for known in ROLES:
        if role == known:
            return known
    msg = f"unknown role '{role}': use one of {', '.join(ROLES)}"
    raise DeclarationError(msg, field="role", value=role)


def create_token(conn: sa.Connection, department: str, role: str) -> str:
    """Issue a token for `department` (a catalog department code) and `role`; return the secret.

    The secret is returned once and never stored; lose it and issue a new one."""
    checked = check_role(role)
    known = conn.execute(
        sa.select(_departments.c.code).where(_departments.c.code == department)
    ).first()
    if known is None:
        msg = (
            f"unknown department '{department}': it must be declared in departments.yaml "
            "and applied with `govex apply`"
        )
        raise DeclarationError(msg, field="department", value=department)
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        sa.insert(tokens).values(
            id=uuid.uuid4().hex[:12],
            department=department,
            role=checked,
            token_hash=hash_token(secret),
            created_at=_now(),
            last_used_at=None,
            revoked=False,
        )
    )
    return secret


def authenticate(
    conn: sa.Connection,
    token: str,
    *,
    on_recorded: Callable[[Principal], None] | None = None,
) -> Principal:
    """The principal of a valid token; InvalidToken otherwise. Records when it was last used
    (at most once a minute, see LAST_USED_RESOLUTION); the caller commits. `on_recorded` is
    called, on the same connection's transaction, when this use was recorded: the web app
    audits token use with the same throttle."""
    if not token.startswith(TOKEN_PREFIX):
        msg = "not a govex token"
        raise InvalidToken(msg)
    row = conn.execute(
        sa.select(tokens).where(tokens.c.token_hash == hash_token(token))
    ).mappings().first()
    if row is None or row["revoked"]:
        msg = "unknown or revoked token"
        raise InvalidToken(msg)
    now = _now()
    last_used = _aware(row["last_used_at"])
    principal = Principal(department=row["department"], role=check_role(row["role"]),
                          token_id=row["id"])
    if last_used is None or now - last_used >= LAST_USED_RESOLUTION:
        conn.execute(sa.update(tokens).where(tokens.c.id == row["id"]).values(last_used_at=now))
        if on_recorded is not None:
            on_recorded(principal)
    return principal


def revoke_token(conn: sa.Connection, token_id: str) -> None:
    """Revoke a token by its id (as `list_tokens` shows it); unknown ids are an error."""
    result = conn.execute(sa.update(tokens).where(tokens.c.id == token_id).values(revoked=True))
    if result.rowcount == 0:
        msg = f"unknown token id '{token_id}'"
        raise DeclarationError(msg, field="id", value=token_id)


def list_tokens(conn: sa.Connection) -> list[TokenInfo]:
    """Every token ever issued (never its secret), oldest first."""
    rows = conn.execute(sa.select(tokens).order_by(tokens.c.created_at, tokens.c.id)).mappings()
    out = []
    for r in rows:
        created = _aware(r["created_at"])
        assert created is not None  # noqa: S101 - the column is NOT NULL
        out.append(TokenInfo(r["id"], r["department"], check_role(r["role"]), created,
                             _aware(r["last_used_at"]), bool(r["revoked"])))
    return out
