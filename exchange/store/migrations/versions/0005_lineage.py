"""lineage: OpenLineage event store, emission failure counter

Revision ID: 0005_lineage
Revises: 0004_tokens
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_lineage"
down_revision = "0004_tokens"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
# SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid); elsewhere use 64 bits.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "lineage_events",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(100), nullable=False),
        sa.Column("parent_run_id", sa.String(100), nullable=True),
        sa.Column("job_namespace", sa.String(500), nullable=False),
        sa.Column("job_name", sa.String(500), nullable=False),
        sa.Column("event_type", sa.String(10), nullable=True),
        sa.Column("event_time", TS, nullable=False),
        sa.Column("producer", sa.String(1000), nullable=True),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("received_at", TS, nullable=False),
    )
    op.create_index("ix_lineage_events_run_id", "lineage_events", ["run_id"])
    op.create_index("ix_lineage_events_parent_run_id", "lineage_events", ["parent_run_id"])
    op.create_index("ix_lineage_events_job", "lineage_events", ["job_namespace", "job_name"])
    op.create_table(
        "lineage_emission_failures",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("failed_at", TS, nullable=False),
        sa.Column("stage", sa.String(20), nullable=False),
        sa.Column("run_id", sa.String(100), nullable=True),
        sa.Column("job_name", sa.String(500), nullable=True),
        sa.Column("event_type", sa.String(10), nullable=True),
        sa.Column("error", sa.Text, nullable=False),
    )
    op.create_index(
        "ix_lineage_emission_failures_run_id", "lineage_emission_failures", ["run_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_lineage_emission_failures_run_id", table_name="lineage_emission_failures")
    op.drop_table("lineage_emission_failures")
    op.drop_index("ix_lineage_events_job", table_name="lineage_events")
    op.drop_index("ix_lineage_events_parent_run_id", table_name="lineage_events")
    op.drop_index("ix_lineage_events_run_id", table_name="lineage_events")
    op.drop_table("lineage_events")
