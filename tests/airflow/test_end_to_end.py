"""The demo city through Airflow for real: generated source data, the real engine, records in
the consumers' target databases — via `dag.test()` in this process and via
`airflow dags test` in a subprocess."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import sqlalchemy as sa

from exchange.airflow import build_dags

from .conftest import AIRFLOW_BIN, AIRFLOW_ENV

pytestmark = pytest.mark.integration


def _rows(db: Path, table: str) -> int:
    engine = sa.create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return int(conn.execute(sa.text(f'SELECT count(*) FROM "{table}"')).scalar_one())
    finally:
        engine.dispose()


def _govex_runs(store_url: str, resource: str) -> list[tuple[str, str | None]]:
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            return [
                (r.status, r.parent)
                for r in conn.execute(
                    sa.text("SELECT status, parent FROM exchange_runs WHERE resource = :r"),
                    {"r": resource},
                )
            ]
    finally:
        engine.dispose()


def _actors(store_url: str, run_id: str) -> set[tuple[str, str, str | None]]:
    """(kind, actor, DAG run id) of the audit entries of one govex run and its deliveries."""
    import records

    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            return {
                (e.kind, e.actor, e.detail.get("dag_run_id"))
                for e in records.list_audit(conn, limit=None)
                if e.subject == run_id or e.subject.startswith(f"{run_id}/")
            }
    finally:
        engine.dispose()


def test_dag_test_delivers_into_the_targets(
    airflow_db: object, city: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    workspace, store_url = city
    monkeypatch.setenv("GOVEX_DB_URL", store_url)  # the dag bundle is built from it too
    monkeypatch.setenv("GOVEX_STAGING_DIR", str(tmp_path / "staging"))
    dag = build_dags(store_url)["govex__AMR-RES-001"]
    dag_run = dag.test()
    states = {(ti.task_id, ti.map_index): str(ti.state) for ti in dag_run.get_task_instances()}
    assert states == {
        ("extract", -1): "success", ("gate", -1): "success",
        ("deliver", 0): "success", ("deliver", 1): "success", ("report", -1): "success",
    }
    assert dag_run.state == "success"
    data = workspace / "data"
    assert _rows(data / "gsc.db", "amr_market_entities") > 0  # SUB-GSC-002, upsert
    assert _rows(data / "tax.db", "amr_market_entities") > 0  # SUB-TAX-001, snapshot
    runs = _govex_runs(store_url, "AMR-RES-001")
    assert [status for status, _ in runs] == ["success"]
    assert "govex__AMR-RES-001.extract" in str(runs[0][1])  # the OpenLineage parent
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        run_id = conn.execute(sa.text(
            "SELECT run_id FROM exchange_runs WHERE resource = 'AMR-RES-001'"
        )).scalar_one()
    engine.dispose()
    # The audit log records Airflow, with its DAG run id, as the actor: never `cli`.
    assert _actors(store_url, run_id) == {
        ("run", "airflow", dag_run.run_id), ("delivery", "airflow", dag_run.run_id)
    }
    assert not list((tmp_path / "staging").glob("*/*/*.arrow"))  # staged files cleaned up


def test_airflow_dags_test_cli(
    airflow_db: object, city: tuple[Path, str], tmp_path: Path
) -> None:
    workspace, store_url = city
    env = {
        **os.environ, **AIRFLOW_ENV,
        "GOVEX_DB_URL": store_url, "GOVEX_STAGING_DIR": str(tmp_path / "staging"),
    }
    result = subprocess.run(
        [str(AIRFLOW_BIN), "dags", "test", "govex__PSB-RES-001"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240, check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    data = workspace / "data"
    assert _rows(data / "gsc.db", "psb_residents") > 0  # SUB-GSC-001
    assert _rows(data / "hpf.db", "psb_residents") > 0  # SUB-HPF-001
    assert [status for status, _ in _govex_runs(store_url, "PSB-RES-001")] == ["success"]


def test_run_operator_one_shot(
    city: tuple[Path, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`GovexRunOperator.execute` as a worker calls it (no scheduler needed)."""
    from types import SimpleNamespace

    from exchange.airflow import GovexRunOperator

    workspace, store_url = city
    monkeypatch.setenv("GOVEX_STAGING_DIR", str(tmp_path / "staging"))
    ti = SimpleNamespace(dag_id="d", task_id="run", run_id="r", map_index=-1, try_number=1)
    op = GovexRunOperator(task_id="run", resource="HEALTH-RES-001", store_url=store_url)
    summary = op.execute({"ti": ti, "params": {}})  # type: ignore[arg-type]
    assert summary["status"] == "success"
    assert summary["deliveries"] == [
        {"subscription": "SUB-PSB-001", "delivered": summary["passed"], "status": "success"}
    ]
    assert _rows(workspace / "data" / "psb.db", "health_birth_certificates") == summary["passed"]
    lineage = op.get_openlineage_facets_on_complete(None)
    assert [d.name for d in lineage.outputs] == ["main.health_birth_certificates"]
