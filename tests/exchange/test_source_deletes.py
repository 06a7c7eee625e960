"""Deletes at a SQL source reach the targets: a soft-delete column (`source.deleted`) and a key
reconciliation (`govex run CODE --reconcile`), each with provenance and audit entries, and a
reconciliation that refuses to delete when the source returns no keys."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

import catalog
import records
from exchange.cli import main
from exchange.run import run_resource
from tests.exchange.conftest import Scenario

CODE = "PSB-RES-001"


def _subscriptions() -> list[dict[str, Any]]:
    return [
        # the key delivered: the target's primary key is id_no
        {"id": "SUB-GSC-001", "consumer": "gsc", "fields": ["id_no", "name", "score"],
         "masking": {"name": "mask_name"}, "mode": "upsert",
         "target": {"connection": "gsc_pg", "table": "gsc_residents"}},
        # the key not delivered: the target holds only the keyed _govex_key stand-in
        {"id": "SUB-GSC-002", "consumer": "gsc", "fields": ["birth_date", "score"],
         "mode": "upsert", "target": {"connection": "gsc_lite", "table": "gsc_stats"}},
        # append targets keep their history
        {"id": "SUB-HPF-001", "consumer": "hpf", "fields": ["id_no", "phone"],
         "masking": {"phone": "mask_phone"}, "mode": "append",
         "target": {"connection": "hpf_lite", "table": "hpf_residents"}},
    ]


def _declare_source(scenario: Scenario, **extra: str) -> None:
    """Re-apply the workspace with more source keys (`deleted`, `reconcile`)."""
    path = scenario.root / "resources" / "psb.yaml"
    body = yaml.safe_load(path.read_text("utf-8"))
    body["source"].update(extra)
    path.write_text(yaml.safe_dump(body, allow_unicode=True), "utf-8")
    engine = scenario.store()
    try:
        catalog.apply_workspace(engine, scenario.root)
    finally:
        engine.dispose()


@pytest.fixture
def deletes_scenario(
    scenario_factory: Any, pg_url: str, tmp_path: Path, make_rows: Any
) -> Scenario:
    targets = {"gsc_pg": pg_url, "gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}",
               "hpf_lite": f"sqlite:///{tmp_path / 'hpf.db'}"}
    return scenario_factory(pg_url, targets, _subscriptions(), make_rows(30))


def _keys(scenario: Scenario, connection: str, table: str, column: str) -> set[Any]:
    return {r[column] for r in scenario.target_rows(connection, table)}


def _ids(make_rows: Any, *indexes: int) -> list[str]:
    rows = make_rows(max(indexes) + 1)
    return [rows[i]["id_no"] for i in indexes]


def _last_hash(store: sa.Engine, key: str, subscription: str) -> str:
    with store.connect() as conn:
        return str(records.latest_hashes(conn, CODE, key)[subscription]["hash"])


def test_a_row_marked_deleted_at_the_source_is_deleted_at_upsert_targets(
    deletes_scenario: Scenario, make_rows: Any
) -> None:
    s = deletes_scenario
    s.source_execute("ALTER TABLE residents ADD COLUMN is_deleted BOOLEAN NOT NULL DEFAULT false")
    _declare_source(s, deleted="is_deleted")
    store = s.store()
    first = run_resource(store, CODE)
    assert first.status == "success", first.message
    gone, kept = _ids(make_rows, 3, 4)
    assert {gone, kept} <= _keys(s, "gsc_pg", "gsc_residents", "id_no")
    stats_before = len(s.target_rows("gsc_lite", "gsc_stats"))

    s.source_execute(
        "UPDATE residents SET is_deleted = true, updated_at = updated_at + interval '1 day' "
        "WHERE id_no = :k", k=gone,
    )
    second = run_resource(store, CODE)
    assert second.status == "success", second.message
    assert second.read == 1
    assert gone not in _keys(s, "gsc_pg", "gsc_residents", "id_no")
    assert kept in _keys(s, "gsc_pg", "gsc_residents", "id_no")
    assert len(s.target_rows("gsc_lite", "gsc_stats")) == stats_before - 1  # by _govex_key
    assert gone in _keys(s, "hpf_lite", "hpf_residents", "id_no")  # history kept
    # Provenance says the record left both upsert targets, in the run that deleted it.
    for sub in ("SUB-GSC-001", "SUB-GSC-002"):
        assert _last_hash(store, gone, sub) == records.DELETED
    with store.connect() as conn:
        latest = records.latest_hashes(conn, CODE, gone)
    assert latest["SUB-GSC-001"]["run_id"] == second.run_id
    assert latest["SUB-HPF-001"]["hash"] != records.DELETED
    store.dispose()


def _reconcile(capsys: Any) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["run", CODE, "--reconcile", "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_reconcile_deletes_keys_gone_from_the_source_once(
    deletes_scenario: Scenario, make_rows: Any, capsys: Any
) -> None:
    s = deletes_scenario
    store = s.store()
    assert run_resource(store, CODE).status == "success"
    a, b, kept = _ids(make_rows, 1, 7, 8)
    stats_before = len(s.target_rows("gsc_lite", "gsc_stats"))
    s.source_execute("DELETE FROM residents WHERE id_no IN (:a, :b)", a=a, b=b)

    code, summary = _reconcile(capsys)
    assert code == 0, summary
    assert summary["status"] == "success"
    assert summary["read"] == 28
    by_sub = {d["subscription"]: d["delivered"] for d in summary["deliveries"]}
    assert by_sub == {"SUB-GSC-001": 2, "SUB-GSC-002": 2}  # append targets are left alone
    held = _keys(s, "gsc_pg", "gsc_residents", "id_no")
    assert not {a, b} & held
    assert kept in held
    assert len(s.target_rows("gsc_lite", "gsc_stats")) == stats_before - 2
    assert {a, b} <= _keys(s, "hpf_lite", "hpf_residents", "id_no")
    assert _last_hash(store, a, "SUB-GSC-001") == records.DELETED
    with store.connect() as conn:
        audit = records.list_audit(conn, limit=None)
    run_id = summary["run_id"]
    subjects = {(e.kind, e.subject) for e in audit}
    assert ("delivery", f"{run_id}/SUB-GSC-001") in subjects
    [entry] = [e for e in audit if e.kind == "run" and e.subject == run_id]
    assert entry.detail["reconcile"] is True

    # Nothing is gone any more: a second reconciliation deletes nothing.
    code, again = _reconcile(capsys)
    assert code == 0, again
    assert {d["delivered"] for d in again["deliveries"]} == {0}
    assert kept in _keys(s, "gsc_pg", "gsc_residents", "id_no")
    # The watermark did not move: the next run reads nothing new.
    assert run_resource(store, CODE).read == 0
    store.dispose()


def test_reconcile_refuses_to_delete_when_the_source_returns_no_keys(
    deletes_scenario: Scenario, capsys: Any
) -> None:
    s = deletes_scenario
    store = s.store()
    assert run_resource(store, CODE).status == "success"
    before = _keys(s, "gsc_pg", "gsc_residents", "id_no")
    s.source_execute("DELETE FROM residents")

    code, summary = _reconcile(capsys)
    assert code == 1
    assert summary["status"] == "failed"
    assert "returned no keys" in summary["message"]
    assert "\n" not in summary["message"]
    assert not summary["deliveries"]
    assert _keys(s, "gsc_pg", "gsc_residents", "id_no") == before
    # A failed key read deletes nothing either.
    s.source_execute("DROP TABLE residents")
    code, summary = _reconcile(capsys)
    assert code == 1
    assert summary["status"] == "failed"
    assert _keys(s, "gsc_pg", "gsc_residents", "id_no") == before
    store.dispose()


def test_reconcile_is_refused_for_other_flags(deletes_scenario: Scenario, capsys: Any) -> None:
    assert main(["run", CODE, "--reconcile", "--full"]) == 2
    assert "--reconcile" in capsys.readouterr().err
