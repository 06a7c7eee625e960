"""Key reconciliation (`govex run CODE --reconcile`, or `source.reconcile: P7D` on a schedule):
the records a table or query source has deleted outright, removed from the targets and the
verification indexes too.

An incremental read never sees a row that is gone. A reconciliation reads every key the source
holds (keys only, streamed in batches; rows marked deleted by `source.deleted` count as gone),
compares them with the keys each upsert or snapshot subscription holds as far as provenance
knows (`records.live_keys`), and sends the difference through the one delivery path as
deletes: delivery rows, provenance entries (`records.DELETED`), audit entries, like any
delivery. Append targets keep their history and are left alone. A verify subscription's index
knows no key, only its keyed digest: each key the source holds is digested under that
subscription's key as the index build digests it (`verify.index.key_digests`), compared with
the digests the index holds (`verify.index.held_digests`), and the index rows of the digests
gone are removed (`delivery.forget_in_index`), with a delivery row and audit entry like a
target's deletes (no provenance: nothing reached the consumer). The run is a run of the
resource (`exchange_runs`, its audit entry says `"reconcile": true`) that moves no watermark
and no subscription progress.

What each subscription holds is read *before* the source's keys: a record delivered or indexed
by a run that ends while the reconciliation reads was not in that list, so it is never
mistaken for one the source lost.

Safety: a reconciliation deletes only what it has read the source whole to decide. A failed
key read fails the run before anything is deleted. A source that returns no key at all while
subscriptions (targets or indexes) hold records is refused: an empty table is far more often
a broken load, a wrong connection or a truncated staging table than a department that deleted
everything, and the cost of being wrong is every consumer's copy. Empty it at the targets
deliberately instead (end the subscriptions, or mark the rows deleted at the source).

Memory: the key text of every record the source holds and of every record one subscription
holds, as Arrow string arrays (tens of bytes a key), and per verify subscription the key
digests of both (32 hex characters each); nothing else of a record is read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import pyarrow as pa
import pyarrow.compute as _pc
import sqlalchemy as sa
from dateutil.relativedelta import relativedelta

import catalog
import connectors
import contracts
import records
from connectors.base import ReadSpec
from exchange.run import bookkeeping, ending, leases, source_deletes
from exchange.run.bookkeeping import RunSummary, load_summary
from exchange.run.conform import conform
from exchange.run.delivery import DeliveryJob, deliver_batches, forget_in_index
from exchange.run.secrets import master_key
from exchange.run.steps import batch_rows, is_active
from exchange.run.targets import write_mode
from exchange.verify import digests as verify_digests
from exchange.verify import index as verify_index
from govex.durations import duration_parts
from govex.errors import DeclarationError, FatalError
from govex.ids import new_run_id
from govex.workdays import local_date

pc: Any = _pc  # pyarrow-stubs cannot follow kernels that are generic over types

__all__ = ["reconcile_due", "reconcile_resource"]

Progress = Callable[[str], None]
# How the source's keys are named to compare with what one verify subscription holds.
Digesting = Callable[[pa.Table], list[str]]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def reconcile_resource(
    store: sa.Engine, code: str, *, progress: Progress | None = None, wait: float = 0
) -> RunSummary:
    """Delete from every active upsert and snapshot target, and every active verify
    subscription's index, of `code` the records gone from its source; the run's summary
    (status failed, and nothing deleted, when the key read fails or the source returns no key
    while targets or indexes hold records). Like a run, it holds the
    resource's lease (`leases`; `wait` as `start_run`'s), so it never races a run's deletes."""
    say = progress or (lambda _message: None)
    run_id = new_run_id()  # UUIDv7, as OpenLineage wants
    leases.take(store, code, run_id, wait=wait)
    try:
        resource, contract, subs = _open(store, code, run_id)
    except BaseException:
        with store.begin() as conn:
            leases.release(conn, run_id)
        raise
    say(f"{code}: reconciliation {run_id} started")
    try:
        with leases.held(store, run_id) as lease:
            _reconcile(store, run_id, resource, contract, subs, say, lease)
    except Exception as error:  # noqa: BLE001 - recorded on the run, whose summary says it
        with store.begin() as conn:
            bookkeeping.fail_if_running(
                conn, run_id, f"{bookkeeping.RECONCILE_MESSAGE} failed: {error}", _now()
            )
        say(f"{code}: {error}")
    return _finish(store, run_id, [s.id for s in subs])


