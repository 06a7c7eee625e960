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
- Every subscription gets the whole current data set on its first run, then increments: a
  subscription that does not hold what the watermark says (new, its target or fields changed,
  or left behind) is backfilled (`backfill`), its delivery marked `"backfill": true`. Its
  progress moves, like the watermark, only in the transaction that makes the run successful,
  so a killed backfill is finished by the next run (append targets discard its rows first).
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

import catalog
import connectors
import contracts
import lineage
import quality
import records
from connectors.base import Cursor, ReadSpec
from exchange.run import (
    backfill,
    bookkeeping,
    dispute_flags,
    ending,
    leases,
    schema_check,
    source_deletes,
    staging,
)
from exchange.run import landing_source as landing
from exchange.run import lineage_events as run_lineage
from exchange.run.bookkeeping import Delivery, RunSummary, load_summary
from exchange.run.conform import conform, contract_columns
from exchange.run.delivery import DeliveryJob, deliver_batches, run_actor
from exchange.run.encoding import check_encoding
from exchange.run.masking import provider_view
from exchange.run.secrets import master_key
from exchange.run.staging import Stage
from govex import progress as meter
from govex.ahead import ahead
from govex.errors import DataQualityError, DeclarationError, FatalError
from govex.ids import new_run_id
from govex.settings import load_settings
from govex.workdays import local_date
from quality.tables import quarantine_table

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
    """The OpenLineage parent of a run: the Airflow task run that drives it, and the DAG run
    it belongs to (so the audit log records the run as Airflow's, not the command line's)."""

    namespace: str
    job_name: str
    run_id: str
    dag_run_id: str | None = None

    def to_json(self) -> dict[str, str]:
        ids = {"namespace": self.namespace, "job_name": self.job_name, "run_id": self.run_id}
        return ids | ({"dag_run_id": self.dag_run_id} if self.dag_run_id else {})


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
    cursor_start: dict[str, Any] | None  # the resource watermark when the run started
    cursor_end: dict[str, Any] | None
    parent: dict[str, Any] | None
    stage: Stage
    backfills: tuple[str, ...] = ()  # subscriptions that lack what the watermark says

    @property
    def reads_everything(self) -> bool:
        """Whether the read starts at the beginning: asked to (`--full`), nothing read yet,
        or a backfill to serve."""
        return self.full or self.cursor_start is None or bool(self.backfills)

    @property
    def read_after(self) -> dict[str, Any] | None:
        """The cursor the read starts after (None: from the beginning)."""
        return None if self.reads_everything else self.cursor_start

    @property
    def splits(self) -> bool:
        """Whether extract stages the rows at or before the watermark apart (`backfill`):
        a read from the beginning that current subscriptions get only the increment of."""
        return bool(self.backfills) and not self.full and self.cursor_start is not None

    def lineage_run(self, store: sa.Engine) -> Any:
        """The run as OpenLineage sees it (see exchange.run.lineage_events)."""
        return run_lineage.resource_run(
            store, self.run_id, self.resource, self.contract,
            list(self.subscriptions.values()), self.parent,
        )


#: The catalog part of the plans of the runs `run_resource` is running in this context, by run
#: id: read once per run, not once per step and subscription. Steps run on their own (an
#: Airflow task each) read theirs once per step. The run's row is read every time: it moves.
_catalog_of_runs: ContextVar[dict[str, Any] | None] = ContextVar(
    "govex_catalog_of_runs", default=None
)


