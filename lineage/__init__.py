"""Lineage events: OpenLineage RunEvents for every exchange run, and the lineage store.

Public API (the rest of the package is internal):

- dataset names: `DatasetName`, `sql_dataset`, `connection_dataset`, `source_dataset`,
  `target_dataset`, `file_dataset`, `kafka_dataset`;
- event builders for an exchange run: `ResourceRun` (+ `ResourceInfo`, `SubscriptionInfo`,
  `Parent`, `RunCounts`), `run_started` / `run_completed` / `run_failed`,
  `delivery_started` / `delivery_completed` / `delivery_failed`;
- the emitter: `emit(store, event)`, which never raises; kill switch `lineage_disabled()`;
- the lineage store: `metadata`, `store_event`, `list_events`, `failure_count`,
  `govex_run_ids`;
- events from other producers: `validate_run_event` (the spec, before storing),
  `govex_claims` and `run_ids` (an event that speaks for govex's own runs is a forgery).

What happened to each record (provenance, trace, disputes, the audit log) is `records`.
"""


from lineage.datasets import (
    DatasetName,
    connection_dataset,
    file_dataset,
    kafka_dataset,
    source_dataset,
    sql_dataset,
    target_dataset,
)
from lineage.emit import LineageSettings, emission_failures, emit, lineage_disabled
from lineage.events import (
    JOB_NAMESPACE,
    Parent,
    ParentLike,
    ResourceInfo,
    ResourceRun,
    RunCounts,
    RunEvent,
    SchemaField,
    SubscriptionInfo,
    delivery_completed,
    delivery_failed,
    delivery_job_name,
    delivery_run_id,
    delivery_started,
    producer,
    resource_job_name,
    run_completed,
    run_failed,
    run_started,
    schema_from_arrow,
    schema_from_json_schema,
)
from lineage.facets import GOVEX_FACETS, SCHEMA_BASE_URL, SCHEMA_DIR, schema_url
from lineage.tables import (
    failure_count,
    govex_run_ids,
    list_events,
    list_failures,
    metadata,
    store_event,
)
from lineage.validate import govex_claims, run_ids, validate_run_event

__all__ = [
    "GOVEX_FACETS",
    "JOB_NAMESPACE",
    "SCHEMA_BASE_URL",
    "SCHEMA_DIR",
    "DatasetName",
    "LineageSettings",
    "Parent",
    "ParentLike",
    "ResourceInfo",
    "ResourceRun",
    "RunCounts",
    "RunEvent",
    "SchemaField",
    "SubscriptionInfo",
    "connection_dataset",
    "delivery_completed",
    "delivery_failed",
    "delivery_job_name",
    "delivery_run_id",
    "delivery_started",
    "emission_failures",
    "emit",
    "failure_count",
    "file_dataset",
    "govex_claims",
    "govex_run_ids",
    "kafka_dataset",
    "lineage_disabled",
    "list_events",
    "list_failures",
    "metadata",
    "producer",
    "resource_job_name",
    "run_completed",
    "run_failed",
    "run_ids",
    "run_started",
    "schema_from_arrow",
    "schema_from_json_schema",
    "schema_url",
    "source_dataset",
    "sql_dataset",
    "store_event",
    "target_dataset",
    "validate_run_event",
]
