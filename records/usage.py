"""Metering (可控可计量): what each subscription used, counted per day.

One row per subscription and day (the day in Asia/Shanghai, the calendar the exchange's
departments keep): records delivered or verified, their bytes, verification calls, records
that matched on every field asked, records not found. A count is added in the same store
transaction as the records it counts (a batch's provenance, a call's verification rows), so
the counts always equal what provenance and `verify_records` say happened, crash or not.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = ["COUNTS", "metadata", "usage_daily"]

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)

#: The counted quantities, in the order reports show them.
COUNTS = ("records", "bytes", "calls", "matches", "not_found")

usage_daily = sa.Table(
    "usage_daily",
    metadata,
    sa.Column("subscription", sa.String(64), primary_key=True),
    sa.Column("day", sa.Date, primary_key=True),
    # Denormalised from the subscription so a report survives the subscription's removal.
    sa.Column("resource", sa.String(64), nullable=False),
    sa.Column("consumer", sa.String(64), nullable=False),
    sa.Column("records", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("bytes", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("calls", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("matches", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("not_found", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index("ix_usage_daily_resource_day", "resource", "day"),
    sa.Index("ix_usage_daily_consumer_day", "consumer", "day"),
)
