"""One delivery: records into one subscription's target, the only path by which data reaches a
consumer.

    project the approved fields → mask → shape (`targets`) → sink write with the target's
    ledger → provenance rows → the delivery row (and, for a run, its audit entry)

`steps.deliver` sends a run's staged batches through it; `correction` sends a dispute's
corrected record; `reconcile` sends the keys gone from a source (to a verify subscription's
index, their key digests: `forget_in_index`, since the index knows no key). A batch's
provenance is written only after the target committed the batch; the delivery row says
success only after every batch and its provenance committed. A crash in between leaves the run
unfinished and the watermark unmoved: the rerun delivers and records these rows again.

The target's ledger names the run and counts its rows; it holds no cursor. A cursor is made of
watermark and key values, which are record values (a resident ID, when it is the key) that a
subscription may not be approved to see; how far each subscription holds its resource is kept
in the store instead (`bookkeeping.progress`).
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa
import sqlalchemy as sa

import catalog
import connectors
import contracts
import records
from connectors.base import LedgerEntry, SinkConnector, TargetSpec
from exchange.run import bookkeeping, dispute_flags, masking
from exchange.run.targets import shape_batch, shape_keys, target_spec, write_mode
from exchange.verify import index as verify_index
from govex import progress as meter
from govex.ahead import ahead

if TYPE_CHECKING:
    from exchange.run.leases import Heartbeat

__all__ = [
    "VERIFICATION_INDEX", "DeliveryJob", "deliver_batches", "forget_in_index", "run_actor",
]

#: Where a verify subscription's deliveries go, as the audit log and summaries name it.
VERIFICATION_INDEX = "verification index"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run_actor(parent: Mapping[str, Any] | None) -> tuple[str, dict[str, str]]:
    """Who a run acts as in the audit log: `airflow` with its DAG run id when Airflow drives
    it, else `cli`; and the detail to add to the entry."""
    dag_run_id = (parent or {}).get("dag_run_id")
    if dag_run_id:
        return "airflow", {"dag_run_id": str(dag_run_id)}
    return "cli", {}


@dataclass(frozen=True)
class DeliveryJob:
    """One subscription's share of a run: what goes where, under which run and ledger.

    A run's job says whether a snapshot target is swapped whole (`replace`), which unfinished
    runs' appended rows go first (`stale`), and whether it is a `backfill` (marked on the
    delivery row). A correction's job names its `dispute` instead: it writes the dispute into
    the ledger, notes what it loaded on the delivery row, and leaves the audit entry to the
    correction's.
    """

    run_id: str
    resource: catalog.Resource
    contract: contracts.Contract
    sub: catalog.Subscription
    secret: bytes  # the master key behind keyed masking (`secrets.master_key`)
    delivered_at: dt.datetime
    replace: bool = False
    stale: tuple[str, ...] = ()
    backfill: bool = False
    dispute: str | None = None
    parent: Mapping[str, Any] | None = None  # the run's ParentRun JSON: who drives it
    # Record keys under an open or acknowledged dispute as the delivery began (read by
    # `deliver_batches`): their rows carry `_govex_disputed = true`.
    disputed: frozenset[str] = frozenset()

    @cached_property
    def spec(self) -> TargetSpec:
        return target_spec(self.resource, self.contract, self.sub)

    @cached_property
    def key(self) -> bytes:
        """The subscription's own masking key."""
        return masking.subscription_key(self.secret, self.sub.id)

    def shape(self, batch: pa.Table) -> pa.Table:
        """Project the approved fields, mask them, add the `_govex_*` columns."""
        return shape_batch(
            batch, self.spec, self.resource, self.sub,
            key=self.key, run_id=self.run_id, delivered_at=self.delivered_at,
            disputed=self.disputed,
        )


_Check = Callable[[Iterable[pa.Table]], Iterator[pa.Table]]  # `Heartbeat.guard` or `iter`


def deliver_batches(
    store: sa.Engine,
    job: DeliveryJob,
    batches: Iterable[pa.Table],
    deletes: Iterable[pa.Table] = (),
    *,
    lease: Heartbeat | None = None,
) -> int:
    """Deliver `batches` (contract-typed records) and, to an upsert target, `deletes` (record
    keys, each recorded in provenance as `records.DELETED`); returns how many rows the target
    took or lost. With the run's `lease`, each batch is written only after a check that the
    run still holds it (`Heartbeat.check`). The delivery row goes running, then
    success with the count, or failed with the error, which is raised again."""
    # Outside a run's lease (a dispute correction) the batches go unchecked.
    checked: _Check = lease.guard if lease is not None else iter
    return _delivery(store, job, lambda: _load(store, job, batches, deletes, checked))


