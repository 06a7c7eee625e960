"""catalog: a workspace's reference lists (its additions to the GB/T 2260 division codes)

Revision ID: 0013_reference_lists
Revises: 0012_connection_fingerprint
Create Date: 2026-12-03

`catalog_reference_lists` holds the rows of a workspace's `reference/division_codes.csv` as
`govex apply` last stored them, because a run reads the store and never the workspace.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_reference_lists"
down_revision = "0012_connection_fingerprint"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "catalog_reference_lists",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("rows", sa.JSON, nullable=False),
        sa.Column("file", sa.String(500), nullable=False),
        sa.Column("workspace", sa.String(1000), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("catalog_reference_lists")
