"""One exchange run, cut into the steps an Airflow DAG runs as tasks.

    start_run → extract → gate → deliver (once per active subscription) → finish

Each step rebuilds what it needs from the metadata store and the run's staged batches, so the
steps may run in different processes; only the run id passes between them. `run_resource` runs
all of them in one process (the CLI, tests, benchmarks).

Guarantees:
- Extract once per run, deliver to every active subscription (one source, many consumers).
- The resource watermark advances in `finish`, in the same store transaction that marks the run
  successful, and only when every delivery of the run has committed. A crashed run leaves the
  watermark where it was, so the next run re-reads everything the crashed one may have
  delivered: upserts and snapshots converge by themselves, and append targets first discard the
  rows of runs that never finished (they carry `_govex_run_id`) before appending again. Every
  source record thus ends up in every target exactly once.
- A run for a single subscription (`--subscription`) never moves the watermark: the others
  have not received those rows.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

import catalog
import contracts
import records
from exchange.run import landing_source as landing
from exchange.run import lineage_events as run_lineage
from exchange.run import masking
from exchange.run.bookkeeping import (
    Delivery,
    RunSummary,
    deliveries,
    load_summary,
    runs,
    watermarks,
)
from exchange.run.conform import conform, contract_columns
from exchange.run.secrets import master_key
from exchange.run.staging import Stage
from exchange.run.targets import shape_batch, shape_keys, target_spec, write_mode
from govex.errors import DataQualityError, DeclarationError, FatalError
from govex.settings import load_settings

log = logging.getLogger(__name__)
Progress = Callable[[str], None]

__all__ = [
    "Delivery",
    "ParentRun",
    "RunSummary",
    "deliver",
    "extract",
    "finish",
    "gate",
    "run_resource",
    "start_run",
    "subscriptions_of",
]


def batch_rows() -> int:
    """Rows per batch (GOVEX_BATCH_ROWS, default 50,000): bounded memory per step."""
    return load_settings().batch_rows


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class ParentRun:
    """The OpenLineage parent of a run: the Airflow task run that drives it."""

    namespace: str
    job_name: str
    run_id: str

    def to_json(self) -> dict[str, str]:
        return {"namespace": self.namespace, "job_name": self.job_name, "run_id": self.run_id}


@dataclass(frozen=True)
class RunPlan:
    """What every step needs, read back from the store."""

    run_id: str
    status: str
    resource: catalog.Resource
    contract: contracts.Contract
    subscriptions: dict[str, catalog.Subscription]
    single_subscription: bool
    full: bool
    cursor_start: dict[str, Any] | None
    cursor_end: dict[str, Any] | None
    parent: dict[str, Any] | None
    stage: Stage

    def lineage_run(self, store: sa.Engine) -> Any:
        """The run as OpenLineage sees it (see exchange.run.lineage_events)."""
        return run_lineage.resource_run(
            store, self.run_id, self.resource, self.contract,
            list(self.subscriptions.values()), self.parent,
        )


def _load_plan(store: sa.Engine, run_id: str) -> RunPlan:
    with store.connect() as conn:
        row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
        if row is None:
            msg = f"unknown run '{run_id}'"
            raise DeclarationError(msg, value=run_id)
        resource = catalog.load_resource(conn, row["resource"])
        contract = catalog.load_contract_version(conn, resource.contract)
        subs = {s.id: s for s in catalog.load_subscriptions(conn, resource.code)}
    wanted = row["subscriptions"]
    return RunPlan(
        run_id=run_id,
        status=row["status"],
        resource=resource,
        contract=contract,
        subscriptions={i: subs[i] for i in wanted if i in subs},
        single_subscription=row["subscription"] is not None,
        full=row["full"],
        cursor_start=row["cursor_start"],
        cursor_end=row["cursor_end"],
        parent=row["parent"],
        stage=Stage.for_run(run_id),
    )


def _is_incremental(resource: catalog.Resource) -> bool:
    """Whether runs read only what is new since the watermark: a declared watermark column,
    or a Kafka-fed resource (its landing table is read by landing sequence)."""
    return bool(resource.source.watermark) or resource.source.kafka is not None


def is_active(sub: catalog.Subscription, today: dt.date) -> bool:
    """Whether the subscription's approval covers `today`."""
    return sub.valid_from <= today and (sub.valid_until is None or today <= sub.valid_until)


