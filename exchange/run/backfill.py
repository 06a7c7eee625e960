"""Backfills: what each subscription lacks of its resource, and how one read serves them all.

Why: the watermark is per resource; it says how far the source has been read, not what each
target holds. A subscription added after the resource ran, or one whose target, fields or
masking changed, holds nothing (or nothing usable) of what was read before, and an incremental
run would send it only what is new — 0 rows on a quiet day, and the run says success. So each
subscription has its own progress in the store (`bookkeeping.progress`: the resource
watermark it was brought level with, a cursor position as `exchange_watermarks` holds; the
contract version and the shape it was delivered in; no records):

- *current*: its progress stands at the resource watermark, delivered in the shape the
  subscription has now and under the same contract major version. It gets the increment.
- anything else — no progress (new), another shape, another major version, or progress behind
  the watermark (it was inactive while others ran) — *needs a backfill*: the whole current
  data set, delivered to it alone, marked `"backfill": true` on its delivery.

How one read serves both (the source is still read once per run): a run with a backfill reads
from the beginning, and extract stages the rows at or before the watermark apart (the `PRIOR_*`
areas) from the rows after it (`raw`, as every run stages its increment). A current
subscription gets only the latter — exactly what an incremental read would have sent it; a
backfilled one gets both (a snapshot target is swapped whole). A run for one subscription
(`--subscription`) that needs a backfill gets only the prior rows: that makes it current at the
watermark, level with the others, and the next run sends the newer rows to everyone at once
(an append target would otherwise receive them twice).

Where the split falls: a SQL source reads ordered by (watermark, key...) in the database, and
the watermark is the cursor just past the last row an earlier run read, so the rows after it
are a suffix of the read (`PriorSplit`). The suffix starts after the row the cursor names
when that row is still there; when it is gone (updated or deleted since), rows are compared
with the cursor in Arrow, which for text keys orders by code point: under a database collation
that orders text otherwise, rows sharing the watermark's exact value could fall on the wrong
side. A landing table splits by landing sequence (`landing_source.LandingBatch.split`), exactly.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as _pc

import catalog
from exchange.run.bookkeeping import SubscriptionProgress
from govex.errors import DeclarationError, FatalError

pc: Any = _pc

# Staging areas of the rows at or before the watermark, beside `raw`, `passed` and `deletes`.
PRIOR_RAW = "prior_raw"
PRIOR_PASSED = "prior_passed"
PRIOR_DELETES = "prior_deletes"

__all__ = [
    "PRIOR_DELETES",
    "PRIOR_PASSED",
    "PRIOR_RAW",
    "PriorSplit",
    "delivered_shape",
    "needing_backfill",
]


def delivered_shape(sub: catalog.Subscription) -> dict[str, Any]:
    """What a subscription's target holds, as far as a backfill cares: where it is, how rows
    land, and which fields in which masking. A change in any of them means the rows already
    delivered are not what the subscription now asks for (or are in another table). A verify
    subscription's "target" is its index, which holds the fields it may ask about."""
    if sub.target is None:
        return {"delivery": sub.delivery, "fields": sorted(sub.fields)}
    return {
        "connection": sub.target.connection,
        "table": sub.target.table,
        "mode": sub.mode,
        "fields": sorted(sub.fields),
        "masking": dict(sorted(sub.masking.items())),
    }


def _major(contract: str) -> tuple[str, str]:
    """(name, major version) of a contract reference `name@major.minor.patch`."""
    name, _, version = contract.partition("@")
    return name, version.split(".", 1)[0]


def _is_current(
    progress: SubscriptionProgress | None,
    sub: catalog.Subscription,
    contract: str,
    watermark: dict[str, Any],
) -> bool:
    """Whether the subscription holds everything up to `watermark`, as it now wants it. A
    progress row carried over by migration has no contract or shape: taken as unchanged."""
    if progress is None or progress.cursor != watermark:
        return False
    if progress.shape is not None and progress.shape != delivered_shape(sub):
        return False
    return progress.contract is None or _major(progress.contract) == _major(contract)


