"""Verification records: one row per record a consumer asked about (可用不可见).

A verify subscription never receives values; what it did is asking. Each asked record leaves a
row here, written in the call's one store transaction with its metering (`records.usage`): the
resource, the record key in the same text form as provenance (`KEY`), the subscription, which
fields were asked, whether the record was found and whether every asked field matched, and
when. Disclosure reads these beside provenance; no value the consumer sent is stored, only the
key it named.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["metadata", "verify_records"]

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)
# SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid); elsewhere 64 bits.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

verify_records = sa.Table(
    "verify_records",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("call_id", sa.String(36), nullable=False),  # one POST /verify call
    sa.Column("resource", sa.String(64), nullable=False),
    sa.Column("record_key", sa.String(500), nullable=False),
    sa.Column("subscription", sa.String(64), nullable=False),
    sa.Column("fields", sa.String(2000), nullable=False),  # asked fields, joined by ','
    sa.Column("found", sa.Boolean, nullable=False),
    sa.Column("matched", sa.Boolean, nullable=False),  # found, and every asked field matched
    sa.Column("verified_at", TS, nullable=False),
    # Disclosure asks "who verified this record": the same access path as provenance.
    sa.Index("ix_verify_records_record", "resource", "record_key"),
)
