"""`govex run CODE --dry-run`: read and gate as a run would, deliver and record nothing.

Why: before a first run, or after changing a contract, a subscription or the gate, an
engineer wants to see what each subscription would receive without touching a target. A dry
run reads the source the way the next real run would (from the watermark, or from the
beginning for a backfill) and judges every batch in memory; it starts no run, stages nothing,
writes no quarantine, quality result, Data Docs, provenance, delivery, watermark, progress,
lineage event or audit entry, so nothing a real run depends on changes. Its counts are a
forecast: the source may change before the real run.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

import catalog
import connectors
import contracts
import quality
from connectors.base import Cursor, ReadSpec
from exchange.run import landing_source as landing
from exchange.run import source_deletes
from exchange.run.conform import contract_columns
from exchange.run.encoding import check_encoding
from exchange.run.staging import Stage
from exchange.run.steps import (
    RunPlan,
    _active_subscriptions,
    _json_types,
    _prior_split,
    _starting_point,
    batch_rows,
)
from govex import progress
from govex.workdays import local_date

DRY_RUN_ID = "dry-run"  # never a run id in the store: real ones are UUIDs


@dataclass(frozen=True)
class WouldReceive:
    """What one subscription would get from the run, and how."""

    subscription: str
    consumer: str
    records: int
    deletes: int
    backfill: bool
    fields: list[str]
    masking: dict[str, str]
    # Connection name and table: never the connection's URL; None for a verify subscription.
    target: dict[str, str] | None
    mode: str  # a verify subscription's: "index" (its verification index is kept instead)
    delivery: str = "bulk"

    def to_json(self) -> dict[str, Any]:
        return {
            "subscription": self.subscription, "consumer": self.consumer,
            "records": self.records, "deletes": self.deletes, "backfill": self.backfill,
            "fields": self.fields, "masking": self.masking, "target": self.target,
            "mode": self.mode, "delivery": self.delivery,
        }


@dataclass(frozen=True)
class DryRun:
    """A dry run's forecast; `status` is what the real run would end as before delivery."""

    resource: str
    status: str  # "ready" (would deliver) or "blocked" (the gate would stop it)
    read: int
    passed: int
    quarantined: int
    subscriptions: list[WouldReceive] = field(default_factory=list)
    message: str = ""

    @property
    def exit_code(self) -> int:
        return 1 if self.status == "blocked" else 0

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": True, "resource": self.resource, "status": self.status,
            "read": self.read, "passed": self.passed, "quarantined": self.quarantined,
            "subscriptions": [s.to_json() for s in self.subscriptions],
            "message": self.message,
        }


@dataclass
class _Counts:
    """Rows read and passed, and deleted keys, on each side of the watermark."""

    read: int = 0
    failed: int = 0
    passed: dict[str, int] = field(default_factory=lambda: {"prior": 0, "increment": 0})
    deletes: dict[str, int] = field(default_factory=lambda: {"prior": 0, "increment": 0})


def dry_run(
    store: sa.Engine, code: str, *, subscription: str | None = None, full: bool = False
) -> DryRun:
    """Forecast a run of `code` (same options as `run_resource`), changing nothing."""
    today = local_date()
    with store.connect() as conn:
        resource = catalog.load_resource(conn, code)
        contract = catalog.load_contract_version(conn, resource.contract)
        active = _active_subscriptions(conn, code, subscription, today)
        cursor, backfills = _starting_point(conn, resource, active)
        subs = {s.id: s for s in catalog.load_subscriptions(conn, code) if s.id in active}
    plan = RunPlan(
        run_id=DRY_RUN_ID, status="dry-run", resource=resource, contract=contract,
        subscriptions=subs, single_subscription=subscription is not None, full=full,
        cursor_start=cursor, cursor_end=None, parent=None,
        stage=Stage.for_run(DRY_RUN_ID),  # a path only: nothing is ever written to it
        backfills=tuple(backfills),
    )
    counts = _judge(store, plan)
    limit = resource.quality.max_error_rate
    rate = counts.failed / counts.read if counts.read else 0.0
    blocked = rate > limit
    message = (
        f"the quality gate would block this run: {counts.failed} of {counts.read} records "
        f"({rate:.1%}) fail, above max_error_rate {limit:.1%}" if blocked
        else f"{counts.failed} records would be quarantined" if counts.failed else ""
    )
    passed = sum(counts.passed.values()) + sum(counts.deletes.values())
    return DryRun(
        resource=code, status="blocked" if blocked else "ready", read=counts.read,
        passed=passed, quarantined=counts.failed,
        subscriptions=[_share(plan, sub, counts, blocked) for sub in subs.values()],
        message=message,
    )


