"""catalog: a keyed fingerprint of each connection's resolved value

Revision ID: 0012_connection_fingerprint
Revises: 0011_lookup_counts
Create Date: 2026-12-03

`catalog_connections.fingerprint` is an HMAC-SHA256, under the master key, of the value the
connection's `${VAR}`s resolved to at the last apply, so that `govex apply` can show a
connection as changed when only the environment changed, without storing the URL.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_connection_fingerprint"
down_revision = "0011_lookup_counts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("catalog_connections") as batch:
        batch.add_column(sa.Column("fingerprint", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("catalog_connections") as batch:
        batch.drop_column("fingerprint")
