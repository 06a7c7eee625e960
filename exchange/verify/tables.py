"""The verification index and the per-key answer counts.

`verify_index`: one row per verify subscription and record, holding no value. The record is
found by a keyed digest of its key and each of the subscription's fields is a keyed digest of
its canonical value (see `canonical`), both under the subscription's own key, so neither a
reader of the store without the master secret nor another subscription can test a guess
against it. A run maintains it like a delivery (the subscription's progress, backfills and
deletes all apply), so it holds exactly what the source held at the last successful run.

`verify_answers`: how many answers each key got per subscription and day (Asia/Shanghai), so
a consumer cannot enumerate a birth date by asking 366 times.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["metadata", "verify_answers", "verify_index"]

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)
DIGEST = 32  # hex characters: 128 bits of HMAC-SHA256

verify_index = sa.Table(
    "verify_index",
    metadata,
    sa.Column("subscription", sa.String(64), primary_key=True),
    sa.Column("key_digest", sa.String(DIGEST), primary_key=True),
    sa.Column("digests", sa.Text, nullable=False),  # JSON {field: digest}; null values absent
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("indexed_at", TS, nullable=False),
)

verify_answers = sa.Table(
    "verify_answers",
    metadata,
    sa.Column("subscription", sa.String(64), primary_key=True),
    sa.Column("key_digest", sa.String(DIGEST), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("answers", sa.Integer, nullable=False),
)
