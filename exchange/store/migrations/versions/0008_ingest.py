"""exchange: Kafka ingestion offsets (landing tables are made per resource at run time)

Revision ID: 0008_ingest
Revises: 0007_provenance_disputes
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_ingest"
down_revision = "0007_provenance_disputes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ingest_offsets",
        sa.Column("resource", sa.String(64), primary_key=True),
        sa.Column("topic", sa.String(249), primary_key=True),
        sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("next_offset", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("ingest_offsets")
