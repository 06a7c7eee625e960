"""quality: per run check results, quarantine

Revision ID: 0003_quality
Revises: 0002_exchange_runs
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_quality"
down_revision = "0002_exchange_runs"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "quality_check_results",
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("check", sa.String(100), primary_key=True),
        sa.Column("column", sa.String(200), primary_key=True),
        sa.Column("evaluated", sa.BigInteger, nullable=False),
        sa.Column("failed", sa.BigInteger, nullable=False),
        sa.Column("failure_rate", sa.Float, nullable=False),
        sa.Column("recorded_at", TS, nullable=False),
    )
    op.create_index(
        "ix_quality_check_results_resource", "quality_check_results", ["resource"]
    )
    op.create_table(
        "quality_quarantine",
        sa.Column("resource", sa.String(64), primary_key=True),
        sa.Column("record_key", sa.String(500), primary_key=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("failed_checks", sa.JSON, nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
        sa.Column("first_seen", TS, nullable=False),
        sa.Column("last_seen", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("quality_quarantine")
    op.drop_index("ix_quality_check_results_resource", table_name="quality_check_results")
    op.drop_table("quality_check_results")
