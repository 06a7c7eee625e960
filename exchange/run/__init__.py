"""One exchange run: where a record goes from its authoritative source to every subscriber.

    start_run → extract → gate → deliver (once per active subscription) → finish

- `steps`: the run's steps, each restartable in its own process (Airflow tasks), and
  `run_resource`, which runs them all in one (the CLI, tests, benchmarks);
- `landing_source`: the landing table of a Kafka-fed resource read as its source;
- `dry_run`: `govex run --dry-run`, a run's read and gate in memory, recording nothing;
- `backfill`: which subscriptions lack what the watermark says (new, changed, left behind),
  and where a run's single read is split so that they get everything and the others only
  the increment;
- `conform`: casting source batches to the contract's Arrow types;
- `encoding`: text no target can hold (U+0000, bytes that are not UTF-8), found before the
  gate: its record is quarantined, the run goes on;
- `staging`: the run's batches between steps, as Arrow IPC files on local disk or object
  storage (private or server-side encrypted, whole or absent, removed when the run ends or is
  abandoned);
- `targets` + `masking`: projecting the approved fields, masking them per subscription, and
  the shape of the target table (to add a masking function: `masking.py`, and its name in
  `catalog.MASKING_FUNCTIONS`);
- `secrets`: the master key behind keyed hashing;
- `schema_check`: whether the source and target tables still fit the contract (asked before
  extract reads, by `govex check` and as `govex apply`'s warning);
- `bookkeeping`: every statement on runs, deliveries, watermarks and subscription progress
  (the tables `runs` and `deliveries` are public for read-only views such as the web app's);
- `leases`: the lease a run holds on its resource, so that two runs of one resource never
  both deliver (taken at start, renewed while steps work, given back at finish);
- `delivery`: the one delivery path (shape → sink write with the ledger → provenance → the
  delivery row; a verify subscription's verification index, `exchange.verify`, instead of a
  sink), used by `deliver` and by the dispute correction;
- `lineage_events`: the run's OpenLineage events;
- `correction`: a resolved dispute's correction re-delivered through the same delivery path;
- `dispute_flags`: the disputed-record flag (`_govex_disputed`, `_govex_disputes`) written into
  the consumers' targets when a dispute opens or closes, after each delivery, and at `finish`;
- `ending`: a subscription's end (revoked, expired): revocation, the runs skipping it, and
  the purge of what it was delivered;
- `source_deletes`: rows a table or query source marks deleted (`source.deleted`), staged as
  deletes; `reconcile`: keys gone from such a source deleted from the targets
  (`--reconcile`, `source.reconcile`).

A dispute's correction and a key reconciliation are rarer than a run: their names load on
first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchange.run.bookkeeping import Delivery, RunSummary, deliveries, list_runs, load_summary, runs
from exchange.run.dry_run import DryRun, WouldReceive, dry_run
from exchange.run.landing_source import landing_progress
from exchange.run.secrets import find_master_key, master_key
from exchange.run.steps import (
    ParentRun,
    deliver,
    extract,
    finish,
    gate,
    is_active,
    run_resource,
    start_run,
    subscriptions_of,
)
from govex.lazy import lazy_names

if TYPE_CHECKING:
    from exchange.run.correction import resolve_dispute
    from exchange.run.reconcile import reconcile_due, reconcile_resource

__all__ = [
    "Delivery",
    "DryRun",
    "ParentRun",
    "RunSummary",
    "deliver",
    "extract",
    "find_master_key",
    "finish",
    "gate",
    "deliveries",
    "dry_run",
    "is_active",
    "landing_progress",
    "list_runs",
    "load_summary",
    "master_key",
    "reconcile_due",
    "reconcile_resource",
    "resolve_dispute",
    "run_resource",
    "runs",
    "start_run",
    "subscriptions_of",
    "WouldReceive",
]

_LAZY = {
    "resolve_dispute": "correction",
    "reconcile_due": "reconcile",
    "reconcile_resource": "reconcile",
}


__getattr__ = lazy_names(__name__, _LAZY)
