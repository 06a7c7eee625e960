"""records: the notification outbox, its events and the delivery log

Revision ID: 0017_notifications
Revises: 0016_request_schedule
Create Date: 2026-12-03

Every request and dispute step writes its event and one outbox row per department with a
webhook in its own transaction; the sender (`govex notify send`, `govex serve`) logs each POST.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_notifications"
down_revision = "0016_request_schedule"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
# SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid); elsewhere use 64 bits.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notify_events",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("departments", sa.JSON, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("once_key", sa.String(200), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.UniqueConstraint("once_key", name="uq_notify_events_once_key"),
    )
    op.create_index("ix_notify_events_subject", "notify_events", ["subject"])
    op.create_table(
        "notify_outbox",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(36), sa.ForeignKey("notify_events.id"),
                  nullable=False),
        sa.Column("department", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TS, nullable=False),
        sa.Column("delivered_at", TS, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_notify_outbox_due", "notify_outbox", ["state", "next_attempt_at"])
    op.create_index("ix_notify_outbox_department", "notify_outbox", ["department"])
    op.create_table(
        "notify_attempts",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("outbox_id", ID, sa.ForeignKey("notify_outbox.id"), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("duration_ms", sa.Integer, nullable=False),
    )
    op.create_index("ix_notify_attempts_outbox", "notify_attempts", ["outbox_id"])


def downgrade() -> None:
    op.drop_index("ix_notify_attempts_outbox", table_name="notify_attempts")
    op.drop_table("notify_attempts")
    op.drop_index("ix_notify_outbox_department", table_name="notify_outbox")
    op.drop_index("ix_notify_outbox_due", table_name="notify_outbox")
    op.drop_table("notify_outbox")
    op.drop_index("ix_notify_events_subject", table_name="notify_events")
    op.drop_table("notify_events")
