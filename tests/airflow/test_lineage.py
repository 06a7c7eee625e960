"""What the operators report to Airflow's OpenLineage provider, and the parent run they pass to
the engine. No Airflow database needed: the methods are called as the provider calls them."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from airflow.providers.openlineage.extractors import OperatorLineage
from openlineage.client.event_v2 import Dataset

from exchange.airflow import (
    GovexDeliverOperator,
    GovexExtractOperator,
    GovexGateOperator,
    GovexReportOperator,
    GovexRunOperator,
)
from exchange.airflow.operators import parent_run
from lineage.datasets import sql_dataset


@pytest.fixture(scope="module")
def data_dir(city_store: str) -> Path:
    """Where the demo connections' default SQLite files and CSVs live (in the copied workspace)."""
    return Path(sa.make_url(city_store).database).parent / "city" / "data"


@pytest.fixture(autouse=True)
def _default_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AMR", "GSC", "TAX", "PSB", "HPF"):
        monkeypatch.delenv(f"GOVEX_DEMO_{name}_URL", raising=False)
    monkeypatch.delenv("GOVEX_KAFKA_BOOTSTRAP", raising=False)


def _names(datasets: list[Dataset]) -> list[tuple[str, str]]:
    return [(d.namespace, d.name) for d in datasets]


def test_deliver_reads_the_source_and_writes_its_target(city_store: str, data_dir: Path) -> None:
    op = GovexDeliverOperator(
        task_id="deliver", resource="AMR-RES-001", subscription="SUB-GSC-002",
        store_url=city_store,
    )
    lineage = op.get_openlineage_facets_on_complete(None)
    assert isinstance(lineage, OperatorLineage)
    assert all(isinstance(d, Dataset) for d in lineage.inputs + lineage.outputs)
    source = (f"sqlite://{data_dir / 'amr.db'}", "main.market_entities")
    target = (f"sqlite://{data_dir / 'gsc.db'}", "main.amr_market_entities")
    assert _names(lineage.inputs) == [source]
    assert _names(lineage.outputs) == [target]


def test_extract_and_gate_only_read(city_store: str, data_dir: Path) -> None:
    for op in (
        GovexExtractOperator(task_id="extract", resource="PSB-RES-001", store_url=city_store),
        GovexGateOperator(task_id="gate", resource="PSB-RES-001", store_url=city_store),
    ):
        lineage = op.get_openlineage_facets_on_complete(None)
        assert _names(lineage.inputs) == [(f"sqlite://{data_dir / 'psb.db'}", "main.residents")]
        assert lineage.outputs == []


def test_report_and_run_write_every_target(city_store: str, data_dir: Path) -> None:
    expected = [
        (f"sqlite://{data_dir / 'gsc.db'}", "main.amr_market_entities"),  # SUB-GSC-002
        (f"sqlite://{data_dir / 'tax.db'}", "main.amr_market_entities"),  # SUB-TAX-001
    ]
    report = GovexReportOperator(task_id="report", resource="AMR-RES-001", store_url=city_store)
    assert _names(report.get_openlineage_facets_on_complete(None).outputs) == expected
    run = GovexRunOperator(task_id="run", resource="AMR-RES-001", store_url=city_store)
    assert _names(run.get_openlineage_facets_on_complete(None).outputs) == expected
    one = GovexRunOperator(
        task_id="one", resource="AMR-RES-001", subscription="SUB-TAX-001", store_url=city_store
    )
    assert _names(one.get_openlineage_facets_on_complete(None).outputs) == expected[1:]


def test_file_and_kafka_sources(city_store: str, data_dir: Path) -> None:
    civil = GovexExtractOperator(task_id="e", resource="CIVIL-RES-001", store_url=city_store)
    assert _names(civil.get_openlineage_facets_on_complete(None).inputs) == [
        ("file", str(data_dir / "files" / "subsistence_allowance.csv"))
    ]
    tax = GovexExtractOperator(task_id="e", resource="TAX-RES-001", store_url=city_store)
    assert _names(tax.get_openlineage_facets_on_complete(None).inputs) == [
        ("kafka://127.0.0.1:9092", "govex.ingest.TAX-RES-001")
    ]


@pytest.mark.parametrize(
    ("url", "table", "namespace", "name"),
    [
        ("postgresql+psycopg://u:pw@db.example:5433/psb", "residents",
         "postgres://db.example:5433", "psb.public.residents"),
        ("postgresql+psycopg://u@db.example/psb", "core.residents",
         "postgres://db.example:5432", "psb.core.residents"),
        ("mysql+pymysql://root:pw@10.0.0.5/amr", "market_entities",
         "mysql://10.0.0.5:3306", "amr.market_entities"),
        ("mariadb+pymysql://root@maria:3307/amr", "t", "mysql://maria:3307", "amr.t"),
    ],
)
def test_sql_dataset_names(url: str, table: str, namespace: str, name: str) -> None:
    dataset = sql_dataset(url, table)
    assert (dataset.namespace, dataset.name) == (namespace, name)
    assert "pw" not in dataset.namespace


def _fake_ti(**overrides: object) -> SimpleNamespace:
    dag_run = SimpleNamespace(
        logical_date=dt.datetime(2026, 11, 27, tzinfo=dt.UTC), run_after=None, clear_number=0,
        conf={},
    )
    ti = SimpleNamespace(
        dag_id="govex__AMR-RES-001", task_id="extract", run_id="manual__1", try_number=1,
        map_index=-1, dag_run=dag_run,
    )
    ti.get_template_context = lambda: {"dag_run": dag_run}
    for key, value in overrides.items():
        setattr(ti, key, value)
    return ti


def test_parent_run_is_the_providers_task_run() -> None:
    from airflow.providers.openlineage.plugins.adapter import OpenLineageAdapter

    ti = _fake_ti()
    parent = parent_run(ti)
    assert parent.job_name == "govex__AMR-RES-001.extract"
    assert parent.namespace == "default"
    assert parent.run_id == OpenLineageAdapter.build_task_instance_run_id(
        dag_id=ti.dag_id, task_id=ti.task_id, try_number=1,
        logical_date=ti.dag_run.logical_date, map_index=-1,
    )


def test_parent_run_falls_back_to_a_derived_uuid() -> None:
    ti = _fake_ti()
    del ti.get_template_context  # not a real task instance: the provider cannot name it
    del ti.dag_run
    first, second = parent_run(ti), parent_run(ti)
    assert first == second  # derived, so a retry of the same try names the same parent
    assert uuid.UUID(first.run_id).version == 5
    assert parent_run(_fake_ti(try_number=2, get_template_context=None)).run_id != first.run_id