def start_run(
    store: sa.Engine,
    code: str,
    *,
    subscription: str | None = None,
    full: bool = False,
    parent: ParentRun | None = None,
) -> str:
    """Record a new run of resource `code` and return its id.

    Runs of the same resource that are still marked running never finished (a crash or a
    kill): they are marked failed here, which is what lets append targets discard their rows.
    """
    from openlineage.client.uuid import generate_new_uuid  # UUIDv7, as OpenLineage wants

    now = _now()
    with store.begin() as conn:
        resource = catalog.load_resource(conn, code)
        subs = catalog.load_subscriptions(conn, code)
        if subscription is not None:
            subs = [s for s in subs if s.id == subscription]
            if not subs:
                msg = f"'{subscription}' is not a subscription of resource {code}"
                raise DeclarationError(
                    msg,
                    field="--subscription", value=subscription,
                )
        active = [s.id for s in subs if is_active(s, now.date())]
        run_id = str(generate_new_uuid())
        conn.execute(
            sa.update(runs)
            .where(runs.c.resource == code, runs.c.status == "running")
            .values(
                status="failed",
                ended_at=now,
                message=f"abandoned: it never finished, superseded by run {run_id}",
            )
        )
        cursor = None
        if not full and _is_incremental(resource):
            cursor = conn.execute(
                sa.select(watermarks.c.cursor).where(watermarks.c.resource == code)
            ).scalar_one_or_none()
        conn.execute(
            sa.insert(runs),
            {
                "run_id": run_id, "resource": code, "status": "running",
                "subscription": subscription, "subscriptions": active, "full": full,
                "parent": parent.to_json() if parent else None, "cursor_start": cursor,
                "cursor_end": None, "read": 0, "passed": 0, "quarantined": 0,
                "started_at": now, "ended_at": None, "message": None,
            },
        )
    run_lineage.emit(
        store, lambda: _lineage().run_started(_load_plan(store, run_id).lineage_run(store))
    )
    return run_id


def _lineage() -> Any:
    import lineage

    return lineage


@contextmanager
def _recording_failure(store: sa.Engine, run_id: str, step: str) -> Iterator[None]:
    """Any error in a step marks the run failed with a message naming the step, then propagates.
    A blocked gate has already recorded itself."""
    try:
        yield
    except DataQualityError:
        raise
    except Exception as error:
        with store.begin() as conn:
            conn.execute(
                sa.update(runs)
                .where(runs.c.run_id == run_id, runs.c.status == "running")
                .values(status="failed", ended_at=_now(), message=f"{step} failed: {error}")
            )
        raise


def extract(store: sa.Engine, run_id: str) -> int:
    """Read the source once, in bounded ordered batches, into the run's staging area."""
    import connectors
    from connectors.base import Cursor, ReadSpec

    with _recording_failure(store, run_id, "extract"):
        plan = _load_plan(store, run_id)
        source_decl = plan.resource.source
        if source_decl.kafka is not None:
            read = _extract_landing(store, plan)
            return read
        with store.connect() as conn:
            resolved = catalog.load_connection(conn, source_decl.connection)
        source = connectors.open_source(resolved.kind, resolved.target, resolved.format)
        schema = contracts.arrow_schema(plan.contract)
        spec = ReadSpec(
            table=source_decl.table,
            query=source_decl.query,
            columns=None,
            key=tuple(plan.resource.key),
            watermark=source_decl.watermark,
            after=Cursor.from_json(plan.cursor_start) if plan.cursor_start else None,
            batch_rows=batch_rows(),
            # Untyped files (CSV): the contract's text fields stay text ("110105" is a code).
            types={
                name: pa.string()
                for name in plan.contract.fields
                if "string" in _json_types(plan.contract.property(name))
            },
        )
        plan.stage.clear("raw")
        read, cursor = 0, None
        try:
            for index, batch in enumerate(source.read_batches(spec)):
                if batch.num_rows == 0:
                    continue
                if spec.watermark:
                    cursor = source.cursor_after(spec, batch)
                plan.stage.write("raw", index, contract_columns(batch, schema))
                read += batch.num_rows
        finally:
            source.close()
        with store.begin() as conn:
            conn.execute(
                sa.update(runs).where(runs.c.run_id == run_id).values(
                    read=read, cursor_end=cursor.to_json() if cursor else plan.cursor_start
                )
            )
    return read


