"""The exchange run's OpenLineage events: START, one child run per delivery, COMPLETE or FAIL.

Lineage is a side channel: building or sending an event never fails a transfer. Every problem
is logged (and `lineage.emit` counts what it could not store or send).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

import catalog
import contracts
import lineage
import quality
from exchange.run.bookkeeping import RunSummary
from exchange.run.targets import target_spec

log = logging.getLogger(__name__)


def resource_run(
    store: sa.Engine,
    run_id: str,
    resource: catalog.Resource,
    contract: contracts.Contract,
    subscriptions: list[catalog.Subscription],
    parent: dict[str, Any] | None,
) -> lineage.ResourceRun:
    """Everything the run's events repeat: resource, source, outputs, Airflow parent."""
    with store.connect() as conn:
        source = catalog.load_connection(conn, resource.source.connection)
        targets = {s.id: catalog.load_connection(conn, s.sink.connection)
                   for s in subscriptions if s.target is not None}
    outputs = tuple(
        lineage.SubscriptionInfo.from_catalog(
            s,
            lineage.target_dataset(s, targets[s.id]),
            schema=lineage.schema_from_arrow(target_spec(resource, contract, s).arrow_schema()),
        )
        for s in subscriptions if s.target is not None  # verify: no copy leaves the source
    )
    return lineage.ResourceRun(
        run_id,
        lineage.ResourceInfo.from_catalog(resource, contract.schema),
        lineage.source_dataset(resource, source),
        outputs,
        parent=(parent["namespace"], parent["job_name"], parent["run_id"]) if parent else None,
    )


def emit(store: sa.Engine, build: Callable[[], Any]) -> None:
    """Build an event and emit it; any failure is logged, never raised. With the kill switch
    on nothing is built: building reads the store, which a disabled channel need not pay."""
    if lineage.lineage_disabled():
        return
    try:
        event = build()
    except Exception:  # noqa: BLE001 - lineage must never fail a transfer
        log.exception("could not build an OpenLineage event; the transfer goes on")
        return
    lineage.emit(store, event)


def final_event(
    store: sa.Engine, run: lineage.ResourceRun, summary: RunSummary
) -> Any:
    """COMPLETE for a successful run, FAIL (blocked or failed) otherwise, with its facts."""
    with store.connect() as conn:
        history = quality.report(conn, summary.resource, run_id=summary.run_id)
    assertions = [
        {"assertion": c["check"], "success": c["failed"] == 0, "column": c["column"] or None}
        for r in history
        for c in r["checks"]
    ]
    assertions = [{k: v for k, v in a.items() if v is not None} for a in assertions]
    delivered = {d.subscription: d.delivered for d in summary.deliveries}
    counts = lineage.RunCounts(
        summary.read, summary.passed, summary.quarantined, sum(delivered.values())
    )
    metrics = {"rowCount": summary.read, "columnMetrics": {}}
    if summary.status == "success":
        return lineage.run_completed(
            run, counts=counts, delivered=delivered, assertions=assertions, metrics=metrics
        )
    return lineage.run_failed(
        run, summary.message or summary.status, counts=counts,
        blocked=summary.status == "blocked", delivered=delivered, assertions=assertions,
        metrics=metrics,
    )


class DeliveryEvents:
    """One delivery's child run: START, then COMPLETE or FAIL. The run as OpenLineage sees it
    is built once, on the first event that is built at all (not with the kill switch on)."""

    def __init__(
        self, store: sa.Engine, run: Callable[[], lineage.ResourceRun], subscription: str
    ) -> None:
        self._store, self._run, self._subscription = store, run, subscription
        self._built: tuple[lineage.ResourceRun, lineage.SubscriptionInfo] | None = None

    def _delivery(self) -> tuple[lineage.ResourceRun, lineage.SubscriptionInfo]:
        if self._built is None:
            run = self._run()
            output = next(o for o in run.subscriptions if o.id == self._subscription)
            self._built = (run, output)
        return self._built

    def started(self) -> None:
            emit(self._store, lambda: lineage.delivery_started(*self._delivery()))

    def failed(self, error: BaseException) -> None:
            emit(self._store, lambda: lineage.delivery_failed(*self._delivery(), error))

    def completed(self, delivered: int) -> None:
            emit(self._store, lambda: lineage.delivery_completed(*self._delivery(), delivered))