def _load_plan(store: sa.Engine, run_id: str) -> RunPlan:
    cache = _catalog_of_runs.get()
    with store.connect() as conn:
        row = bookkeeping.get_run(conn, run_id)
        if row is None:
            msg = f"unknown run '{run_id}'"
            raise DeclarationError(msg, value=run_id)
        read = cache.get(run_id) if cache is not None else None
        if read is None:
            resource = catalog.load_resource(conn, row["resource"])
            contract = catalog.load_contract_version(conn, resource.contract)
            subs = {s.id: s for s in catalog.load_subscriptions(conn, resource.code)}
            read = (resource, contract, subs)
            if cache is not None:
                cache[run_id] = read
        resource, contract, subs = read
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
        backfills=tuple(row["backfills"] or ()),
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
    wait: float = 0,
) -> str:
    """Record a new run of resource `code` and return its id.

    The run first takes the resource's lease (`leases`), waiting up to `wait` seconds for a
    live run to finish; ResourceBusyError naming it otherwise. Holding the lease, any other run
    of the resource still marked running has lost its own lease (it expired: a crash or a
    kill): those are marked failed here, which is what lets append targets discard their rows,
    and the batches they staged are removed.
    """
    run_id = new_run_id()  # UUIDv7, as OpenLineage wants
    leases.take(store, code, run_id, wait=wait)
    now = _now()
    try:
        with store.begin() as conn:
            resource = catalog.load_resource(conn, code)
            today = local_date(now)  # validity dates are days in Asia/Shanghai
            active = _active_subscriptions(conn, code, subscription, today)
            ended = {k: e for k, e in ending.ended_subscriptions(conn, code, today).items()
                     if subscription in (None, k)}
            active = [s for s in active if s not in ended]
            bookkeeping.abandon_running(conn, code, run_id, now)
            cursor, backfills = _starting_point(conn, resource, active)
            bookkeeping.insert_run(
                conn, run_id, code, subscriptions=active, started_at=now,
                subscription=subscription, full=full,
                parent=parent.to_json() if parent else None, cursor_start=cursor,
                backfills=backfills,
            )
            for sub_id, end in ended.items():  # the summary says whom it skipped, and why
                bookkeeping.record_skipped(conn, run_id, sub_id, end.message(), now)
    except BaseException:
        with store.begin() as conn:
            leases.release(conn, run_id)
        raise
    # Abandoned runs never reached `finish`, which removes a run's staged batches (raw source
    # data): theirs go now, and whatever else ended runs of the resource left. Only after the
    # commit, and only runs the store says have ended: never one still running elsewhere.
    with store.connect() as conn:
        staging.remove_runs(bookkeeping.ended_runs(conn, code, staging.staged_runs()))
    # What an ended subscription was delivered leaves its target now, once (`ending`); a
    # target that fails is noted on the skipped delivery and tried again by the next run.
    notes = ending.purge_ended(store, code, ended, run_id=run_id)
    if notes:
        with store.begin() as conn:
            for sub_id, note in notes.items():
                bookkeeping.record_skipped(
                    conn, run_id, sub_id, f"{ended[sub_id].message()}; {note}", now)
    run_lineage.emit(
        store, lambda: lineage.run_started(_load_plan(store, run_id).lineage_run(store))
    )
    return run_id


def _starting_point(
    conn: sa.Connection, resource: catalog.Resource, active: list[str]
) -> tuple[dict[str, Any] | None, list[str]]:
    """(the resource watermark, the active subscriptions that need a backfill), decided once
    at start so that every step of the run, in whatever process, sees the same. A full run
    reads everything anyway; it still notes whom it backfills, and keeps the watermark as the
    point a `--full --subscription` run brings its subscription level with."""
    if not _is_incremental(resource):
        return None, []
    watermark = bookkeeping.read_watermark(conn, resource.code)
    subs = {s.id: s for s in catalog.load_subscriptions(conn, resource.code)}
    lacking = backfill.needing_backfill(
        [subs[i] for i in active], bookkeeping.read_progress(conn, resource.code),
        resource.contract, watermark,
    )
    return watermark, lacking


def _active_subscriptions(
    conn: sa.Connection, code: str, subscription: str | None, today: dt.date
) -> list[str]:
    """The subscriptions a new run delivers to: every active one, or the one asked for."""
    subs = catalog.load_subscriptions(conn, code)
    if subscription is not None:
        subs = [s for s in subs if s.id == subscription]
        if not subs:
            msg = f"'{subscription}' is not a subscription of resource {code}"
            raise DeclarationError(msg, field="--subscription", value=subscription)
    ended = ending.ended_subscriptions(conn, code, today)  # revoked: never delivered again
    return [s.id for s in subs if is_active(s, today) and s.id not in ended]


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
            bookkeeping.fail_if_running(conn, run_id, f"{step} failed: {error}", _now())
        raise


def extract(store: sa.Engine, run_id: str) -> int:
    """Read the source once, in bounded ordered batches, into the run's staging area: after
    the watermark, or from the beginning (`RunPlan.reads_everything`); with a backfill to
    serve, the rows at or before the watermark are staged apart (`backfill`)."""
    with _recording_failure(store, run_id, "extract"), leases.held(store, run_id):
        plan = _load_plan(store, run_id)
        _require_fit(store, plan)
        if plan.resource.source.kafka is not None:
            return _extract_landing(store, plan)
        read = _Read()
        for _staged in _read_source(plan, _source_connection(store, plan), read):
            pass
        _record_read(store, plan, read)
    return read.rows


