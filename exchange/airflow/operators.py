"""Airflow operators for the steps of a govex exchange run.

Hand-authored DAGs chain them exactly like the generated ones::

    extract = GovexExtractOperator(task_id="extract", resource="AMR-RES-001")
    gate = GovexGateOperator(task_id="gate", resource="AMR-RES-001", run_id=extract.output)
    deliver = GovexDeliverOperator.partial(
        task_id="deliver", resource="AMR-RES-001", run_id=extract.output
    ).expand(subscription=gate.output)
    report = GovexReportOperator(task_id="report", resource="AMR-RES-001")
    extract >> gate >> deliver >> report

or run everything in one task with `GovexRunOperator(task_id=..., resource=...)`.

What crosses XCom is metadata only: the govex run id (extract), the ids of the subscriptions
the run delivers to (gate, what `deliver` is mapped over), row counts and the run summary.
Records travel through the run's staged files and the databases, never through XCom.

Failures: a bad declaration, a blocked quality gate and any error govex does not recognise
fail the task without retry (`AirflowFailException`); a `TransientError` is raised as is so the
task's `retries` apply. Every step records its own failure on the govex run first.

Lineage: each operator implements the OpenLineage provider's
`get_openlineage_facets_on_complete`, naming the resource's source as input and the
subscription targets it writes (deliver: its own; report and run: every delivered one) as
outputs (dataset naming from `lineage`). The govex engine additionally emits its own run
events with a ParentRunFacet pointing at the Airflow task run passed to `start_run`.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from govex.errors import GovexError, TransientError

if TYPE_CHECKING:
    import sqlalchemy as sa
    from airflow.providers.openlineage.extractors import OperatorLineage
    from airflow.sdk import Context

    from exchange.run import ParentRun
    from lineage.datasets import DatasetName

__all__ = [
    "GovexDeliverOperator",
    "GovexExtractOperator",
    "GovexGateOperator",
    "GovexOperator",
    "GovexReconcileOperator",
    "GovexReportOperator",
    "GovexRunOperator",
    "airflow_errors",
    "parent_run",
]

# Used when the OpenLineage provider is absent or cannot name the task run.
_FALLBACK_NAMESPACE = "default"


@contextmanager
def airflow_errors() -> Iterator[None]:
    """Translate govex errors into Airflow's retry semantics (see the module docstring)."""
    try:
        yield
    except (TransientError, AirflowException):
        raise
    except GovexError as error:
        raise AirflowFailException(str(error)) from error
    except Exception as error:
        # STYLE 8: an error govex does not know is fatal; the engine wraps what may be retried.
        msg = f"{error.__class__.__name__}: {error}"
        raise AirflowFailException(msg) from error


def _openlineage_ids(ti: Any) -> tuple[str, str]:
    """(namespace, run id) the OpenLineage provider gives this task run, so govex's own events
    hang under the provider's task events; a UUID derived from the task instance otherwise."""
    try:
        from airflow.providers.openlineage.plugins.macros import (
            lineage_job_namespace,
            lineage_run_id,
        )

        return (
            str(lineage_job_namespace()),  # type: ignore[no-untyped-call]
            str(lineage_run_id(ti)),  # type: ignore[no-untyped-call]
        )
    except Exception:  # noqa: BLE001 - lineage is a side channel: fall back, never fail
        seed = (
            f"airflow/{ti.dag_id}/{ti.run_id}/{ti.task_id}/"
            f"{getattr(ti, 'map_index', -1)}/{getattr(ti, 'try_number', 1)}"
        )
        return _FALLBACK_NAMESPACE, str(uuid.uuid5(uuid.NAMESPACE_URL, seed))


def parent_run(ti: Any) -> ParentRun:
    """The OpenLineage parent of the govex run driven by task instance `ti`."""
    from exchange.run import ParentRun

    namespace, run_id = _openlineage_ids(ti)
    return ParentRun(
        namespace=namespace, job_name=f"{ti.dag_id}.{ti.task_id}", run_id=run_id,
        dag_run_id=str(ti.run_id),  # Airflow's DAG run id: the audit log's actor is `airflow`
    )


