"""lineage: the hash-chained audit log and its head row

Revision ID: 0006_audit
Revises: 0005_lineage
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006_audit"
down_revision = "0005_lineage"
branch_labels = None
depends_on = None

GENESIS_HASH = "0" * 64
# SQLite only treats INTEGER PRIMARY KEY as the rowid; elsewhere 64 bits.
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# The hash covers microseconds: MariaDB/MySQL DATETIME must keep them (fsp=6).
AT = sa.DateTime(timezone=True).with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", SEQ, primary_key=True, autoincrement=False),
        sa.Column("at", AT, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_log_kind_subject", "audit_log", ["kind", "subject"])
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", SEQ, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    # The one row every appender locks (see records.audit): an empty log's head.
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": GENESIS_HASH}])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_index("ix_audit_log_kind_subject", table_name="audit_log")
    op.drop_table("audit_log")
