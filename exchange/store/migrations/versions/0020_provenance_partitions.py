"""records: provenance partitioned by month (PostgreSQL), and what retention keeps

Revision ID: 0020_provenance_partitions
Revises: 0019_dispute_flags
Create Date: 2026-12-04

Every store gets `lineage_provenance_latest` (the last delivery of each record to each
subscription from the months retention dropped), `lineage_provenance_partitions` and
`lineage_provenance_months` (the partitions and the index of which months hold a record; both
stay empty on SQLite, whose provenance stays one table).

On PostgreSQL `lineage_provenance` becomes a table partitioned by month of `delivered_at`
(`records.partitions`). No row is copied: the existing table, renamed
`lineage_provenance_legacy`, is attached as the partition of everything up to the end of the
month of its newest delivery, its rows and ids as they were; the months after it get a
partition each, this month's and next month's created here. Its cost on a big table, inside
the upgrade's one transaction (deliveries and traces wait for it): a scan for the newest
delivery, ATTACH's scan checking the partition bound, and the build of the new primary key
index (id, delivered_at); no rewrite and no second copy on disk. Ids keep coming from the same
sequence.

Downgrade turns the partitions back into one plain table (a copy of every row) and puts the
kept last deliveries back into it as ordinary rows.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0020_provenance_partitions"
down_revision = "0019_dispute_flags"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
AHEAD = 1  # months created beyond the current one (as records.partitions.AHEAD)
_COLUMNS = (
    "id bigint NOT NULL DEFAULT nextval('lineage_provenance_id_seq'), "
    "resource varchar(64) NOT NULL, record_key varchar(500) NOT NULL, "
    "subscription varchar(64) NOT NULL, run_id varchar(36) NOT NULL, "
    "value_hash varchar(16) NOT NULL, delivered_at timestamptz NOT NULL"
)
_NAMES = "id, resource, record_key, subscription, run_id, value_hash, delivered_at"


def _month_start(at: dt.datetime) -> dt.datetime:
    at = at.astimezone(dt.UTC)
    return dt.datetime(at.year, at.month, 1, tzinfo=dt.UTC)


def _next_month(start: dt.datetime) -> dt.datetime:
    year, month = divmod(start.year * 12 + start.month, 12)
    return dt.datetime(year, month + 1, 1, tzinfo=dt.UTC)


def upgrade() -> None:
    op.create_table(
        "lineage_provenance_latest",
        sa.Column("resource", sa.String(64), primary_key=True),
        sa.Column("record_key", sa.String(500), primary_key=True),
        sa.Column("subscription", sa.String(64), primary_key=True),
        sa.Column("id", sa.BigInteger, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("value_hash", sa.String(16), nullable=False),
        sa.Column("delivered_at", TS, nullable=False),
    )
    op.create_index("ix_lineage_provenance_latest_subscription", "lineage_provenance_latest",
                    ["resource", "subscription"])
    op.create_table(
        "lineage_provenance_partitions",
        sa.Column("name", sa.String(63), primary_key=True),
        sa.Column("starts", TS, nullable=True),
        sa.Column("ends", TS, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("sealed_at", TS, nullable=True),
    )
    op.create_table(
        "lineage_provenance_months",
        sa.Column("resource", sa.String(64), primary_key=True),
        sa.Column("record_key", sa.String(500), primary_key=True),
        sa.Column("month", sa.Date, primary_key=True),
    )
    op.create_index("ix_lineage_provenance_months_month", "lineage_provenance_months",
                    ["month"], postgresql_using="brin")
    if op.get_bind().dialect.name == "postgresql":
        _partition()


def _register(name: str, starts: dt.datetime | None, ends: dt.datetime) -> None:
    op.get_bind().execute(
        sa.text("INSERT INTO lineage_provenance_partitions (name, starts, ends, created_at) "
                "VALUES (:name, :starts, :ends, :now)"),
        {"name": name, "starts": starts, "ends": ends, "now": dt.datetime.now(dt.UTC)},
    )


def _partition() -> None:
    run = op.get_bind().exec_driver_sql
    run("LOCK TABLE lineage_provenance IN ACCESS EXCLUSIVE MODE")
    newest = run("SELECT max(delivered_at) FROM lineage_provenance").scalar()
    primary = run(
        "SELECT conname FROM pg_constraint WHERE contype = 'p' "
        "AND conrelid = 'lineage_provenance'::regclass"
    ).scalar()
    run("ALTER TABLE lineage_provenance RENAME TO lineage_provenance_legacy")
    run("ALTER INDEX ix_lineage_provenance_record RENAME TO lineage_provenance_legacy_record")
    if primary is not None:  # the parent's key (id, delivered_at) replaces it
        run(f'ALTER TABLE lineage_provenance_legacy DROP CONSTRAINT "{primary}"')
    run(
        f"CREATE TABLE lineage_provenance ({_COLUMNS}, "
        "CONSTRAINT lineage_provenance_pkey PRIMARY KEY (id, delivered_at)) "
        "PARTITION BY RANGE (delivered_at)"
    )
    run("ALTER SEQUENCE lineage_provenance_id_seq OWNED BY lineage_provenance.id")
    run("CREATE INDEX ix_lineage_provenance_record ON lineage_provenance (resource, record_key)")
    now = dt.datetime.now(dt.UTC)
    first = _month_start(now)
    if newest is None:
        run("DROP TABLE lineage_provenance_legacy")
    else:
        ends = _next_month(_month_start(newest))
        # Checks every row against the bound (a scan) and builds the primary key on it; the
        # record index is the one it has, now part of the parent's.
        run(
            "ALTER TABLE lineage_provenance ATTACH PARTITION lineage_provenance_legacy "
            f"FOR VALUES FROM (MINVALUE) TO ('{ends.isoformat()}')"
        )
        _register("lineage_provenance_legacy", None, ends)
        first = max(first, ends)
    last = _month_start(now)
    for _ in range(AHEAD):
        last = _next_month(last)
    start = first
    while start <= last:
        name, ends = f"lineage_provenance_p{start:%Y%m}", _next_month(start)
        run(f"CREATE TABLE {name} (LIKE lineage_provenance INCLUDING DEFAULTS)")
        run(
            f"ALTER TABLE lineage_provenance ATTACH PARTITION {name} "
            f"FOR VALUES FROM ('{start.isoformat()}') TO ('{ends.isoformat()}')"
        )
        _register(name, start, ends)
        start = ends


def downgrade() -> None:
    bind = op.get_bind()
    run = bind.exec_driver_sql
    if bind.dialect.name == "postgresql":
        run("LOCK TABLE lineage_provenance IN ACCESS EXCLUSIVE MODE")
        run(f"CREATE TABLE lineage_provenance_plain ({_COLUMNS}, "
            "CONSTRAINT lineage_provenance_plain_pkey PRIMARY KEY (id))")
        run(f"INSERT INTO lineage_provenance_plain ({_NAMES}) "
            f"SELECT {_NAMES} FROM lineage_provenance")
        run("ALTER SEQUENCE lineage_provenance_id_seq OWNED BY lineage_provenance_plain.id")
        run("DROP TABLE lineage_provenance")  # and every partition
        run("ALTER TABLE lineage_provenance_plain RENAME TO lineage_provenance")
        run("ALTER TABLE lineage_provenance RENAME CONSTRAINT lineage_provenance_plain_pkey "
            "TO lineage_provenance_pkey")
        run("CREATE INDEX ix_lineage_provenance_record "
            "ON lineage_provenance (resource, record_key)")
    # What retention kept goes back as ordinary rows (their ids were dropped with their months).
    run(f"INSERT INTO lineage_provenance ({_NAMES}) SELECT {_NAMES} FROM lineage_provenance_latest")
    op.drop_index("ix_lineage_provenance_months_month", "lineage_provenance_months")
    op.drop_table("lineage_provenance_months")
    op.drop_table("lineage_provenance_partitions")
    op.drop_index("ix_lineage_provenance_latest_subscription", "lineage_provenance_latest")
    op.drop_table("lineage_provenance_latest")
