"""Provenance, `govex trace` and the dispute workflow end to end on real databases: a PostgreSQL
source; PostgreSQL (upsert), MariaDB (append) and SQLite (snapshot) subscribers; the metadata
store on SQLite and on PostgreSQL (where provenance goes in by COPY)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import catalog
import records
from exchange import cli
from exchange.run.bookkeeping import runs as runs_table
from exchange.store import create_store_engine, tokens, upgrade

pytestmark = pytest.mark.integration

N = 300
BAD_EVERY = 50  # 6 malformed id_no values: 2% of the rows, quarantined
KEY = "110105199001010001"  # row 1: delivered to every subscription
TRACE_KEYS = {"resource", "key", "provider", "source", "deliveries", "quality", "disputes"}


def _subscriptions() -> list[dict[str, Any]]:
    return [
        {"id": "SUB-GSC-001", "consumer": "gsc", "fields": ["id_no", "name", "birth_date", "score"],
         "masking": {"name": "mask_name"}, "mode": "upsert",
         "target": {"connection": "gsc_pg", "table": "gsc_residents"}},
        {"id": "SUB-HPF-001", "consumer": "hpf", "fields": ["id_no", "phone"],
         "masking": {"phone": "mask_phone"}, "mode": "append",
         "target": {"connection": "hpf_maria", "table": "hpf_residents"}},
        {"id": "SUB-GSC-002", "consumer": "gsc", "fields": ["name", "score"],
         "masking": {"name": "hash"}, "mode": "snapshot",
         "target": {"connection": "gsc_lite", "table": "gsc_snapshot"}},
    ]


def _parser_with_ours() -> argparse.ArgumentParser:
    """The real `govex` parser, plus `trace` and `dispute` if cli.py does not register them
    yet (they are registered there by the lead)."""
    from exchange.cli import dispute, trace

    parser = _original_build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, module in (("trace", trace), ("dispute", dispute)):
        if name not in sub.choices:
            module.register(sub)
    return parser


_original_build_parser = cli.build_parser


@pytest.fixture
def govex(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str, str]]:
    monkeypatch.setattr(cli, "build_parser", _parser_with_ours)

    def call(*argv: str) -> tuple[int, str, str]:
        if argv[:1] == ("dispute",) and argv[1:2] in (("ack",), ("reject",), ("resolve",)) \
                and "--token" not in argv:  # the provider's steps, with the provider's token
            argv = (*argv, "--token", as_("psb", "provider"))
        capsys.readouterr()
        code = cli.main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return call


@pytest.fixture(params=["sqlite", "postgresql"])
def scenario(
    request: pytest.FixtureRequest, scenario_factory: Any, pg_url: str, mariadb_url: str,
    tmp_path: Path, make_rows: Any, monkeypatch: pytest.MonkeyPatch,
) -> Any:
    targets = {"gsc_pg": pg_url, "hpf_maria": mariadb_url,
               "gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"}
    made = scenario_factory(pg_url, targets, _subscriptions(), make_rows(N, bad_every=BAD_EVERY))
    if request.param == "postgresql":
        # The store's tables live beside the source's and the target's in the test database.
        engine = create_store_engine(pg_url)
        upgrade(engine)
        catalog.apply_workspace(engine, made.root)
        engine.dispose()
        made.store_url = pg_url
        monkeypatch.setenv("GOVEX_DB_URL", pg_url)
    return made


def as_(department: str, role: str = "consumer") -> str:
    """A new API token of `department` in the store the CLI uses (GOVEX_DB_URL): the CLI
    acts with a token, never with a department it is told."""
    engine = create_store_engine(os.environ["GOVEX_DB_URL"])
    try:
        with engine.begin() as conn:
            return tokens.create_token(conn, department, role)
    finally:
        engine.dispose()


def _json(govex: Callable[..., tuple[int, str, str]], *argv: str) -> Any:
    code, out, err = govex(*argv, "--json")
    assert code == 0, err
    return json.loads(out)


def _provenance(store_url: str) -> list[dict[str, Any]]:
    engine = create_store_engine(store_url)
    try:
        with engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(records.provenance.provenance))
                    .mappings()]
    finally:
        engine.dispose()


def test_dispute_corrects_every_consumer_and_trace_shows_it(scenario: Any, govex: Any) -> None:
    summary = _json(govex, "run", "PSB-RES-001")
    assert summary["status"] == "success"
    first_run = summary["run_id"]
    delivered = {d["subscription"]: d["delivered"] for d in summary["deliveries"]}
    assert delivered == dict.fromkeys(("SUB-GSC-001", "SUB-GSC-002", "SUB-HPF-001"),
                                      N - N // BAD_EVERY)

    # Provenance: one row per delivered record and subscription, hashes only.
    rows = _provenance(scenario.store_url)
    per_sub: dict[str, set[str]] = {}
    for r in rows:
        assert r["run_id"] == first_run
        assert len(r["value_hash"]) == 16
        int(r["value_hash"], 16)
        per_sub.setdefault(r["subscription"], set()).add(r["record_key"])
    assert {s: len(k) for s, k in per_sub.items()} == delivered
    assert len(rows) == sum(delivered.values())
    assert not any(k.startswith("BAD") for keys in per_sub.values() for k in keys)

    before = _json(govex, "trace", "PSB-RES-001", KEY)
    assert set(before) == TRACE_KEYS
    assert before["resource"] == "PSB-RES-001"
    assert before["key"] == KEY
    assert before["provider"] == "psb"
    assert set(before["source"]) >= {"connection", "table", "current_hash"}
    assert before["source"]["connection"] == "psb_db"
    assert before["source"]["table"] == "residents"
    assert len(before["source"]["current_hash"]) == 16
    assert {d["subscription"] for d in before["deliveries"]} == set(delivered)
    for d in before["deliveries"]:
        assert set(d) == {"subscription", "consumer", "run_id", "delivered_at", "hash", "fields"}
        assert d["run_id"] == first_run
    by_sub = {d["subscription"]: d for d in before["deliveries"]}
    assert by_sub["SUB-HPF-001"]["consumer"] == "hpf"
    assert by_sub["SUB-GSC-002"]["fields"] == ["name", "score"]
    assert before["quality"] == [{"run_id": first_run, "passed": True, "failed_checks": []}]
    assert before["disputes"] == []

    # A consumer disputes a delivered value; the provider acknowledges.
    code, out, err = govex("dispute", "open", "PSB-RES-001", KEY, "--field", "score",
                           "--claim", "分数应为 77", "--token", as_("gsc"))
    assert code == 0, err
    dispute_id = out.strip().splitlines()[-1]
    assert dispute_id.startswith("DSP-")
    shown = _json(govex, "dispute", "show", dispute_id)
    assert {k: shown[k] for k in ("id", "state", "resource", "key", "field", "opened_by",
                                  "provider", "overdue", "evidence")} == {
        "id": dispute_id, "state": "open", "resource": "PSB-RES-001", "key": KEY,
        "field": "score", "opened_by": "gsc", "provider": "psb", "overdue": False,
        "evidence": None,
    }
    assert shown["claim"] == "分数应为 77"
    assert dt.datetime.fromisoformat(shown["due"]) > dt.datetime.now(dt.UTC)

    code, _, err = govex("dispute", "resolve", dispute_id)
    assert code == 2
    assert "acknowledge it first" in err
    assert govex("dispute", "ack", dispute_id)[0] == 0
    code, _, err = govex("dispute", "ack", dispute_id)
    assert code == 2
    assert "is acknowledged" in err

    # Corrected at the source.
    scenario.source_execute(
        "UPDATE residents SET score = 77, name = '更正', phone = '13900000001', "
        "updated_at = updated_at + interval '1 day' WHERE id_no = :k", k=KEY)

    code, out, err = govex("dispute", "resolve", dispute_id)
    assert code == 0, err
    resolved = _json(govex, "dispute", "show", dispute_id)
    assert resolved["state"] == "resolved"
    evidence = resolved["evidence"]
    fix_run = evidence["run_id"]
    assert evidence["runs"] == [fix_run]
    assert sorted(evidence["subscriptions"]) == sorted(delivered)
    for item in evidence["redelivered"]:
        assert item["old_hash"] == by_sub[item["subscription"]]["hash"]
        assert item["new_hash"] != item["old_hash"]
        assert item["old_run_id"] == first_run
    assert evidence["unchanged"] == []
    assert evidence["source_hash"] != before["source"]["current_hash"]

    # The corrected value is in every consumer's table.
    gsc = {r["id_no"]: r for r in scenario.target_rows("gsc_pg", "gsc_residents")}
    assert gsc[KEY]["score"] == 77
    assert gsc[KEY]["name"] == "更*"
    assert gsc[KEY]["_govex_run_id"] == fix_run
    assert len(gsc) == N - N // BAD_EVERY
    hpf = [r for r in scenario.target_rows("hpf_maria", "hpf_residents") if r["id_no"] == KEY]
    assert sorted((r["_govex_run_id"], r["phone"]) for r in hpf) == sorted(
        [(first_run, "138****0001"), (fix_run, "139****0001")])
    snapshot = scenario.target_rows("gsc_lite", "gsc_snapshot")
    fixed = [r for r in snapshot if r["_govex_run_id"] == fix_run]
    assert len(fixed) == 1
    assert fixed[0]["score"] == 77
    assert len(snapshot) == N - N // BAD_EVERY

    # The re-delivery is an exchange run, and the trace shows both deliveries and the dispute.
    engine = create_store_engine(scenario.store_url)
    try:
        with engine.connect() as conn:
            run = conn.execute(sa.select(runs_table).where(runs_table.c.run_id == fix_run)
                               ).mappings().one()
            entries = records.list_audit(conn, limit=None)
    finally:
        engine.dispose()
    assert run["status"] == "success"
    assert dispute_id in run["message"]
    assert [e.kind for e in entries if e.subject == dispute_id] == ["dispute"] * 3
    assert any(e.kind == "correction" and e.subject == fix_run for e in entries)

    after = _json(govex, "trace", "PSB-RES-001", KEY)
    assert set(after) == TRACE_KEYS
    assert len(after["deliveries"]) == 6
    assert [d["run_id"] for d in after["deliveries"]][:3] == [fix_run] * 3
    assert {d["run_id"] for d in after["deliveries"][3:]} == {first_run}
    assert after["disputes"] == [{"id": dispute_id, "state": "resolved"}]
    assert [q["run_id"] for q in after["quality"]] == [fix_run, first_run]
    assert after["source"]["current_hash"] == evidence["source_hash"]
    new_hashes = {i["subscription"]: i["new_hash"] for i in evidence["redelivered"]}
    assert {d["subscription"]: d["hash"] for d in after["deliveries"][:3]} == new_hashes

    # Resolving again is not a step a resolved dispute has.
    code, _, err = govex("dispute", "resolve", dispute_id)
    assert code == 2
    assert "is resolved" in err

    # A later regular run delivering the same values keeps the same fingerprints.
    again = _json(govex, "run", "PSB-RES-001")
    assert again["status"] == "success"
    latest = _json(govex, "trace", "PSB-RES-001", KEY)["deliveries"]
    assert {d["subscription"]: d["hash"] for d in latest if d["run_id"] == again["run_id"]} \
        == new_hashes


def test_resolve_only_redelivers_what_differs_and_refuses_a_failing_record(
    scenario: Any, govex: Any
) -> None:
    assert _json(govex, "run", "PSB-RES-001")["status"] == "success"
    code, out, _ = govex("dispute", "open", "PSB-RES-001", KEY, "--field", "phone",
                         "--claim", "wrong phone", "--token", as_("hpf"))
    assert code == 0
    dispute_id = out.splitlines()[-1]
    assert govex("dispute", "ack", dispute_id)[0] == 0

    # Only the phone changes: only the subscription carrying it is re-delivered.
    scenario.source_execute("UPDATE residents SET phone = '13911112222' WHERE id_no = :k", k=KEY)
    # ... but first the record breaks the gate: resolve refuses, nothing changes.
    scenario.source_execute("UPDATE residents SET score = -5 WHERE id_no = :k", k=KEY)
    code, _, err = govex("dispute", "resolve", dispute_id)
    assert code == 1
    assert "fails the quality gate" in err
    assert "score" in err
    assert _json(govex, "dispute", "show", dispute_id)["state"] == "acknowledged"

    scenario.source_execute("UPDATE residents SET score = 1 WHERE id_no = :k", k=KEY)
    # A run of the resource under way holds its lease: the correction waits its turn.
    from exchange.run import finish, start_run

    store = scenario.store()
    running = start_run(store, "PSB-RES-001")
    code, _, err = govex("dispute", "resolve", dispute_id)
    assert code == 1
    assert f"is being run by run {running}" in err
    assert _json(govex, "dispute", "show", dispute_id)["state"] == "acknowledged"
    finish(store, running)
    store.dispose()
    code, _, err = govex("dispute", "resolve", dispute_id)
    assert code == 0, err
    evidence = _json(govex, "dispute", "show", dispute_id)["evidence"]
    assert evidence["subscriptions"] == ["SUB-HPF-001"]
    assert sorted(u["subscription"] for u in evidence["unchanged"]) == [
        "SUB-GSC-001", "SUB-GSC-002"]
    hpf = [r for r in scenario.target_rows("hpf_maria", "hpf_residents") if r["id_no"] == KEY]
    assert sorted(r["phone"] for r in hpf) == ["138****0001", "139****2222"]


def test_invalid_steps_and_bad_input_exit_2(scenario: Any, govex: Any) -> None:
    assert _json(govex, "run", "PSB-RES-001")["status"] == "success"

    def refused(*argv: str) -> str:
        code, _, err = govex(*argv)
        assert code == 2, err
        assert err.startswith("error: ")
        assert len(err.strip().splitlines()) == 1
        return err

    assert "unknown resource 'NOPE'" in refused("trace", "NOPE", KEY)
    assert "unknown resource" in refused("dispute", "open", "NOPE", KEY, "--field", "score",
                                         "--claim", "x", "--token", as_("gsc"))
    assert "unknown field 'nope'" in refused("dispute", "open", "PSB-RES-001", KEY,
                                             "--field", "nope", "--claim", "x",
                                             "--token", as_("gsc"))
    assert "unknown token" in refused("dispute", "open", "PSB-RES-001", KEY,
                                      "--field", "score", "--claim", "x",
                                      "--token", "govex_not-a-token")
    assert "may not open disputes" in refused("dispute", "open", "PSB-RES-001", KEY,
                                              "--field", "score", "--claim", "x",
                                              "--token", as_("psb", "provider"))
    assert "no subscription" in refused("dispute", "open", "PSB-RES-001", KEY, "--field",
                                        "score", "--claim", "x", "--token", as_("psb"))
    assert "does not receive field 'phone'" in refused(
        "dispute", "open", "PSB-RES-001", KEY, "--field", "phone", "--claim", "x",
        "--token", as_("gsc"))
    assert "never delivered" in refused("dispute", "open", "PSB-RES-001", "BAD000000000000000",
                                        "--field", "score", "--claim", "x", "--token", as_("gsc"))
    assert "unknown dispute" in refused("dispute", "show", "DSP-NOPE")
    assert _json(govex, "dispute", "list") == []  # nothing refused left anything behind

    code, out, _ = govex("dispute", "open", "PSB-RES-001", KEY, "--field", "score",
                         "--claim", "x", "--token", as_("gsc"))
    dispute_id = out.splitlines()[-1]
    assert "only an acknowledged dispute can be rejected" in refused(
        "dispute", "reject", dispute_id, "--reason", "fine as is")
    with pytest.raises(SystemExit) as missing:  # argparse: --reason is required
        govex("dispute", "reject", dispute_id)
    assert missing.value.code == 2
    assert govex("dispute", "ack", dispute_id)[0] == 0
    assert "needs a reason" in refused("dispute", "reject", dispute_id, "--reason", "  ")
    code, out, _ = govex("dispute", "reject", dispute_id, "--reason", "源数据核实无误")
    assert code == 0
    shown = _json(govex, "dispute", "show", dispute_id)
    assert (shown["state"], shown["reason"]) == ("rejected", "源数据核实无误")
    assert [(h["from"], h["to"]) for h in shown["history"]] == [
        (None, "open"), ("open", "acknowledged"), ("acknowledged", "rejected")]
    assert "is rejected" in refused("dispute", "resolve", dispute_id)
    assert "is rejected" in refused("dispute", "ack", dispute_id)
    listed = _json(govex, "dispute", "list")
    assert [(d["id"], d["state"], d["overdue"]) for d in listed] == [
        (dispute_id, "rejected", False)]


def test_rest_api_and_pages_apply_the_roles(scenario: Any, govex: Any) -> None:
    from fastapi.testclient import TestClient

    from exchange.store import tokens
    from exchange.web.app import create_app

    assert _json(govex, "run", "PSB-RES-001")["status"] == "success"
    engine = create_store_engine(scenario.store_url)
    with engine.begin() as conn:
        secret = {f"{role}:{dept}": tokens.create_token(conn, dept, role) for role, dept in (
            ("consumer", "gsc"), ("consumer", "hpf"), ("consumer", "psb"), ("provider", "psb"),
            ("provider", "gsc"), ("admin", "psb"), ("auditor", "hpf"))}

    def h(who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {secret[who]}"}

    client = TestClient(create_app(engine, docs_dir=scenario.root / "docs"))
    try:
        url = f"/api/v1/trace/PSB-RES-001/{KEY}"
        full = client.get(url, headers=h("provider:psb")).json()
        assert set(full) == TRACE_KEYS
        assert len(full["deliveries"]) == 3
        assert full["source"]["current_hash"]
        assert client.get(url, headers=h("auditor:hpf")).json() == full
        mine = client.get(url, headers=h("consumer:gsc")).json()
        assert {d["subscription"] for d in mine["deliveries"]} == {"SUB-GSC-001", "SUB-GSC-002"}
        assert mine["source"]["current_hash"] is None
        assert client.get(url, headers=h("consumer:psb")).status_code == 403
        assert client.get(url).status_code == 401
        assert client.get("/api/v1/trace/NOPE/1", headers=h("admin:psb")).status_code == 404

        body = {"resource": "PSB-RES-001", "key": KEY, "field": "score", "claim": "应为 77"}
        assert client.post("/api/v1/disputes", json=body,
                           headers=h("provider:psb")).status_code == 403
        assert client.post("/api/v1/disputes", json={**body, "opened_by": "hpf"},
                           headers=h("consumer:gsc")).status_code == 403
        bad = client.post("/api/v1/disputes", json={**body, "field": "nope"},
                          headers=h("consumer:gsc"))
        assert bad.status_code == 400
        assert "unknown field" in bad.json()["detail"]
        created = client.post("/api/v1/disputes", json=body, headers=h("consumer:gsc"))
        assert created.status_code == 201, created.text
        dispute = created.json()
        did = dispute["id"]
        assert (dispute["state"], dispute["provider"], dispute["overdue"]) == ("open", "psb", False)

        assert [d["id"] for d in client.get("/api/v1/disputes",
                                            headers=h("consumer:gsc")).json()] == [did]
        assert client.get("/api/v1/disputes", headers=h("consumer:hpf")).json() == []
        assert client.get(f"/api/v1/disputes/{did}", headers=h("consumer:hpf")).status_code == 403
        assert client.post(f"/api/v1/disputes/{did}/ack",
                           headers=h("consumer:gsc")).status_code == 403
        assert client.post(f"/api/v1/disputes/{did}/ack",
                           headers=h("provider:gsc")).status_code == 403
        early = client.post(f"/api/v1/disputes/{did}/resolve", headers=h("provider:psb"))
        assert early.status_code == 409
        acked = client.post(f"/api/v1/disputes/{did}/ack", headers=h("provider:psb"))
        assert acked.json()["state"] == "acknowledged"
        assert client.post(f"/api/v1/disputes/{did}/reject", json={"reason": ""},
                           headers=h("provider:psb")).status_code == 422

        # The pages: list with the overdue flag column, the dispute, the trace.
        for page in ("/disputes", f"/disputes/{did}", f"/trace/PSB-RES-001/{KEY}"):
            shown = client.get(page, headers=h("provider:psb"))
            assert shown.status_code == 200, page
            assert did in shown.text
        assert "Resolve" in client.get(f"/disputes/{did}", headers=h("provider:psb")).text
        assert "Resolve" not in client.get(f"/disputes/{did}", headers=h("consumer:gsc")).text

        scenario.source_execute("UPDATE residents SET score = 77 WHERE id_no = :k", k=KEY)
        done = client.post(f"/api/v1/disputes/{did}/resolve", headers=h("provider:psb"))
        assert done.status_code == 200, done.text
        assert done.json()["state"] == "resolved"
        assert sorted(done.json()["evidence"]["subscriptions"]) == ["SUB-GSC-001", "SUB-GSC-002"]
        assert done.json()["evidence"]["unchanged"][0]["subscription"] == "SUB-HPF-001"
        after = client.get(url, headers=h("consumer:gsc")).json()
        assert after["disputes"] == [{"id": did, "state": "resolved"}]
        assert len(after["deliveries"]) == 4
    finally:
        client.close()
        engine.dispose()


def _stand_in_only(
    scenario_factory: Any, pg_url: str, tmp_path: Path, make_rows: Any
) -> Any:
    """gsc receives the record without its key (only `_govex_key`); hpf the key in clear."""
    subs = [
        {"id": "SUB-GSC-002", "consumer": "gsc", "fields": ["name", "score"],
         "masking": {"name": "hash"}, "mode": "snapshot",
         "target": {"connection": "gsc_lite", "table": "gsc_snapshot"}},
        {"id": "SUB-HPF-001", "consumer": "hpf", "fields": ["id_no", "phone"],
         "masking": {"phone": "mask_phone"}, "mode": "upsert",
         "target": {"connection": "hpf_lite", "table": "hpf_residents"}},
    ]
    targets = {"gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}",
               "hpf_lite": f"sqlite:///{tmp_path / 'hpf.db'}"}
    return scenario_factory(pg_url, targets, subs, make_rows(20))


def test_a_consumer_disputes_by_the_govex_key_it_received(
    scenario_factory: Any, pg_url: str, tmp_path: Path, make_rows: Any, govex: Any
) -> None:
    """A department that never received the key names the record by its `_govex_key`, as
    trace allows; a key it never received is refused as never delivered, as before."""
    made = _stand_in_only(scenario_factory, pg_url, tmp_path, make_rows)
    assert _json(govex, "run", "PSB-RES-001")["status"] == "success"
    held = made.target_rows("gsc_lite", "gsc_snapshot")
    assert "id_no" not in held[0]
    stand_in = next(r["_govex_key"] for r in held if r["score"] == 1)  # row 1 is KEY
    code, out, err = govex("dispute", "open", "PSB-RES-001", stand_in, "--field", "score",
                           "--claim", "分数应为 77", "--token", as_("gsc"))
    assert code == 0, err
    shown = _json(govex, "dispute", "show", out.splitlines()[-1])
    assert (shown["key"], shown["opened_by"], shown["field"]) == (KEY, "gsc", "score")

    # hpf's stand-in for the same record is not gsc's, and hpf receives the key in clear.
    for key, by in (("0" * 16, "gsc"), (stand_in, "hpf"), ("110105199001019999", "gsc")):
        code, _, err = govex("dispute", "open", "PSB-RES-001", key, "--field",
                             "phone" if by == "hpf" else "score", "--claim", "x",
                             "--token", as_(by))
        assert code == 2, (key, by, err)
        assert "never delivered" in err
    assert len(_json(govex, "dispute", "list")) == 1


def test_resolving_with_nothing_changed_is_refused_unless_forced(
    scenario_factory: Any, pg_url: str, tmp_path: Path, make_rows: Any, govex: Any
) -> None:
    """A provider who resolves without correcting anything would close the dispute as if the
    value had been fixed: refused (exit 2, nothing written) with a pointer to rejecting;
    `--force` closes it anyway with a warning; the API answers 409 with the same sentence in
    its own terms and accepts `{"force": true}`."""
    from fastapi.testclient import TestClient

    from exchange.store import tokens
    from exchange.web.app import create_app

    made = _stand_in_only(scenario_factory, pg_url, tmp_path, make_rows)
    assert _json(govex, "run", "PSB-RES-001")["status"] == "success"

    def opened(by: str, field: str) -> str:
        code, out, err = govex("dispute", "open", "PSB-RES-001", KEY, "--field", field,
                               "--claim", "wrong", "--token", as_(by))
        assert code == 0, err
        dispute_id: str = out.splitlines()[-1]
        assert govex("dispute", "ack", dispute_id)[0] == 0
        return dispute_id

    def run_count() -> int:
        engine = create_store_engine(made.store_url)
        try:
            with engine.connect() as conn:
                return len(conn.execute(sa.select(runs_table.c.run_id)).all())
        finally:
            engine.dispose()

    first = opened("hpf", "phone")
    runs_before = run_count()
    code, out, err = govex("dispute", "resolve", first)
    assert code == 2
    assert err.startswith("error: ")
    assert len(err.strip().splitlines()) == 1
    assert "unchanged at the source" in err
    assert "`govex dispute reject`" in err
    assert "--force" in err
    assert out == ""
    assert _json(govex, "dispute", "show", first)["state"] == "acknowledged"
    assert run_count() == runs_before  # nothing written: no correction run

    code, out, err = govex("dispute", "resolve", first, "--force")
    assert code == 0, err
    assert err.startswith("warning: nothing was re-delivered")
    forced = _json(govex, "dispute", "show", first)
    assert forced["state"] == "resolved"
    assert forced["evidence"]["redelivered"] == []

    # The API: 409 with the same sentence in API terms; force in the body closes it.
    second = opened("gsc", "score")
    engine = create_store_engine(made.store_url)
    with engine.begin() as conn:
        secret = tokens.create_token(conn, "psb", "provider")
    headers = {"Authorization": f"Bearer {secret}"}
    client = TestClient(create_app(engine, docs_dir=made.root / "docs"))
    try:
        refused = client.post(f"/api/v1/disputes/{second}/resolve", headers=headers)
        assert refused.status_code == 409, refused.text
        detail = refused.json()["detail"]
        assert "unchanged at the source" in detail
        assert f"POST /api/v1/disputes/{second}/reject" in detail
        assert "the 'force' field" in detail
        assert "govex" not in detail.replace("_govex", "")
        assert client.get(f"/api/v1/disputes/{second}",
                          headers=headers).json()["state"] == "acknowledged"
        page = client.post(f"/disputes/{second}/resolve", headers=headers,
                           follow_redirects=False)
        assert page.status_code == 409
        done = client.post(f"/api/v1/disputes/{second}/resolve", json={"force": True},
                           headers=headers)
        assert done.status_code == 200, done.text
        assert done.json()["state"] == "resolved"
        assert done.json()["evidence"]["redelivered"] == []
    finally:
        client.close()
        engine.dispose()
