"""records: verification records found by time, for their retention

Revision ID: 0021_verify_records_time
Revises: 0020_provenance_partitions
Create Date: 2026-12-03

`govex provenance maintain` deletes the verification records older than the retention
(`records.verifications.expire`). Without an index on `verified_at` its last pass reads the
whole table to learn that nothing older is left, every day; rows arrive in time order, so on
PostgreSQL a BRIN index answers that from a few pages and costs the verification calls'
inserts next to nothing (a b-tree elsewhere).
"""

from __future__ import annotations

from alembic import op

revision = "0021_verify_records_time"
down_revision = "0020_provenance_partitions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_verify_records_verified_at", "verify_records", ["verified_at"],
                    postgresql_using="brin")


def downgrade() -> None:
    op.drop_index("ix_verify_records_verified_at", table_name="verify_records")
