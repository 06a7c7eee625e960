"""records: the disputed-record flag (异议标注)

Revision ID: 0019_dispute_flags
Revises: 0018_usable_not_visible
Create Date: 2026-12-03

One row per dispute and subscription holding the disputed record: whether its copy should
show the flag and whether it does (`records.dispute_flags`). Disputes opened before this
revision get their rows at the next run of their resource.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019_dispute_flags"
down_revision = "0018_usable_not_visible"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "lineage_dispute_flags",
        sa.Column("dispute", sa.String(20), primary_key=True),
        sa.Column("subscription", sa.String(64), primary_key=True),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("record_key", sa.String(500), nullable=False),
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("flagged", sa.Boolean, nullable=False),
        sa.Column("applied", sa.Boolean, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("applied_at", TS, nullable=True),
    )
    op.create_index("ix_lineage_dispute_flags_pending", "lineage_dispute_flags",
                    ["resource", "applied"])
    op.create_index("ix_lineage_dispute_flags_consumer", "lineage_dispute_flags", ["consumer"])


def downgrade() -> None:
    op.drop_index("ix_lineage_dispute_flags_consumer", "lineage_dispute_flags")
    op.drop_index("ix_lineage_dispute_flags_pending", "lineage_dispute_flags")
    op.drop_table("lineage_dispute_flags")