def extract_and_gate(store: sa.Engine, run_id: str) -> tuple[int, int]:
    """`extract` and `gate` in one process (`run_resource`), the gate judging each batch as
    soon as extract has staged it, while the source's next batch is read in a thread of its
    own (`govex.ahead`): reading waits on the source database, judging on the CPU, so the two
    overlap instead of taking turns. What is staged and recorded, and what either step's
    failure does to the run, are as when the steps run one after the other (as Airflow tasks),
    but for one thing: a read that fails part way leaves the quarantine as the gate found the
    batches before it (the next run judges them again). Returns (records read, passed)."""
    with _recording_failure(store, run_id, "extract"):
        plan = _load_plan(store, run_id)
        connection = (None if plan.resource.source.kafka is not None
                      else _source_connection(store, plan))
    if connection is None or _in_the_store_file(store, connection):
        rows = extract(store, run_id)
        with meter.metered(None):  # the phase counts the rows read
            return rows, gate(store, run_id)
    with _recording_failure(store, run_id, "extract"), leases.held(store, run_id):
        _require_fit(store, plan)
        read = _Read()
        with _recording_failure(store, run_id, "gate"):
            try:
                # The meter counts the rows read; the gate follows at most one batch behind.
                with ahead(_read_source(plan, connection, read), name="govex-extract") as staged, \
                        meter.metered(None):
                    judged = _judge(store, plan, _failing_as(store, run_id, "extract", staged,
                                                             read))
            except Exception:
                if not read.failed:  # the gate failed: the rows read so far are the run's
                    _record_read(store, plan, read)
                raise
        _record_read(store, plan, read)
        with _recording_failure(store, run_id, "gate"):
            blocked, passed = _conclude(store, plan, judged)
    if blocked is not None:
        plan.stage.remove()
        raise DataQualityError(blocked)
    return read.rows, passed


def _in_the_store_file(store: sa.Engine, connection: catalog.ResolvedConnection) -> bool:
    """Whether the source is a table in the SQLite file that holds the store. SQLite has one
    writer per file and an open read holds off its commit, so the gate's writes would wait for
    the read the other thread holds open: the steps then take turns."""
    if connection.kind != "url" or store.dialect.name != "sqlite" or not store.url.database:
        return False
    url = sa.engine.make_url(connection.target)
    if url.get_backend_name() != "sqlite" or not url.database:
        return False
    return Path(url.database).resolve() == Path(store.url.database).resolve()


def _failing_as(
    store: sa.Engine, run_id: str, step: str, items: Iterable[_StagedRaw], read: _Read
) -> Iterator[_StagedRaw]:
    """`items`, an error raised while producing them failing the run as `step`'s (and marked
    on `read`)."""
    with _recording_failure(store, run_id, step):
        try:
            yield from items
        except Exception:
            read.failed = True
            raise


@dataclass
class _Read:
    """What extract has read: rows, and the source cursor after the last batch staged."""

    rows: int = 0
    cursor: Cursor | None = None
    failed: bool = False  # the read raised


#: A staged raw batch: the area its passing rows go to, its index, its rows.
_StagedRaw = tuple[str, int, pa.Table]


def _source_connection(store: sa.Engine, plan: RunPlan) -> catalog.ResolvedConnection:
    with store.connect() as conn:
        return catalog.load_connection(conn, plan.resource.source.connection)


def _read_source(
    plan: RunPlan, connection: catalog.ResolvedConnection, read: _Read
) -> Iterator[_StagedRaw]:
    """Read the declared source into the run's staging area, counting into `read`, and yield
    each records batch once staged, with the area the gate stages its passing rows in. The
    source opens and closes in the thread that iterates (a SQLite source's connection is
    bound to its thread)."""
    source_decl = plan.resource.source
    schema = contracts.arrow_schema(plan.contract)
    spec = ReadSpec(
        table=source_decl.table,
        query=source_decl.query,
        columns=None,
        key=tuple(plan.resource.key),
        watermark=source_decl.watermark,
        after=Cursor.from_json(plan.read_after) if plan.read_after else None,
        batch_rows=batch_rows(),
        # Untyped files (CSV): the contract's text fields stay text ("110105" is a code).
        types={
            name: pa.string()
            for name in plan.contract.fields
            if "string" in _json_types(plan.contract.property(name))
        },
    )
    for area in ("raw", "deletes", backfill.PRIOR_RAW, backfill.PRIOR_DELETES):
        plan.stage.clear(area)
    split = _prior_split(plan, spec)
    stage_rows = _soft_deletes(plan, schema)
    source = connectors.open_source(connection.kind, connection.target, connection.format)
    try:
        for index, whole in enumerate(source.read_batches(spec)):
            read.rows += whole.num_rows
            meter.advance(whole.num_rows)  # per batch: a display's rows/s, nothing else
            prior, batch = split(whole) if split else (whole.slice(0, 0), whole)
            if prior.num_rows:
                staged = stage_rows((backfill.PRIOR_RAW, backfill.PRIOR_DELETES), index, prior)
                if staged is not None:
                    yield backfill.PRIOR_PASSED, index, staged
            if batch.num_rows == 0:
                continue
            if spec.watermark:  # the rows after the watermark end the read: its cursor
                read.cursor = source.cursor_after(spec, batch)
            staged = stage_rows(("raw", "deletes"), index, batch)
            if staged is not None:
                yield "passed", index, staged
    finally:
        source.close()


