"""Running the demo city's exchanges through Airflow (`dag.test()`), on the embedded defaults.

Airflow reads its configuration when first imported, so `prepare_airflow` sets the environment
(a private AIRFLOW_HOME under .govex, a SQLite Airflow database, this repository's dags/) and
migrates that database once, before anything imports Airflow.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from govex.errors import FatalError

REPO = Path(__file__).resolve().parents[2]


def prepare_airflow(home: Path) -> None:
    """Point Airflow at `home` (unless AIRFLOW_HOME is set) and migrate its database once."""
    home = Path(os.environ.setdefault("AIRFLOW_HOME", str(home.resolve())))
    home.mkdir(parents=True, exist_ok=True)
    defaults = {
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        # govex emits its own lineage; the provider has no transport configured in the demo.
        "AIRFLOW__OPENLINEAGE__DISABLED": "True",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    marker = home / ".govex-migrated"
    if marker.exists():
        return
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run(  # noqa: S603 - our own venv's airflow, fixed arguments
        [str(airflow), "db", "migrate"], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        msg = f"could not prepare Airflow's database in {home}: {done.stderr[-2000:]}"
        raise FatalError(msg)
    marker.touch()


def run_dag(store_url: str, code: str) -> str:
    """Run resource `code`'s generated DAG once with `dag.test()`; return the DAG run state."""
    from exchange.airflow import build_dags, dag_id_for

    for name in ("airflow", "airflow.task", "airflow.processor", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # dag.test() warns "No tasks to run" for a resource without subscriptions while its
    # empty mapped delivery resolves; the report then runs all the same.
    logging.getLogger("airflow.sdk.definitions.dag").setLevel(logging.ERROR)
    dags = build_dags(store_url)
    dag = dags[dag_id_for(code)]
    return str(dag.test().state)