def needing_backfill(
    subscriptions: Iterable[catalog.Subscription],
    progress: Mapping[str, SubscriptionProgress],
    contract: str,
    watermark: dict[str, Any] | None,
) -> list[str]:
    """The subscriptions (ids, in the given order) that need a backfill, for a resource read
    incrementally whose watermark is `watermark`. Before the resource has a watermark every run
    reads everything anyway, and nobody holds anything the others lack: none."""
    if watermark is None:
        return []
    return [
        s.id for s in subscriptions
        if not _is_current(progress.get(s.id), s, contract, watermark)
    ]


def _scalar(value: Any, kind: pa.DataType, column: str) -> Any:
    """A cursor value (JSON, as `connectors` writes it) as an Arrow scalar of `kind`."""
    try:
        if pa.types.is_timestamp(kind):
            moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
            if moment.tzinfo is None:  # naive values are UTC by convention in govex
                moment = moment.replace(tzinfo=dt.UTC)
            if kind.tz is None:
                moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
            return pa.scalar(moment, kind)
        if pa.types.is_date(kind):
            return pa.scalar(dt.date.fromisoformat(value) if isinstance(value, str) else value,
                             kind)
        if pa.types.is_decimal(kind):
            return pa.scalar(decimal.Decimal(value), kind)
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            return pa.scalar(bytes.fromhex(value), kind)
        return pa.scalar(value, kind)
    except (ValueError, TypeError, pa.ArrowException) as error:
        msg = (f"the watermark value {value!r} of column '{column}' cannot be compared with "
               f"the source's {kind} values; run the resource once with --full to start over")
        raise FatalError(msg) from error


class PriorSplit:
    """Cuts a read ordered by (watermark, key...) into the rows at or before `cursor` and the
    rows after it, batch by batch. The rows after it are a suffix of the read: once a batch
    has one, every later row is after too."""

    def __init__(self, cursor: dict[str, Any], order: Sequence[str]) -> None:
        columns = tuple(cursor.get("columns", ()))
        if columns != tuple(order):
            msg = (f"the watermark {cursor} is over {list(columns)}, but the source is read in "
                   f"the order {list(order)}; run the resource once with --full after changing "
                   "its key or watermark")
            raise DeclarationError(msg)
        self._columns = columns
        self._values = tuple(cursor["values"])
        self._past = False

    def __call__(self, batch: pa.Table) -> tuple[pa.Table, pa.Table]:
        """(rows at or before the cursor, rows after it) of the next batch of the read."""
        at = batch.num_rows if not self._past else 0
        if not self._past and batch.num_rows:
            at = self._boundary(batch)
        return batch.slice(0, at), batch.slice(at)

    def _boundary(self, batch: pa.Table) -> int:
        """Where the rows after the cursor begin in `batch` (its length: none there)."""
        pairs = [
            (batch.column(name), _scalar(value, batch.schema.field(name).type, name))
            for name, value in zip(self._columns, self._values, strict=True)
        ]
        # The row the cursor names (keys are unique, so at most one): the read's own order
        # puts everything after it after the cursor, whatever the collation.
        same: Any = None
        for column, value in pairs:
            equal = pc.fill_null(pc.equal(column, value), False)
            same = equal if same is None else pc.and_(same, equal)
        named = pc.index(same, True).as_py()
        if named >= 0:
            self._past = True
            return int(named) + 1
        # Gone since: compare (watermark, key...) with the cursor, lexicographically.
        after: Any = None
        for column, value in reversed(pairs):
            greater = pc.fill_null(pc.greater(column, value), False)
            if after is not None:
                equal = pc.fill_null(pc.equal(column, value), False)
                greater = pc.or_(greater, pc.and_(equal, after))
            after = greater
        first = pc.index(after, True).as_py()
        if first < 0:
            return batch.num_rows
        self._past = True
        return int(first)
