"""Running the demo city's exchanges through Airflow (`dag.test()`), on the embedded defaults.

Airflow reads its configuration when first imported, so `prepare_airflow` sets the environment
(a private AIRFLOW_HOME under .govex, a SQLite Airflow database, a dags folder holding the DAG
file of the repository's dags/govex_exchanges.py, the demo's metadata store) and migrates that
database once, before anything imports Airflow. The DAG file is written, not pointed at: an
installed govex has no dags/ folder.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from govex.errors import FatalError

# The same two lines as dags/govex_exchanges.py: the DAGs come from the catalog, not the file.
DAG_FILE = '''"""One Airflow DAG per govex catalog resource (`govex__<RESOURCE_CODE>`), built
from the metadata store at GOVEX_DB_URL. Written by `govex demo`: edit the workspace and
`govex apply`, not this file."""

from exchange.airflow import build_dags

globals().update(build_dags())
'''


def write_dag_file(folder: Path) -> Path:
    """The DAG file that builds every resource's DAG, in `folder` (rewritten only if changed)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "govex_exchanges.py"
    if not path.exists() or path.read_text(encoding="utf-8") != DAG_FILE:
        path.write_text(DAG_FILE, encoding="utf-8")
    return path


def prepare_airflow(home: Path, store_url: str) -> None:
    """Point Airflow at `home` (unless AIRFLOW_HOME is set) with the DAG file written to
    `home/dags` (unless AIRFLOW__CORE__DAGS_FOLDER is set) and the metadata store at
    `store_url` (unless GOVEX_DB_URL is set: then it names the store the demo opened), and
    migrate its database once."""
    own = home.resolve()
    home = Path(os.environ.setdefault("AIRFLOW_HOME", str(own)))
    home.mkdir(parents=True, exist_ok=True)
    if "AIRFLOW__CORE__DAGS_FOLDER" not in os.environ:  # the demo's own folder, never another's
        os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(write_dag_file(own / "dags").parent)
    defaults = {
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        # govex emits its own lineage; the provider has no transport configured in the demo.
        "AIRFLOW__OPENLINEAGE__DISABLED": "True",
        # What the DAG file and the tasks read to find the store.
        "GOVEX_DB_URL": store_url,
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