def forget_in_index(store: sa.Engine, job: DeliveryJob, digests: Iterable[Sequence[str]]) -> int:
    """Remove from a verify subscription's index the records of `digests` (key digests: what
    a key reconciliation finds gone, since the index knows no key), as a delivery of its own
    like `deliver_batches`' (its row, count and audit entry); the rows removed."""
    if job.sub.target is not None:
        msg = f"{job.sub.id} delivers to a target: its deletes are record keys, not digests"
        raise ValueError(msg)
    return _delivery(store, job, lambda: verify_index.forget(store, job.sub.id, digests))


def _delivery(store: sa.Engine, job: DeliveryJob, load: Callable[[], int]) -> int:
    """The delivery row around `load`: running, then success with its count, or failed with
    the error, which is raised again."""
    with store.begin() as conn:
        bookkeeping.open_delivery(conn, job.run_id, job.sub.id, _now(), backfill=job.backfill)
    try:
        delivered = load()
    except Exception as error:
        _record_outcome(store, job, "failed", error=str(error))
        raise
    _record_outcome(store, job, "success", delivered=delivered)
    return delivered


def _record_outcome(
    store: sa.Engine,
    job: DeliveryJob,
    status: Literal["success", "failed"],
    *,
    delivered: int | None = None,
    error: str | None = None,
) -> None:
    """The delivery row's end and, for a run's delivery, its audit entry, in one transaction
    (a correction's deliveries are in its own `correction` entry)."""
    note = error
    if job.dispute is not None and error is None:
        note = f"{write_mode(job.sub)} of the corrected record"
    outcome: dict[str, Any] = (
        {"status": "failed", "error": error} if status == "failed"
        else {"delivered": delivered, "status": "success"}
    )
    with store.begin() as conn:
        bookkeeping.close_delivery(
            conn, job.run_id, job.sub.id, status,
            ended_at=_now(), delivered=delivered, message=note,
        )
        if job.dispute is None:
            actor, by_airflow = run_actor(job.parent)
            records.append_audit(
                conn, kind="delivery", subject=f"{job.run_id}/{job.sub.id}", actor=actor,
                detail={"resource": job.resource.code, "consumer": job.sub.consumer,
                        "target": _target_name(job.sub), **outcome, **by_airflow},
            )


def _target_name(sub: catalog.Subscription) -> str:
    """What the audit log names as where a delivery went."""
    return sub.target.table if sub.target is not None else VERIFICATION_INDEX


def _load(
    store: sa.Engine, job: DeliveryJob, batches: Iterable[pa.Table],
    deletes: Iterable[pa.Table], checked: _Check,
) -> int:
    """Open the target, write with the ledger, and wait for every batch's provenance. A
    verify subscription has no target: the run keeps its verification index instead
    (`exchange.verify.index`), with no provenance, since nothing reaches the consumer."""
    if job.sub.target is None:
        return verify_index.maintain(
            store, job.sub.id, key=job.key,
            shape=verify_index.IndexShape.of(job.contract, job.resource.key, job.sub.fields),
            run_id=job.run_id, at=job.delivered_at, batches=checked(batches),
            deletes=checked(deletes), replace=job.replace,
        )
    with store.connect() as conn:
        target = catalog.load_connection(conn, job.sub.sink.connection)
        # A correction's own dispute is closing: its record is written as no longer disputed.
        job = replace(job, disputed=records.disputed_keys(
            conn, job.resource.code, besides=job.dispute))
    # Via the module: drivers load when a sink opens (and tests may wrap `open_sink`).
    sink = connectors.open_sink(target.kind, target.target, target.format)
    provenance = _ProvenanceWriter(store, job)
    try:
        sink.ensure_table(job.spec)
        # The next batch is shaped while the target takes this one (`govex.ahead`), so that
        # the run and the target database work at once. The lease is checked on this, the
        # writing thread, just before each batch goes to the target: never a batch ahead.
        with ahead(_shaped(job, batches, provenance), name="govex-shaping") as shaped:
            delivered = _write(sink, job, _ledger(job), checked(shaped), checked(deletes),
                               provenance)
        provenance.drain()
        # Disputes that moved while this ran, and the subscription's pending flags.
        dispute_flags.after_delivery(
            store, sink, job.resource, job.contract, job.sub, job.secret,
            disputed_before=job.disputed, besides=job.dispute,
        )
        return delivered
    finally:
        provenance.close()
        sink.close()


def _ledger(job: DeliveryJob) -> LedgerEntry:
    """The ledger entry each write commits with in the target: the run and, for a correction,
    its dispute; never a cursor (record values: see the module docstring)."""
    if job.dispute is None:
        return LedgerEntry(job.sub.id, job.resource.code, job.run_id)
    return LedgerEntry(
        job.sub.id, job.resource.code, job.run_id,
        extra={"dispute": job.dispute, "delivered_at": job.delivered_at.isoformat()},
    )


