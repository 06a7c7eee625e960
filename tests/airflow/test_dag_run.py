"""A generated DAG executed by Airflow (`dag.test()`, tasks in this process) over a stand-in
engine: checks the plumbing the real engine relies on — run id over XCom, one mapped deliver per
subscription, report closing every run, and the retry policy — independently of the data."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest

import exchange.run.steps
from exchange.airflow import build_dags
from govex.errors import DataQualityError, TransientError

pytestmark = pytest.mark.integration

# A demo-city DAG: dag.test() (Airflow 3.3) only runs DAGs its dag bundle (the dags folder,
# built from GOVEX_DB_URL) also contains.
DAG_ID = "govex__PSB-RES-001"


@dataclass
class FakeEngine:
    """Records the calls the operators make; behaviour switches per test."""

    subscriptions: list[str] = field(default_factory=lambda: ["SUB-A", "SUB-B"])
    block: bool = False
    transient_deliver: bool = False
    calls: list[tuple[Any, ...]] = field(default_factory=list)

    def start_run(self, store: Any, code: str, **kwargs: Any) -> str:
        self.calls.append(("start_run", code, kwargs["full"], kwargs["parent"]))
        return "run-1"

    def extract(self, store: Any, run_id: str) -> int:
        self.calls.append(("extract", run_id))
        return 10

    def gate(self, store: Any, run_id: str) -> int:
        self.calls.append(("gate", run_id))
        if self.block:
            msg = "blocked by the quality gate: 9 of 10 records failed"
            raise DataQualityError(msg)
        return 10

    def subscriptions_of(self, store: Any, run_id: str) -> list[str]:
        return list(self.subscriptions)

    def deliver(self, store: Any, run_id: str, subscription: str) -> int:
        self.calls.append(("deliver", run_id, subscription))
        if self.transient_deliver:
            msg = "database is locked"
            raise TransientError(msg)
        return 10

    def finish(self, store: Any, run_id: str) -> Any:
        self.calls.append(("finish", run_id))
        status = "blocked" if self.block else "failed" if self.transient_deliver else "success"
        delivered = [] if self.transient_deliver else [
            c[2] for c in self.calls if c[0] == "deliver"
        ]
        return exchange.run.steps.RunSummary(
            run_id=run_id, resource="PSB-RES-001", status=status, read=10, passed=10,
            quarantined=0,
            deliveries=tuple(exchange.run.steps.Delivery(s, 10) for s in delivered),
            message="" if status == "success" else f"the run {status}",
        )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, city_store: str) -> FakeEngine:
    engine = FakeEngine()
    for name in ("start_run", "extract", "gate", "subscriptions_of", "deliver", "finish"):
        monkeypatch.setattr(exchange.run, name, getattr(engine, name))  # what the operators call
    monkeypatch.setenv("GOVEX_DB_URL", city_store)  # opened by the tasks, unused by the fake
    return engine


def _states(dag_run: Any) -> dict[tuple[str, int], tuple[str, int]]:
    return {
        (ti.task_id, ti.map_index): (str(ti.state), ti.try_number)
        for ti in dag_run.get_task_instances()
    }


def _dag(store_url: str) -> Any:
    return build_dags(store_url)[DAG_ID]


def test_run_id_flows_and_deliver_maps_per_subscription(
    airflow_db: object, fake: FakeEngine, city_store: str
) -> None:
    dag_run = _dag(city_store).test()
    assert dag_run.state == "success"
    states = _states(dag_run)
    assert states[("deliver", 0)][0] == "success"
    assert states[("deliver", 1)][0] == "success"
    assert sorted(c for c in fake.calls if c[0] == "deliver") == [
        ("deliver", "run-1", "SUB-A"), ("deliver", "run-1", "SUB-B"),
    ]
    assert ("finish", "run-1") in fake.calls
    _, code, full, parent = fake.calls[0]
    assert (code, full) == ("PSB-RES-001", False)
    assert parent.job_name == "govex__PSB-RES-001.extract"


def test_full_param_reaches_start_run(
    airflow_db: object, fake: FakeEngine, city_store: str
) -> None:
    _dag(city_store).test(run_conf={"full": True})
    assert fake.calls[0][2] is True


def test_no_active_subscription_still_reports(
    airflow_db: object, fake: FakeEngine, city_store: str
) -> None:
    fake.subscriptions = []
    dag_run = _dag(city_store).test()
    states = _states(dag_run)
    assert states[("report", -1)][0] == "success"
    assert dag_run.state == "success"
    assert not [c for c in fake.calls if c[0] == "deliver"]


def test_blocked_gate_fails_without_retry(
    airflow_db: object, fake: FakeEngine, city_store: str
) -> None:
    fake.block = True
    dag_run = _dag(city_store).test()
    states = _states(dag_run)
    assert states[("gate", -1)] == ("failed", 1)  # retries=2, yet one try only
    assert states[("report", -1)][0] == "failed"  # ran (all_done), closed the run, failed it
    assert ("finish", "run-1") in fake.calls
    assert dag_run.state == "failed"


def test_transient_errors_are_retried(
    airflow_db: object, fake: FakeEngine, city_store: str
) -> None:
    fake.transient_deliver = True
    dag = _dag(city_store)
    dag.get_task("deliver").partial_kwargs["retry_delay"] = dt.timedelta(0)
    dag_run = dag.test()
    states = _states(dag_run)
    assert states[("deliver", 0)] == ("failed", 3)  # retries=2: three tries in all
    assert states[("deliver", 1)] == ("failed", 3)
    assert states[("report", -1)][0] == "failed"
    assert dag_run.state == "failed"