def _extract_landing(store: sa.Engine, plan: RunPlan) -> int:
    """A Kafka-fed resource reads its landing table (see `landing_source`): upserts stage as
    `raw` batches like any source's, deletes as `deletes` key batches.

    The messages `govex ingest` refused since the last run are this run's too: their
    quarantine rows (held under the ingest batch) are taken over by the run, so the run's
    `quarantined` count is what `govex quality quarantine` lists for it, and a record fixed by
    a later message leaves quarantine when this run's gate passes the fix."""
    schema = contracts.arrow_schema(plan.contract)
    key_schema = pa.schema([schema.field(k) for k in plan.resource.key])
    plan.stage.clear("raw")
    plan.stage.clear("deletes")
    read, last = 0, None
    for index, batch in enumerate(landing.read_landing(
        store, plan.resource.code, plan.contract, tuple(plan.resource.key),
        after=landing.seq_after(plan.cursor_start), batch_rows=batch_rows(),
    )):
        if batch.upserts.num_rows:
            plan.stage.write("raw", index, contract_columns(batch.upserts, schema))
        if batch.deletes.num_rows:  # in contract types, as the upserts reach the targets
            plan.stage.write("deletes", index, conform(batch.deletes, key_schema))
        read += batch.upserts.num_rows + batch.deletes.num_rows
        last = batch.last_seq
    from quality.tables import quarantine_table as held

    with store.begin() as conn:
        refused = conn.execute(
            sa.update(held)
            .where(held.c.resource == plan.resource.code,
                   held.c.run_id.not_in(
                       sa.select(runs.c.run_id).where(runs.c.resource == plan.resource.code)))
            .values(run_id=plan.run_id)
        ).rowcount
        conn.execute(
            sa.update(runs).where(runs.c.run_id == plan.run_id).values(
                read=read + refused,
                cursor_end=landing.seq_cursor(last) if last is not None else plan.cursor_start,
            )
        )
    return read + refused


def _json_types(prop: dict[str, Any]) -> set[str]:
    declared = prop.get("type", [])
    return {declared} if isinstance(declared, str) else set(declared)


def _top_checks(counts: Counter[tuple[str, str]], limit: int = 5) -> str:
    return ", ".join(
        f"{check} on {column} ({n})" if column else f"{check} ({n})"
        for (check, column), n in counts.most_common(limit)
    )


def gate(store: sa.Engine, run_id: str) -> int:
    """Judge every staged batch (contract checks, the Great Expectations suite, national
    standards); quarantine failing records with every failed check named; stage the passing rows
    in contract types; block the whole run when the failing share exceeds max_error_rate.
    Quarantine is recorded even for a blocked run: the provider needs the list either way."""
    import quality

    with _recording_failure(store, run_id, "gate"):
        plan = _load_plan(store, run_id)
        checker = quality.resource_gate(plan.contract, plan.resource)
        schema = contracts.arrow_schema(plan.contract)
        plan.stage.clear("passed")
        read = passed = 0
        counts: Counter[tuple[str, str]] = Counter()
        run_report: Any = None
        for index, batch in enumerate(plan.stage.batches("raw")):
            result = checker.evaluate(batch)
            read += batch.num_rows
            accepted = batch.filter(pa.array(result.passed))
            passed += accepted.num_rows
            plan.stage.write("passed", index, conform(accepted, schema))
            with store.begin() as conn:
                quality.record_gate(
                    conn, run_id=run_id, resource=plan.resource.code,
                    key_fields=plan.resource.key, batch=batch, result=result,
                )
            if result.report is not None:
                run_report = result.report if run_report is None else run_report.merge(
                    result.report
                )
            if result.num_failed:
                per_check = result.failures.group_by(["check", "column"]).aggregate(
                    [("row", "count_distinct")]
                )
                for item in per_check.to_pylist():
                    counts[(item["check"], item["column"] or "")] += item["row_count_distinct"]
        if run_report is not None:
            with store.begin() as conn:
                quality.record_check_totals(conn, run_id, plan.resource.code, run_report)
            _data_docs(run_report, run_id)
        quarantined = read - passed
        # Deletes (Kafka-fed resources) carry only a key, checked when it landed: they pass.
        deletes = sum(b.num_rows for b in plan.stage.batches("deletes"))
        limit = plan.resource.quality.max_error_rate
        rate = quarantined / read if read else 0.0
        values: dict[str, Any] = {"passed": passed + deletes, "quarantined": quarantined}
        if plan.resource.source.kafka is not None:
            values |= _with_ingest_refusals(store, plan, passed + deletes)
        blocked = rate > limit
        if blocked:
            message = (
                f"blocked by the quality gate: {quarantined} of {read} records ({rate:.1%}) "
                f"failed, above max_error_rate {limit:.1%}; top failing checks: "
                f"{_top_checks(counts)}"
            )
            values |= {"status": "blocked", "ended_at": _now(), "message": message}
        elif quarantined:
            values["message"] = f"{quarantined} records quarantined: {_top_checks(counts)}"
        with store.begin() as conn:
            conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(**values))
    if blocked:
        plan.stage.remove()
        raise DataQualityError(message)
    return passed + deletes