class GovexOperator(BaseOperator):
    """Base of the govex operators: which resource, which store, which run.

    :param resource: the resource code (catalog).
    :param run_id: the govex run id, usually `extract.output`; when None it is pulled from the
        XCom of task `extract_task_id` (tolerating its absence, which the report needs).
    :param store_url: metadata store URL; None (recommended) reads GOVEX_DB_URL in the worker,
        so no credentials end up in the serialized DAG.
    """

    template_fields: Sequence[str] = ("resource", "run_id")
    ui_color = "#dbe9f6"

    def __init__(
        self,
        *,
        resource: str,
        run_id: Any = None,
        store_url: str | None = None,
        extract_task_id: str = "extract",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.resource = resource
        self.run_id = run_id
        self.store_url = store_url
        self.extract_task_id = extract_task_id
        # What this task actually did, for lineage after execute.
        self._delivered_to: list[str] | None = None

    # -- helpers ---------------------------------------------------------------------------
    @contextmanager
    def open_store(self) -> Iterator[sa.Engine]:
        """The metadata store for one step; its connection pool is disposed on exit."""
        from exchange.store import open_store
        from govex.settings import load_settings

        settings = load_settings()
        if self.store_url:
            settings = dataclasses.replace(settings, db_url=self.store_url)
        engine = open_store(settings)
        try:
            yield engine
        finally:
            engine.dispose()

    def govex_run_id(self, context: Context) -> str | None:
        if self.run_id:
            return str(self.run_id)
        pulled = context["ti"].xcom_pull(task_ids=self.extract_task_id)
        return str(pulled) if pulled else None

    def _require_run_id(self, context: Context) -> str:
        run_id = self.govex_run_id(context)
        if run_id is None:
            msg = (
                f"no govex run id: task '{self.extract_task_id}' did not return one "
                f"(pass run_id=<extract task>.output or extract_task_id=...)"
            )
            raise AirflowFailException(msg)
        return run_id

    # -- lineage ---------------------------------------------------------------------------
    def _lineage_outputs(self) -> list[str] | None:
        """Subscription ids whose targets this task writes; None = every subscription."""
        return []

    def lineage_datasets(self) -> tuple[DatasetName, list[DatasetName]]:
        """(source, targets) of this task, read from the catalog."""
        import catalog
        from lineage.datasets import source_dataset, target_dataset

        wanted = self._lineage_outputs()
        with self.open_store() as engine, engine.connect() as conn:
            resource = catalog.load_resource(conn, self.resource)
            source = source_dataset(
                resource, catalog.load_connection(conn, resource.source.connection)
            )
            targets = [
                target_dataset(sub, catalog.load_connection(conn, sub.sink.connection))
                for sub in catalog.load_subscriptions(conn, self.resource)
                if (wanted is None or sub.id in wanted) and sub.target is not None
            ]
        return source, targets

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """Inputs and outputs for Airflow's OpenLineage provider (called after execute)."""
        from airflow.providers.openlineage.extractors import OperatorLineage
        from openlineage.client.event_v2 import Dataset

        source, targets = self.lineage_datasets()
        return OperatorLineage(
            inputs=[Dataset(namespace=source.namespace, name=source.name)],
            outputs=[Dataset(namespace=t.namespace, name=t.name) for t in targets],
        )


class _StartsRuns(GovexOperator):
    """What the operators that start a run share: the subscription filter and `full`, which a
    DAG run's `full` param also turns on."""

    template_fields: Sequence[str] = ("resource", "subscription")

    def __init__(
        self, *, subscription: str | None = None, full: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.subscription = subscription
        self.full = full

    def wants_full(self, context: Context) -> bool:
        params = context.get("params") or {}
        return self.full or bool(params.get("full", False))


class GovexExtractOperator(_StartsRuns):
    """Start a govex run of `resource` and read its source into the run's staged batches.
    Returns (XCom) the run id only.

    :param subscription: deliver only to this subscription (the watermark then stays).
    :param full: ignore the watermark and read everything; a DAG run's `full` param also
        turns it on (`airflow dags trigger govex__X --conf '{"full": true}'`).
    """


    def execute(self, context: Context) -> str:
        from exchange.run import extract, start_run

        full = self.wants_full(context)
        with airflow_errors(), self.open_store() as store:
            run_id = start_run(
                store,
                self.resource,
                subscription=self.subscription or None,
                full=full,
                parent=parent_run(context["ti"]),
            )
            read = extract(store, run_id)
        self.log.info("govex run %s of %s: %d records read", run_id, self.resource, read)
        return run_id


class GovexGateOperator(GovexOperator):
    """Run the contract and quality gate over the run's staged batches. Returns (XCom) the ids
    of the subscriptions the run delivers to — what the deliver task is mapped over. A blocked
    batch fails the task without retry."""

    def execute(self, context: Context) -> list[str]:
        from exchange.run import gate, subscriptions_of

        run_id = self._require_run_id(context)
        with airflow_errors(), self.open_store() as store:
            passed = gate(store, run_id)
            subscriptions = subscriptions_of(store, run_id)
        self.log.info(
            "govex run %s: %d records passed the gate; delivering to %s",
            run_id, passed, ", ".join(subscriptions) or "no active subscription",
        )
        return subscriptions


class GovexDeliverOperator(GovexOperator):
    """Project, mask and load the run's passing records into one subscription's target (a
    verify subscription's verification index takes them instead). Usually mapped:
    `.partial(...).expand(subscription=gate.output)`. Returns rows delivered."""

    template_fields: Sequence[str] = ("resource", "run_id", "subscription")

    def __init__(self, *, subscription: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.subscription = subscription

    def _lineage_outputs(self) -> list[str] | None:
        return [self.subscription]

    def execute(self, context: Context) -> int:
        from exchange.run import deliver

        run_id = self._require_run_id(context)
        with airflow_errors(), self.open_store() as store:
            delivered = deliver(store, run_id, self.subscription)
        self.log.info("govex run %s: %d records delivered to %s", run_id, delivered,
                      self.subscription)
        return delivered


def _judge(summary: Any, log: Any, *, retry_failed: bool) -> dict[str, Any]:
    """Log the run summary; fail the task unless the run succeeded. `retry_failed`: a failed
    run lets Airflow retry the task (worth it only when the task redoes the run)."""
    result: dict[str, Any] = summary.to_json()
    log.info("govex run summary: %s", result)
    if summary.status == "blocked":
        msg = f"govex run {summary.run_id} blocked: {summary.message}"
        raise AirflowFailException(msg)
    if summary.status != "success":
        msg = f"govex run {summary.run_id} {summary.status}: {summary.message}"
        if retry_failed:
            # Safe: the watermark stayed, so the next run re-reads and repairs what is missing.
            raise AirflowException(msg)
        raise AirflowFailException(msg)
    return result


class GovexReportOperator(GovexOperator):
    """Close the run (`finish`: the watermark advances only when every delivery committed) and
    return its summary, the `govex run --json` object. Runs whatever happened upstream
    (trigger rule `all_done`) so that every run is closed and summarised, then fails unless
    the run succeeded — which is what makes the DAG run fail."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)

    def _lineage_outputs(self) -> list[str] | None:
        return self._delivered_to

    def execute(self, context: Context) -> dict[str, Any]:
        from exchange.run import finish

        run_id = self.govex_run_id(context)
        if run_id is None:
            msg = (
                f"nothing to report for {self.resource}: task '{self.extract_task_id}' "
                "recorded no govex run (see its log)"
            )
            raise AirflowFailException(msg)
        with airflow_errors(), self.open_store() as store:
            summary = finish(store, run_id)
        self._delivered_to = [d.subscription for d in summary.deliveries]
        # Retrying the report would only re-read the same closed run: the delivery tasks
        # have already had their retries.
        return _judge(summary, self.log, retry_failed=False)


class GovexRunOperator(_StartsRuns):
    """One whole exchange run in a single task (`govex run` inside Airflow). Returns the run
    summary. A blocked gate fails without retry; a failed run raises so retries apply."""


    def _lineage_outputs(self) -> list[str] | None:
        if self._delivered_to is not None:
            return self._delivered_to
        return [self.subscription] if self.subscription else None

    def execute(self, context: Context) -> dict[str, Any]:
        from exchange.run import run_resource

        full = self.wants_full(context)
        with airflow_errors(), self.open_store() as store:
            summary = run_resource(
                store,
                self.resource,
                subscription=self.subscription or None,
                full=full,
                parent=parent_run(context["ti"]),
                progress=self.log.info,
            )
        self._delivered_to = [d.subscription for d in summary.deliveries]
        return _judge(summary, self.log, retry_failed=True)


class GovexReconcileOperator(GovexOperator):
    """Key reconciliation of `resource` (`govex run CODE --reconcile`): the records gone from
    its source deleted from its upsert and snapshot targets. With `every` (the resource's
    `source.reconcile`, an ISO-8601 duration) only when that long has passed since the last
    successful one; otherwise it does nothing and returns None. Returns the summary and fails,
    without retry, unless the reconciliation succeeded (a refused one deleted nothing)."""

    template_fields: Sequence[str] = ("resource", "every")

    def __init__(self, *, every: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.every = every

    def _lineage_outputs(self) -> list[str] | None:
        return self._delivered_to

    def execute(self, context: Context) -> dict[str, Any] | None:
        import datetime as dt

        from exchange.run import reconcile_due, reconcile_resource

        with airflow_errors(), self.open_store() as store:
            now = dt.datetime.now(dt.UTC)
            if self.every and not reconcile_due(store, self.resource, self.every, now):
                self.log.info("govex: %s was reconciled less than %s ago; not due",
                              self.resource, self.every)
                self._delivered_to = []
                return None
            summary = reconcile_resource(store, self.resource, progress=self.log.info)
        self._delivered_to = [d.subscription for d in summary.deliveries]
        return _judge(summary, self.log, retry_failed=False)
