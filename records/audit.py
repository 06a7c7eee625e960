"""The audit log: append-only and hash-chained, so any edit, deletion or reordering shows.

Each entry carries `hash = SHA-256(canonical JSON of [seq, at, actor, kind, subject, detail,
prev_hash])`, where `at` is the UTC ISO-8601 time with microseconds (`…T08:00:00.123456+00:00`)
and canonical JSON is `json.dumps(…, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`
encoded as UTF-8; `prev_hash` is the previous entry's hash, 64 zeros for the first. Anyone can
recompute the chain from the table alone (`entry_hash`).

Appending is serialised through one row, `audit_head` (the last seq and hash). Locking the last
`audit_log` entry with `SELECT … FOR UPDATE` would not be enough: on PostgreSQL a second
appender waiting on that lock gets the *same* row back once the first commits (the row was not
updated, only a new one inserted) and both would claim the same seq; and an empty log has no
row to lock. An `UPDATE` of the head row, by contrast, takes the write lock first on every
database (a row lock on PostgreSQL/MariaDB, the database write lock on SQLite), and the waiter
then reads the committed new head. The head also lets `verify` notice entries deleted from the
end of the log, which a chain alone cannot show. Publishing `head()` somewhere else (a
newspaper, a consumer's records) anchors the log against someone who rewrites it entirely.

An append runs in the caller's transaction and holds the head lock until that transaction ends:
append in short transactions, not inside a long exchange run, or every other appender waits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

__all__ = [
    "GENESIS_HASH",
    "KINDS",
    "AuditEntry",
    "AuditKind",
    "BadEntry",
    "VerifyResult",
    "append",
    "audit_log",
    "entry_hash",
    "head",
    "head_table",
    "list_entries",
    "metadata",
    "verify",
]

#: What happened. `token_use` is throttled to once a minute per token (like last_used_at).
AuditKind = Literal[
    "apply", "run", "delivery", "token_use", "token_create", "token_revoke", "dispute",
    "correction", "ingest", "request", "revoke", "purge", "retention",
]
KINDS: tuple[AuditKind, ...] = get_args(AuditKind)

GENESIS_HASH = "0" * 64
_HEAD_ID = 1
VERIFY_CHUNK = 1000  # entries read per query by `verify`: memory stays flat on any log size

metadata = sa.MetaData()

# SQLite only treats INTEGER PRIMARY KEY as the rowid; elsewhere 64 bits. seq is assigned by
# `append` (head seq + 1), never by the database, so it has no gaps unless rows are deleted.
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# MariaDB/MySQL DATETIME drops the fraction of a second unless asked (fsp=6); the hash covers
# microseconds, so the column must keep them on every database.
AT = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
    sa.Column("at", AT, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),  # "department/role" or "cli"
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(500), nullable=False),  # resource code, run id, dispute id…
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_audit_log_kind_subject", "kind", "subject"),
)

head_table = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),  # always 1
    sa.Column("seq", SEQ, nullable=False),  # seq of the last entry, 0 for an empty log
    sa.Column("hash", sa.String(64), nullable=False),  # its hash, GENESIS_HASH when empty
)

# `metadata.create_all` (tests, tools) gets the head row too; the migration inserts its own.
@sa.event.listens_for(head_table, "after_create")
def _insert_head(_target: sa.Table, connection: sa.Connection, **_kw: Any) -> None:
    connection.execute(sa.insert(head_table).values(id=_HEAD_ID, seq=0, hash=GENESIS_HASH))


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the audit log, as written."""

    seq: int
    at: dt.datetime
    actor: str
    kind: str
    subject: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "at": _iso(self.at), "actor": self.actor, "kind": self.kind,
                "subject": self.subject, "detail": self.detail, "prev_hash": self.prev_hash,
                "hash": self.hash}


@dataclass(frozen=True)
class BadEntry:
    """Where the chain first breaks. `kind` and `subject` are None when the entry is gone
    (entries deleted from the end of the log)."""

    seq: int
    kind: str | None
    subject: str | None
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"seq": self.seq, "kind": self.kind, "subject": self.subject,
                "reason": self.reason}


