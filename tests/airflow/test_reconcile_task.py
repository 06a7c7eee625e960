"""A resource that declares `source.reconcile` gets a `reconcile` task after its report, which
reconciles only when due. No Airflow database needed."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from exchange.airflow import GovexReconcileOperator, build_dag
from exchange.run import reconcile_due
from exchange.run.bookkeeping import RECONCILE_MESSAGE, insert_run, runs
from exchange.store import create_store_engine, upgrade


def _resource(**source: Any) -> dict[str, Any]:
    return {
        "code": "PSB-RES-001", "name": "居民", "provider": "psb", "contract": "r@1.0.0",
        "key": ["id_no"], "sharing": "conditional", "classification": "L3",
        "update_frequency": "P1D",
        "source": {"connection": "psb_db", "table": "residents", **source},
    }


def test_reconcile_task_follows_a_successful_report() -> None:
    dag = build_dag(_resource(reconcile="P7D"), [])
    task = dag.get_task("reconcile")
    assert isinstance(task, GovexReconcileOperator)
    assert task.every == "P7D"
    assert task.upstream_task_ids == {"report"}
    assert task.trigger_rule == "all_success"
    assert "reconcile" not in build_dag(_resource(), []).task_ids


def test_reconcile_is_due_after_its_interval(tmp_path: Any) -> None:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    now = dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)
    assert reconcile_due(engine, "PSB-RES-001", "P7D", now)
    with engine.begin() as conn:
        insert_run(conn, "r-1", "PSB-RES-001", subscriptions=[],
                   started_at=now - dt.timedelta(days=2), message=RECONCILE_MESSAGE)
    assert reconcile_due(engine, "PSB-RES-001", "P7D", now)  # still running: not a success
    with engine.begin() as conn:
        conn.execute(sa.update(runs).values(status="success"))
    assert not reconcile_due(engine, "PSB-RES-001", "P7D", now)
    assert reconcile_due(engine, "PSB-RES-001", "P1D", now)
    assert reconcile_due(engine, "PSB-RES-001", "P7D", now + dt.timedelta(days=5))
    engine.dispose()
