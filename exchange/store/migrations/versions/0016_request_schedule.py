"""catalog: the delivery schedule a sharing request asks for

Revision ID: 0016_request_schedule
Revises: 0015_run_leases
Create Date: 2026-12-03

A consumer says when it wants deliveries (`schedule: "@daily"`), as a workspace subscription
does; the approval's subscription carries it, so the resource's DAG keeps the schedule its
consumers need.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_request_schedule"
down_revision = "0015_run_leases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("catalog_requests") as batch:
        batch.add_column(sa.Column("schedule", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("catalog_requests") as batch:
        batch.drop_column("schedule")
