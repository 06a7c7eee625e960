"""Target 6 of issue #16: an in-process run reads its plan (resource, contract, subscriptions)
a bounded number of times, the same for one subscription as for three; steps run on their own
(one Airflow task each) read it once per step."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from exchange.run import steps
from tests.exchange.conftest import make_rows

PLAN_TABLES = ("catalog_resources", "catalog_subscriptions", "catalog_contract_versions")


def _subscriptions(n: int) -> list[dict[str, Any]]:
    return [
        {"id": f"SUB-GSC-00{i}", "consumer": "gsc", "fields": ["id_no", "name"],
         "mode": "upsert", "target": {"connection": "lite", "table": f"t{i}"}}
        for i in range(1, n + 1)
    ]


def _plan_reads(store: sa.Engine, run: Any) -> Counter[str]:
    reads: Counter[str] = Counter()

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            for table in PLAN_TABLES:
                if f"FROM {table}" in statement:
                    reads[table] += 1

    sa.event.listen(store, "before_cursor_execute", count)
    try:
        run()
    finally:
        sa.event.remove(store, "before_cursor_execute", count)
    return reads


def _scenario(factory: Any, tmp_path: Path, n: int) -> sa.Engine:
    source = f"sqlite:///{tmp_path / 'source.db'}"
    scenario = factory(source, {"lite": f"sqlite:///{tmp_path / 'targets.db'}"},
                       _subscriptions(n), make_rows(20))
    return scenario.store()


def test_a_run_reads_its_plan_once_whatever_the_subscriptions(
    scenario_factory: Any, tmp_path: Path
) -> None:
    counts = []
    for n in (1, 3):
        here = tmp_path / f"n{n}"
        here.mkdir()
        store = _scenario(scenario_factory, here, n)
        reads = _plan_reads(store, lambda s=store: steps.run_resource(s, "PSB-RES-001"))
        counts.append(reads)
        store.dispose()
    assert counts[0] == counts[1]
    # start_run's own reads plus one plan read for every later step.
    assert counts[0]["catalog_contract_versions"] <= 2
    assert sum(counts[0].values()) <= 8


def test_a_step_on_its_own_reads_the_plan_once(scenario_factory: Any, tmp_path: Path) -> None:
    store = _scenario(scenario_factory, tmp_path, 3)
    run_id = steps.start_run(store, "PSB-RES-001")
    steps.extract(store, run_id)
    steps.gate(store, run_id)
    reads = _plan_reads(store, lambda: steps.deliver(store, run_id, "SUB-GSC-002"))
    assert reads["catalog_contract_versions"] == 1
    steps.finish(store, run_id)
