"""One exchange run: where a record goes from its authoritative source to every subscriber.

    start_run → extract → gate → deliver (once per active subscription) → finish

- `steps`: the run's steps, each restartable in its own process (Airflow tasks), and
  `run_resource`, which runs them all in one (the CLI, tests, benchmarks);
- `landing_source`: the landing table of a Kafka-fed resource read as its source;
- `backfill`: which subscriptions lack what the watermark says (new, changed, left behind),
  and where a run's single read is split so that they get everything and the others only
  the increment;
- `conform`: casting source batches to the contract's Arrow types;
- `encoding`: text no target can hold (U+0000, bytes that are not UTF-8), found before the
  gate: its record is quarantined, the run goes on;
- `staging`: the run's batches between steps, as Arrow IPC files (private, removed when the
  run ends or is abandoned);
- `targets` + `masking`: projecting the approved fields, masking them per subscription, and
  the shape of the target table (to add a masking function: `masking.py`, and its name in
  `catalog.MASKING_FUNCTIONS`);
- `secrets`: the master key behind keyed hashing;
- `bookkeeping`: every statement on runs, deliveries, watermarks and subscription progress
  (the tables `runs` and `deliveries` are public for read-only views such as the web app's);
- `delivery`: the one delivery path (shape → sink write with the ledger → provenance → the
  delivery row), used by `deliver` and by the dispute correction;
- `lineage_events`: the run's OpenLineage events;
- `correction`: a resolved dispute's correction re-delivered through the same delivery path.
"""

from exchange.run.bookkeeping import Delivery, RunSummary, deliveries, list_runs, load_summary, runs
from exchange.run.correction import resolve_dispute
from exchange.run.landing_source import landing_progress
from exchange.run.secrets import master_key
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

__all__ = [
    "Delivery",
    "ParentRun",
    "RunSummary",
    "deliver",
    "extract",
    "finish",
    "gate",
    "deliveries",
    "is_active",
    "landing_progress",
    "list_runs",
    "load_summary",
    "master_key",
    "resolve_dispute",
    "run_resource",
    "runs",
    "start_run",
    "subscriptions_of",
]
