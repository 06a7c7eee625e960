"""records and exchange.verify: metering, verification records, the verification index

Revision ID: 0018_usable_not_visible
Revises: 0017_notifications
Create Date: 2026-12-03

Usable, not visible: a verify subscription's index (keyed digests, no values) and answer
counts; one row per verified record; usage counted per subscription and day.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018_usable_not_visible"
down_revision = "0017_notifications"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "usage_daily",
        sa.Column("subscription", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("consumer", sa.String(64), nullable=False),
        *(sa.Column(name, sa.BigInteger, nullable=False, server_default="0")
          for name in ("records", "bytes", "calls", "matches", "not_found")),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_usage_daily_resource_day", "usage_daily", ["resource", "day"])
    op.create_index("ix_usage_daily_consumer_day", "usage_daily", ["consumer", "day"])
    op.create_table(
        "verify_records",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("call_id", sa.String(36), nullable=False),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("record_key", sa.String(500), nullable=False),
        sa.Column("subscription", sa.String(64), nullable=False),
        sa.Column("fields", sa.String(2000), nullable=False),
        sa.Column("found", sa.Boolean, nullable=False),
        sa.Column("matched", sa.Boolean, nullable=False),
        sa.Column("verified_at", TS, nullable=False),
    )
    op.create_index("ix_verify_records_record", "verify_records", ["resource", "record_key"])
    op.create_table(
        "verify_index",
        sa.Column("subscription", sa.String(64), primary_key=True),
        sa.Column("key_digest", sa.String(32), primary_key=True),
        sa.Column("digests", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("indexed_at", TS, nullable=False),
    )
    op.create_table(
        "verify_answers",
        sa.Column("subscription", sa.String(64), primary_key=True),
        sa.Column("key_digest", sa.String(32), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("answers", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    for table in ("verify_answers", "verify_index", "verify_records"):
        op.drop_table(table)
    op.drop_index("ix_usage_daily_consumer_day", "usage_daily")
    op.drop_index("ix_usage_daily_resource_day", "usage_daily")
    op.drop_table("usage_daily")