def _with_ingest_refusals(store: sa.Engine, plan: RunPlan, passed: int) -> dict[str, int]:
    """A Kafka-fed run's counts with the messages `govex ingest` refused (taken over in
    `_extract_landing`): quarantined is what the run holds in quarantine after its gate
    (its own failures, and the refusals a later message did not fix); read is passed plus
    quarantined."""
    from quality.tables import quarantine_table as held

    with store.connect() as conn:
        holds = conn.execute(
            sa.select(sa.func.count()).select_from(held).where(
                held.c.resource == plan.resource.code, held.c.run_id == plan.run_id)
        ).scalar_one()
    return {"read": passed + holds, "quarantined": holds}


def _data_docs(report: Any, run_id: str) -> None:
    """GE Data Docs for the run; a rendering problem is logged, never fails the exchange."""
    import quality

    try:
        quality.build_data_docs(report, quality.data_docs_dir(run_id), run_id=run_id)
    except Exception:  # noqa: BLE001 - documentation is a side channel
        log.exception("could not build Data Docs for run %s", run_id)


def subscriptions_of(store: sa.Engine, run_id: str) -> list[str]:
    """The active subscriptions this run delivers to."""
    return list(_load_plan(store, run_id).subscriptions)


def _unfinished_runs(conn: sa.Connection, resource: str, current: str) -> list[str]:
    """Runs of `resource` that did not succeed since the watermark last moved: their appended
    rows, if any, must go before this run appends the same records again."""
    since = conn.execute(
        sa.select(runs.c.started_at)
        .join(watermarks, watermarks.c.run_id == runs.c.run_id)
        .where(watermarks.c.resource == resource)
    ).scalar_one_or_none()
    query = sa.select(runs.c.run_id).where(
        runs.c.resource == resource, runs.c.status != "success", runs.c.run_id != current
    )
    if since is not None:
        query = query.where(runs.c.started_at >= since)
    return [r for (r,) in conn.execute(query)]


def deliver(store: sa.Engine, run_id: str, subscription: str) -> int:
    """Project, mask and load the run's passing rows into one subscription's target."""
    plan = _load_plan(store, run_id)
    sub = plan.subscriptions.get(subscription)
    if sub is None:
        msg = f"subscription '{subscription}' is not delivered by run {run_id}"
        raise DeclarationError(
            msg, value=subscription
        )
    if plan.status != "running":
        # A superseded run (a newer one of the resource started) must not write older data
        # over what the newer one delivered, deletes included.
        msg = f"run {run_id} is {plan.status}, not running: it delivers nothing more"
        raise FatalError(msg)
    started = _now()
    with store.begin() as conn:
        conn.execute(
            sa.delete(deliveries).where(
                deliveries.c.run_id == run_id, deliveries.c.subscription == subscription
            )
        )
        conn.execute(
            sa.insert(deliveries),
            {"run_id": run_id, "subscription": subscription, "status": "running",
             "delivered": 0, "started_at": started, "ended_at": None, "message": None},
        )
    info: list[Any] = []

    def delivery_info() -> Any:
        if not info:
            run = plan.lineage_run(store)
            info.append((run, next(o for o in run.subscriptions if o.id == subscription)))
        return info[0]

    run_lineage.emit(store, lambda: _lineage().delivery_started(*delivery_info()))
    try:
        delivered = _load_into_target(store, plan, sub)
    except Exception as error:
        failure = error
        run_lineage.emit(store, lambda: _lineage().delivery_failed(*delivery_info(), failure))
        with store.begin() as conn:
            conn.execute(
                sa.update(deliveries)
                .where(deliveries.c.run_id == run_id, deliveries.c.subscription == subscription)
                .values(status="failed", ended_at=_now(), message=str(error))
            )
            records.append_audit(
                conn, kind="delivery", subject=f"{run_id}/{subscription}",
                detail={"resource": plan.resource.code, "consumer": sub.consumer,
                        "target": sub.target.table, "status": "failed", "error": str(error)},
            )
        raise
    with store.begin() as conn:
        conn.execute(
            sa.update(deliveries)
            .where(deliveries.c.run_id == run_id, deliveries.c.subscription == subscription)
            .values(status="success", delivered=delivered, ended_at=_now())
        )
        records.append_audit(
            conn, kind="delivery", subject=f"{run_id}/{subscription}",
            detail={"resource": plan.resource.code, "consumer": sub.consumer,
                    "target": sub.target.table, "delivered": delivered, "status": "success"},
        )
    run_lineage.emit(
        store, lambda: _lineage().delivery_completed(*delivery_info(), delivered)
    )
    return delivered


