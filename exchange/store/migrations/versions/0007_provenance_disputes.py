"""lineage: record provenance, disputes and their transitions

Revision ID: 0007_provenance_disputes
Revises: 0006_audit
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_provenance_disputes"
down_revision = "0006_audit"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)
# SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid); elsewhere use 64 bits.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "lineage_provenance",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("record_key", sa.String(500), nullable=False),
        sa.Column("subscription", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("value_hash", sa.String(16), nullable=False),
        sa.Column("delivered_at", TS, nullable=False),
    )
    op.create_index(
        "ix_lineage_provenance_record", "lineage_provenance", ["resource", "record_key"]
    )
    op.create_table(
        "lineage_disputes",
        sa.Column("id", sa.String(20), primary_key=True),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("record_key", sa.String(500), nullable=False),
        sa.Column("field", sa.String(200), nullable=False),
        sa.Column("claim", sa.Text, nullable=False),
        sa.Column("opened_by", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("due", TS, nullable=False),
        sa.Column("evidence", sa.JSON, nullable=True),
        sa.Column("opened_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index("ix_lineage_disputes_record", "lineage_disputes", ["resource", "record_key"])
    op.create_index("ix_lineage_disputes_provider", "lineage_disputes", ["provider"])
    op.create_index("ix_lineage_disputes_opened_by", "lineage_disputes", ["opened_by"])
    op.create_table(
        "lineage_dispute_transitions",
        sa.Column("id", ID, primary_key=True, autoincrement=True),
        sa.Column(
            "dispute_id", sa.String(20), sa.ForeignKey("lineage_disputes.id"), nullable=False
        ),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("reason", sa.Text, nullable=True),
        sa.Column("at", TS, nullable=False),
    )
    op.create_index(
        "ix_lineage_dispute_transitions_dispute", "lineage_dispute_transitions", ["dispute_id"]
    )


def downgrade() -> None:
    op.drop_index(
        "ix_lineage_dispute_transitions_dispute", table_name="lineage_dispute_transitions"
    )
    op.drop_table("lineage_dispute_transitions")
    op.drop_index("ix_lineage_disputes_opened_by", table_name="lineage_disputes")
    op.drop_index("ix_lineage_disputes_provider", table_name="lineage_disputes")
    op.drop_index("ix_lineage_disputes_record", table_name="lineage_disputes")
    op.drop_table("lineage_disputes")
    op.drop_index("ix_lineage_provenance_record", table_name="lineage_provenance")
    op.drop_table("lineage_provenance")
