"""Schema drift is not a quality problem: a source table that lost a required column, or a
target table that no longer fits, fails the run at once with a `schema` error naming the
table, the column and the contract version; nothing is quarantined, nothing delivered. The
same check is `govex check`, and a warning (or with --strict, a refusal) of `govex apply`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import catalog
from exchange.cli import main
from exchange.demo.files import copy_workspace
from tests.exchange.conftest import three_subscriptions

N = 200


def _run(capsys: Any, code: str = "PSB-RES-001") -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    exit_code = main(["run", code, "--json"])
    return exit_code, json.loads(capsys.readouterr().out)


def _quarantine(capsys: Any) -> list[Any]:
    capsys.readouterr()
    assert main(["quality", "quarantine", "PSB-RES-001", "--json"]) == 0
    held: list[Any] = json.loads(capsys.readouterr().out)
    return held


def _lite_scenario(scenario_factory: Any, tmp_path: Path, make_rows: Any) -> Any:
    """A SQLite source and SQLite targets: the cheap variant."""
    targets = {name: f"sqlite:///{tmp_path / (name + '.db')}"
               for name in ("gsc_pg", "hpf_maria", "gsc_lite")}
    return scenario_factory(f"sqlite:///{tmp_path / 'psb.db'}", targets,
                            three_subscriptions(), make_rows(N))


def _assert_failed_on_schema(summary: dict[str, Any], *words: str) -> None:
    assert summary["status"] == "failed", summary
    assert "schema" in summary["message"]
    for word in words:
        assert word in summary["message"], (word, summary["message"])
    assert summary["quarantined"] == 0
    assert all(d["delivered"] == 0 for d in summary["deliveries"])


@pytest.mark.integration
def test_a_postgresql_source_without_a_required_column_fails_the_run(
    scenario: Any, capsys: Any
) -> None:
    scenario.source_execute("ALTER TABLE residents DROP COLUMN name")
    code, summary = _run(capsys)
    assert code == 1
    _assert_failed_on_schema(summary, "'residents'", "'name'", "resident@1.0.0")
    assert _quarantine(capsys) == []
    for connection, table in (("gsc_pg", "gsc_residents"), ("hpf_maria", "hpf_residents")):
        engine = sa.create_engine(scenario.targets[connection])
        try:
            assert not sa.inspect(engine).has_table(table)  # nothing was delivered
        finally:
            engine.dispose()


def test_a_sqlite_source_without_a_required_column_fails_the_run(
    scenario_factory: Any, tmp_path: Path, make_rows: Any, capsys: Any
) -> None:
    scenario = _lite_scenario(scenario_factory, tmp_path, make_rows)
    scenario.source_execute("ALTER TABLE residents DROP COLUMN updated_at")
    code, summary = _run(capsys)
    assert code == 1
    _assert_failed_on_schema(summary, "'residents'", "'updated_at'", "resident@1.0.0")
    assert _quarantine(capsys) == []


@pytest.mark.integration
def test_a_mariadb_target_column_of_an_unfit_type_fails_the_run(
    scenario_factory: Any, tmp_path: Path, make_rows: Any, capsys: Any, mariadb_url: str
) -> None:
    targets = {"gsc_pg": f"sqlite:///{tmp_path / 'gsc.db'}", "hpf_maria": mariadb_url,
               "gsc_lite": f"sqlite:///{tmp_path / 'lite.db'}"}
    scenario = scenario_factory(f"sqlite:///{tmp_path / 'psb.db'}", targets,
                                three_subscriptions(), make_rows(N))
    engine = sa.create_engine(mariadb_url)
    with engine.begin() as conn:  # what a consumer's DBA might do to its table
        conn.execute(sa.text(
            "CREATE TABLE hpf_residents (id_no VARCHAR(40) NOT NULL, phone DATE, "
            "_govex_resource VARCHAR(64) NOT NULL, _govex_run_id VARCHAR(36) NOT NULL, "
            "_govex_delivered_at DATETIME(6) NOT NULL, PRIMARY KEY (id_no, _govex_run_id))"))
    engine.dispose()
    code, summary = _run(capsys)
    assert code == 1
    _assert_failed_on_schema(summary, "'hpf_residents'", "'phone'", "resident@1.0.0",
                             "SUB-HPF-001")
    assert _quarantine(capsys) == []
    assert scenario.target_rows("hpf_maria", "hpf_residents") == []
    lite = sa.create_engine(targets["gsc_pg"])
    try:
        assert not sa.inspect(lite).has_table("gsc_residents")  # no other delivery either
    finally:
        lite.dispose()


def test_a_sqlite_target_column_of_an_unfit_type_fails_the_run(
    scenario_factory: Any, tmp_path: Path, make_rows: Any, capsys: Any
) -> None:
    scenario = _lite_scenario(scenario_factory, tmp_path, make_rows)
    conn = sqlite3.connect(tmp_path / "gsc_lite.db")
    conn.execute(
        "CREATE TABLE gsc_snapshot (name TEXT, score DATE, _govex_key TEXT NOT NULL PRIMARY KEY,"
        " _govex_resource TEXT NOT NULL, _govex_run_id TEXT NOT NULL,"
        " _govex_delivered_at TIMESTAMP NOT NULL)")
    conn.close()
    code, summary = _run(capsys)
    assert code == 1
    _assert_failed_on_schema(summary, "'gsc_snapshot'", "'score'", "resident@1.0.0")
    assert _quarantine(capsys) == []
    assert scenario.target_rows("gsc_lite", "gsc_snapshot") == []


# ---- govex check, govex apply ----------------------------------------------------------------


@pytest.fixture
def city(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo city's workspace with its sources generated (SQLite and CSV), and a fresh
    store; nothing applied yet."""
    from exchange.demo import city as democity

    for name in [n for n in __import__("os").environ if n.startswith("GOVEX_DEMO_")]:
        monkeypatch.delenv(name)
    root = copy_workspace(tmp_path / "city")
    ws = catalog.load_workspace(root)
    targets = {name: catalog.resolve_connection(name, d.item, ws.root, file=d.file).target
               for name, d in ws.connections.items() if d.item.kind != "kafka"}
    democity.generate_city(root, targets, scale=0.02)
    monkeypatch.setenv("GOVEX_DB_URL", f"sqlite:///{tmp_path / 'store.db'}")
    return root