def _load_into_target(store: sa.Engine, plan: RunPlan, sub: catalog.Subscription) -> int:
    import connectors  # drivers load only in the step that needs them
    from connectors.base import Cursor, LedgerEntry

    with store.connect() as conn:
        target = catalog.load_connection(conn, sub.target.connection)
        # Only an append target keeps rows of unfinished runs (upserts and snapshots converge).
        stale = (
            _unfinished_runs(conn, plan.resource.code, plan.run_id)
            if sub.mode == "append" else []
        )
    spec = target_spec(plan.resource, plan.contract, sub)
    key = masking.subscription_key(master_key(store), sub.id)
    delivered_at = _now()
    cursor = Cursor.from_json(plan.cursor_end) if plan.cursor_end else None
    ledger = LedgerEntry(sub.id, plan.resource.code, plan.run_id, cursor)

    # Provenance of each batch: record keys (from the contract-typed batch: the shaped one may
    # carry only `_govex_key`) and fingerprints of exactly what the consumer receives.
    pending: list[tuple[pa.Array[Any], pa.Array[Any]]] = []

    def shaped() -> Iterator[pa.Table]:
        for batch in plan.stage.batches("passed"):
            if batch.num_rows:
                out = shape_batch(
                    batch, spec, plan.resource, sub,
                    key=key, run_id=plan.run_id, delivered_at=delivered_at,
                )
                pending.append((
                    records.record_keys(batch, plan.resource.key),
                    records.value_hashes(out, sub.fields),
                ))
                yield out

    sink = connectors.open_sink(target.kind, target.target, target.format)
    provenance = _ProvenanceWriter(store, plan, sub.id, delivered_at)
    try:
        sink.ensure_table(spec)
        # A snapshot target mirrors the source: swapped whole when the run read everything.
        if sub.mode == "snapshot" and (plan.full or not _is_incremental(plan.resource)):
            replaced = int(sink.replace(spec, shaped(), ledger))
            while pending:
                provenance.submit(*pending.pop(0))
            provenance.drain()
            return replaced
        if stale:
            sink.discard_runs(spec, stale)
        mode = write_mode(sub)
        delivered = 0
        for batch in shaped():
            delivered += sink.write(spec, batch, mode, ledger)
            provenance.submit(*pending.pop(0))  # committed: its provenance may be written
        if mode == "upsert":  # an append target keeps its history: deletes do not rewrite it
            for keys in plan.stage.batches("deletes"):
                delivered += sink.delete_keys(
                    spec, shape_keys(keys, spec, plan.resource, sub, key=key), ledger
                )
        provenance.drain()
        return delivered
    finally:
        provenance.close()
        sink.close()


