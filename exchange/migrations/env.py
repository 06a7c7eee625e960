"""Alembic environment: runs on the connection govex hands over (see exchange.store)."""

from __future__ import annotations

from alembic import context

import catalog
import lineage
from exchange import ingest_tables, runs, tokens
from quality import tables as quality_tables

target_metadata = [
    catalog.metadata,
    runs.metadata,
    tokens.metadata,
    quality_tables.metadata,
    lineage.metadata,
    lineage.audit_metadata,
    lineage.provenance_metadata,
    lineage.disputes_metadata,
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
