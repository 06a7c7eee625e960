"""The DAG factory over the demo city's catalog: one DAG per resource, the right tasks, mapping,
schedules and failure-tolerant parsing. No Airflow database needed."""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import pytest
from airflow.sdk import Asset
from airflow.sdk.definitions.mappedoperator import MappedOperator

from exchange.airflow import (
    GovexDeliverOperator,
    GovexExtractOperator,
    GovexGateOperator,
    GovexReportOperator,
    build_dags,
)
from exchange.demo.files import packaged_workspace

CODES = {
    "AMR-RES-001", "CIVIL-RES-001", "HEALTH-RES-001", "HEALTH-RES-002",
    "HRSS-RES-001", "PSB-RES-001", "TAX-RES-001",
}


@pytest.fixture(scope="module")
def dags(city_store: str) -> dict:
    return build_dags(city_store)


def test_one_dag_per_resource(dags: dict) -> None:
    assert set(dags) == {f"govex__{code}" for code in CODES}
    assert len(list(packaged_workspace().glob("resources/*.yaml"))) == len(CODES)


@pytest.mark.parametrize("code", sorted(CODES))
def test_tasks_and_mapping(dags: dict, code: str) -> None:
    dag = dags[f"govex__{code}"]
    assert set(dag.task_ids) == {"extract", "gate", "deliver", "report"}
    extract, gate = dag.get_task("extract"), dag.get_task("gate")
    deliver, report = dag.get_task("deliver"), dag.get_task("report")
    assert isinstance(extract, GovexExtractOperator)
    assert isinstance(gate, GovexGateOperator)
    assert isinstance(report, GovexReportOperator)
    # deliver: one mapped task instance per subscription the gate returns
    assert isinstance(deliver, MappedOperator)
    assert deliver.operator_class is GovexDeliverOperator
    assert set(deliver.expand_input.value) == {"subscription"}
    assert deliver.expand_input.value["subscription"].operator is gate
    assert deliver.partial_kwargs["resource"] == code
    assert extract.downstream_task_ids == {"gate", "deliver"}  # deliver also reads its run id
    assert gate.downstream_task_ids == {"deliver"}
    assert deliver.downstream_task_ids == {"report"}
    assert report.trigger_rule == "all_done"
    assert report.downstream_task_ids == set()


def test_dag_settings(dags: dict) -> None:
    dag = dags["govex__PSB-RES-001"]
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert "govex" in dag.tags
    assert "provider:psb" in dag.tags
    assert dag.default_args["owner"] == "psb"
    assert all(task.owner == "psb" for task in dag.tasks)
    assert "居民身份基础信息" in dag.doc_md
    assert "SUB-GSC-001" in dag.doc_md
    assert "SUB-HPF-001" in dag.doc_md
    assert dag.params["full"] is False


@pytest.mark.parametrize(
    ("code", "schedule"),
    [
        ("AMR-RES-001", "@hourly"),  # SUB-GSC-002 @hourly beats SUB-TAX-001 @weekly
        ("HRSS-RES-001", "@daily"),  # SUB-HPF-002 @daily beats SUB-CIVIL-001 @monthly
        ("PSB-RES-001", "@daily"),
        ("CIVIL-RES-001", "@monthly"),
        ("HEALTH-RES-001", "@daily"),
        ("HEALTH-RES-002", dt.timedelta(days=7)),  # no subscription: update_frequency P7D
    ],
)
def test_schedules(dags: dict, code: str, schedule: object) -> None:
    assert dags[f"govex__{code}"].schedule == schedule


def test_kafka_resource_is_asset_scheduled(dags: dict) -> None:
    schedule = dags["govex__TAX-RES-001"].schedule
    assert isinstance(schedule, Asset)
    assert schedule.uri == "govex://landing/TAX-RES-001"


def test_kafka_resource_dag_serializes_with_its_landing_watcher(dags: dict) -> None:
    """What the scheduler stores and the triggerer runs: the watcher survives serialization."""
    from airflow.serialization.serialized_objects import DagSerialization

    data = DagSerialization.to_dict(dags["govex__TAX-RES-001"])
    text = json.dumps(data)
    assert "exchange.airflow.landing_trigger.LandingTrigger" in text
    assert "govex_landing_TAX-RES-001" in text


def test_missing_store_gives_no_dags(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    missing = tmp_path / "nowhere" / "govex.db"
    with caplog.at_level(logging.WARNING):
        assert build_dags(f"sqlite:///{missing}") == {}
    assert not missing.exists()  # parsing never creates a store
    assert "no metadata store" in caplog.text


def test_unreachable_store_gives_no_dags(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        assert build_dags("postgresql+psycopg://govex:secret@127.0.0.1:1/govex") == {}
    assert "cannot read the catalog" in caplog.text
    assert "secret" not in caplog.text


def test_default_url_comes_from_environment(
    city_store: str, clean_env: pytest.MonkeyPatch
) -> None:
    clean_env.setenv("GOVEX_DB_URL", city_store)
    dags = build_dags()
    assert len(dags) == len(CODES)
    # Without an explicit URL nothing store-specific is baked into the tasks.
    assert dags["govex__PSB-RES-001"].get_task("extract").store_url is None


def test_dags_folder_parses_cleanly(city_store: str, clean_env: pytest.MonkeyPatch) -> None:
    """Both DAG files, as the DAG processor sees them: no import errors, the hand-authored
    example wired like the generated DAGs."""
    from airflow.dag_processing.dagbag import DagBag

    from .conftest import DAGS

    clean_env.setenv("GOVEX_DB_URL", city_store)
    bag = DagBag(dag_folder=str(DAGS))
    assert bag.import_errors == {}
    assert {f"govex__{code}" for code in CODES} < set(bag.dags)
    example = bag.dags["example_govex_hand_authored"]
    assert isinstance(example.get_task("deliver"), MappedOperator)
    assert example.get_task("extract").subscription == "SUB-TAX-001"
    assert example.get_task("notify").upstream_task_ids == {"report"}
