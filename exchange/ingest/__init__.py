"""The Kafka ingestion worker (`govex ingest`): vertical systems push JSON envelopes, govex
checks them against the contract and the quality gate and lands them, exactly once, in the
resource's landing table, which is then that resource's source for its exchange runs.

`tables` holds the landing and offset tables; `worker` the worker itself.
"""

from exchange.ingest.tables import landing_table, landing_table_name, offsets
from exchange.ingest.worker import IngestStats, dlq_topic, ingest_topic, run_ingest

__all__ = [
    "IngestStats",
    "dlq_topic",
    "ingest_topic",
    "landing_table",
    "landing_table_name",
    "offsets",
    "run_ingest",
]