def _record_read(store: sa.Engine, plan: RunPlan, read: _Read) -> None:
    with store.begin() as conn:
        bookkeeping.record_read(
            conn, plan.run_id, read.rows,
            read.cursor.to_json() if read.cursor else plan.cursor_start,
        )


def _soft_deletes(
    plan: RunPlan, schema: pa.Schema
) -> Callable[[tuple[str, str], int, pa.Table], pa.Table | None]:
    """How extract stages one read batch into (records area, deletes area): with a declared
    `source.deleted` column, the rows marked deleted go as record keys to the deletes area,
    like a Kafka-fed resource's deletes (`source_deletes`); the rest as records, which it
    returns as staged (None when there are none)."""
    deleted = plan.resource.source.deleted
    key = tuple(plan.resource.key)
    key_schema = pa.schema([schema.field(k) for k in key])

    def stage_rows(areas: tuple[str, str], index: int, batch: pa.Table) -> pa.Table | None:
        if deleted is not None:
            batch, gone = source_deletes.split_deleted(batch, deleted, key)
            if gone.num_rows:  # in contract types, as the records reach the targets
                plan.stage.write(areas[1], index, conform(gone, key_schema))
        if not batch.num_rows:
            return None
        records = contract_columns(batch, schema)
        plan.stage.write(areas[0], index, records)
        return records

    return stage_rows


def _require_fit(store: sa.Engine, plan: RunPlan) -> None:
    """Schema drift fails the run before a row is read (`schema_check`): a source that lost a
    required column, or a target table that no longer fits, is not a quality problem of every
    record; nothing is quarantined or delivered."""

    def connection(name: str) -> catalog.ResolvedConnection:
        with store.connect() as conn:
            return catalog.load_connection(conn, name)

    schema_check.require_fit(schema_check.check_resource(
        plan.resource, plan.contract, plan.subscriptions.values(), connection,
        unreachable_is_a_problem=False,
    ))


def _prior_split(plan: RunPlan, spec: ReadSpec) -> backfill.PriorSplit | None:
    """The cut between the rows at or before the watermark and the increment, when the run
    has a backfill to serve (the read's order: watermark, then key)."""
    if not plan.splits or plan.cursor_start is None:
        return None
    wm = spec.watermark
    order = ((wm,) if wm else ()) + tuple(k for k in spec.key if k != wm)
    return backfill.PriorSplit(plan.cursor_start, order)


