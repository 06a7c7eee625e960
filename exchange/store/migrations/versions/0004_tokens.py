"""exchange: API tokens (stored as SHA-256 digests, never the secret)

Revision ID: 0004_tokens
Revises: 0003_quality
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_tokens"
down_revision = "0003_quality"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "exchange_tokens",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("last_used_at", TS, nullable=True),
        sa.Column("revoked", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("exchange_tokens")
