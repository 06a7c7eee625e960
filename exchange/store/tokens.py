"""API tokens and the web sign-in sessions made from them, stored hashed.

A token is `govex_` + 43 URL-safe characters (32 random bytes). The store keeps only its
SHA-256 digest: the secret has 256 bits of entropy, so a plain (unsalted, fast) hash is as
strong as a password hash here and lets `authenticate` find the row with one indexed lookup.
Whoever reads the store cannot recover a usable token. A token expires (`DEFAULT_DAYS` after it
is issued unless asked otherwise) and can be revoked; either ends it for good.

Signing in to the web pages does not put the token in the browser: `start_session` makes a
session, a second random secret whose digest is stored beside the token's id, and the cookie
holds that. A session lives at most `SESSION_LIFETIME` and never past its token's expiry;
revoking the token deletes its sessions, signing out deletes the one session.

Roles (what each may read is decided by the web app, `exchange.web.policy`):
- `admin`: everything;
- `checklist_owner`, `auditor`: read everything, quality and quarantine included; `auditor`
  (and `admin`) also read the audit log over the API;
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
from typing import Any, Literal

import sqlalchemy as sa

# The roles and lifetimes live in a light module (`govex token --help` names them).
from exchange.store.roles import DEFAULT_DAYS as DEFAULT_DAYS
from exchange.store.roles import MAX_DAYS as MAX_DAYS
from exchange.store.roles import ROLES as ROLES
from exchange.store.roles import Role as Role
from govex.errors import DeclarationError, GovexError
from govex.moments import aware

TokenState = Literal["active", "expired", "revoked"]

TOKEN_PREFIX = "govex_"  # noqa: S105 - a public prefix that marks govex tokens, not a secret
# Writing last_used_at on every request would turn each read into a write (and serialise
# readers on SQLite); once a minute per token is enough to tell live tokens from stale ones.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)
# A working day: a browser left signed in overnight asks for the token again.
SESSION_LIFETIME = dt.timedelta(hours=12)

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _default_expiry() -> dt.datetime:
    """What a row inserted without `expires_at` gets (create_token always sets it)."""
    return _now() + dt.timedelta(days=DEFAULT_DAYS)


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
    sa.Column("expires_at", TS, nullable=False, default=_default_expiry),
)

sessions = sa.Table(
    "exchange_sessions",
    metadata,
    # SHA-256 of the session id the cookie holds: reading the store gives no usable cookie.
    sa.Column("session_hash", sa.String(64), primary_key=True),
    sa.Column("token_id", sa.String(32),
              sa.ForeignKey("exchange_tokens.id", ondelete="CASCADE"), nullable=False),
    sa.Column("created_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
    sa.Index("ix_exchange_sessions_token_id", "token_id"),
    sa.Index("ix_exchange_sessions_expires_at", "expires_at"),
)

# Lookups (trace, dispute opening) per token per minute window, counted here rather than in a
# process's memory so that every process serving the API shares one count (`count_lookup`).
lookup_counts = sa.Table(
    "exchange_lookup_counts",
    metadata,
    sa.Column("token_id", sa.String(64), primary_key=True),
    sa.Column("minute", sa.BigInteger, primary_key=True),  # minutes since the epoch
    sa.Column("count", sa.Integer, nullable=False),
)

_departments = sa.table("catalog_departments", sa.column("code"))


class InvalidToken(GovexError):  # noqa: N818 - reads better at the raise site than ...Error
    """The token or session is missing, unknown, expired or revoked (HTTP 401)."""


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
    expires_at: dt.datetime

    def state(self, now: dt.datetime | None = None) -> TokenState:
        if self.revoked:
            return "revoked"
        return "expired" if self.expires_at <= (now or _now()) else "active"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "department": self.department, "role": self.role,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "state": self.state(),
        }


@dataclass(frozen=True)
class Session:
    """A new sign-in session: `id` goes in the cookie (and nowhere else), until `expires_at`."""

    id: str
    principal: Principal
    expires_at: dt.datetime


def _utc(value: Any) -> dt.datetime:
    """A NOT NULL timestamp column's value, timezone-aware."""
    moment: dt.datetime | None = aware(value)
    assert moment is not None  # noqa: S101 - the column is NOT NULL
    return moment


