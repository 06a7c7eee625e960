"""The disputed-record flag (异议标注): which consumer copies of a disputed record must show it.

While a dispute on a record is open or acknowledged, every subscription holding the record
shows it in its target (`_govex_disputed = true` on the row of an upsert or snapshot target; a
row of `_govex_disputes` beside an append target); once the dispute is resolved or rejected,
the flag goes. Targets are other departments' databases and may be down when a dispute moves,
so the store keeps one row per (dispute, subscription): what the target should show
(`flagged`) and whether it does (`applied`). The dispute's step writes these rows in its own
transaction, marked unapplied; `exchange.run.dispute_flags` then writes the targets and marks
each row applied, at once when it can, else at the next run of the resource. A step that moves
the dispute again meanwhile bumps `version`, so an attempt that read the older wish cannot
mark the newer one applied.

"Holding the record" is what provenance says: a bulk subscription, still in the catalog, whose
latest delivery of the record is not a delete. A verify subscription has no copy to flag.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

import catalog
from records.provenance import DELETED, latest_hashes

__all__ = [
    "FlagRow",
    "FlagState",
    "applied",
    "current",
    "failed",
    "flags",
    "flags_of",
    "holders",
    "metadata",
    "missing",
    "pending",
    "received_by",
    "want",
]

FlagState = Literal["flagged", "pending", "cleared"]

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)

flags = sa.Table(
    "lineage_dispute_flags",
    metadata,
    sa.Column("dispute", sa.String(20), primary_key=True),
    sa.Column("subscription", sa.String(64), primary_key=True),
    sa.Column("resource", sa.String(64), nullable=False),
    sa.Column("record_key", sa.String(500), nullable=False),
    sa.Column("consumer", sa.String(64), nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False),  # what the target should show
    sa.Column("applied", sa.Boolean, nullable=False),  # whether it does
    sa.Column("version", sa.Integer, nullable=False),  # bumped whenever `flagged` is set
    sa.Column("attempts", sa.Integer, nullable=False),  # failed target writes since
    sa.Column("error", sa.Text, nullable=True),  # why the last target write failed
    sa.Column("updated_at", TS, nullable=False),
    sa.Column("applied_at", TS, nullable=True),
    sa.Index("ix_lineage_dispute_flags_pending", "resource", "applied"),
    sa.Index("ix_lineage_dispute_flags_consumer", "consumer"),
)


@dataclass(frozen=True)
class FlagRow:
    """One (dispute, subscription) the target must show as `flagged`, as last read."""

    dispute: str
    subscription: str
    resource: str
    record_key: str
    consumer: str
    flagged: bool
    version: int
    attempts: int


def _row(r: sa.RowMapping) -> FlagRow:
    return FlagRow(r["dispute"], r["subscription"], r["resource"], r["record_key"],
                   r["consumer"], bool(r["flagged"]), int(r["version"]), int(r["attempts"]))


def holders(
    conn: sa.Connection, resource: str, key: str,
    subscriptions: Sequence[catalog.Subscription] | None = None,
) -> list[catalog.Subscription]:
    """The bulk subscriptions (still in the catalog; `subscriptions`, the resource's, when the
    caller has them) whose latest delivery of record `key` is not a delete: the copies a flag
    must reach."""
    latest = latest_hashes(conn, resource, key)
    subs = catalog.load_subscriptions(conn, resource) if subscriptions is None else subscriptions
    return [s for s in subs
            if s.target is not None and s.id in latest and latest[s.id]["hash"] != DELETED]


def want(
    conn: sa.Connection, dispute: str, resource: str, key: str, flagged: bool,
    subscriptions: Iterable[catalog.Subscription], now: dt.datetime,
) -> None:
    """The dispute's record should show `flagged` in every one of `subscriptions` and in every
    subscription that already has a row for it (a copy flagged at opening is cleared even if
    the record left it since: clearing a row that is gone changes nothing). In the caller's
    transaction, every row unapplied, its version bumped."""
    f = flags
    existing = set(conn.execute(
        sa.select(f.c.subscription).where(f.c.dispute == dispute)).scalars())
    conn.execute(
        sa.update(f).where(f.c.dispute == dispute).values(
            flagged=flagged, applied=False, version=f.c.version + 1, attempts=0, error=None,
            updated_at=now, applied_at=None)
    )
    new = [s for s in {s.id: s for s in subscriptions}.values() if s.id not in existing]
    _insert(conn, dispute, resource, key, flagged, new, now)


def missing(
    conn: sa.Connection, dispute: str, resource: str, key: str, now: dt.datetime,
    subscriptions: Sequence[catalog.Subscription] | None = None,
) -> int:
    """Rows, wanting the flag, for the holders of an active dispute's record that have none
    yet (a subscription that received the record after the dispute opened, or a dispute
    opened before govex kept flags); returns how many were added."""
    have = set(conn.execute(
        sa.select(flags.c.subscription).where(flags.c.dispute == dispute)).scalars())
    new = [s for s in holders(conn, resource, key, subscriptions) if s.id not in have]
    _insert(conn, dispute, resource, key, True, new, now)
    return len(new)


def _insert(
    conn: sa.Connection, dispute: str, resource: str, key: str, flagged: bool,
    subscriptions: Sequence[catalog.Subscription], now: dt.datetime,
) -> None:
    """A first row, not yet applied, for each of `subscriptions`."""
    if subscriptions:
        conn.execute(sa.insert(flags), [
            {"dispute": dispute, "subscription": s.id, "resource": resource,
             "record_key": key, "consumer": s.consumer, "flagged": flagged, "applied": False,
             "version": 1, "attempts": 0, "error": None, "updated_at": now, "applied_at": None}
            for s in subscriptions
        ])


def pending(
    conn: sa.Connection, resource: str, subscription: str | None = None
) -> list[FlagRow]:
    """The unapplied rows of `resource` (of one subscription, when given), oldest first."""
    query = sa.select(flags).where(flags.c.resource == resource, flags.c.applied.is_(False))
    if subscription is not None:
        query = query.where(flags.c.subscription == subscription)
    return [_row(r) for r in conn.execute(
        query.order_by(flags.c.updated_at, flags.c.dispute, flags.c.subscription)).mappings()]


def current(conn: sa.Connection, subscription: str, disputes: Iterable[str]) -> list[FlagRow]:
    """The rows of `subscription` for `disputes` as they are now, applied or not (a writer
    re-reads them after writing a target, to see whether a dispute moved meanwhile)."""
    wanted = sorted(set(disputes))
    if not wanted:
        return []
    return [_row(r) for r in conn.execute(
        sa.select(flags).where(flags.c.subscription == subscription,
                               flags.c.dispute.in_(wanted))
        .order_by(flags.c.dispute)).mappings()]


def applied(conn: sa.Connection, row: FlagRow, now: dt.datetime) -> bool:
    """Mark `row` applied, unless the dispute moved since it was read (then it stays pending
    for the newer wish); returns whether it was marked."""
    f = flags
    return bool(conn.execute(
        sa.update(f).where(f.c.dispute == row.dispute, f.c.subscription == row.subscription,
                           f.c.version == row.version)
        .values(applied=True, attempts=0, error=None, applied_at=now)
    ).rowcount)


def failed(conn: sa.Connection, row: FlagRow, error: str, now: dt.datetime) -> None:
    """The target could not be written: the row stays pending, with the reason."""
    f = flags
    conn.execute(
        sa.update(f).where(f.c.dispute == row.dispute, f.c.subscription == row.subscription,
                           f.c.version == row.version)
        .values(attempts=f.c.attempts + 1, error=error[:2000], updated_at=now)
    )


def _state(flagged: bool, is_applied: bool) -> FlagState:
    if not is_applied:
        return "pending"
    return "flagged" if flagged else "cleared"


def flags_of(
    conn: sa.Connection, disputes: Sequence[str], consumer: str | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Per dispute, the flag of each subscription (of `consumer`, when given), by id:
    [{subscription, consumer, state: flagged | pending | cleared, error}]."""
    out: dict[str, list[dict[str, Any]]] = {d: [] for d in disputes}
    if not disputes:
        return out
    query = sa.select(flags).where(flags.c.dispute.in_(list(disputes)))
    if consumer is not None:
        query = query.where(flags.c.consumer == consumer)
    for r in conn.execute(query.order_by(flags.c.dispute, flags.c.subscription)).mappings():
        out[r["dispute"]].append({
            "subscription": r["subscription"], "consumer": r["consumer"],
            "state": _state(bool(r["flagged"]), bool(r["applied"])),
            "error": r["error"],
        })
    return out


def received_by(conn: sa.Connection, consumer: str) -> set[str]:
    """The disputes on records `consumer` received: those with a flag row of one of its
    subscriptions."""
    return set(conn.execute(
        sa.select(flags.c.dispute).where(flags.c.consumer == consumer).distinct()).scalars())