def _write(
    sink: SinkConnector,
    job: DeliveryJob,
    ledger: LedgerEntry,
    shaped: Iterator[pa.Table],
    deletes: Iterable[pa.Table],
    provenance: _ProvenanceWriter,
) -> int:
    # A snapshot target mirrors the source: swapped whole when the run read everything, so
    # the deleted records are simply not in it; their deletes are still recorded.
    if job.replace:
        replaced = int(sink.replace(job.spec, shaped, ledger))
        provenance.release_all()
        for keys in deletes:
            provenance.deleted(keys)
            provenance.release()
        return replaced
    if job.stale:
        sink.discard_runs(job.spec, job.stale)
    mode = write_mode(job.sub)
    delivered = 0
    for batch in shaped:
        delivered += sink.write(job.spec, batch, mode, ledger)
        provenance.release()  # committed: its provenance may be written
    if mode == "upsert":  # an append target keeps its history: deletes do not rewrite it
        for keys in deletes:
            if not keys.num_rows:
                continue
            provenance.deleted(keys)
            delivered += sink.delete_keys(
                job.spec, shape_keys(keys, job.spec, job.resource, job.sub, key=job.key), ledger
            )
            provenance.release()  # the delete committed: its provenance may be written
    return delivered


def _shaped(
    job: DeliveryJob, batches: Iterable[pa.Table], provenance: _ProvenanceWriter
) -> Iterator[pa.Table]:
    """Each non-empty batch shaped for the target, its provenance held until the target
    commits it: record keys from the contract-typed batch (the shaped one may carry only
    `_govex_key`), fingerprints of exactly what the consumer receives."""
    for batch in batches:
        if batch.num_rows:
            out = job.shape(batch)
            provenance.hold(
                records.record_keys(batch, job.resource.key),
                records.value_hashes(out, job.sub.fields),
                records.delivered_bytes(out, job.sub.fields),
            )
            yield out
            meter.advance(batch.num_rows)  # once per batch (in the caller's context: `ahead`)


@dataclass(frozen=True)
class _Held:
    """A batch waiting for the target's commit: its record keys, their fingerprints (or
    `records.DELETED` for `deletes`) and its delivered bytes."""

    keys: pa.Array[Any]
    hashes: pa.Array[Any]
    size: int
    deletes: bool = False


class _ProvenanceWriter:
    """Records each committed batch's provenance in the store from one background thread, so
    that the store insert overlaps the target's load of the next batch (both wait outside
    the GIL). A batch's provenance is still written only after the target committed it, in
    batch order, one store transaction per batch; `drain` waits for all of them and raises the
    first error, which fails the delivery. The same transaction meters the batch
    (`records.count_usage`: its records and bytes on the subscription's day), so the counts
    equal what provenance says was delivered, whatever fails when: deletes are recorded but
    not counted, and a delivery is not a verification call (`calls` stays 0)."""

    def __init__(self, store: sa.Engine, job: DeliveryJob) -> None:
        self._store, self._job = store, job
        self._held: deque[_Held] = deque()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="govex-provenance")
        self._writes: list[Future[None]] = []
        # An in-memory SQLite store is one connection per thread (or one shared connection):
        # another thread would see an empty database. Write inline there.
        self._inline = isinstance(store.pool, sa.pool.SingletonThreadPool | sa.pool.StaticPool)

    def hold(self, keys: pa.Array[Any], hashes: pa.Array[Any], size: int) -> None:
        """A shaped batch on its way to the target (`size`: its `records.delivered_bytes`):
        its provenance and metering wait for the commit."""
        self._held.append(_Held(keys, hashes, size))

    def deleted(self, keys: pa.Table) -> None:
        """Record keys on their way out of the target: recorded as deletes (`DELETED`) once
        the target committed."""
        hashes = pa.repeat(pa.scalar(records.DELETED, pa.string()), keys.num_rows)
        self._held.append(_Held(records.record_keys(keys, self._job.resource.key), hashes, 0,
                                deletes=True))

    def release(self) -> None:
        """The oldest held batch is committed in the target: write its provenance."""
        self._submit(self._held.popleft())

    def release_all(self) -> None:
        while self._held:
            self.release()

    def _submit(self, held: _Held) -> None:
        if self._inline:
            self._write(held)
            return
        for done in [w for w in self._writes if w.done()]:
            done.result()  # an earlier batch's failure stops the delivery now
            self._writes.remove(done)
        self._writes.append(self._pool.submit(self._write, held))

    def _write(self, held: _Held) -> None:
        job = self._job
        with self._store.begin() as conn:
            written = records.record_provenance(
                conn, resource=job.resource.code, subscription=job.sub.id,
                run_id=job.run_id, delivered_at=job.delivered_at,
                keys=held.keys, hashes=held.hashes,
            )
            if not held.deletes:  # counted on provenance's own day: its `delivered_at`
                records.count_usage(
                    conn, subscription=job.sub.id, resource=job.resource.code,
                    consumer=job.sub.consumer, at=job.delivered_at,
                    records=written, bytes=held.size,
                )

    def drain(self) -> None:
        while self._writes:
            self._writes.pop(0).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
