"""Metering (可控可计量): what each subscription used, counted per day.

One row per subscription and day (the day in Asia/Shanghai, the calendar the exchange's
departments keep): records delivered or verified, their bytes, verification calls, records
that matched on every field asked, records not found. A count is added in the same store
transaction as the records it counts (a batch's provenance, a call's verification rows), so
the counts always equal what provenance and `verify_records` say happened, crash or not.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as _pc
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from govex.workdays import local_date

__all__ = [
    "COUNTS",
    "CSV_COLUMNS",
    "UsageReport",
    "UsageRow",
    "count_usage",
    "delivered_bytes",
    "metadata",
    "usage",
    "usage_daily",
    "usage_counts",
    "usage_day",
    "usage_upsert",
]

pc: Any = _pc  # pyarrow-stubs cannot follow kernels that are generic over types

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

# The catalog's resources, by name only (no import of the catalog's internals): who provides
# what, for a provider's view of its own resources.
_resources = sa.table("catalog_resources", sa.column("code"), sa.column("provider"))


def usage_day(at: dt.datetime) -> dt.date:
    """The day a moment is counted on: its calendar date in Asia/Shanghai (a naive moment is
    taken as UTC, as the store returns it from SQLite)."""
    return local_date(at)


def delivered_bytes(batch: pa.Table, columns: Sequence[str]) -> int:
    """The bytes a delivered batch counts for: the UTF-8 length of each value of `columns` (the
    subscription's fields, as masked and delivered) rendered as text the way provenance
    renders it before hashing (dates and times ISO 8601, numbers in decimal), nulls 0. A
    measure of what the consumer received that does not depend on the target database's
    storage or on Arrow's memory layout, and leaves out govex's own `_govex_*` columns."""
    total = 0
    for name in columns:
        text = pc.cast(batch.column(name), pa.string())
        total += int(pc.sum(pc.binary_length(text)).as_py() or 0)  # None: every value null
    return total


def count_usage(
    conn: sa.Connection,
    *,
    subscription: str,
    resource: str,
    consumer: str,
    at: dt.datetime,
    records: int = 0,
    bytes: int = 0,  # shadows the builtin: the counted quantity's name, as in the table
    calls: int = 0,
    matches: int = 0,
    not_found: int = 0,
) -> None:
    """Add to the (subscription, Asia/Shanghai day of `at`) row in the caller's transaction,
    so the count commits or rolls back with the records it counts. One dialect upsert that adds
    on the database side (never read-then-write): concurrent deliveries and calls of one
    subscription never lose a count."""
    values = usage_counts(subscription=subscription, resource=resource, consumer=consumer,
                          at=at, records=records, bytes=bytes, calls=calls, matches=matches,
                          not_found=not_found)
    if any(values[name] for name in COUNTS):  # no row for a day without use
        conn.execute(usage_upsert(conn.dialect.name), values)


def usage_counts(
    *, subscription: str, resource: str, consumer: str, at: dt.datetime, records: int,
    bytes: int, calls: int, matches: int, not_found: int,
) -> dict[str, Any]:
    """The parameters of `usage_upsert` adding these counts (see `count_usage`); ValueError
    for a negative count."""
    added = {"records": records, "bytes": bytes, "calls": calls, "matches": matches,
             "not_found": not_found}
    negative = [name for name, value in added.items() if value < 0]
    if negative:
        msg = f"usage counts only grow: {', '.join(negative)} is negative"
        raise ValueError(msg)
    return {"subscription": subscription, "day": usage_day(at), "resource": resource,
            "consumer": consumer, "updated_at": at, **added}


@functools.cache
def usage_upsert(dialect: str) -> Any:
    """The upsert adding `usage_counts` to a day's row on `dialect`, built once with bound
    parameters: building it per call cost most of a verification call's metering (about 1 ms
    of CPU). A caller may send it with other writes in one statement (a verification call's
    records, as a CTE)."""
    c = usage_daily.c
    values: dict[str, Any] = {name: sa.bindparam(name) for name in (
        "subscription", "day", "resource", "consumer", "updated_at", *COUNTS)}
    if dialect in ("mysql", "mariadb"):
        on_duplicate = mysql.insert(usage_daily).values(**values)
        new = on_duplicate.inserted
        return on_duplicate.on_duplicate_key_update(
            {**{name: c[name] + new[name] for name in COUNTS}, "updated_at": new.updated_at}
        )
    if dialect == "postgresql":
        on_conflict: Any = postgresql.insert(usage_daily).values(**values)
    elif dialect == "sqlite":
        on_conflict = sqlite.insert(usage_daily).values(**values)
    else:
        msg = f"metering needs an upsert: the {dialect} store is not supported"
        raise NotImplementedError(msg)
    excluded = on_conflict.excluded
    return on_conflict.on_conflict_do_update(
        index_elements=[c.subscription, c.day],
        set_={**{name: c[name] + excluded[name] for name in COUNTS},
              "updated_at": excluded.updated_at},
    )


@dataclass(frozen=True)
class UsageRow:
    """One subscription's use on one day (Asia/Shanghai)."""

    subscription: str
    day: dt.date
    resource: str
    consumer: str
    records: int
    bytes: int
    calls: int
    matches: int
    not_found: int

    def counts(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTS}


@dataclass(frozen=True)
class UsageReport:
    """Rows per subscription and day, oldest day first, and their totals."""

    rows: list[UsageRow]
    totals: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        """The shape `GET /api/v1/usage` and `govex usage --json` answer with."""
        return {
            "rows": [{"day": r.day.isoformat(), "resource": r.resource, "consumer": r.consumer,
                      "subscription": r.subscription, **r.counts()} for r in self.rows],
            "totals": dict(self.totals),
        }

    def to_csv(self) -> str:
        """The rows as CSV (RFC 4180, a header line, no totals line), `CSV_COLUMNS` in order.
        A text cell that a spreadsheet would run as a formula (starting with = + - @, a tab
        or a carriage return) gets a leading apostrophe, so opening the export runs nothing."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for r in self.rows:
            writer.writerow([r.day.isoformat(), _cell(r.resource), _cell(r.consumer),
                             _cell(r.subscription), *r.counts().values()])
        return out.getvalue()


#: The columns of the CSV export, in order.
CSV_COLUMNS = ("day", "resource", "consumer", "subscription", *COUNTS)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(text: str) -> str:
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def usage(
    conn: sa.Connection,
    *,
    resource: str | None = None,
    consumer: str | None = None,
    provider: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> UsageReport:
    """What was used, per subscription and day, with totals: of one `resource`, by one
    `consumer`, of the resources one `provider` department provides, from `start` to `end`
    (days in Asia/Shanghai, both included). Filters combine; none means everything."""
    c = usage_daily.c
    query = sa.select(c.subscription, c.day, c.resource, c.consumer, *(c[n] for n in COUNTS))
    if resource is not None:
        query = query.where(c.resource == resource)
    if consumer is not None:
        query = query.where(c.consumer == consumer)
    if provider is not None:
        query = query.where(c.resource.in_(
            sa.select(_resources.c.code).where(_resources.c.provider == provider)))
    if start is not None:
        query = query.where(c.day >= start)
    if end is not None:
        query = query.where(c.day <= end)
    query = query.order_by(c.day, c.resource, c.consumer, c.subscription)
    rows = [
        UsageRow(r.subscription, r.day, r.resource, r.consumer,
                 *(int(r._mapping[n]) for n in COUNTS))
        for r in conn.execute(query)
    ]
    totals = {name: sum(getattr(row, name) for row in rows) for name in COUNTS}
    return UsageReport(rows, totals)
