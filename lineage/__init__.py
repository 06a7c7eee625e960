"""OpenLineage events, record provenance, trace, disputes and the audit log.

Public API (the rest of the package is internal):

- dataset names: `DatasetName`, `sql_dataset`, `connection_dataset`, `source_dataset`,
  `target_dataset`, `file_dataset`, `kafka_dataset`;
- event builders for an exchange run: `ResourceRun` (+ `ResourceInfo`, `SubscriptionInfo`,
  `Parent`, `RunCounts`), `run_started` / `run_completed` / `run_failed`,
  `delivery_started` / `delivery_completed` / `delivery_failed`;
- the emitter: `emit(store, event)`, which never raises; kill switch `lineage_disabled()`;
- the lineage store: `metadata`, `store_event`, `list_events`, `failure_count`.
- the audit log (hash-chained): `append_audit`, `verify_audit`, `list_audit`, `audit_head`
  (→ `AuditEntry`, `VerifyResult`, `BadEntry`), its tables `audit_metadata`.
"""

from lineage.audit import KINDS as AUDIT_KINDS
from lineage.audit import AuditEntry, AuditKind, BadEntry, VerifyResult
from lineage.audit import append as append_audit
from lineage.audit import head as audit_head
from lineage.audit import list_entries as list_audit
from lineage.audit import metadata as audit_metadata
from lineage.audit import verify as verify_audit
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
from lineage.facets import (
    SCHEMA_BASE_URL,
    SCHEMA_DIR,
    GovexResourceRunFacet,
    GovexRunCountsRunFacet,
    GovexSubscriptionRunFacet,
    schema_url,
)
from lineage.tables import (
    failure_count,
    list_events,
    list_failures,
    metadata,
    store_event,
)

__all__ = [
    "JOB_NAMESPACE",
    "SCHEMA_BASE_URL",
    "SCHEMA_DIR",
    "DatasetName",
    "GovexResourceRunFacet",
    "GovexRunCountsRunFacet",
    "GovexSubscriptionRunFacet",
    "LineageSettings",
    "Parent",
    "ParentLike",
    "ResourceInfo",
    "ResourceRun",
    "RunCounts",
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
    "kafka_dataset",
    "lineage_disabled",
    "list_events",
    "list_failures",
    "metadata",
    "producer",
    "resource_job_name",
    "run_completed",
    "run_failed",
    "run_started",
    "schema_from_arrow",
    "schema_from_json_schema",
    "schema_url",
    "source_dataset",
    "sql_dataset",
    "store_event",
    "target_dataset",
    "AUDIT_KINDS",
    "AuditEntry",
    "AuditKind",
    "BadEntry",
    "VerifyResult",
    "append_audit",
    "audit_head",
    "audit_metadata",
    "list_audit",
    "verify_audit",
]

# Record provenance, trace and disputes (lineage.provenance, lineage.trace, lineage.disputes).
from lineage.disputes import STATES as DISPUTE_STATES  # noqa: E402
from lineage.disputes import (  # noqa: E402
    DisputeState,
    DisputeStateError,
    acknowledge,
    dispute_days,
    get_dispute,
    list_disputes,
    mark_resolved,
    open_dispute,
    reject,
    require_state,
    working_days_after,
)
from lineage.disputes import metadata as disputes_metadata  # noqa: E402
from lineage.provenance import (  # noqa: E402
    deliveries_of,
    latest_hashes,
    record_keys,
    record_provenance,
    split_key,
    value_hashes,
)
from lineage.provenance import metadata as provenance_metadata  # noqa: E402
from lineage.trace import read_source_record, source_hash, trace  # noqa: E402

__all__ += [
    "DISPUTE_STATES",
    "DisputeState",
    "DisputeStateError",
    "acknowledge",
    "deliveries_of",
    "dispute_days",
    "disputes_metadata",
    "get_dispute",
    "latest_hashes",
    "list_disputes",
    "mark_resolved",
    "open_dispute",
    "provenance_metadata",
    "read_source_record",
    "record_keys",
    "record_provenance",
    "reject",
    "require_state",
    "source_hash",
    "split_key",
    "trace",
    "value_hashes",
    "working_days_after",
]
