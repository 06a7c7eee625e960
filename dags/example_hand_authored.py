"""A hand-authored DAG from the govex operators: the market-entity exchange for the tax bureau
only, every Monday, followed by a department's own step. The generated `govex__AMR-RES-001`
does the same for every subscription; use this shape when a department needs its own tasks
around the exchange."""

import datetime as dt

from airflow.sdk import DAG, task

from exchange.airflow import (
    GovexDeliverOperator,
    GovexExtractOperator,
    GovexGateOperator,
    GovexReportOperator,
)

RESOURCE = "AMR-RES-001"

with DAG(
    dag_id="example_govex_hand_authored",
    schedule="0 6 * * 1",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    max_active_runs=1,
    tags=["govex", "example"],
    default_args={"owner": "tax", "retries": 2, "retry_delay": dt.timedelta(minutes=5)},
):
    extract = GovexExtractOperator(task_id="extract", resource=RESOURCE, subscription="SUB-TAX-001")
    gate = GovexGateOperator(task_id="gate", resource=RESOURCE, run_id=extract.output)
    deliver = GovexDeliverOperator.partial(
        task_id="deliver", resource=RESOURCE, run_id=extract.output
    ).expand(subscription=gate.output)
    report = GovexReportOperator(task_id="report", resource=RESOURCE)

    @task
    def notify(summary: dict) -> None:
        """The department's own follow-up; it sees the run summary, never the records."""
        print(f"{summary['resource']}: {summary['deliveries']}")  # noqa: T201

    extract >> gate >> deliver >> report
    notify(report.output)
