"""Parsing `dags/govex_exchanges.py` over a 100-resource catalog stays under a second.

How it is measured: in a fresh Python process (nothing of govex imported yet), Airflow itself
is imported first (`airflow.sdk`, `airflow.models` and the DagBag class: the one-time cost the
DAG processor has already paid before it parses any file) and then the clock runs around
`DagBag(dag_folder=<that one file>)` (examples off) — what the DAG processor does per file:
import the module (govex's own imports included), read the catalog, build 100 DAGs, validate
and bag them. The best CPU time of two processes is asserted (on a quiet machine, the wall
time); the best wall time is recorded as a junit property.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from benchmarks.large_catalog import CONTRACT

from .conftest import AIRFLOW_ENV, DAGS, copy_city, store_with

RESOURCES = 100
BUDGET_SECONDS = 1.0

PROVIDERS = ["psb", "amr", "hrss", "health"]
SCHEDULES = ["@daily", "@hourly", "0 */6 * * *", None]

MEASURE = """
import json, sys, time
import airflow.sdk, airflow.models  # the one-time Airflow import: not measured
from airflow.dag_processing.dagbag import DagBag

started, cpu = time.perf_counter(), time.process_time()
bag = DagBag(dag_folder=sys.argv[1])
seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
heavy = ("great_expectations", "exchange.run.steps", "connectors", "quality", "kafka", "faker")
print(json.dumps({"seconds": seconds, "cpu": cpu, "dags": len(bag.dags),
                  "errors": {str(k): str(v) for k, v in bag.import_errors.items()},
                  "heavy_imports": [m for m in heavy if m in sys.modules]}))
"""


def _generate_workspace(root: Path) -> Path:
    """The demo city's departments and connections with 100 generated resources, one
    subscription each (a mix of subscription schedules and update frequencies)."""
    ws = copy_city(root / "ws")
    for folder in ("resources", "subscriptions", "requests"):
        for path in (ws / folder).glob("*.yaml"):
            path.unlink()
    contract_dir = ws / "contracts" / "generated_record"
    contract_dir.mkdir(parents=True)
    (contract_dir / "1.0.0.json").write_text(json.dumps(CONTRACT), encoding="utf-8")
    for i in range(RESOURCES):
        code = f"GEN-RES-{i:03d}"
        provider = PROVIDERS[i % len(PROVIDERS)]
        resource = {
            "code": code,
            "name": f"generated resource {i}",
            "description": "generated for the DAG parse-speed test",
            "provider": provider,
            "contract": "generated_record@1.0.0",
            "key": ["id"],
            "elements": {"id": f"gen{i}.id", "name": f"gen{i}.name", "amount": f"gen{i}.amount"},
            # Every tenth is pushed over Kafka: its DAG carries a landing-asset watcher.
            "source": {"connection": "bus", "kafka": {"topic": f"govex.ingest.{code}"}}
            if i % 10 == 0 else {"connection": f"{provider}_db", "table": f"gen_{i:03d}",
                                 "watermark": "updated_at"},
            "sharing": "unconditional",
            "classification": "L2",
            "update_frequency": ["P1D", "PT6H", "P1M", "P7D"][i % 4],
            "quality": {"max_error_rate": 0.05},
        }
        (ws / "resources" / f"{code}.yaml").write_text(
            yaml.safe_dump(resource, allow_unicode=True), encoding="utf-8"
        )
        subscription = {
            "id": f"SUB-GEN-{i:03d}",
            "resource": code,
            "consumer": "gsc",
            "purpose": "parse-speed test",
            "fields": ["id", "name"],
            "target": {"connection": "gsc_db", "table": f"gen_{i:03d}"},
            "mode": "upsert",
            "valid_from": "2026-01-01",
            "valid_until": "2028-12-31",
        }
        if SCHEDULES[i % len(SCHEDULES)]:
            subscription["schedule"] = SCHEDULES[i % len(SCHEDULES)]
        (ws / "subscriptions" / f"SUB-GEN-{i:03d}.yaml").write_text(
            yaml.safe_dump(subscription), encoding="utf-8"
        )
    return ws


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("big-catalog")
    return store_with(_generate_workspace(root), root / "govex.db")


def _measure(store_url: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-c", MEASURE, str(DAGS / "govex_exchanges.py")],
        env={**os.environ, **AIRFLOW_ENV, "GOVEX_DB_URL": store_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_parse_100_resources_under_a_second(
    big_store: str, record_property: Callable[[str, object], None]
) -> None:
    # Best of two fresh processes: the budget is about our code, not a noisy neighbour.
    runs = [_measure(big_store) for _ in range(2)]
    for run in runs:
        assert run["errors"] == {}
        assert run["dags"] == RESOURCES
        # Nothing heavy at parse time: engine, connectors, GE load only inside tasks.
        assert run["heavy_imports"] == []
    best = min(run["seconds"] for run in runs)
    record_property("parse_seconds_100_resources", round(best, 3))
    # The budget is on the parse's own CPU time: on a quiet machine that is its wall time,
    # and a suite sharing the cores with other work must not fail for it (wall time is
    # recorded above).
    cpu = min(run["cpu"] for run in runs)
    assert cpu < BUDGET_SECONDS, (
        f"parsing took {cpu:.3f}s of CPU ({best:.3f}s wall) for {RESOURCES} resources")