def _extract_landing(store: sa.Engine, plan: RunPlan) -> int:
    """A Kafka-fed resource reads its landing table (see `landing_source`): upserts stage as
    `raw` batches like any source's, deletes as `deletes` key batches.

    The messages `govex ingest` refused since the last run are this run's too: their
    quarantine rows (held under the ingest batch) are taken over by the run, so the run's
    `quarantined` count is what `govex quality quarantine` lists for it, and a record fixed by
    a later message leaves quarantine when this run's gate passes the fix."""
    schema = contracts.arrow_schema(plan.contract)
    key_schema = pa.schema([schema.field(k) for k in plan.resource.key])
    for area in ("raw", "deletes", backfill.PRIOR_RAW, backfill.PRIOR_DELETES):
        plan.stage.clear(area)
    split_at = landing.seq_after(plan.cursor_start) if plan.splits else None
    read, last = 0, split_at  # with a split, nothing after the watermark leaves it there
    for index, whole in enumerate(landing.read_landing(
        store, plan.resource.code, plan.contract, tuple(plan.resource.key),
        after=landing.seq_after(plan.read_after),
        batch_rows=batch_rows(),
    )):
        batch = whole
        if split_at is not None:
            prior, batch = whole.split(split_at)
            if prior.upserts.num_rows:
                plan.stage.write(backfill.PRIOR_RAW, index,
                                 contract_columns(prior.upserts, schema))
            if prior.deletes.num_rows:
                plan.stage.write(backfill.PRIOR_DELETES, index,
                                 conform(prior.deletes, key_schema))
            read += prior.upserts.num_rows + prior.deletes.num_rows
        if batch.upserts.num_rows:
            plan.stage.write("raw", index, contract_columns(batch.upserts, schema))
        if batch.deletes.num_rows:  # in contract types, as the upserts reach the targets
            plan.stage.write("deletes", index, conform(batch.deletes, key_schema))
        read += batch.upserts.num_rows + batch.deletes.num_rows
        last = max(batch.last_seq, last or 0)
    with store.begin() as conn:  # the takeover and the run's count commit together
        refused = conn.execute(
            sa.update(quarantine_table)
            .where(quarantine_table.c.resource == plan.resource.code,
                   quarantine_table.c.run_id.not_in(bookkeeping.run_ids_of(plan.resource.code)))
            .values(run_id=plan.run_id)
        ).rowcount
        bookkeeping.record_read(
            conn, plan.run_id, read + refused,
            landing.seq_cursor(last) if last is not None else plan.cursor_start,
        )
    return read + refused


def _json_types(prop: dict[str, Any]) -> set[str]:
    declared = prop.get("type", [])
    return {declared} if isinstance(declared, str) else set(declared)


def _top_checks(counts: Counter[tuple[str, str, str]], limit: int = 5) -> str:
    """The most failed checks with their columns, each followed by what part of it failed
    (the details, most frequent first: `cn_resident_id on id_no (3) [check digit: 2; birth
    date: 1]`), so that the run summary says what to fix, not only which check."""
    per_check: Counter[tuple[str, str]] = Counter()
    details: dict[tuple[str, str], Counter[str]] = {}
    for (check, column, detail), n in counts.items():
        per_check[(check, column)] += n
        if detail:
            details.setdefault((check, column), Counter())[detail] += n
    out = []
    for (check, column), n in per_check.most_common(limit):
        said = "; ".join(f"{d}: {k}" for d, k in details.get((check, column), Counter())
                         .most_common(limit))
        out.append((f"{check} on {column}" if column else check) + f" ({n})"
                   + (f" [{said}]" if said else ""))
    return ", ".join(out)


def gate(store: sa.Engine, run_id: str) -> int:
    """Judge every staged batch (contract checks, the Great Expectations suite, national
    standards); quarantine failing records with every failed check named; stage the passing rows
    in contract types; block the whole run when the failing share exceeds max_error_rate.
    Quarantine is recorded even for a blocked run: the provider needs the list either way."""
    with _recording_failure(store, run_id, "gate"), leases.held(store, run_id):
        plan = _load_plan(store, run_id)
        judged = _judge(store, plan, _staged_raw(plan))
        blocked, passed = _conclude(store, plan, judged)
    if blocked is not None:
        plan.stage.remove()
        raise DataQualityError(blocked)
    return passed


def _conclude(store: sa.Engine, plan: RunPlan, judged: _Judged) -> tuple[str | None, int]:
    """The gate's totals and Data Docs recorded, and its verdict: (why the run is blocked, or
    None; records passed)."""
    if judged.report is not None:
        with store.begin() as conn:
            quality.record_check_totals(conn, plan.run_id, plan.resource.code, judged.report)
        _data_docs(judged.report, plan.run_id)
    # Deletes (Kafka-fed resources) carry only a key, checked when it landed: they pass.
    passed = judged.passed + sum(
        b.num_rows for area in ("deletes", backfill.PRIOR_DELETES)
        for b in plan.stage.batches(area)
    )
    return _record_verdict(store, plan, judged, passed), passed


@dataclass
class _Judged:
    """What the gate found in the run's staged batches so far."""

    read: int = 0
    passed: int = 0
    # (check, column, detail): rows
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    report: Any = None  # the merged quality.QualityReport, when the gate makes one

    def add(self, batch: pa.Table, accepted: pa.Table, result: Any) -> None:
        self.read += batch.num_rows
        self.passed += accepted.num_rows
        if result.report is not None:
            self.report = result.report if self.report is None else self.report.merge(
                result.report
            )
        if result.num_failed:
            per_check = result.failures.group_by(["check", "column", "detail"]).aggregate(
                [("row", "count_distinct")]
            )
            for item in per_check.to_pylist():
                where = (item["check"], item["column"] or "", item["detail"] or "")
                self.counts[where] += item["row_count_distinct"]


