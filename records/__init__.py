"""What happened to each record, and who did what: provenance, trace, disputes, the audit log.

Public API (the rest of the package is internal):

- provenance: `record_provenance` (one row per delivered record and subscription: key, value
  hash, run, time; never the values; `DELETED` marks a delete), `deliveries_of`,
  `latest_hashes`, `live_keys`, `record_keys`, `split_key`, `value_hashes`, tables
  `provenance_metadata`;
- trace: `trace` (where a record came from and who received it), `read_source_record`,
  `source_hash`;
- disputes (数据异议): `open_dispute`, `acknowledge`, `reject`, `mark_resolved`,
  `get_dispute`, `list_disputes`, `require_state`, `DISPUTE_STATES`, deadlines
  `dispute_days` / `working_days_after`, tables `disputes_metadata`;
- the audit log (append-only, hash-chained): `append_audit`, `verify_audit`, `list_audit`,
  `audit_head` (→ `AuditEntry`, `VerifyResult`, `BadEntry`), tables `audit_metadata`;
- notifications: `notify` (an event and its outbox rows, in the step's transaction),
  `webhooks`, `EVENT_TYPES`, tables `notify_events`, `notify_outbox`, `notify_attempts`,
  `notifications_metadata`;
- metering: `usage_daily` (per subscription and day), `USAGE_COUNTS`, tables `usage_metadata`;
- verification records: `verify_records` (one row per record a consumer asked about), tables
  `verifications_metadata`.
"""

from records.audit import KINDS as AUDIT_KINDS
from records.audit import AuditEntry, AuditKind, BadEntry, VerifyResult
from records.audit import append as append_audit
from records.audit import head as audit_head
from records.audit import list_entries as list_audit
from records.audit import metadata as audit_metadata
from records.audit import verify as verify_audit
from records.disputes import STATES as DISPUTE_STATES
from records.disputes import (
    DisputeState,
    DisputeStateError,
    NothingToCorrectError,
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
from records.disputes import metadata as disputes_metadata
from records.notifications import EVENT_TYPES, EventType, notify, webhooks
from records.notifications import attempts as notify_attempts
from records.notifications import events as notify_events
from records.notifications import metadata as notifications_metadata
from records.notifications import outbox as notify_outbox
from records.provenance import (
    DELETED,
    deliveries_of,
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
from records.usage import metadata as usage_metadata
from records.usage import usage_daily
from records.verifications import metadata as verifications_metadata
from records.verifications import verify_records

__all__ = [
    "AUDIT_KINDS",
    "DELETED",
    "DISPUTE_STATES",
    "EVENT_TYPES",
    "USAGE_COUNTS",
    "AuditEntry",
    "AuditKind",
    "BadEntry",
    "DisputeState",
    "DisputeStateError",
    "EventType",
    "NothingToCorrectError",
    "VerifyResult",
    "acknowledge",
    "append_audit",
    "audit_head",
    "audit_metadata",
    "deliveries_of",
    "dispute_days",
    "disputes_metadata",
    "get_dispute",
    "latest_hashes",
    "list_audit",
    "list_disputes",
    "live_keys",
    "mark_resolved",
    "notifications_metadata",
    "notify",
    "notify_attempts",
    "notify_events",
    "notify_outbox",
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
    "usage_daily",
    "usage_metadata",
    "value_hashes",
    "verifications_metadata",
    "verify_audit",
    "verify_records",
    "webhooks",
    "working_days_after",
]