def _open(
    store: sa.Engine, code: str, run_id: str
) -> tuple[catalog.Resource, contracts.Contract, list[catalog.Subscription]]:
    """Record the reconciliation as a running run of the subscriptions it serves (refused for
    a Kafka-fed resource); (resource, contract, those subscriptions)."""
    now = _now()
    with store.begin() as conn:
        resource = catalog.load_resource(conn, code)
        if resource.source.kafka is not None:
            msg = (
                f"{code} is Kafka-fed: its deletes arrive as `op: delete` messages, so there "
                "is no source table to reconcile keys with"
            )
            raise DeclarationError(msg, field="--reconcile", value=code)
        contract = catalog.load_contract_version(conn, resource.contract)
        ended = ending.ended_subscriptions(conn, code, local_date(now))  # revoked: nothing more
        subs = [
            s for s in catalog.load_subscriptions(conn, code)
            if is_active(s, local_date(now)) and s.id not in ended
            # a verify subscription (no target) has its index reconciled by key digest
            and (s.target is None or write_mode(s) == "upsert")
        ]
        bookkeeping.insert_run(
            conn, run_id, code, subscriptions=[s.id for s in subs], started_at=now,
            cursor_start=bookkeeping.read_watermark(conn, code),
            message=bookkeeping.RECONCILE_MESSAGE,
        )
    return resource, contract, subs


def _reconcile(
    store: sa.Engine,
    run_id: str,
    resource: catalog.Resource,
    contract: contracts.Contract,
    subs: list[catalog.Subscription],
    say: Progress,
    lease: leases.Heartbeat,
) -> None:
    """Read what each subscription holds and the keys present, and delete the gone ones from
    each target or index, each batch only while the reconciliation still holds the resource."""
    code = resource.code
    secret = master_key(store)
    jobs = {s.id: DeliveryJob(run_id, resource, contract, s, secret, _now()) for s in subs}
    digesting = {s.id: _digesting(jobs[s.id]) for s in subs if s.target is None}
    held = _held(store, code, subs)  # before the source's: see the module docstring
    present, read = _source_keys(store, resource, contract, subs, digesting)
    say(f"{code}: the source holds {read} keys")
    gone = _gone(code, resource, held, present, read)
    with store.begin() as conn:
        bookkeeping.record_read(conn, run_id, read, None)
        bookkeeping.record_gate_outcome(conn, run_id, passed=read, quarantined=0)
    key_schema = contracts.arrow_schema(contract)
    key_schema = pa.schema([key_schema.field(k) for k in resource.key])
    for sub in subs:
        job = replace(jobs[sub.id], delivered_at=_now())
        try:
            if sub.target is None:  # gone as digests: the index knows no key
                n = forget_in_index(store, job, lease.guard(_digest_batches(gone[sub.id])))
            else:
                keys = _typed_keys(gone[sub.id], resource.key, key_schema)
                n = deliver_batches(store, job, (), _in_batches(keys), lease=lease)
            say(f"{code}: {len(gone[sub.id])} keys gone; {n} rows deleted from {sub.id}")
        except Exception as error:  # noqa: BLE001 - recorded on the delivery; others go on
            say(f"{code}: deleting from {sub.id} failed: {error}")


def reconcile_due(store: sa.Engine, code: str, every: str, now: dt.datetime) -> bool:
    """Whether `code`'s reconciliation every `every` (ISO-8601 duration, `source.reconcile`)
    is due at `now`: never reconciled, or the latest success started that long ago."""
    parts = duration_parts(every)
    if parts is None:
        msg = f"'{every}' is not an ISO-8601 duration such as P7D"
        raise DeclarationError(msg, field="source.reconcile", value=every)
    with store.connect() as conn:
        last = bookkeeping.last_reconciled(conn, code)
    if last is None:
        return True
    step = relativedelta(
        years=int(parts["years"]), months=int(parts["months"]), weeks=int(parts["weeks"]),
        days=int(parts["days"]), hours=int(parts["hours"]), minutes=int(parts["minutes"]),
        seconds=int(parts["seconds"]),
    )
    due: dt.datetime = last + step
    return due <= now


def _digesting(job: DeliveryJob) -> Digesting:
    """The key digests a verify subscription's index holds a key batch's records under: its
    own key (`DeliveryJob.key`) and the index's derivation, as the run's delivery uses them."""
    digester = verify_digests.Digester(job.key)
    shape = verify_index.IndexShape.of(job.contract, job.resource.key, job.sub.fields)
    return lambda keys: verify_index.key_digests(digester, shape, keys)


def _held(
    store: sa.Engine, code: str, subs: list[catalog.Subscription]
) -> dict[str, pa.Array[Any]]:
    """What each subscription holds: the record keys of a target's as far as provenance
    knows, the key digests of a verify subscription's index."""
    held: dict[str, pa.Array[Any]] = {}
    size = batch_rows()
    with store.connect() as conn:
        for sub in subs:
            lists = (verify_index.held_digests(conn, sub.id, batch=size) if sub.target is None
                     else records.live_keys(conn, code, sub.id, batch=size))
            parts = [pa.array(part, pa.string()) for part in lists]
            held[sub.id] = _joined(parts)
    return held


