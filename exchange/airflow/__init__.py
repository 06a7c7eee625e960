"""The Airflow adapter of govex: the DAG factory, the operators and the API-server plugin.

- `build_dags(store_url=None) -> dict[str, DAG]`: one `govex__<RESOURCE_CODE>` DAG per catalog
  resource (`departments=` / `skip_departments=` narrow it to providing departments);
- `dags_for_file(__file__)`: what a govex DAG file holds, chosen by its name
  (`dags/govex_exchanges.py` puts them in its globals; `exchange.airflow.dag_files` splits a
  large catalog into one file per department);
- operators for hand-authored DAGs: `GovexExtractOperator`, `GovexGateOperator`,
  `GovexDeliverOperator`, `GovexReportOperator`, the one-shot `GovexRunOperator`, and
  `GovexReconcileOperator` (key reconciliation, when due);
- `exchange.airflow.plugin`: mounts the govex web app into Airflow's API server.

Airflow is an adapter: every step here calls `exchange.run.steps`, which the CLI calls too.
"""

from exchange.airflow.dag_files import dags_for_file
from exchange.airflow.factory import build_dag, build_dags, dag_id_for
from exchange.airflow.operators import (
    GovexDeliverOperator,
    GovexExtractOperator,
    GovexGateOperator,
    GovexOperator,
    GovexReconcileOperator,
    GovexReportOperator,
    GovexRunOperator,
)

__all__ = [
    "GovexDeliverOperator",
    "GovexExtractOperator",
    "GovexGateOperator",
    "GovexOperator",
    "GovexReconcileOperator",
    "GovexReportOperator",
    "GovexRunOperator",
    "build_dag",
    "build_dags",
    "dag_id_for",
    "dags_for_file",
]