@dataclass(frozen=True)
class VerifyResult:
    """`checked` counts the entries found intact before `first_bad` (all of them when ok)."""

    ok: bool
    checked: int
    first_bad: BadEntry | None = None

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": self.checked,
                "first_bad": self.first_bad.to_json() if self.first_bad else None}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite and MariaDB hand back naive datetimes; govex stores UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _iso(value: dt.datetime) -> str:
    return _utc(value).isoformat(timespec="microseconds")


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def entry_hash(seq: int, at: dt.datetime, actor: str, kind: str, subject: str,
               detail: Mapping[str, Any], prev_hash: str) -> str:
    """The SHA-256 (hex) an entry with these fields must carry; see the module docstring."""
    payload = [seq, _iso(at), actor, kind, subject, detail, prev_hash]
    return hashlib.sha256(_canonical(payload).encode("utf-8")).hexdigest()


def _json_detail(detail: Mapping[str, Any]) -> dict[str, Any]:
    """`detail` as the JSON the database will hand back (values JSON lacks, such as datetimes
    or UUIDs, become their `str`), so the hash written is the hash recomputed later."""
    try:
        text = json.dumps(dict(detail), ensure_ascii=False, allow_nan=False, default=str)
    except (TypeError, ValueError) as error:  # NaN, infinity, a key that is not a scalar
        msg = f"audit detail must be JSON-serialisable ({error})"
        raise ValueError(msg) from error
    value: dict[str, Any] = json.loads(text)
    return value


def _checked_text(name: str, value: str, limit: int) -> str:
    if not value or len(value) > limit:
        msg = f"audit {name} must be 1 to {limit} characters, got {value!r:.80}"
        raise ValueError(msg)
    return value


def _lock_head(conn: sa.Connection) -> tuple[int, str]:
    """Advance the head by one under its write lock; return (new seq, previous hash)."""
    bump = sa.update(head_table).where(head_table.c.id == _HEAD_ID).values(
        seq=head_table.c.seq + 1
    )
    if conn.execute(bump).rowcount == 0:
        _create_head(conn)
        conn.execute(bump)
    # FOR UPDATE makes this a locking (current) read on MariaDB's REPEATABLE READ too; we
    # already hold the row's lock, so it never waits.
    row = conn.execute(
        sa.select(head_table.c.seq, head_table.c.hash)
        .where(head_table.c.id == _HEAD_ID)
        .with_for_update()
    ).one()
    return int(row.seq), str(row.hash)


def _create_head(conn: sa.Connection) -> None:
    """The head row is missing (tables made without the migration or create_all's hook):
    recreate it from the last entry. Two first appenders may race here; the loser's insert
    fails on the primary key inside its savepoint and it goes on with the winner's row."""
    last = conn.execute(
        sa.select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
    ).first()
    seq, hash_ = (int(last.seq), str(last.hash)) if last is not None else (0, GENESIS_HASH)
    try:
        with conn.begin_nested():
            conn.execute(sa.insert(head_table).values(id=_HEAD_ID, seq=seq, hash=hash_))
    except sa.exc.IntegrityError:
        pass


def append(conn: sa.Connection, *, kind: AuditKind, subject: str,
           detail: Mapping[str, Any], actor: str = "cli") -> AuditEntry:
    """Append one entry chained to the last, inside the caller's transaction (it commits or
    rolls back with the caller's work). Concurrent appenders queue on the head row, so the
    chain never forks. `detail` must be JSON-serialisable (datetimes and the like become
    strings); a bad kind, empty or overlong actor/subject raise ValueError."""
    if kind not in KINDS:
        msg = f"unknown audit kind {kind!r}: use one of {', '.join(KINDS)}"
        raise ValueError(msg)
    _checked_text("actor", actor, 200)
    _checked_text("subject", subject, 500)
    body = _json_detail(detail)
    # Whole microseconds in UTC: exactly what every store gives back.
    at = _now()
    seq, prev_hash = _lock_head(conn)
    digest = entry_hash(seq, at, actor, kind, subject, body, prev_hash)
    conn.execute(sa.insert(audit_log).values(
        seq=seq, at=at, actor=actor, kind=kind, subject=subject, detail=body,
        prev_hash=prev_hash, hash=digest,
    ))
    conn.execute(sa.update(head_table).where(head_table.c.id == _HEAD_ID).values(hash=digest))
    return AuditEntry(seq, at, actor, kind, subject, body, prev_hash, digest)


def _entry(row: sa.Row[Any]) -> AuditEntry:
    detail = row.detail
    if isinstance(detail, str):  # a driver that hands JSON back as text
        detail = json.loads(detail)
    return AuditEntry(int(row.seq), _utc(row.at), row.actor, row.kind, row.subject, detail,
                      row.prev_hash, row.hash)