def _judge(store: sa.Engine, plan: RunPlan, raws: Iterable[_StagedRaw]) -> _Judged:
    """Each raw batch through the resource's gate: its passing rows staged in contract types,
    its failures quarantined (one store transaction per batch)."""
    with store.connect() as conn:  # the workspace's GB/T 2260 additions, as last applied
        stored = catalog.stored_reference(conn)
    quality.use_division_overrides(stored.rows if stored else [])
    checker = quality.resource_gate(plan.contract, plan.resource)
    schema = contracts.arrow_schema(plan.contract)
    plan.stage.clear("passed")
    plan.stage.clear(backfill.PRIOR_PASSED)
    judged = _Judged()
    show = provider_view({name: plan.contract.pii(name) for name in plan.contract.fields})
    for passed_area, index, raw in raws:
        # Text no target can hold (NUL, bytes that are not UTF-8) fails its record, not the
        # run; the gate and the quarantine see it spelled out (exchange.run.encoding).
        encoding = check_encoding(raw)
        batch = encoding.batch
        result = encoding.judged(checker.evaluate(batch))
        accepted = batch.filter(pa.array(result.passed))
        plan.stage.write(passed_area, index, conform(accepted, schema))
        with store.begin() as conn:
            quality.record_gate(
                conn, run_id=plan.run_id, resource=plan.resource.code,
                key_fields=plan.resource.key, batch=batch, result=result, show=show,
            )
        judged.add(batch, accepted, result)
        meter.advance(batch.num_rows)
    return judged


def _staged_raw(plan: RunPlan) -> Iterator[_StagedRaw]:
    """Every raw batch extract staged, in the order the source gave the rows, with the area
    its passing rows go to: the increment's (`passed`) and, from a read split for a backfill,
    those at or before the watermark (`backfill`), each source batch's first. The order
    matters when a source repeats a key: its last judgement stands in quarantine, as its last
    version does in the targets."""
    prior = ((i, 0, backfill.PRIOR_PASSED, b) for i, b in plan.stage.numbered(backfill.PRIOR_RAW))
    increment = ((i, 1, "passed", b) for i, b in plan.stage.numbered("raw"))
    for index, _first, passed_area, batch in heapq.merge(prior, increment,
                                                         key=lambda item: item[:2]):
        yield passed_area, index, batch


def _record_verdict(store: sa.Engine, plan: RunPlan, judged: _Judged, passed: int) -> str | None:
    """Record the gate's counts and message on the run; block it when the failing share
    exceeds max_error_rate, returning why."""
    quarantined = judged.read - judged.passed
    limit = plan.resource.quality.max_error_rate
    rate = quarantined / judged.read if judged.read else 0.0
    counts: dict[str, int] = {"quarantined": quarantined}
    if plan.resource.source.kafka is not None:
        counts = _with_ingest_refusals(store, plan, passed)
    blocked = message = None
    if rate > limit:
        blocked = message = (
            f"blocked by the quality gate: {quarantined} of {judged.read} records ({rate:.1%}) "
            f"failed, above max_error_rate {limit:.1%}; top failing checks: "
            f"{_top_checks(judged.counts)}"
        )
    elif quarantined:
        message = f"{quarantined} records quarantined: {_top_checks(judged.counts)}"
    with store.begin() as conn:
        bookkeeping.record_gate_outcome(
            conn, plan.run_id, passed=passed, quarantined=counts["quarantined"],
            read=counts.get("read"), message=message, blocked_at=_now() if blocked else None,
        )
    return blocked


def _with_ingest_refusals(store: sa.Engine, plan: RunPlan, passed: int) -> dict[str, int]:
    """A Kafka-fed run's counts with the messages `govex ingest` refused (taken over in
    `_extract_landing`): quarantined is what the run holds in quarantine after its gate
    (its own failures, and the refusals a later message did not fix); read is passed plus
    quarantined."""
    with store.connect() as conn:
        holds = conn.execute(
            sa.select(sa.func.count()).select_from(quarantine_table).where(
                quarantine_table.c.resource == plan.resource.code,
                quarantine_table.c.run_id == plan.run_id,
            )
        ).scalar_one()
    return {"read": passed + holds, "quarantined": holds}