def _govex(capsys: Any, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


DROPPED = ("problem: source table 'residents' in connection 'psb_db' has no column 'name', "
           "which contract resident_identity@1.0.0 requires (resource PSB-RES-001)")


def _drop_name(city: Path) -> None:
    conn = sqlite3.connect(city / "data" / "psb.db")
    conn.execute("ALTER TABLE residents DROP COLUMN name")
    conn.close()


def test_check_finds_no_problem_in_the_demo_city(city: Path, capsys: Any) -> None:
    code, out, _ = _govex(capsys, "check", str(city))
    assert code == 0, out
    assert "problem:" not in out
    assert "No problems in" in out
    # Targets the first run creates are fine, said as info; Kafka sources are skipped.
    assert "info: target table 'amr_market_entities' of SUB-GSC-002 does not exist" in out
    assert "note: source of TAX-RES-001 is Kafka topic" in out
    code, out, _ = _govex(capsys, "check", str(city), "--json")
    findings = json.loads(out)
    assert code == 0
    assert {f["level"] for f in findings} <= {"info", "note"}


def test_check_names_a_dropped_column(city: Path, capsys: Any) -> None:
    _drop_name(city)
    code, out, _ = _govex(capsys, "check", str(city))
    assert code == 1
    assert [line for line in out.splitlines() if line.startswith("problem:")] == [DROPPED]
    code, out, _ = _govex(capsys, "check", str(city), "--json")
    problems = [f for f in json.loads(out) if f["level"] == "problem"]
    assert code == 1
    assert [(p["resource"], p["table"], p["column"], p["contract"]) for p in problems] == [
        ("PSB-RES-001", "residents", "name", "resident_identity@1.0.0")]


def test_check_of_the_applied_catalog_and_bad_input(city: Path, capsys: Any) -> None:
    assert _govex(capsys, "apply", str(city))[0] == 0
    _drop_name(city)
    code, out, _ = _govex(capsys, "check")
    assert code == 1
    assert DROPPED in out.splitlines()
    code, _, err = _govex(capsys, "check", str(city / "nowhere"))
    assert code == 2
    assert err.startswith("error: ")


def test_apply_warns_and_strict_apply_refuses(city: Path, capsys: Any) -> None:
    _drop_name(city)
    code, _, err = _govex(capsys, "apply", str(city), "--strict")
    assert code == 1
    assert "schema: source table 'residents'" in err
    code, out, _ = _govex(capsys, "catalog", "list", "--json")
    assert json.loads(out) == []  # nothing applied
    code, out, err = _govex(capsys, "apply", str(city))
    assert code == 0
    assert "Applied." in out
    assert f"warning: {DROPPED.removeprefix('problem: ')}" in err.splitlines()
