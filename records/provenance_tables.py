"""The provenance tables: what `records.provenance` writes and reads, and what
`records.partitions` keeps over time.

- `lineage_provenance`: one row per delivered record and subscription (see
  `records.provenance`). On PostgreSQL it is partitioned by `delivered_at`, one partition per
  calendar month (UTC), so that retention drops whole months; the declaration here is the plain
  table SQLite keeps, and migration 0020 turns it into the partitioned one on PostgreSQL (its
  primary key is then `(id, delivered_at)`: a partitioned table's keys include the partition
  key; ids still come from one sequence and stay unique).
- `lineage_provenance_latest`: the last delivery of each record to each subscription from the
  months retention dropped (folded in just before the drop). Disputes, disclosure and leak
  tracing still know what each consumer last received after the history itself is gone.
- `lineage_provenance_partitions` and `lineage_provenance_months` (PostgreSQL; empty on
  SQLite): the partitions, and for each sealed partition which records it holds, by month. A
  trace looks up the months of its record here and reads only those partitions, plus the
  partitions not sealed yet (see `records.partitions`).
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["HASH_LENGTH", "latest", "metadata", "months", "partitions", "provenance"]

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)
# SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid); elsewhere 64 bits.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
HASH_LENGTH = 16  # hex characters of a 64-bit fingerprint

provenance = sa.Table(
    "lineage_provenance",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("resource", sa.String(64), nullable=False),
    sa.Column("record_key", sa.String(500), nullable=False),
    sa.Column("subscription", sa.String(64), nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("value_hash", sa.String(HASH_LENGTH), nullable=False),
    sa.Column("delivered_at", TS, nullable=False),
    # The one query that must stay fast on hundreds of millions of rows: a record's history.
    sa.Index("ix_lineage_provenance_record", "resource", "record_key"),
)

latest = sa.Table(
    "lineage_provenance_latest",
    metadata,
    sa.Column("resource", sa.String(64), primary_key=True),
    sa.Column("record_key", sa.String(500), primary_key=True),
    sa.Column("subscription", sa.String(64), primary_key=True),
    sa.Column("id", sa.BigInteger, nullable=False),  # the folded provenance row's id
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("value_hash", sa.String(HASH_LENGTH), nullable=False),
    sa.Column("delivered_at", TS, nullable=False),
    # Leak tracing and reconciliation read one subscription's rows.
    sa.Index("ix_lineage_provenance_latest_subscription", "resource", "subscription"),
)

partitions = sa.Table(
    "lineage_provenance_partitions",
    metadata,
    sa.Column("name", sa.String(63), primary_key=True),
    # Null: no lower bound (the partition of the rows from before migration 0020).
    sa.Column("starts", TS, nullable=True),
    sa.Column("ends", TS, nullable=False),
    sa.Column("created_at", TS, nullable=False),
    # Set once its records are in `lineage_provenance_months`; null while it may still grow
    # without that index knowing.
    sa.Column("sealed_at", TS, nullable=True),
)

months = sa.Table(
    "lineage_provenance_months",
    metadata,
    sa.Column("resource", sa.String(64), primary_key=True),
    sa.Column("record_key", sa.String(500), primary_key=True),
    # The first day (UTC) of a month the record was delivered in.
    sa.Column("month", sa.Date, primary_key=True),
    # Rows arrive a month at a time, so a block range index finds a dropped month's rows in
    # a few pages.
    sa.Index("ix_lineage_provenance_months_month", "month", postgresql_using="brin"),
)
