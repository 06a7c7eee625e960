"""exchange: runs, deliveries, watermarks, secrets

Revision ID: 0002_exchange_runs
Revises: 0001_catalog
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_exchange_runs"
down_revision = "0001_catalog"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "exchange_runs",
        sa.Column("run_id", sa.String(36), primary_key=True),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("subscription", sa.String(64), nullable=True),
        sa.Column("subscriptions", sa.JSON, nullable=False),
        sa.Column("full", sa.Boolean, nullable=False),
        sa.Column("parent", sa.JSON, nullable=True),
        sa.Column("cursor_start", sa.JSON, nullable=True),
        sa.Column("cursor_end", sa.JSON, nullable=True),
        sa.Column("read", sa.Integer, nullable=False),
        sa.Column("passed", sa.Integer, nullable=False),
        sa.Column("quarantined", sa.Integer, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
    )
    op.create_index("ix_exchange_runs_resource", "exchange_runs", ["resource"])
    op.create_table(
        "exchange_deliveries",
        sa.Column(
            "run_id", sa.String(36), sa.ForeignKey("exchange_runs.run_id"), primary_key=True
        ),
        sa.Column("subscription", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("delivered", sa.Integer, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("ended_at", TS, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
    )
    op.create_table(
        "exchange_watermarks",
        sa.Column("resource", sa.String(64), primary_key=True),
        sa.Column("cursor", sa.JSON, nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "exchange_secrets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.String(200), nullable=False),
        sa.Column("created_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in ("exchange_secrets", "exchange_watermarks", "exchange_deliveries",
                  "exchange_runs"):
        op.drop_table(table)
