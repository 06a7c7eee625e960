"""Resolving a dispute: the correction made at the source reaches everyone who got the old value.

    re-read the record by key from the source → the resource's quality gate → for every
    subscription that received the record: shape (project + mask, as `deliver` does) and
    fingerprint it; where the fingerprint differs from the last one delivered, load it
    (upsert; append targets get a new row, as their mode says) and record provenance
    → close the dispute with the evidence

All of it runs as one exchange run (`exchange_runs`, status success, its message naming the
dispute), so the re-deliveries show in `govex trace`, the run list and the targets'
`_govex_run_id` like any other delivery. A record that now fails the gate is refused before
anything is written (DataQualityError, exit 1): the provider fixes it and resolves again.
A failed load leaves the dispute acknowledged and the run failed; resolving again re-delivers
only where the consumer still holds a different value.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import sqlalchemy as sa

import catalog
import contracts
import records
from exchange.run import masking
from exchange.run.bookkeeping import deliveries, runs
from exchange.run.conform import conform
from exchange.run.secrets import master_key
from exchange.run.steps import is_active
from exchange.run.targets import shape_batch, target_spec, write_mode
from govex.errors import DataQualityError, FatalError

if TYPE_CHECKING:
    from connectors.base import TargetSpec, WriteMode

__all__ = ["resolve_dispute"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _gate(resource: catalog.Resource, contract: contracts.Contract, record: pa.Table) -> None:
    """The resource's own gate on the corrected record; DataQualityError naming the checks."""
    import quality

    checker = quality.resource_gate(contract, resource)
    result = checker.evaluate(record)
    if not result.num_failed:
        return
    counts: Counter[str] = Counter(
        f"{item['check']} on {item['column']}" if item["column"] else str(item["check"])
        for item in result.failures.select(["check", "column"]).to_pylist()
    )
    msg = (
        f"the corrected record fails the quality gate of {resource.code} "
        f"({', '.join(counts)}); fix it at the source, then resolve again"
    )
    raise DataQualityError(msg)


