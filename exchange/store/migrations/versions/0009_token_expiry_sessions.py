"""exchange: tokens expire; web sign-in sessions (stored as SHA-256 digests, never the id)

Revision ID: 0009_token_expiry_sessions
Revises: 0008_ingest
Create Date: 2026-12-14

Tokens issued before this revision never expired. They get 90 days from the upgrade, not from
when they were issued: an upgrade must not lock every operator out at once, and within 90 days
every old token has expired or been replaced.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0009_token_expiry_sessions"
down_revision = "0008_ingest"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
GRACE = dt.timedelta(days=90)  # tokens.DEFAULT_DAYS, frozen here as this revision applied it

_tokens = sa.table("exchange_tokens", sa.column("expires_at", TS))


def upgrade() -> None:
    with op.batch_alter_table("exchange_tokens") as batch:
        batch.add_column(sa.Column("expires_at", TS, nullable=True))
    op.execute(_tokens.update().values(expires_at=dt.datetime.now(dt.UTC) + GRACE))
    with op.batch_alter_table("exchange_tokens") as batch:
        batch.alter_column("expires_at", existing_type=TS, nullable=False)
    op.create_table(
        "exchange_sessions",
        sa.Column("session_hash", sa.String(64), primary_key=True),
        sa.Column("token_id", sa.String(32),
                  sa.ForeignKey("exchange_tokens.id", ondelete="CASCADE"), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("expires_at", TS, nullable=False),
    )
    op.create_index("ix_exchange_sessions_token_id", "exchange_sessions", ["token_id"])
    op.create_index("ix_exchange_sessions_expires_at", "exchange_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_exchange_sessions_expires_at", table_name="exchange_sessions")
    op.drop_index("ix_exchange_sessions_token_id", table_name="exchange_sessions")
    op.drop_table("exchange_sessions")
    with op.batch_alter_table("exchange_tokens") as batch:
        batch.drop_column("expires_at")
