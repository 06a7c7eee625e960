"""What happened to each record, and who did what: provenance, trace, disputes, the audit log.

Public API (the rest of the package is internal):

- provenance: `record_provenance` (one row per delivered record and subscription: key, value
  hash, run, time; never the values; `DELETED` marks a delete), `deliveries_of`,
  `delivered_hashes` (a subscription's fingerprints, streamed: leak tracing),
  `latest_hashes`, `live_keys`, `record_keys`, `split_key`, `value_hashes`, tables
  `provenance_metadata`; for several records `deliveries_of_keys`, `latest_deliveries`,
  and `delivered_keys` (every key a subscription was sent), each also answering from what
  retention kept (`beyond_retention`);
- provenance over time: `maintain_provenance` (monthly partitions on PostgreSQL, sealing,
  retention with an audit entry per dropped month, and the same retention for the
  verification records with one audit entry per run; → `ProvenanceMaintenance`);
- trace: `trace` (where a record came from and who received it), `read_source_record`,
  `source_hash`;
- disputes (数据异议): `open_dispute`, `acknowledge`, `reject`, `mark_resolved`,
  `get_dispute`, `list_disputes`, `require_state`, `DISPUTE_STATES`, deadlines
  `dispute_days` / `working_days_after`, tables `disputes_metadata`;
- dispute flags (异议标注): per dispute and subscription, what the consumer's copy must show
  and whether it does: `disputed_keys`, `sync_flags`, `pending_flags`, `current_flags`,
  `flag_applied`, `flag_failed`, `flags_of`, `disputes_received_by` (→ `FlagRow`,
  `FlagState`), tables `dispute_flags_metadata`;
- the audit log (append-only, hash-chained): `append_audit`, `verify_audit`, `list_audit`,
  `audit_head` (→ `AuditEntry`, `VerifyResult`, `BadEntry`), tables `audit_metadata`;
- notifications: `notify` (an event and its outbox rows, in the step's transaction),
  `webhooks`, `EVENT_TYPES`, tables `notify_events`, `notify_outbox`, `notify_attempts`,
  `notifications_metadata`;
- metering: `count_usage` (adds to a subscription's day in the caller's transaction), `usage`
  (a report per subscription and day, with totals: `UsageReport`, `UsageRow`),
  `delivered_bytes` (what a delivered batch counts as bytes), `usage_day`, for a caller
  sending the day's count within a statement of its own `usage_upsert` and `usage_counts`,
  `usage_daily` (per subscription and day), `USAGE_COUNTS`, tables `usage_metadata`;
- verification records: `verify_records` (one row per record a consumer asked about), tables
  `verifications_metadata`.
- disclosure (使用情况公开): `disclosure` (every department that received or verified one
  record: when, which fields, under which subscription and purpose), `disclosures` (the same
  for several keys), `search_pii` (the same for every record holding one value of an
  `x-govex-pii` category, e.g. one ID number, across resources), `DISCLOSURE_ACTIONS`.
"""

from records.audit import KINDS as AUDIT_KINDS
from records.audit import AuditEntry, AuditKind, BadEntry, VerifyResult
from records.audit import append as append_audit
from records.audit import head as audit_head
from records.audit import list_entries as list_audit
from records.audit import metadata as audit_metadata
from records.audit import verify as verify_audit
from records.disclosure import ACTIONS as DISCLOSURE_ACTIONS
from records.disclosure import disclosure, disclosures, search_pii
from records.dispute_flags import FlagRow, FlagState, flags_of
from records.dispute_flags import applied as flag_applied
from records.dispute_flags import current as current_flags
from records.dispute_flags import failed as flag_failed
from records.dispute_flags import metadata as dispute_flags_metadata
from records.dispute_flags import pending as pending_flags
from records.dispute_flags import received_by as disputes_received_by
from records.disputes import STATES as DISPUTE_STATES
from records.disputes import (
    DisputeState,
    DisputeStateError,
    NothingToCorrectError,
    acknowledge,
    dispute_days,
    disputed_keys,
    get_dispute,
    list_disputes,
    mark_resolved,
    open_dispute,
    reject,
    require_state,
    sync_flags,
    working_days_after,
)
from records.disputes import metadata as disputes_metadata
from records.notifications import EVENT_TYPES, EventType, notify, webhooks
from records.notifications import attempts as notify_attempts
from records.notifications import events as notify_events
from records.notifications import metadata as notifications_metadata
from records.notifications import outbox as notify_outbox
from records.partitions import Maintenance as ProvenanceMaintenance
from records.partitions import maintain as maintain_provenance
from records.provenance import (
    DELETED,
    delivered_hashes,
    delivered_keys,
    deliveries_of,
    deliveries_of_keys,
    latest_deliveries,
    latest_hashes,
    live_keys,
    record_keys,
    record_provenance,
    split_key,
    value_hashes,
)
from records.provenance import metadata as provenance_metadata
from records.trace import read_source_record, source_hash, trace
from records.usage import COUNTS as USAGE_COUNTS
from records.usage import (
    UsageReport,
    UsageRow,
    count_usage,
    delivered_bytes,
    usage,
    usage_counts,
    usage_daily,
    usage_day,
    usage_upsert,
)
from records.usage import metadata as usage_metadata
from records.verifications import metadata as verifications_metadata
from records.verifications import verify_records

__all__ = [
    "AUDIT_KINDS",
    "DELETED",
    "DISCLOSURE_ACTIONS",
    "DISPUTE_STATES",
    "EVENT_TYPES",
    "USAGE_COUNTS",
    "AuditEntry",
    "AuditKind",
    "BadEntry",
    "DisputeState",
    "DisputeStateError",
    "EventType",
    "FlagRow",
    "FlagState",
    "NothingToCorrectError",
    "ProvenanceMaintenance",
    "UsageReport",
    "UsageRow",
    "VerifyResult",
    "acknowledge",
    "append_audit",
    "audit_head",
    "audit_metadata",
    "count_usage",
    "current_flags",
    "delivered_bytes",
    "delivered_hashes",
    "delivered_keys",
    "deliveries_of",
    "deliveries_of_keys",
    "disclosure",
    "disclosures",
    "dispute_days",
    "dispute_flags_metadata",
    "disputed_keys",
    "disputes_received_by",
    "disputes_metadata",
    "flag_applied",
    "flag_failed",
    "flags_of",
    "get_dispute",
    "latest_deliveries",
    "latest_hashes",
    "list_audit",
    "maintain_provenance",
    "list_disputes",
    "live_keys",
    "mark_resolved",
    "notifications_metadata",
    "notify",
    "notify_attempts",
    "notify_events",
    "notify_outbox",
    "open_dispute",
    "pending_flags",
    "provenance_metadata",
    "read_source_record",
    "record_keys",
    "record_provenance",
    "reject",
    "require_state",
    "search_pii",
    "source_hash",
    "split_key",
    "sync_flags",
    "trace",
    "usage",
    "usage_counts",
    "usage_daily",
    "usage_day",
    "usage_metadata",
    "usage_upsert",
    "value_hashes",
    "verifications_metadata",
    "verify_audit",
    "verify_records",
    "webhooks",
    "working_days_after",
]