def resolve_dispute(store: sa.Engine, dispute_id: str, *, actor: str = "cli") -> dict[str, Any]:
    """Re-deliver the corrected record of an acknowledged dispute and close it with the
    evidence; returns the resolved dispute (as `records.get_dispute`)."""
    from openlineage.client.uuid import generate_new_uuid  # UUIDv7, as exchange runs use

    with store.connect() as conn:
        dispute = records.require_state(conn, dispute_id, "resolved")
        code, key = dispute["resource"], dispute["key"]
        resource = catalog.load_resource(conn, code)
        contract = catalog.load_contract_version(conn, resource.contract)
        subs = {s.id: s for s in catalog.load_subscriptions(conn, code)}
        latest = records.latest_hashes(conn, code, key)
        record = records.read_source_record(conn, resource, contract, key)
    if record.num_rows == 0:
        msg = (
            f"record '{key}' of {code} is no longer at the source "
            f"({resource.source.connection}); there is nothing to re-deliver: restore it or "
            f"reject dispute {dispute_id} with a reason"
        )
        raise FatalError(msg)
    _gate(resource, contract, record)
    schema = contracts.arrow_schema(contract)
    corrected = conform(record, schema)
    source_hash = records.source_hash(record, contract)

    today = _now().date()
    skipped = [
        {"subscription": sub_id,
         "reason": "no longer in the catalog" if sub_id not in subs else "outside its validity"}
        for sub_id in latest
        if sub_id not in subs or not is_active(subs[sub_id], today)
    ]
    candidates = [subs[s] for s in latest if s in subs and is_active(subs[s], today)]

    run_id = str(generate_new_uuid())
    started = _now()
    message = (
        f"re-delivery for dispute {dispute_id} ({code} record {key}, field {dispute['field']})"
    )
    with store.begin() as conn:
        conn.execute(sa.insert(runs), {
            "run_id": run_id, "resource": code, "status": "running", "subscription": None,
            "subscriptions": [s.id for s in candidates], "full": False, "parent": None,
            "cursor_start": None, "cursor_end": None, "read": 1, "passed": 1,
            "quarantined": 0, "started_at": started, "ended_at": None, "message": message,
        })
    secret = master_key(store)
    redelivered: list[dict[str, Any]] = []
    unchanged: list[dict[str, Any]] = []
    try:
        for sub in candidates:
            spec = target_spec(resource, contract, sub)
            delivered_at = _now()
            shaped = shape_batch(
                corrected, spec, resource, sub,
                key=masking.subscription_key(secret, sub.id), run_id=run_id,
                delivered_at=delivered_at,
            )
            new_hash = str(records.value_hashes(shaped, sub.fields)[0].as_py())
            old = latest[sub.id]
            if new_hash == old["hash"]:
                unchanged.append({"subscription": sub.id, "consumer": sub.consumer,
                                  "hash": new_hash})
                continue
            mode = write_mode(sub)
            _deliver_one(store, sub, spec, shaped, mode, run_id, delivered_at, dispute_id)
            with store.begin() as conn:
                records.record_provenance(
                    conn, resource=code, subscription=sub.id, run_id=run_id,
                    delivered_at=delivered_at, keys=records.record_keys(corrected, resource.key),
                    hashes=pa.array([new_hash], pa.string()),
                )
                conn.execute(sa.insert(deliveries), {
                    "run_id": run_id, "subscription": sub.id, "status": "success",
                    "delivered": 1, "started_at": delivered_at, "ended_at": _now(),
                    "message": f"{mode} of the corrected record",
                })
            redelivered.append({
                "subscription": sub.id, "consumer": sub.consumer,
                "target": f"{sub.target.connection}/{sub.target.table}", "mode": sub.mode,
                "old_hash": old["hash"], "old_run_id": old["run_id"], "new_hash": new_hash,
            })
    except Exception as error:
        _fail_run(store, run_id, f"{message} failed: {error}")
        raise

    evidence = {
        "run_id": run_id,
        "runs": [run_id],
        "source_hash": source_hash,
        "subscriptions": [r["subscription"] for r in redelivered],
        "redelivered": redelivered,
        "unchanged": unchanged,
        "skipped": skipped,
    }
    summary = (
        f"{message}: re-delivered to {len(redelivered)} subscription(s)"
        + (f", {len(unchanged)} already held the current value" if unchanged else "")
    )
    try:
        # The run's success, the audit entry and the dispute's closing commit together.
        with store.begin() as conn:
            conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(
                status="success", ended_at=_now(), message=summary,
                subscriptions=[r["subscription"] for r in redelivered],
            ))
            records.append_audit(conn, kind="correction", subject=run_id, actor=actor, detail={
                "dispute": dispute_id, "resource": code, "key": key,
                "redelivered": [{k: r[k] for k in ("subscription", "old_hash", "new_hash")}
                                for r in redelivered],
            })
            resolved: dict[str, Any] = records.mark_resolved(
                conn, dispute_id, evidence, actor=actor
            )
    except Exception as error:  # e.g. the dispute was rejected meanwhile
        _fail_run(store, run_id, f"{message} failed: {error}")
        raise
    return resolved


def _fail_run(store: sa.Engine, run_id: str, message: str) -> None:
    with store.begin() as conn:
        conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(
            status="failed", ended_at=_now(), message=message,
        ))


def _deliver_one(
    store: sa.Engine, sub: catalog.Subscription, spec: TargetSpec, shaped: pa.Table,
    mode: WriteMode, run_id: str, delivered_at: dt.datetime, dispute_id: str,
) -> None:
    """Load the shaped record into one subscription's target through its sink."""
    import connectors  # drivers load only when a dispute is resolved
    from connectors.base import LedgerEntry

    with store.connect() as conn:
        target = catalog.load_connection(conn, sub.target.connection)
    sink = connectors.open_sink(target.kind, target.target, target.format)
    try:
        sink.ensure_table(spec)
        # Keep the subscription's cursor in its ledger: a correction moves no watermark.
        previous = sink.read_ledger(sub.id)
        ledger = LedgerEntry(
            sub.id, sub.resource, run_id, previous.cursor if previous else None,
            extra={"dispute": dispute_id, "delivered_at": delivered_at.isoformat()},
        )
        sink.write(spec, shaped, mode, ledger)
    finally:
        sink.close()
