"""Alembic environment: runs on the connection govex hands over (see exchange.store.engine)."""

from __future__ import annotations

from alembic import context

import catalog
import lineage
import records
from exchange.ingest import tables as ingest_tables
from exchange.run import bookkeeping as runs
from exchange.store import tokens
from exchange.verify import tables as verify_tables
from quality import tables as quality_tables

target_metadata = [
    catalog.metadata,
    runs.metadata,
    tokens.metadata,
    quality_tables.metadata,
    lineage.metadata,
    records.audit_metadata,
    records.provenance_metadata,
    records.disputes_metadata,
    records.dispute_flags_metadata,
    records.notifications_metadata,
    records.usage_metadata,
    records.verifications_metadata,
    verify_tables.metadata,
    ingest_tables.metadata,
]

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=target_metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