def _when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def hash_token(token: str) -> str:
    """SHA-256 (hex) of a token or session id: what the store keeps instead of the secret."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_role(role: str) -> Role:
    """`role` as a Role, or a DeclarationError naming the allowed ones."""
    for known in ROLES:
        if role == known:
            return known
    msg = f"unknown role '{role}': use one of {', '.join(ROLES)}"
    raise DeclarationError(msg, field="role", value=role)


def check_days(days: int) -> int:
    """`days` as a token lifetime, or a DeclarationError naming the allowed range."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        msg = f"a token lives 1 to {MAX_DAYS} days, got {days!r}"
        raise DeclarationError(msg, field="days", value=days)
    return days


@dataclass(frozen=True)
class IssuedToken:
    """A token just issued: its secret (shown once, never stored) and what the store keeps."""

    secret: str
    info: TokenInfo


def issue_token(conn: sa.Connection, department: str, role: str, *,
                days: int = DEFAULT_DAYS) -> IssuedToken:
    """Issue a token for `department` (a catalog department code) and `role`, valid for `days`
    days. The secret is returned once and never stored; lose it and issue a new one."""
    checked = check_role(role)
    lifetime = check_days(days)
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
    now = _now()
    info = TokenInfo(id=uuid.uuid4().hex[:12], department=department, role=checked,
                     created_at=now, last_used_at=None, revoked=False,
                     expires_at=now + dt.timedelta(days=lifetime))
    conn.execute(
        sa.insert(tokens).values(
            id=info.id,
            department=info.department,
            role=info.role,
            token_hash=hash_token(secret),
            created_at=info.created_at,
            last_used_at=None,
            revoked=False,
            expires_at=info.expires_at,
        )
    )
    return IssuedToken(secret=secret, info=info)


def create_token(conn: sa.Connection, department: str, role: str, *,
                 days: int = DEFAULT_DAYS) -> str:
    """`issue_token`'s secret alone."""
    return issue_token(conn, department, role, days=days).secret


def _valid(row: sa.RowMapping | None, now: dt.datetime) -> sa.RowMapping:
    """The token row if it may still be used; InvalidToken saying why not otherwise."""
    if row is None:
        msg = "unknown token"
        raise InvalidToken(msg)
    if row["revoked"]:
        msg = "the token was revoked"
        raise InvalidToken(msg)
    expires = _utc(row["expires_at"])
    if expires <= now:
        msg = f"the token expired on {_when(expires)}"
        raise InvalidToken(msg)
    return row


def _use(conn: sa.Connection, row: sa.RowMapping, now: dt.datetime,
         on_recorded: Callable[[Principal], None] | None) -> Principal:
    """The row's principal; records the use (throttled, see LAST_USED_RESOLUTION)."""
    principal = Principal(department=row["department"], role=check_role(row["role"]),
                          token_id=row["id"])
    last_used = aware(row["last_used_at"])
    if last_used is None or now - last_used >= LAST_USED_RESOLUTION:
        conn.execute(sa.update(tokens).where(tokens.c.id == row["id"]).values(last_used_at=now))
        if on_recorded is not None:
            on_recorded(principal)
    return principal


def _token_row(conn: sa.Connection, token: str, now: dt.datetime) -> sa.RowMapping:
    if not token.startswith(TOKEN_PREFIX):
        msg = "not a govex token"
        raise InvalidToken(msg)
    row = conn.execute(
        sa.select(tokens).where(tokens.c.token_hash == hash_token(token))
    ).mappings().first()
    return _valid(row, now)


def authenticate(
    conn: sa.Connection,
    token: str,
    *,
    on_recorded: Callable[[Principal], None] | None = None,
) -> Principal:
    """The principal of a valid token; InvalidToken (saying: unknown, revoked or expired)
    otherwise. Records when it was last used (at most once a minute, see
    LAST_USED_RESOLUTION); the caller commits. `on_recorded` is called, on the same
    connection's transaction, when this use was recorded: the web app audits token use with
    the same throttle."""
    now = _now()
    return _use(conn, _token_row(conn, token, now), now, on_recorded)


