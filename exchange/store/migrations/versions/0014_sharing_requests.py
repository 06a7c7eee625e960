"""catalog: sharing requests and their steps; where a subscription comes from and how it ends

Revision ID: 0014_sharing_requests
Revises: 0013_reference_lists
Create Date: 2026-12-03

A conditional subscription is the outcome of a request the provider approved, recorded as an
authenticated act. `catalog_requests` and `catalog_request_steps` keep the request and each
step with its actor; `catalog_subscriptions` learns its origin (workspace file or request), and
whether it was revoked, when delivery ended and when what was delivered was purged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_sharing_requests"
down_revision = "0013_reference_lists"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("catalog_subscriptions") as batch:
        batch.add_column(
            sa.Column("origin", sa.String(20), nullable=False, server_default="workspace")
        )
        batch.add_column(sa.Column("request_id", sa.String(40), nullable=True))
        batch.add_column(
            sa.Column("state", sa.String(20), nullable=False, server_default="active")
        )
        batch.add_column(sa.Column("ended_at", TS, nullable=True))
        batch.add_column(sa.Column("ended_by", sa.String(100), nullable=True))
        batch.add_column(sa.Column("ended_reason", sa.Text, nullable=True))
        batch.add_column(sa.Column("purged_at", TS, nullable=True))
    op.create_table(
        "catalog_requests",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("resource_code", sa.String(64), nullable=False),
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("legal_basis", sa.Text, nullable=False),
        sa.Column("fields", sa.JSON, nullable=False),
        sa.Column("masking", sa.JSON, nullable=False),
        sa.Column("delivery", sa.String(10), nullable=False, server_default="bulk"),
        sa.Column("target", sa.JSON, nullable=True),
        sa.Column("mode", sa.String(20), nullable=True),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_until", sa.Date, nullable=True),
        sa.Column("retain_after_end", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("due", TS, nullable=True),
        sa.Column("subscription_id", sa.String(64), nullable=True),
        sa.Column("submitted_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_catalog_requests_state", "catalog_requests", ["state"])
    op.create_table(
        "catalog_request_steps",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "request_id", sa.String(40), sa.ForeignKey("catalog_requests.id"), nullable=False
        ),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("by_department", sa.String(64), nullable=False),
        sa.Column("by_role", sa.String(32), nullable=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("detail", sa.JSON, nullable=True),
    )
    op.create_index(
        "ix_catalog_request_steps_request", "catalog_request_steps", ["request_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_catalog_request_steps_request", "catalog_request_steps")
    op.drop_table("catalog_request_steps")
    op.drop_index("ix_catalog_requests_state", "catalog_requests")
    op.drop_table("catalog_requests")
    with op.batch_alter_table("catalog_subscriptions") as batch:
        for column in (
            "purged_at", "ended_reason", "ended_by", "ended_at", "state", "request_id", "origin"
        ):
            batch.drop_column(column)
