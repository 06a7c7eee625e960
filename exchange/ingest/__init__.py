"""The Kafka ingestion worker (`govex ingest`): vertical systems push JSON envelopes, govex
checks them against the contract and the quality gate and lands them, exactly once, in the
resource's landing table, which is then that resource's source for its exchange runs.

- `worker`: `run_ingest`, the worker: its start step (resources, broker, stored offsets) and
  its poll loop of micro-batches;
- `group`: partitioned ingest, the workers of one consumer group splitting the partitions;
- `sent_letters`: dead letters already in the DLQ past the stored offsets, not sent twice;
- `envelope`: one message decoded and checked against the govex envelope;
- `checks`: a micro-batch judged: envelopes, then the contract and the quality gate;
- `landing`: a judged micro-batch dead-lettered and landed in one transaction with its
  offsets (exactly-once landing), and store outages ridden out;
- `resource`: a Kafka-fed resource as the worker needs it (topic, contract, gate, tables);
- `tables`: the landing and offset tables.

An exchange run reads a landing table and needs `tables` alone: the worker's names load on
first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from exchange.ingest.tables import landing_table, landing_table_name, offsets
from govex.lazy import lazy_names

if TYPE_CHECKING:
    from exchange.ingest.landing import dlq_topic
    from exchange.ingest.resource import ingest_topic
    from exchange.ingest.worker import IngestStats, run_ingest

__all__ = [
    "IngestStats",
    "dlq_topic",
    "ingest_topic",
    "landing_table",
    "landing_table_name",
    "offsets",
    "run_ingest",
]

_LAZY = {
    "IngestStats": "worker",
    "dlq_topic": "landing",
    "ingest_topic": "resource",
    "run_ingest": "worker",
}


__getattr__ = lazy_names(__name__, _LAZY)
