"""Deletes at a SQL source reach the targets: a soft-delete column (`source.deleted`) and a key
reconciliation (`govex run CODE --reconcile`), each with provenance and audit entries, and a
reconciliation that refuses to delete when the source returns no keys. A reconciliation also
removes the records gone from the source from a verify subscription's index, by key digest."""

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
from exchange.run.delivery import VERIFICATION_INDEX
from exchange.store import Principal
from exchange.verify import service
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


def _verify_subscriptions() -> list[dict[str, Any]]:
    return [
        {"id": "SUB-GSC-V01", "consumer": "gsc", "delivery": "verify",
         "fields": ["name", "score"]},
        {"id": "SUB-HPF-001", "consumer": "hpf", "fields": ["id_no", "phone"], "mode": "upsert",
         "target": {"connection": "hpf_lite", "table": "hpf_residents"}},
    ]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def verify_scenario(
    request: pytest.FixtureRequest, scenario_factory: Any, tmp_path: Path, make_rows: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Scenario:
    """A verify subscription and an upsert target; source and store (where the index lives)
    both in SQLite files, or both in one PostgreSQL database (their tables do not collide)."""
    monkeypatch.setattr(service, "CALL_RATE", service.CallRate())  # full call buckets
    if request.param == "sqlite":
        source, store = f"sqlite:///{tmp_path / 'psb.db'}", f"sqlite:///{tmp_path / 'store.db'}"
    else:
        source = store = request.getfixturevalue("pg_url")
    targets = {"hpf_lite": f"sqlite:///{tmp_path / 'hpf.db'}"}
    return scenario_factory(source, targets, _verify_subscriptions(), make_rows(30),
                            store_url=store)


def _verified(store: sa.Engine, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What `POST /api/v1/verify/{code}` answers the verify subscription for `rows`."""
    body = {"records": [{"key": {"id_no": r["id_no"]},
                         "fields": {"name": r["name"], "score": r["score"]}} for r in rows]}
    answer = service.verify(store, Principal("gsc", "consumer"), CODE, json.dumps(body).encode())
    return [{k: v for k, v in r.items() if k != "key"} for r in answer["results"]]


def _indexed(store: sa.Engine) -> int:
    with store.connect() as conn:
        return int(conn.execute(sa.text(
            "SELECT count(*) FROM verify_index WHERE subscription = 'SUB-GSC-V01'")).scalar_one())


FOUND = {"found": True, "match": {"name": True, "score": True}}


def test_reconcile_removes_keys_gone_from_the_source_from_a_verify_index(
    verify_scenario: Scenario, make_rows: Any, capsys: Any
) -> None:
    s = verify_scenario
    store = s.store()
    assert run_resource(store, CODE).status == "success"
    rows = make_rows(30)
    a, b, kept, other = rows[1], rows[7], rows[8], rows[29]
    assert _indexed(store) == 30
    s.source_execute("DELETE FROM residents WHERE id_no IN (:a, :b)", a=a["id_no"], b=b["id_no"])
    assert run_resource(store, CODE).read == 0  # an increment cannot see a row deleted outright
    assert _verified(store, [a]) == [FOUND]

    code, summary = _reconcile(capsys)
    assert code == 0, summary
    assert summary["status"] == "success"
    assert summary["read"] == 28
    by_sub = {d["subscription"]: d["delivered"] for d in summary["deliveries"]}
    assert by_sub == {"SUB-GSC-V01": 2, "SUB-HPF-001": 2}
    assert _verified(store, [a, b, kept, other]) == [{"found": False}] * 2 + [FOUND] * 2
    assert _indexed(store) == 28
    assert {r["id_no"] for r in s.target_rows("hpf_lite", "hpf_residents")} == (
        {r["id_no"] for r in rows} - {a["id_no"], b["id_no"]})
    with store.connect() as conn:
        audit = records.list_audit(conn, limit=None)
    run_id = summary["run_id"]
    [entry] = [e for e in audit if e.kind == "delivery" and e.subject == f"{run_id}/SUB-GSC-V01"]
    assert entry.detail["target"] == VERIFICATION_INDEX
    assert entry.detail["delivered"] == 2
    [entry] = [e for e in audit if e.kind == "run" and e.subject == run_id]
    assert entry.detail["reconcile"] is True

    # Nothing is gone any more: a second reconciliation removes nothing.
    code, again = _reconcile(capsys)
    assert code == 0, again
    assert {d["delivered"] for d in again["deliveries"]} == {0}
    assert _indexed(store) == 28

    # A source that returns no key while the index holds records is refused, the index whole.
    s.source_execute("DELETE FROM residents")
    code, refused = _reconcile(capsys)
    assert code == 1
    assert refused["status"] == "failed"
    assert "returned no keys" in refused["message"]
    assert not refused["deliveries"]
    assert _indexed(store) == 28
    assert _verified(store, [kept, other]) == [FOUND] * 2
    store.dispose()


def test_reconcile_refuses_an_empty_source_for_a_verify_index_alone(
    scenario_factory: Any, tmp_path: Path, make_rows: Any, capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "CALL_RATE", service.CallRate())
    s = scenario_factory(f"sqlite:///{tmp_path / 'psb.db'}", {}, _verify_subscriptions()[:1],
                         make_rows(30))
    store = s.store()
    assert run_resource(store, CODE).status == "success"
    s.source_execute("DELETE FROM residents")
    code, refused = _reconcile(capsys)
    assert code == 1
    assert "returned no keys while its subscriptions hold 30 records" in refused["message"]
    assert _indexed(store) == 30
    # A failed key read removes nothing either.
    s.source_execute("DROP TABLE residents")
    code, failed = _reconcile(capsys)
    assert code == 1
    assert failed["status"] == "failed"
    assert _indexed(store) == 30
    assert _verified(store, make_rows(2)) == [FOUND] * 2
    store.dispose()
