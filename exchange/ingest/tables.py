"""Tables of the Kafka ingestion worker (`govex ingest`).

- `ingest_offsets` (migration 0008): per resource, topic and partition, the next offset to read.
  It is written in the same transaction as the landed records, so the database, not Kafka's
  consumer groups, is the one truth of what has been consumed.
- `landing_<code>` (one per Kafka-fed resource): made at run time from the resource's contract
  (`landing_table`), because its columns follow the contract. Contract fields are typed text
  (strings as they came, numbers and booleans in their JSON spelling, null as NULL); the
  `_govex_*` columns carry the record key, the operation, the message id (unique: a repeated
  message lands once), the landing sequence (per-key order) and when it landed.
"""

from __future__ import annotations

import re

import sqlalchemy as sa

import contracts

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)
# SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid); elsewhere use 64 bits.
SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

offsets = sa.Table(
    "ingest_offsets",
    metadata,
    sa.Column("resource", sa.String(64), primary_key=True),
    sa.Column("topic", sa.String(249), primary_key=True),
    sa.Column("partition", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("next_offset", sa.BigInteger, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

def landing_table_name(code: str) -> str:
    """`landing_<code>`: the resource code lowercased, `-` (and anything unusual) → `_`."""
    return "landing_" + re.sub(r"[^a-z0-9_]", "_", code.lower())


def landing_table(code: str, contract: contracts.Contract) -> sa.Table:
    """The landing table of resource `code` (not bound to `metadata`: it is per resource)."""
    columns: list[sa.Column[object]] = [
        sa.Column("_govex_seq", SEQ, primary_key=True, autoincrement=True),
    ]
    columns += [sa.Column(name, sa.Text, nullable=True) for name in contract.fields]
    columns += [
        sa.Column("_govex_key", sa.String(500), nullable=False, index=True),
        sa.Column("_govex_op", sa.String(6), nullable=False),
        sa.Column("_govex_message_id", sa.String(200), nullable=False, unique=True),
        sa.Column("_govex_source_system", sa.String(200), nullable=False),
        sa.Column("_govex_event_time", sa.String(64), nullable=False),
        sa.Column("_govex_partition", sa.Integer, nullable=False),
        sa.Column("_govex_offset", sa.BigInteger, nullable=False),
        sa.Column("_govex_landed_at", TS, nullable=False),
    ]
    return sa.Table(
        landing_table_name(code), sa.MetaData(), *columns, sqlite_autoincrement=True
    )
