"""Resolving a dispute: the correction made at the source reaches everyone who got the old value.

    re-read the record by key from the source → the resource's quality gate → for every
    subscription that received the record: shape (project + mask, as a run does) and
    fingerprint it; where the fingerprint differs from the last one delivered, send it down the
    one delivery path (`delivery`: load, upsert or append as the target's mode says, provenance,
    delivery row) → close the dispute with the evidence

All of it runs as one exchange run (`exchange_runs`, status success, its message naming the
dispute), so the re-deliveries show in `govex trace`, the run list and the targets'
`_govex_run_id` like any other delivery. A record that now fails the gate is refused before
anything is written (DataQualityError, exit 1): the provider fixes it and resolves again.
A failed load leaves the dispute acknowledged and the run failed; resolving again re-delivers
only where the consumer still holds a different value. A record that every subscription
already holds as the source has it now was not corrected: resolving it is refused
(NothingToCorrectError, before anything is written) unless forced, since the usual meaning is
that the value stands and the dispute should be rejected.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

import catalog
import contracts
import quality
import records
from exchange.run import bookkeeping, dispute_flags, ending, leases
from exchange.run.conform import conform
from exchange.run.delivery import DeliveryJob, deliver_batches
from exchange.run.encoding import check_encoding
from exchange.run.secrets import master_key
from exchange.run.steps import is_active
from govex.errors import DataQualityError, FatalError
from govex.ids import new_run_id
from govex.workdays import local_date

__all__ = ["resolve_dispute"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class _Case:
    """An acknowledged dispute and what resolving it needs, read in one transaction."""

    dispute: dict[str, Any]
    resource: catalog.Resource
    contract: contracts.Contract
    subscriptions: dict[str, catalog.Subscription]
    latest: dict[str, dict[str, Any]]  # the last delivery of the record per subscription
    record: pa.Table  # as the source holds it now
    ended: dict[str, str] = field(default_factory=dict)  # revoked or expired: why (`ending`)

    @property
    def message(self) -> str:
        """The correction run's message: the dispute it answers."""
        d = self.dispute
        return (
            f"re-delivery for dispute {d['id']} ({d['resource']} record {d['key']}, "
            f"field {d['field']})"
        )


def resolve_dispute(
    store: sa.Engine,
    dispute_id: str,
    *,
    actor: str = "cli",
    force: bool = False,
    wait: float = 0,
) -> dict[str, Any]:
    """Re-deliver the corrected record of an acknowledged dispute and close it with the
    evidence; returns the resolved dispute (as `records.get_dispute`). NothingToCorrectError
    when no subscription would receive anything new, unless `force`. Like a run, it holds the
    resource's lease (`leases`; `wait` as `start_run`'s): a run under way would otherwise
    deliver its older read of the record over the correction."""
    case = _read_case(store, dispute_id)
    with store.connect() as conn:  # judged with the GB/T 2260 additions a run would use
        stored = catalog.stored_reference(conn)
    quality.use_division_overrides(stored.rows if stored else [])
    _gate(case.resource, case.contract, case.record)
    corrected = conform(case.record, contracts.arrow_schema(case.contract))
    candidates, skipped = _candidates(case)
    run_id = new_run_id()  # UUIDv7, as OpenLineage wants
    secret = master_key(store)
    # No candidate at all (every receiver gone or expired) is not a claim of a correction.
    if not force and candidates and not _any_change(case, run_id, corrected, candidates, secret):
        raise _nothing_to_correct(case)
    leases.take(store, case.resource.code, run_id, wait=wait)
    try:
        with store.begin() as conn:
            bookkeeping.insert_run(
                conn, run_id, case.resource.code, subscriptions=[s.id for s in candidates],
                started_at=_now(), read=1, passed=1, message=case.message,
            )
    except BaseException:
        with store.begin() as conn:
            leases.release(conn, run_id)
        raise
    try:
        with leases.held(store, run_id):
            redelivered, unchanged = _redeliver(
                store, case, run_id, corrected, candidates, secret
            )
    except Exception as error:
        _fail_run(store, run_id, f"{case.message} failed: {error}")
        raise
    evidence = {
        "run_id": run_id,
        "runs": [run_id],
        "source_hash": records.source_hash(case.record, case.contract),
        "subscriptions": [r["subscription"] for r in redelivered],
        "redelivered": redelivered,
        "unchanged": unchanged,
        "skipped": skipped,
    }
    resolved = _close(store, case, run_id, evidence, actor)
    # Closed: the flag leaves every copy (the re-delivered rows were written without it).
    dispute_flags.settle(store, case.resource.code)
    return resolved


def _read_case(store: sa.Engine, dispute_id: str) -> _Case:
    """The dispute (which must be acknowledged), its resource, and the record as the source
    holds it now; FatalError when the record is gone from the source."""
    with store.connect() as conn:
        dispute = records.require_state(conn, dispute_id, "resolved")
        code, key = dispute["resource"], dispute["key"]
        resource = catalog.load_resource(conn, code)
        contract = catalog.load_contract_version(conn, resource.contract)
        case = _Case(
            dispute, resource, contract,
            {s.id: s for s in catalog.load_subscriptions(conn, code)},
            records.latest_hashes(conn, code, key),
            records.read_source_record(conn, resource, contract, key),
            {k: e.message() for k, e in
             ending.ended_subscriptions(conn, code, local_date(_now())).items()},
        )
    if case.record.num_rows == 0:
        msg = (
            f"record '{key}' of {code} is no longer at the source "
            f"({resource.source.connection}); there is nothing to re-deliver: restore it or "
            f"reject dispute {dispute_id} with a reason"
        )
        raise FatalError(msg)
    return case


