"""catalog: departments, connections, contract versions, resources, data elements, subscriptions

Revision ID: 0001_catalog
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_catalog"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "catalog_departments",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("declaration", sa.JSON, nullable=False),
        sa.Column("file", sa.String(500), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "catalog_connections",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("declaration", sa.JSON, nullable=False),
        sa.Column("workspace", sa.String(1000), nullable=False),
        sa.Column("file", sa.String(500), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "catalog_contract_versions",
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("version", sa.String(40), primary_key=True),
        sa.Column("major", sa.Integer, nullable=False),
        sa.Column("schema", sa.JSON, nullable=False),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("file", sa.String(500), nullable=False),
        sa.Column("registered_at", TS, nullable=False),
    )
    op.create_table(
        "catalog_resources",
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("contract_name", sa.String(100), nullable=False),
        sa.Column("contract_version", sa.String(40), nullable=False),
        sa.Column("sharing", sa.String(20), nullable=False),
        sa.Column("classification", sa.String(4), nullable=False),
        sa.Column("declaration", sa.JSON, nullable=False),
        sa.Column("file", sa.String(500), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "catalog_data_elements",
        sa.Column("element", sa.String(200), primary_key=True),
        sa.Column(
            "resource_code",
            sa.String(64),
            sa.ForeignKey("catalog_resources.code", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("field", sa.String(100), nullable=False),
    )
    op.create_table(
        "catalog_subscriptions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "resource_code",
            sa.String(64),
            sa.ForeignKey("catalog_resources.code"),
            nullable=False,
        ),
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("contract_major", sa.Integer, nullable=False),
        sa.Column("valid_from", sa.Date, nullable=False),
        sa.Column("valid_until", sa.Date, nullable=True),
        sa.Column("declaration", sa.JSON, nullable=False),
        sa.Column("file", sa.String(500), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_table(
        "catalog_applies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("workspace", sa.String(1000), nullable=False),
        sa.Column("plan", sa.JSON, nullable=False),
        sa.Column("applied_at", TS, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "catalog_applies",
        "catalog_subscriptions",
        "catalog_data_elements",
        "catalog_resources",
        "catalog_contract_versions",
        "catalog_connections",
        "catalog_departments",
    ):
        op.drop_table(table)