def start_session(
    conn: sa.Connection,
    token: str,
    *,
    on_recorded: Callable[[Principal], None] | None = None,
    lifetime: dt.timedelta = SESSION_LIFETIME,
) -> Session:
    """Sign in with `token`: a new session of at most `lifetime`, never past the token's
    expiry. InvalidToken as `authenticate`. Sessions that have expired (anyone's) are
    deleted on the way: signing in is rare enough to carry the housekeeping."""
    now = _now()
    row = _token_row(conn, token, now)
    principal = _use(conn, row, now, on_recorded)
    session_id = secrets.token_urlsafe(32)
    expires = min(now + lifetime, _utc(row["expires_at"]))
    conn.execute(sa.delete(sessions).where(sessions.c.expires_at <= now))
    conn.execute(sa.insert(sessions).values(
        session_hash=hash_token(session_id), token_id=row["id"], created_at=now,
        expires_at=expires,
    ))
    return Session(id=session_id, principal=principal, expires_at=expires)


def session_principal(
    conn: sa.Connection,
    session_id: str,
    *,
    on_recorded: Callable[[Principal], None] | None = None,
) -> Principal:
    """The principal of a live session (its token still valid); InvalidToken otherwise.
    Records the token's use like `authenticate`."""
    now = _now()
    found = conn.execute(
        sa.select(sessions.c.expires_at.label("session_expires_at"), tokens)
        .join(tokens, tokens.c.id == sessions.c.token_id)
        .where(sessions.c.session_hash == hash_token(session_id))
    ).mappings().first()
    if found is None:
        msg = "the sign-in session has ended"
        raise InvalidToken(msg)
    if _utc(found["session_expires_at"]) <= now:
        msg = f"the sign-in session expired on {_when(_utc(found['session_expires_at']))}"
        raise InvalidToken(msg)
    return _use(conn, _valid(found, now), now, on_recorded)


def end_session(conn: sa.Connection, session_id: str) -> None:
    """Sign out: delete the session (an unknown one is already gone)."""
    conn.execute(sa.delete(sessions).where(sessions.c.session_hash == hash_token(session_id)))


def revoke_token(conn: sa.Connection, token_id: str) -> None:
    """Revoke a token by its id (as `list_tokens` shows it) and end its sign-in sessions;
    unknown ids are an error."""
    result = conn.execute(sa.update(tokens).where(tokens.c.id == token_id).values(revoked=True))
    if result.rowcount == 0:
        msg = f"unknown token id '{token_id}'"
        raise DeclarationError(msg, field="id", value=token_id)
    conn.execute(sa.delete(sessions).where(sessions.c.token_id == token_id))


def list_tokens(conn: sa.Connection) -> list[TokenInfo]:
    """Every token ever issued (never its secret), oldest first."""
    rows = conn.execute(sa.select(tokens).order_by(tokens.c.created_at, tokens.c.id)).mappings()
    return [
        TokenInfo(r["id"], r["department"], check_role(r["role"]), _utc(r["created_at"]),
                  aware(r["last_used_at"]), bool(r["revoked"]), _utc(r["expires_at"]))
        for r in rows
    ]


def count_lookup(
    engine: sa.Engine, caller: str, *, now: dt.datetime | None = None
) -> tuple[int, int]:
    """Count one lookup by `caller` (a token id) in the current minute; returns (the count so
    far in this minute, seconds until the next minute). One upsert, atomic on both stores (INSERT
    … ON CONFLICT DO UPDATE … RETURNING), so concurrent processes never lose a count; the
    caller's earlier minutes are dropped in the same transaction."""
    at = now or _now()
    seconds = int(at.timestamp())
    window, into = divmod(seconds, 60)
    c = lookup_counts.c
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        upsert: Any = pg_insert(lookup_counts)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        upsert = sqlite_insert(lookup_counts)
    statement = upsert.values(token_id=caller, minute=window, count=1).on_conflict_do_update(
        index_elements=[c.token_id, c.minute], set_={"count": c.count + 1}
    ).returning(c.count)
    with engine.begin() as conn:
        count = int(conn.execute(statement).scalar_one())
        if count == 1:  # first of this minute: forget the caller's earlier minutes
            conn.execute(sa.delete(lookup_counts).where(
                c.token_id == caller, c.minute < window))
    return count, 60 - into
