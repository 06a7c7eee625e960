"""Verification records: one row per record a consumer asked about (可用不可见).

A verify subscription never receives values; what it did is asking. Each asked record leaves a
row here, written in the call's one store transaction with its metering (`records.usage`): the
resource, the record key in the same text form as provenance (`KEY`), the subscription, which
fields were asked, whether the record was found and whether every asked field matched, and
when. Disclosure reads these beside provenance; no value the consumer sent is stored, only the
key it named.

Retention (GOVEX_PROVENANCE_RETENTION, applied by `govex provenance maintain` with
provenance's): `expire` deletes the rows verified before now minus the retention, oldest first,
`BATCH` rows per transaction so that no transaction holds a large delete; the last one writes
one audit entry (kind `retention`, subject `verify_records`) saying how many rows the run
removed and before when. Disclosure of verifications thus covers the retention period only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from records import audit

__all__ = ["BATCH", "Expired", "expire", "metadata", "verify_records"]

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)
# SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid); elsewhere 64 bits.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

verify_records = sa.Table(
    "verify_records",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.String(36), nullable=False),  # one POST /verify call
    sa.Column("resource", sa.String(64), nullable=False),
    sa.Column("record_key", sa.String(500), nullable=False),
    sa.Column("subscription", sa.String(64), nullable=False),
    sa.Column("fields", sa.String(2000), nullable=False),  # asked fields, joined by ','
    sa.Column("found", sa.Boolean, nullable=False),
    sa.Column("matched", sa.Boolean, nullable=False),  # found, and every asked field matched
    sa.Column("verified_at", TS, nullable=False),
    # Disclosure asks "who verified this record": the same access path as provenance.
    sa.Index("ix_verify_records_record", "resource", "record_key"),
    # Retention deletes by time (`expire`); rows arrive in time order, so BRIN will do.
    sa.Index("ix_verify_records_verified_at", "verified_at", postgresql_using="brin"),
)


BATCH = 10_000  # verification records deleted per transaction by `expire`
SUBJECT = "verify_records"  # the audit subject of their retention


@dataclass(frozen=True)
class Expired:
    """What retention removed from `verify_records` (in a dry run: would remove)."""

    before: dt.datetime
    rows: int

    def to_json(self) -> dict[str, Any]:
        return {"table": SUBJECT, "before": self.before.astimezone(dt.UTC).isoformat(),
                "rows": self.rows}


def expire(
    engine: sa.Engine, *, retention: str, before: dt.datetime, dry_run: bool = False,
    actor: str = "cli",
) -> Expired:
    """Delete the verification records verified before `before` (now minus `retention`),
    oldest first, `BATCH` per transaction; the last transaction also appends the run's audit
    entry, whatever it removed (none: the log still says retention reached `before`). A dry
    run counts them and changes nothing."""
    v = verify_records
    old = v.c.verified_at < before
    if dry_run:
        with engine.connect() as conn:
            count = conn.execute(sa.select(sa.func.count()).select_from(v).where(old))
            return Expired(before, int(count.scalar_one()))
    removed, after = 0, 0
    while True:
        with engine.begin() as conn:
            # The BATCH oldest by id (the primary key: a range of it, never a large IN list).
            oldest = sa.select(v.c.id).where(old, v.c.id > after).order_by(v.c.id).limit(BATCH)
            last = conn.execute(sa.select(sa.func.max(oldest.subquery().c.id))).scalar()
            done = 0
            if last is not None:
                done = conn.execute(
                    sa.delete(v).where(old, v.c.id > after, v.c.id <= last)).rowcount
                removed, after = removed + done, int(last)
            if last is None or done < BATCH:
                audit.append(conn, kind="retention", subject=SUBJECT, actor=actor, detail={
                    **Expired(before, removed).to_json(), "retention": retention})
                return Expired(before, removed)