def _share(
    plan: RunPlan, sub: catalog.Subscription, counts: _Counts, blocked: bool
) -> WouldReceive:
    """The subscription's part, as `steps._share` would deliver it."""
    backfilled = sub.id in plan.backfills
    sides = ["increment"]
    if plan.splits and backfilled:
        sides = ["prior"] if plan.single_subscription else ["prior", "increment"]
    records = 0 if blocked else sum(counts.passed[s] for s in sides)
    deletes = 0 if blocked else sum(counts.deletes[s] for s in sides)
    return WouldReceive(
        subscription=sub.id, consumer=sub.consumer, records=records, deletes=deletes,
        backfill=backfilled, fields=list(sub.fields),
        masking={f: sub.masking.get(f, "none") for f in sub.fields},
        target=({"connection": sub.target.connection, "table": sub.target.table}
                if sub.target is not None else None),
        mode=sub.mode if sub.target is not None else "index",
        delivery=sub.delivery,
    )


def _judge(store: sa.Engine, plan: RunPlan) -> _Counts:
    """Every batch the run would read, through the resource's gate, in memory."""
    checker = quality.resource_gate(plan.contract, plan.resource)
    counts = _Counts()
    progress.start(f"{plan.resource.code}: dry run", None)
    for side, batch, deletes in _batches(store, plan):
        counts.deletes[side] += deletes
        counts.read += batch.num_rows
        if batch.num_rows:
            encoding = check_encoding(batch)
            result = encoding.judged(checker.evaluate(encoding.batch))
            ok = sum(1 for passed in result.passed if passed)
            counts.passed[side] += ok
            counts.failed += batch.num_rows - ok
        progress.advance(batch.num_rows + deletes)
    return counts


def _batches(store: sa.Engine, plan: RunPlan) -> Iterator[tuple[str, pa.Table, int]]:
    """(side of the watermark, records in contract columns as extract stages them, number of
    deleted keys) of each batch read."""
    source_decl = plan.resource.source
    schema = contracts.arrow_schema(plan.contract)
    if source_decl.kafka is not None:
        split_at = landing.seq_after(plan.cursor_start) if plan.splits else None
        for whole in landing.read_landing(
            store, plan.resource.code, plan.contract, tuple(plan.resource.key),
            after=landing.seq_after(plan.read_after), batch_rows=batch_rows(),
        ):
            batch = whole
            if split_at is not None:
                prior, batch = whole.split(split_at)
                yield "prior", contract_columns(prior.upserts, schema), prior.deletes.num_rows
            yield "increment", contract_columns(batch.upserts, schema), batch.deletes.num_rows
        return
    with store.connect() as conn:
        resolved = catalog.load_connection(conn, source_decl.connection)
    source = connectors.open_source(resolved.kind, resolved.target, resolved.format)
    spec = ReadSpec(
        table=source_decl.table, query=source_decl.query, columns=None,
        key=tuple(plan.resource.key), watermark=source_decl.watermark,
        after=Cursor.from_json(plan.read_after) if plan.read_after else None,
        batch_rows=batch_rows(),
        types={
            name: pa.string() for name in plan.contract.fields
            if "string" in _json_types(plan.contract.property(name))
        },
    )
    split = _prior_split(plan, spec)
    deleted, key = source_decl.deleted, tuple(plan.resource.key)

    def side(rows: pa.Table) -> tuple[pa.Table, int]:
        """(records in contract columns, keys marked deleted), as extract stages them."""
        gone = 0
        if deleted is not None:
            rows, keys = source_deletes.split_deleted(rows, deleted, key)
            gone = keys.num_rows
        return contract_columns(rows, schema), gone

    try:
        for rows in source.read_batches(spec):
            before, after = split(rows) if split else (rows.slice(0, 0), rows)
            if before.num_rows:
                yield "prior", *side(before)
            yield "increment", *side(after)
    finally:
        source.close()
