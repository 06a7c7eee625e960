"""exchange: lookups (trace, dispute opening) counted per token per minute

Revision ID: 0011_lookup_counts
Revises: 0010_subscription_progress
Create Date: 2026-12-15

`exchange_lookup_counts` holds one counter per API token and minute, upserted by every process
serving the API, so the GOVEX_LOOKUP_RATE limit holds across processes (a count in one
process's memory would multiply the limit by the number of workers).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_lookup_counts"
down_revision = "0010_subscription_progress"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "exchange_lookup_counts",
        sa.Column("token_id", sa.String(64), primary_key=True),
        sa.Column("minute", sa.BigInteger, primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("exchange_lookup_counts")