def _source_keys(
    store: sa.Engine,
    resource: catalog.Resource,
    contract: contracts.Contract,
    subs: list[catalog.Subscription],
    digesting: dict[str, Digesting],
) -> tuple[dict[str, pa.Array[Any]], int]:
    """Per subscription, every key the source holds (rows marked deleted left out) as it
    compares with what the subscription holds: record-key text for a target (one array all
    share), key digests for a verify subscription (`digesting`); and how many rows were read.
    Keys only: the read selects the key columns (and the deleted one)."""
    decl = resource.source
    with store.connect() as conn:
        resolved = catalog.load_connection(conn, decl.connection)
    schema = contracts.arrow_schema(contract)
    key = tuple(resource.key)
    key_schema = pa.schema([schema.field(k) for k in key])
    columns = key + ((decl.deleted,) if decl.deleted and decl.deleted not in key else ())
    spec = ReadSpec(
        table=decl.table, query=decl.query, columns=columns, key=key, watermark=None,
        batch_rows=batch_rows(),
        # Untyped files (CSV): text keys stay text ("0012" is an ID), as extract reads them.
        types={k: pa.string() for k in key if pa.types.is_string(schema.field(k).type)},
    )
    source = connectors.open_source(resolved.kind, resolved.target, resolved.format)
    texts: list[pa.Array[Any]] | None = (
        [] if any(s.target is not None for s in subs) else None)  # no target: no key text
    digests: dict[str, list[pa.Array[Any]]] = {sub: [] for sub in digesting}
    read = 0
    try:
        for batch in source.read_batches(spec):
            read += batch.num_rows
            live = batch
            if decl.deleted is not None:
                live, _gone = source_deletes.split_deleted(batch, decl.deleted, key)
            keys = conform(live.select(list(key)), key_schema)
            if texts is not None:
                texts.append(records.record_keys(keys, key))
            for sub_id, digest in digesting.items():
                digests[sub_id].append(pa.array(digest(keys), pa.string()))
    finally:
        source.close()
    text = _joined(texts or [])
    present = {s.id: _joined(digests[s.id]) if s.id in digesting else text for s in subs}
    return present, read


def _joined(parts: Sequence[pa.Array[Any]]) -> pa.Array[Any]:
    return pa.concat_arrays(parts) if parts else pa.array([], pa.string())


def _gone(
    code: str,
    resource: catalog.Resource,
    held: dict[str, pa.Array[Any]],
    present: dict[str, pa.Array[Any]],
    read: int,
) -> dict[str, pa.Array[Any]]:
    """Per subscription, the keys (or key digests) it holds that the source does not; refused
    whole when the source returned no key at all while any subscription (a target or an
    index) holds records."""
    holding = sum(len(keys) for keys in held.values())
    if read == 0 and holding:
        msg = (
            f"the source of {code} ({resource.source.table or 'its query'} in "
            f"{resource.source.connection}) returned no keys while its subscriptions hold "
            f"{holding} records; nothing was deleted, since an empty source is more likely a "
            "broken read than every record deleted"
        )
        raise FatalError(msg)
    return {
        sub: keys.filter(pc.invert(pc.is_in(keys, value_set=present[sub])))
        for sub, keys in held.items()
    }


def _typed_keys(
    keys: pa.Array[Any], key: list[str], key_schema: pa.Schema
) -> pa.Table:
    """Record-key text (values joined by ',', the last field keeping any further commas)
    back into key columns of the contract's types, as the delivery path wants them."""
    if len(key) == 1:
        columns = [keys]
    else:
        parts = pc.split_pattern(keys, ",", max_splits=len(key) - 1)
        columns = [pc.list_element(parts, i) for i in range(len(key))]
    return conform(pa.table(columns, names=list(key)), key_schema)


def _in_batches(keys: pa.Table) -> Iterator[pa.Table]:
    size = batch_rows()
    for start in range(0, keys.num_rows, size):
        yield keys.slice(start, size)


def _digest_batches(digests: pa.Array[Any]) -> Iterator[list[str]]:
    size = batch_rows()
    for start in range(0, len(digests), size):
        yield [str(d) for d in digests.slice(start, size).to_pylist()]


def _finish(store: sa.Engine, run_id: str, sub_ids: list[str]) -> RunSummary:
    """Close the reconciliation like a run (success only if every delivery committed) and
    write its audit entry; the watermark and progress stay where they are."""
    with store.begin() as conn:
        if bookkeeping.run_status(conn, run_id) == "running":
            done = bookkeeping.deliveries_of(conn, run_id)
            missing = [s for s in sub_ids if s not in done or done[s]["status"] != "success"]
            deleted = sum(int(done[s]["delivered"]) for s in done)
            if missing:
                bookkeeping.close_run(
                    conn, run_id, "failed", ended_at=_now(),
                    message=f"{bookkeeping.RECONCILE_MESSAGE}: deleting failed for "
                    f"{', '.join(missing)}",
                )
            else:
                bookkeeping.close_run(
                    conn, run_id, "success", ended_at=_now(),
                    message=f"{bookkeeping.RECONCILE_MESSAGE}: {deleted} rows deleted from "
                    "the targets",
                )
        summary = load_summary(conn, run_id)
        leases.release(conn, run_id)  # the resource is free as the reconciliation ends
        records.append_audit(
            conn, kind="run", subject=run_id,
            detail={"reconcile": True,
                    **{k: v for k, v in summary.to_json().items() if k != "run_id"}},
        )
    return summary