def _data_docs(report: Any, run_id: str) -> None:
    """GE Data Docs for the run, left for the web app to render when first opened (GE costs
    seconds to import; `quality.docs`) at the Data Docs location, on object storage when
    staging is (never this worker's disk); a problem is logged, never fails the exchange."""
    try:
        quality.defer_data_docs(report, load_settings().data_docs_location, run_id)
    except Exception:  # noqa: BLE001 - documentation is a side channel
        log.exception("could not build Data Docs for run %s", run_id)


def subscriptions_of(store: sa.Engine, run_id: str) -> list[str]:
    """The active subscriptions this run delivers to."""
    return list(_load_plan(store, run_id).subscriptions)


def deliver(store: sa.Engine, run_id: str, subscription: str) -> int:
    """Project, mask and load the run's passing rows (and, to an upsert target, its deletes)
    into one subscription's target through the one delivery path (`delivery`), with the
    delivery's lineage events around it; a verify subscription's index takes them instead,
    with no lineage events (the index is no dataset: nothing leaves for the consumer)."""
    plan = _load_plan(store, run_id)
    job = _delivery_job(store, plan, _deliverable(plan, subscription))
    events = (run_lineage.DeliveryEvents(store, lambda: plan.lineage_run(store), subscription)
              if job.sub.target is not None else None)
    if events:
        events.started()
    try:
        with leases.held(store, run_id) as lease:  # each batch only while the run holds it
            delivered = deliver_batches(store, job, *_share(plan, subscription), lease=lease)
    except Exception as error:
        if events:
            events.failed(error)
        raise
    if events:
        events.completed(delivered)
    return delivered


def _deliverable(plan: RunPlan, subscription: str) -> catalog.Subscription:
    """The subscription, if this run delivers to it and still may."""
    sub = plan.subscriptions.get(subscription)
    if sub is None:
        msg = f"subscription '{subscription}' is not delivered by run {plan.run_id}"
        raise DeclarationError(msg, value=subscription)
    if plan.status != "running":
        # A superseded run (a newer one of the resource started) must not write older data
        # over what the newer one delivered, deletes included.
        msg = f"run {plan.run_id} is {plan.status}, not running: it delivers nothing more"
        raise FatalError(msg)
    return sub


def _share(plan: RunPlan, subscription: str) -> tuple[Iterable[pa.Table], Iterable[pa.Table]]:
    """(records, deleted keys) of the run for one subscription. Everyone gets the increment
    (`passed`, `deletes`); a backfill adds the rows at or before the watermark, and a
    `--subscription` backfill gets only those: it is then level with the others, who get the
    increment, it included, from the next run (`backfill`). Each record is in one area only."""
    increment = plan.stage.batches("passed"), plan.stage.batches("deletes")
    if not (plan.splits and subscription in plan.backfills):
        return increment
    prior = (plan.stage.batches(backfill.PRIOR_PASSED),
             plan.stage.batches(backfill.PRIOR_DELETES))
    if plan.single_subscription:
        return prior
    return itertools.chain(prior[0], increment[0]), itertools.chain(prior[1], increment[1])


def _delivery_job(store: sa.Engine, plan: RunPlan, sub: catalog.Subscription) -> DeliveryJob:
    """The run's delivery to `sub`: a snapshot target is swapped whole when the run sends it
    everything (a full read, a resource read whole each run, or a backfill), and so is a
    verify subscription's index (`exchange.verify.index`: the records the source no longer
    holds leave it); only an append target keeps rows of unfinished runs (upserts and
    snapshots converge), so those go before it appends again."""
    stale: list[str] = []
    if sub.mode == "append":
        with store.connect() as conn:
            stale = bookkeeping.unfinished_runs(conn, plan.resource.code, sub.id, plan.run_id)
            # An earlier attempt of this very delivery (an Airflow retry after a killed or
            # failed try) opened its row before writing, and may have appended batches.
            if sub.id in bookkeeping.deliveries_of(conn, plan.run_id):
                stale.append(plan.run_id)
    backfilled = sub.id in plan.backfills
    whole = plan.full or not _is_incremental(plan.resource) or backfilled
    return DeliveryJob(
        plan.run_id, plan.resource, plan.contract, sub, master_key(store), _now(),
        replace=(sub.mode == "snapshot" or sub.delivery == "verify") and whole,
        stale=tuple(stale),
        backfill=backfilled,
        parent=plan.parent,
    )