class _ProvenanceWriter:
    """Records each committed batch's provenance in the store from one background thread, so
    that the store insert overlaps the target's load of the next batch (both wait outside
    the GIL). A batch's provenance is still written only after the target committed it, in
    batch order, one store transaction per batch; `drain` waits for all of them and raises the
    first error, which fails the delivery as before. A crash in between leaves the run
    unfinished and the watermark unmoved: the rerun delivers and records these rows again."""

    def __init__(
        self, store: sa.Engine, plan: RunPlan, subscription: str, delivered_at: dt.datetime
    ) -> None:
        from concurrent.futures import Future, ThreadPoolExecutor

        self._store, self._plan = store, plan
        self._subscription, self._delivered_at = subscription, delivered_at
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="govex-provenance")
        self._writes: list[Future[None]] = []
        # An in-memory SQLite store is one connection per thread (or one shared connection):
        # another thread would see an empty database. Write inline there.
        self._inline = isinstance(store.pool, sa.pool.SingletonThreadPool | sa.pool.StaticPool)

    def submit(self, keys: pa.Array[Any], hashes: pa.Array[Any]) -> None:
        if self._inline:
            self._write(keys, hashes)
            return
        for done in [w for w in self._writes if w.done()]:
            done.result()  # an earlier batch's failure stops the delivery now
            self._writes.remove(done)
        self._writes.append(self._pool.submit(self._write, keys, hashes))

    def _write(self, keys: pa.Array[Any], hashes: pa.Array[Any]) -> None:
        with self._store.begin() as conn:
            records.record_provenance(
                conn, resource=self._plan.resource.code, subscription=self._subscription,
                run_id=self._plan.run_id, delivered_at=self._delivered_at,
                keys=keys, hashes=hashes,
            )

    def drain(self) -> None:
        while self._writes:
            self._writes.pop(0).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def finish(store: sa.Engine, run_id: str) -> RunSummary:
    """Close the run: success and the watermark move together, only if every delivery
    committed; otherwise the run is failed and the watermark stays."""
    plan = _load_plan(store, run_id)
    now = _now()
    with store.begin() as conn:
        status = conn.execute(
            sa.select(runs.c.status).where(runs.c.run_id == run_id)
        ).scalar_one()
        if status == "running":
            done = {
                r["subscription"]: r
                for r in conn.execute(
                    sa.select(deliveries).where(deliveries.c.run_id == run_id)
                ).mappings()
            }
            missing = [
                s for s in plan.subscriptions if s not in done or done[s]["status"] != "success"
            ]
            if missing:
                reasons = "; ".join(
                    f"{s}: {done[s]['message'] if s in done else 'not delivered'}"
                    for s in missing
                )
                conn.execute(
                    sa.update(runs).where(runs.c.run_id == run_id).values(
                        status="failed", ended_at=now,
                        message=f"delivery failed for {', '.join(missing)} ({reasons})",
                    )
                )
            else:
                conn.execute(
                    sa.update(runs).where(runs.c.run_id == run_id).values(
                        status="success", ended_at=now
                    )
                )
                if plan.cursor_end and not plan.single_subscription:
                    _advance_watermark(conn, plan.resource.code, plan.cursor_end, run_id, now)
        summary = load_summary(conn, run_id)
        records.append_audit(  # finish closes the run: its audit entry
            conn, kind="run", subject=run_id,
            detail={k: v for k, v in summary.to_json().items() if k != "run_id"},
        )
    plan.stage.remove()
    if status == "running" or summary.status in ("blocked", "failed"):
        run_lineage.emit(
            store, lambda: run_lineage.final_event(store, plan.lineage_run(store), summary)
        )
    return summary


def _advance_watermark(
    conn: sa.Connection, resource: str, cursor: dict[str, Any], run_id: str, now: dt.datetime
) -> None:
    updated = conn.execute(
        sa.update(watermarks).where(watermarks.c.resource == resource).values(
            cursor=cursor, run_id=run_id, updated_at=now
        )
    ).rowcount
    if not updated:
        conn.execute(
            sa.insert(watermarks),
            {"resource": resource, "cursor": cursor, "run_id": run_id, "updated_at": now},
        )


def run_resource(
    store: sa.Engine,
    code: str,
    *,
    subscription: str | None = None,
    full: bool = False,
    parent: ParentRun | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """All steps in one process. A failed delivery does not stop the others; the run then
    ends failed and its watermark stays, so the next run repairs what is missing."""
    say = progress or (lambda _message: None)
    run_id = start_run(store, code, subscription=subscription, full=full, parent=parent)
    say(f"{code}: run {run_id} started")
    try:
        read = extract(store, run_id)
        say(f"{code}: extracted {read} records")
        passed = gate(store, run_id)
        say(f"{code}: {passed} records passed the gate")
        for sub_id in subscriptions_of(store, run_id):
            try:
                n = deliver(store, run_id, sub_id)
                say(f"{code}: delivered {n} records to {sub_id}")
            except Exception as error:  # noqa: BLE001 - recorded on the delivery; others go on
                log.warning("delivery of run %s to %s failed: %s", run_id, sub_id, error)
                say(f"{code}: delivery to {sub_id} failed: {error}")
    except DataQualityError as blocked:
        say(f"{code}: {blocked}")
    except Exception as error:  # noqa: BLE001 - recorded on the run by the failing step
        log.warning("run %s failed: %s", run_id, error)
    return finish(store, run_id)
