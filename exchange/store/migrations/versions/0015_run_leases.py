"""exchange: run leases, one per resource being run

Revision ID: 0015_run_leases
Revises: 0014_sharing_requests
Create Date: 2026-12-03

Two runs of one resource must not both deliver. A run's Airflow tasks may work on different
machines that share nothing but the store, so the run holds its resource with a row here
(`exchange.run.leases`): which run, which process renewed it last, until when. Only a run whose
lease expired is marked abandoned by the next one.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_run_leases"
down_revision = "0014_sharing_requests"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "exchange_run_leases",
        sa.Column("resource", sa.String(64), primary_key=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("taken_at", TS, nullable=False),
        sa.Column("renewed_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("exchange_run_leases")