def _gate(resource: catalog.Resource, contract: contracts.Contract, record: pa.Table) -> None:
    """The resource's own gate on the corrected record; DataQualityError naming the checks."""
    checker = quality.resource_gate(contract, resource)
    encoding = check_encoding(record)  # a NUL or undecodable text fails here, as in a run
    result = encoding.judged(checker.evaluate(encoding.batch))
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


def _candidates(case: _Case) -> tuple[list[catalog.Subscription], list[dict[str, Any]]]:
    """The subscriptions that received the record and still may receive it, and the others
    with the reason they are skipped."""
    today = local_date(_now())
    subs = case.subscriptions
    skipped = [
        {"subscription": sub_id,
         "reason": "no longer in the catalog" if sub_id not in subs
         else case.ended.get(sub_id, "outside its validity")}
        for sub_id in case.latest
        if sub_id not in subs or sub_id in case.ended or not is_active(subs[sub_id], today)
    ]
    candidates = [subs[s] for s in case.latest
                  if s in subs and s not in case.ended and is_active(subs[s], today)]
    return candidates, skipped


def _job(
    case: _Case, run_id: str, sub: catalog.Subscription, corrected: pa.Table, secret: bytes
) -> tuple[DeliveryJob, str]:
    """The delivery of the corrected record to `sub`, and the fingerprint it would deliver."""
    job = DeliveryJob(
        run_id, case.resource, case.contract, sub, secret, _now(), dispute=case.dispute["id"],
    )
    return job, str(records.value_hashes(job.shape(corrected), sub.fields)[0].as_py())


def _any_change(
    case: _Case, run_id: str, corrected: pa.Table, candidates: list[catalog.Subscription],
    secret: bytes,
) -> bool:
    """Whether some candidate would receive a value other than the one it last received."""
    return any(
        _job(case, run_id, sub, corrected, secret)[1] != case.latest[sub.id]["hash"]
        for sub in candidates
    )


def _nothing_to_correct(case: _Case) -> records.NothingToCorrectError:
    d = case.dispute
    msg = (
        f"record '{d['key']}' of {d['resource']} is unchanged at the source for every "
        f"subscription that received it, so resolving dispute {d['id']} would re-deliver "
        "nothing; if the value stands, reject the dispute with `govex dispute reject` "
        "(--reason TEXT), or resolve with --force to close it as resolved anyway"
    )
    return records.NothingToCorrectError(msg, field="ID", value=d["id"])


def _redeliver(
    store: sa.Engine,
    case: _Case,
    run_id: str,
    corrected: pa.Table,
    candidates: list[catalog.Subscription],
    secret: bytes,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Send the corrected record to each candidate whose last delivered fingerprint differs;
    returns (redelivered, unchanged) for the evidence."""
    redelivered: list[dict[str, Any]] = []
    unchanged: list[dict[str, Any]] = []
    for sub in candidates:
        job, new_hash = _job(case, run_id, sub, corrected, secret)
        old = case.latest[sub.id]
        if new_hash == old["hash"]:
            unchanged.append({"subscription": sub.id, "consumer": sub.consumer,
                              "hash": new_hash})
            continue
        deliver_batches(store, job, [corrected])
        redelivered.append({
            "subscription": sub.id, "consumer": sub.consumer,
            "target": f"{sub.sink.connection}/{sub.sink.table}", "mode": sub.mode,
            "old_hash": old["hash"], "old_run_id": old["run_id"], "new_hash": new_hash,
        })
    return redelivered, unchanged


def _close(
    store: sa.Engine, case: _Case, run_id: str, evidence: dict[str, Any], actor: str
) -> dict[str, Any]:
    """The run's success, the audit entry and the dispute's closing commit together."""
    redelivered, unchanged = evidence["redelivered"], evidence["unchanged"]
    summary = (
        f"{case.message}: re-delivered to {len(redelivered)} subscription(s)"
        + (f", {len(unchanged)} already held the current value" if unchanged else "")
    )
    d = case.dispute
    try:
        with store.begin() as conn:
            bookkeeping.close_run(
                conn, run_id, "success", ended_at=_now(), message=summary,
                subscriptions=[r["subscription"] for r in redelivered],
            )
            leases.release(conn, run_id)
            records.append_audit(conn, kind="correction", subject=run_id, actor=actor, detail={
                "dispute": d["id"], "resource": d["resource"], "key": d["key"],
                "redelivered": [{k: r[k] for k in ("subscription", "old_hash", "new_hash")}
                                for r in redelivered],
            })
            resolved: dict[str, Any] = records.mark_resolved(
                conn, d["id"], evidence, actor=actor
            )
    except Exception as error:  # e.g. the dispute was rejected meanwhile
        _fail_run(store, run_id, f"{case.message} failed: {error}")
        raise
    return resolved


def _fail_run(store: sa.Engine, run_id: str, message: str) -> None:
    with store.begin() as conn:
        bookkeeping.close_run(conn, run_id, "failed", ended_at=_now(), message=message)
        leases.release(conn, run_id)
