"""The cost of running a govex exchange through Airflow: `airflow dags test` of one
resource's DAG with 10 changed rows, beside an empty PythonOperator run the same ways and
beside `govex run` of the same 10 rows, all measured in the same run (medians).

    govex bench airflow [--repeat 3]      (or: python -m benchmarks.bench_airflow)

The resource is `small_increment`'s: contract and national-standard checks, no declared
expectations, two masked fields, a SQLite source and target, a SQLite govex store. Airflow runs
on a throw-away AIRFLOW_HOME with a SQLite metadata database. What it prints:

- `govex run` as a whole process: the exchange's own fixed cost, no Airflow;
- `airflow tasks test` of an empty PythonOperator: what Airflow costs for one task, alone;
- `airflow dags test` of a one-task DAG (that empty task) and of `govex__SMALL-001` (extract,
  gate, one mapped deliver, report): the per-task overhead of the govex DAG is
  (govex DAG − empty DAG) / (its tasks − 1), printed beside the empty task's cost.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.small_increment import _add_rows, _timed, _workspace

EMPTY_DAG = '''
import datetime as dt

from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG

with DAG(dag_id="govex_bench_empty", schedule=None,
         start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC), catchup=False):
    PythonOperator(task_id="noop", python_callable=lambda: None)
'''
GOVEX_DAGS = "from exchange.airflow import build_dags\n\nglobals().update(build_dags())\n"


def _airflow(workdir: Path) -> dict[str, str]:
    """The environment of a throw-away Airflow with its DAG folder, migrated."""
    home, dags = workdir / "airflow", workdir / "dags"
    dags.mkdir(parents=True)
    (dags / "govex_exchanges.py").write_text(GOVEX_DAGS)
    (dags / "empty.py").write_text(EMPTY_DAG)
    env = {
        **os.environ, "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__OPENLINEAGE__DISABLED": "True",
        "GOVEX_DB_URL": f"sqlite:///{workdir / 'store.db'}",
        "GOVEX_STAGING_DIR": str(workdir / "staging"),
        "GOVEX_DATA_DOCS_DIR": str(workdir / "docs"),
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True)
    return env


def _tasks_of_last_run(env: dict[str, str], dag_id: str) -> int:
    db = Path(env["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(db) as conn:
        (count,) = conn.execute(
            "SELECT count(*) FROM task_instance WHERE dag_id = ? AND run_id = "
            "(SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1)",
            (dag_id, dag_id),
        ).fetchone()
    return int(count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    airflow = str(Path(sys.executable).with_name("airflow"))
    govex = [sys.executable, "-m", "exchange.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        env = _airflow(workdir)
        source, target = workdir / "small_source.db", workdir / "small_target.db"
        _workspace(workdir / "small_ws", source, target)
        _add_rows(source, 1, 100)
        subprocess.run([*govex, "db", "upgrade"], env=env, check=True, capture_output=True)
        subprocess.run([*govex, "apply", str(workdir / "small_ws")], env=env, check=True,
                       capture_output=True)
        _timed([*govex, "run", "SMALL-001"], env)  # the first 100 rows, not timed
        runs, dag_tests, empty_dags, empty_tasks = [], [], [], []
        next_row = 101
        for i in range(args.repeat):
            _add_rows(source, next_row, 10)
            next_row += 10
            runs.append(_timed([*govex, "run", "SMALL-001"], env))
            _add_rows(source, next_row, 10)
            next_row += 10
            dag_tests.append(_timed([airflow, "dags", "test", "govex__SMALL-001"], env))
            empty_dags.append(_timed([airflow, "dags", "test", "govex_bench_empty"], env))
            empty_tasks.append(_timed(
                [airflow, "tasks", "test", "govex_bench_empty", "noop", f"2026-01-0{1 + i}"],
                env))
        tasks = _tasks_of_last_run(env, "govex__SMALL-001")
        with sqlite3.connect(target) as conn:
            (delivered,) = conn.execute("SELECT count(*) FROM residents_copy").fetchone()
    expected = 100 + 20 * args.repeat
    assert delivered == expected, (delivered, expected)  # noqa: S101 - void if rows were lost
    run, dag, empty_dag, empty_task = (statistics.median(x) for x in
                                       (runs, dag_tests, empty_dags, empty_tasks))
    per_task = (dag - empty_dag) / max(tasks - 1, 1)
    print(f"10 changed rows, medians of {args.repeat}")
    print(f"govex run (whole process)                 {run:>7.2f} s")
    print(f"airflow tasks test, empty PythonOperator  {empty_task:>7.2f} s")
    print(f"airflow dags test, one empty task         {empty_dag:>7.2f} s")
    print(f"airflow dags test, govex__SMALL-001       {dag:>7.2f} s  ({tasks} tasks)")
    print(f"per govex task beyond the first           {per_task:>7.2f} s  "
          f"(ratio to the empty task {per_task / empty_task:.2f})")
    return 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"benchmark wall time                       {time.perf_counter() - started:>7.2f} s")
    sys.exit(code)
