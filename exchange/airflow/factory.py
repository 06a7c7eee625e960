"""The DAG factory: one Airflow DAG per catalog resource, `govex__<RESOURCE_CODE>`.

    extract ──► gate ──► deliver[subscription] (mapped) ──► report (all_done)
                                                               └──► reconcile (when declared)

A resource with `source.reconcile: P7D` gets a `reconcile` task after a successful report: a
key reconciliation (`govex run CODE --reconcile`) when that long has passed since the last
successful one, else nothing. After the report, never beside it: one DAG run at a time, so it
never races the run's own deliveries.

Parse-time cost is one connection and two queries to the metadata store (every resource's and
every subscription's declaration, of the departments asked for) plus the DAG objects, whatever
the number of resources; nothing heavy (pyarrow, Great Expectations, connectors, the engine) is
imported until a task runs. The DAG objects themselves cost Airflow about 10 ms each, so a
catalog of thousands is built department by department, one DAG file each
(`exchange.airflow.dag_files`). An unreachable or empty
store yields no DAGs and a log line, never a DAG processor crash; a resource whose DAG cannot be
built (say, a malformed schedule) is logged and skipped without hiding the others.

Schedules: see `exchange.airflow.schedules`. Owner: the providing department. Retries apply
to transient errors only (see `exchange.airflow.operators`).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from airflow.sdk import DAG, Param

from exchange.airflow.operators import (
    GovexDeliverOperator,
    GovexExtractOperator,
    GovexGateOperator,
    GovexReconcileOperator,
    GovexReportOperator,
)
from exchange.airflow.schedules import resource_schedule
from govex.workdays import local_date

log = logging.getLogger(__name__)

DAG_PREFIX = "govex__"
# Far enough back for every schedule; catchup is off, so only the latest interval runs.
START_DATE = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
DEFAULT_RETRIES = 2
RETRY_DELAY = dt.timedelta(minutes=5)


def dag_id_for(code: str) -> str:
    return f"{DAG_PREFIX}{code}"


def _store_url(store_url: str | None) -> str:
    if store_url:
        return store_url
    from govex.settings import load_settings  # a dataclass over os.environ: cheap

    return load_settings().db_url


def read_catalog(
    store_url: str,
    *,
    departments: Collection[str] | None = None,
    skip_departments: Collection[str] = (),
) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """(resource declarations by code, subscription declarations by resource code): of the
    resources `departments` provide when given, none of those `skip_departments` provide.

    Read-only: unlike `open_store`, this never creates or migrates a store, so parsing a DAG
    folder on a machine without a store has no side effects (a missing SQLite file is empty).
    """
    import catalog  # the public catalog API (its own imports, not the engine's)

    url = sa.make_url(store_url)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not Path(database).exists():
            log.warning("govex: no metadata store at %s; no govex DAGs", database)
            return {}, {}
        # Parse-time reads must not wait out a busy writer for long.
        engine = sa.create_engine(url, connect_args={"timeout": 5})
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    try:
        with engine.connect() as conn:
            resources = catalog.resource_declarations(
                conn, providers=departments, exclude_providers=skip_departments)
            subscriptions = catalog.subscription_declarations(
                conn, providers=departments, exclude_providers=skip_departments)
    finally:
        engine.dispose()
    by_resource: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for declaration in subscriptions.values():
        by_resource[str(declaration["resource"])].append(declaration)
    return resources, dict(by_resource)


def _doc_md(resource: Mapping[str, Any], subscriptions: list[dict[str, Any]]) -> str:
    source = resource.get("source") or {}
    topic = (source.get("kafka") or {}).get("topic") or f"govex.ingest.{resource['code']}"
    origin = (
        f"Kafka topic `{topic}`"
        if source.get("kafka")
        else f"`{source.get('connection')}` "
        + (f"table `{source['table']}`" if source.get("table") else "query")
    )
    lines = [
        f"# {resource['code']} — {resource.get('name', '')}",
        "",
        str(resource.get("description") or "").strip(),
        "",
        f"- provider: `{resource.get('provider')}`, contract `{resource.get('contract')}`, "
        f"sharing `{resource.get('sharing')}`, classification `{resource.get('classification')}`",
        f"- source: {origin}; promised update frequency `{resource.get('update_frequency')}`",
        "- subscriptions: "
        + (", ".join(f"`{s['id']}` → {s.get('consumer')}" for s in subscriptions) or "none"),
        "",
        "Generated by `exchange.airflow.build_dags` from the govex catalog: edit the workspace "
        "and `govex apply`, not this DAG. Trigger with `{\"full\": true}` to ignore the "
        "watermark.",
    ]
    return "\n".join(lines)


def build_dag(
    resource: Mapping[str, Any],
    subscriptions: list[dict[str, Any]],
    *,
    store_url: str | None = None,
    today: dt.date | None = None,
) -> DAG:
    """The DAG of one resource from its declaration and its subscriptions' declarations.

    `store_url` is baked into the tasks only when given (tests); None makes each task read
    GOVEX_DB_URL where it runs, which keeps credentials out of the serialized DAG.
    """
    code = str(resource["code"])
    provider = str(resource.get("provider") or "govex")
    common: dict[str, Any] = {"resource": code, "store_url": store_url}
    with DAG(
        dag_id=dag_id_for(code),
        schedule=resource_schedule(resource, subscriptions, today),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=1,
        description=f"govex exchange of {code} {resource.get('name', '')}".strip(),
        doc_md=_doc_md(resource, subscriptions),
        tags=["govex", f"provider:{provider}", f"classification:{resource.get('classification')}"],
        default_args={"owner": provider, "retries": DEFAULT_RETRIES, "retry_delay": RETRY_DELAY},
        params={
            "full": Param(False, type="boolean", description="ignore the watermark, read all"),
        },
    ) as dag:
        extract = GovexExtractOperator(task_id="extract", **common)
        gate = GovexGateOperator(task_id="gate", run_id=extract.output, **common)
        deliver = GovexDeliverOperator.partial(
            task_id="deliver", run_id=extract.output, **common
        ).expand(subscription=gate.output)
        # The report pulls the run id itself, so it still runs (and fails the DAG run with a
        # clear message) when extract produced none.
        report = GovexReportOperator(task_id="report", **common)
        extract >> gate >> deliver >> report
        every = (resource.get("source") or {}).get("reconcile")
        if every:
            report >> GovexReconcileOperator(task_id="reconcile", every=str(every), **common)
    return dag


def build_dags(
    store_url: str | None = None,
    *,
    departments: Collection[str] | None = None,
    skip_departments: Collection[str] = (),
) -> dict[str, DAG]:
    """One DAG per resource in the catalog at `store_url` (default: GOVEX_DB_URL), by dag id:
    of the resources `departments` provide when given, none of those `skip_departments`
    provide (`exchange.airflow.dag_files` splits a large catalog so)."""
    url = _store_url(store_url)
    try:
        resources, subscriptions = read_catalog(
            url, departments=departments, skip_departments=skip_departments)
    except Exception:  # noqa: BLE001 - never crash the DAG processor over the store
        log.exception("govex: cannot read the catalog at %r; no govex DAGs", _safe(url))
        return {}
    today = local_date()
    dags: dict[str, DAG] = {}
    for code, declaration in resources.items():
        try:
            dags[dag_id_for(code)] = build_dag(
                declaration, subscriptions.get(code, []), store_url=store_url, today=today
            )
        except Exception:  # noqa: BLE001 - one bad declaration must not hide the other DAGs
            log.exception("govex: cannot build the DAG of resource %s; skipped", code)
    return dags


def _safe(url: str) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<invalid URL>"
