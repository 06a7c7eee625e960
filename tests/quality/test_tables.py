"""Quality persistence: quarantine in, quarantine out when fixed, per run totals over time.
SQLite always; PostgreSQL (integration) through the shared pg_url fixture."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import sqlalchemy as sa

import quality
from quality import tables

from .conftest import contract_of, to_table

CODE = "PSB-RES-001"


@pytest.fixture(scope="module")
def psb_gate(city_resources: Any) -> Any:
    resource = city_resources[CODE]
    return quality.QualityGate(contract_of(resource), resource["quality"], key=resource["key"])


def _engine(url: str) -> sa.Engine:
    engine = sa.create_engine(url)
    tables.metadata.create_all(engine)
    return engine


def _exercise(engine: sa.Engine, gate: Any, demo: Any, city_resources: Any) -> None:
    resource = city_resources[CODE]
    contract = contract_of(resource)
    generated = demo[CODE]
    rows = copy.deepcopy(generated.rows)
    batch = to_table(rows, contract)
    result = gate.evaluate(batch)
    with engine.begin() as conn:
        n = tables.record_gate(conn, run_id="run-1", resource=CODE, key_fields=["id_no"],
                               batch=batch, result=result)
        tables.record_check_totals(conn, "run-1", CODE, result.report)
    assert n == len(generated.defects)
    with engine.connect() as conn:
        items = tables.quarantine(conn, CODE)
    assert {i["key"] for i in items} == {d.key for d in generated.defects}
    assert set(items[0]) == {"key", "failed_checks", "run_id", "first_seen"}
    by_key = {i["key"]: i for i in items}
    for d in generated.defects:
        named = [(c["check"], c["column"]) for c in by_key[d.key]["failed_checks"]]
        assert (d.check, d.column) in named
        assert by_key[d.key]["run_id"] == "run-1"

    # The provider fixes one record at the source; run 2 carries it and it passes.
    fixed_defect = next(d for d in generated.defects if d.check == "id_gender_consistency")
    still_bad = next(d for d in generated.defects if d.check == "cn_resident_id")
    index = next(i for i, r in enumerate(rows) if generated.key_of(r) == fixed_defect.key)
    male = int(rows[index]["id_no"][16]) % 2 == 1
    rows[index]["gender"] = "男" if male else "女"
    index_bad = next(i for i, r in enumerate(rows) if generated.key_of(r) == still_bad.key)
    batch2 = to_table([rows[index], rows[index_bad]], contract)
    result2 = gate.evaluate(batch2)
    assert result2.passed.tolist() == [True, False]
    with engine.begin() as conn:
        tables.record_gate(conn, run_id="run-2", resource=CODE, key_fields=["id_no"],
                           batch=batch2, result=result2)
        tables.record_check_totals(conn, "run-2", CODE, result2.report)
    with engine.connect() as conn:
        after = {i["key"]: i for i in tables.quarantine(conn, CODE)}
        records = {r["key"]: r for r in tables.quarantined_records(conn, CODE)}
        history = tables.report(conn, CODE)
    assert fixed_defect.key not in after
    assert len(after) == len(items) - 1
    assert after[still_bad.key]["run_id"] == "run-2"
    assert after[still_bad.key]["first_seen"] == by_key[still_bad.key]["first_seen"]
    assert records[still_bad.key]["record"]["id_no"] == still_bad.key
    assert [run["run_id"] for run in history] == ["run-1", "run-2"]
    with engine.connect() as conn:  # one run's item, as the whole history has it
        assert tables.report(conn, CODE, run_id="run-2") == [history[1]]
        assert tables.report(conn, CODE, run_id="run-3") == []
    first = {(c["check"], c["column"]): c for c in history[0]["checks"]}
    assert first[("cn_resident_id", "id_no")]["failed"] == sum(
        d.check == "cn_resident_id" for d in generated.defects
    )
    assert first[("cn_resident_id", "id_no")]["evaluated"] == len(rows)
    assert history[1]["evaluated"] == 2
    # recording a run again replaces its totals
    with engine.begin() as conn:
        tables.record_check_totals(conn, "run-2", CODE, result2.report)
    with engine.connect() as conn:
        assert len(tables.report(conn)[1]["checks"]) == len(result2.checks)


def test_quarantine_lifecycle_sqlite(psb_gate: Any, demo: Any, city_resources: Any,
                                     tmp_path: Any) -> None:
    _exercise(_engine(f"sqlite:///{tmp_path / 'q.db'}"), psb_gate, demo, city_resources)


@pytest.mark.integration
def test_quarantine_lifecycle_postgresql(psb_gate: Any, demo: Any, city_resources: Any,
                                         pg_url: str) -> None:
    engine = _engine(pg_url)
    try:
        _exercise(engine, psb_gate, demo, city_resources)
    finally:
        engine.dispose()


def test_migration_creates_the_tables(tmp_path: Any) -> None:
    from alembic import command

    from exchange.store.engine import _alembic_config

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "0003_quality")
    inspector = sa.inspect(engine)
    assert {"quality_check_results", "quality_quarantine"} <= set(inspector.get_table_names())
    pk = inspector.get_pk_constraint("quality_check_results")["constrained_columns"]
    assert set(pk) == {"run_id", "check", "column"}
    with engine.begin() as conn:
        command.downgrade(_alembic_config(conn), "0002_exchange_runs")
    assert "quality_quarantine" not in sa.inspect(engine).get_table_names()