def finish(store: sa.Engine, run_id: str) -> RunSummary:
    """Close the run: success, the watermark and the subscriptions' progress move together,
    only if every delivery committed; otherwise the run is failed and all of them stay."""
    plan = _load_plan(store, run_id)
    with store.begin() as conn:
        status = bookkeeping.run_status(conn, run_id)
        if status == "running":
            _settle(conn, plan, _now())
        summary = load_summary(conn, run_id)
        leases.release(conn, run_id)  # the resource is free as the run ends
        actor, by_airflow = run_actor(plan.parent)
        records.append_audit(  # finish closes the run: its audit entry
            conn, kind="run", subject=run_id, actor=actor,
            detail={k: v for k, v in summary.to_json().items() if k != "run_id"} | by_airflow,
        )
    plan.stage.remove()
    # Dispute flags still pending for the resource's targets (one was down when its dispute
    # moved, or a subscription not delivered by this run holds a disputed record): now.
    dispute_flags.settle(store, plan.resource.code)
    if status == "running" or summary.status in ("blocked", "failed"):
        run_lineage.emit(
            store, lambda: run_lineage.final_event(store, plan.lineage_run(store), summary)
        )
    return summary


def _settle(conn: sa.Connection, plan: RunPlan, now: dt.datetime) -> None:
    """A running run ends failed, naming each delivery that did not commit, or successful; a
    successful run moves the watermark and its subscriptions' progress in the same
    transaction (`_advance`)."""
    done = bookkeeping.deliveries_of(conn, plan.run_id)
    missing = [s for s in plan.subscriptions if s not in done or done[s]["status"] != "success"]
    if missing:
        reasons = "; ".join(
            f"{s}: {done[s]['message'] if s in done else 'not delivered'}" for s in missing
        )
        bookkeeping.close_run(
            conn, plan.run_id, "failed", ended_at=now,
            message=f"delivery failed for {', '.join(missing)} ({reasons})",
        )
        return
    bookkeeping.close_run(conn, plan.run_id, "success", ended_at=now)
    _advance(conn, plan, now)


def _advance(conn: sa.Connection, plan: RunPlan, now: dt.datetime) -> None:
    """After a successful run: a run to every subscription moves the watermark to where it
    read, and every subscription it delivered to is current there. A run for one subscription
    moves no watermark (the others have not got its rows); a backfill or full read it made
    leaves its subscription holding everything up to the watermark: current at it."""
    if plan.single_subscription:
        sub_ids = [s for s in plan.subscriptions if plan.full or s in plan.backfills]
        cursor = plan.cursor_start
    else:
        sub_ids = list(plan.subscriptions)
        cursor = plan.cursor_end
        if plan.cursor_end:
            bookkeeping.advance_watermark(
                conn, plan.resource.code, plan.cursor_end, plan.run_id, now
            )
    for sub_id in sub_ids:
        bookkeeping.record_progress(
            conn, sub_id, plan.resource.code, cursor=cursor, run_id=plan.run_id,
            contract=plan.resource.contract,
            shape=backfill.delivered_shape(plan.subscriptions[sub_id]), now=now,
        )


def run_resource(
    store: sa.Engine,
    code: str,
    *,
    subscription: str | None = None,
    full: bool = False,
    parent: ParentRun | None = None,
    progress: Progress | None = None,
    wait: float = 0,
) -> RunSummary:
    """All steps in one process. A failed delivery does not stop the others; the run then
    ends failed and its watermark stays, so the next run repairs what is missing. `wait`:
    seconds to wait for another run of the resource to finish (`start_run`)."""
    say = progress or (lambda _message: None)
    plans = _catalog_of_runs.set({})  # one catalog read for the whole run
    try:
        return _run_all(store, code, subscription, full, parent, say, wait)
    finally:
        _catalog_of_runs.reset(plans)


def _run_all(
    store: sa.Engine, code: str, subscription: str | None, full: bool,
    parent: ParentRun | None, say: Progress, wait: float,
) -> RunSummary:
    """`run_resource`'s steps, in order."""
    run_id = start_run(
        store, code, subscription=subscription, full=full, parent=parent, wait=wait
    )
    say(f"{code}: run {run_id} started")
    try:
        meter.start(f"{code}: extract and gate")
        read, passed = extract_and_gate(store, run_id)
        say(f"{code}: extracted {read} records")
        say(f"{code}: {passed} records passed the gate")
        for sub_id in subscriptions_of(store, run_id):
            meter.start(f"{code}: deliver to {sub_id}", None)
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