def _chunks(conn: sa.Connection, chunk_size: int) -> Iterator[list[AuditEntry]]:
    """All entries in seq order, `chunk_size` at a time (keyset pagination on the key)."""
    after = None
    while True:
        query = sa.select(audit_log).order_by(audit_log.c.seq).limit(chunk_size)
        if after is not None:
            query = query.where(audit_log.c.seq > after)
        rows = [_entry(r) for r in conn.execute(query)]
        if not rows:
            return
        yield rows
        after = rows[-1].seq


def head(conn: sa.Connection) -> tuple[int, str]:
    """(seq, hash) of the last entry as the head row records it: publish it to anchor the log."""
    row = conn.execute(
        sa.select(head_table.c.seq, head_table.c.hash).where(head_table.c.id == _HEAD_ID)
    ).first()
    return (int(row.seq), str(row.hash)) if row is not None else (0, GENESIS_HASH)


def _problem(entry: AuditEntry, expected_seq: int, prev_hash: str) -> str | None:
    """Why `entry` cannot be the entry at `expected_seq` following `prev_hash`, or None."""
    if entry.seq != expected_seq:
        missing = (f"seq {expected_seq}" if entry.seq == expected_seq + 1
                   else f"seq {expected_seq}..{entry.seq - 1}")
        return f"{missing} missing before it: entries were deleted"
    try:
        recomputed = entry_hash(entry.seq, entry.at, entry.actor, entry.kind, entry.subject,
                                entry.detail, entry.prev_hash)
    except (TypeError, ValueError):
        recomputed = None  # detail no longer JSON of the kind append writes: edited
    linked = entry.prev_hash == prev_hash
    before = ("the start of the log (64 zeros)" if expected_seq == 1
              else f"the hash of seq {expected_seq - 1}")
    if recomputed != entry.hash and not linked:
        return (f"out of place: neither its hash nor its prev_hash fit seq {entry.seq} "
                "(entries were reordered, renumbered or replaced)")
    if recomputed != entry.hash:
        return "edited: its contents no longer match its hash"
    if not linked:
        return (f"chain broken: its prev_hash is not {before} (that entry was rewritten, "
                "or entries were deleted and renumbered or reordered)")
    return None


def verify(conn: sa.Connection, *, chunk_size: int = VERIFY_CHUNK) -> VerifyResult:
    """Walk the whole log in seq order, `chunk_size` entries per query, and report the first
    entry that is not where the chain says it should be: a gap in seq (deleted), a hash that
    does not match the contents (edited), a prev_hash that does not match the previous entry
    (deleted, rewritten or reordered), or fewer entries than the head row records (deleted
    from the end)."""
    # The head first: entries appended while we walk are past it and are checked by the chain.
    head_seq, head_hash = head(conn)
    expected, prev_hash, checked = 1, GENESIS_HASH, 0
    for chunk in _chunks(conn, chunk_size):
        for entry in chunk:
            reason = _problem(entry, expected, prev_hash)
            if reason is None and entry.seq == head_seq and entry.hash != head_hash:
                reason = ("its hash differs from the one the audit head recorded for it "
                          "(the entry was rewritten)")
            if reason is not None:
                return VerifyResult(False, checked, BadEntry(entry.seq, entry.kind,
                                                             entry.subject, reason))
            checked += 1
            expected += 1
            prev_hash = entry.hash
    if checked < head_seq:
        missing = f"seq {expected}" if expected == head_seq else f"seq {expected}..{head_seq}"
        reason = (f"{missing} missing at the end: the log ends at seq {checked} but its head "
                  f"records seq {head_seq} (entries were deleted)")
        return VerifyResult(False, checked, BadEntry(expected, None, None, reason))
    return VerifyResult(True, checked)


def list_entries(conn: sa.Connection, *, limit: int | None = 50,
                 kind: str | None = None, before: int | None = None) -> list[AuditEntry]:
    """The last `limit` entries (all when None), optionally of one kind and only those with a
    seq below `before` (the next page back: `before` = the first seq of this one), oldest
    first."""
    query = sa.select(audit_log).order_by(audit_log.c.seq.desc())
    if kind is not None:
        query = query.where(audit_log.c.kind == kind)
    if before is not None:
        query = query.where(audit_log.c.seq < before)
    if limit is not None:
        query = query.limit(limit)
    return [_entry(r) for r in conn.execute(query)][::-1]
