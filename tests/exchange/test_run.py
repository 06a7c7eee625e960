"""`govex run` end to end on real databases: PostgreSQL source; PostgreSQL (upsert), MariaDB
(append) and SQLite (snapshot) subscribers; the gate, masking, incremental runs and a SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import records
from exchange.cli import main
from tests.exchange.conftest import SCENARIO_BAD_EVERY, SCENARIO_ROWS, three_subscriptions
from tests.exchange.test_leases import expire_at

pytestmark = pytest.mark.integration

N = SCENARIO_ROWS
BAD_EVERY = SCENARIO_BAD_EVERY  # 20 malformed id_no values: 2% of the rows


def _run(capsys: Any, *argv: str) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["run", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_run_delivers_masked_fields_to_every_subscriber(scenario: Any, capsys: Any) -> None:
    code, summary = _run(capsys, "PSB-RES-001")
    bad = N // BAD_EVERY
    assert code == 0, summary
    assert summary["status"] == "success"
    assert (summary["read"], summary["passed"], summary["quarantined"]) == (N, N - bad, bad)
    assert {d["subscription"]: d["delivered"] for d in summary["deliveries"]} == {
        "SUB-GSC-001": N - bad, "SUB-HPF-001": N - bad, "SUB-GSC-002": N - bad,
    }
    assert set(summary) >= {"run_id", "resource", "status", "read", "passed", "quarantined",
                            "deliveries", "started_at", "ended_at", "message"}

    gsc = {r["id_no"]: r for r in scenario.target_rows("gsc_pg", "gsc_residents")}
    assert len(gsc) == N - bad
    one = gsc["110105199001010001"]
    assert one["name"] == "居**"
    assert one["score"] == 1
    assert one["_govex_resource"] == "PSB-RES-001"
    assert one["_govex_run_id"] == summary["run_id"]
    assert "phone" not in one  # not approved for this subscription
    assert not any(k.startswith("BAD") for k in gsc)

    hpf = scenario.target_rows("hpf_maria", "hpf_residents")
    assert len(hpf) == N - bad
    assert {r["phone"] for r in hpf if r["id_no"] == "110105199001010001"} == {"138****0001"}

    snap = scenario.target_rows("gsc_lite", "gsc_snapshot")
    assert len(snap) == N - bad
    assert all(len(r["name"]) == 64 and "居民" not in r["name"] for r in snap)
    assert len({r["_govex_key"] for r in snap}) == N - bad


def test_incremental_run_delivers_exactly_the_changes(scenario: Any, capsys: Any) -> None:
    assert _run(capsys, "PSB-RES-001")[0] == 0
    code, summary = _run(capsys, "PSB-RES-001")
    assert code == 0
    assert summary["read"] == 0

    scenario.source_execute(
        "UPDATE residents SET score = 99, updated_at = :t WHERE id_no IN "
        "('110105199001010001', '110105199001010002', '110105199001010003')",
        t="2026-11-20T00:00:00+00:00",
    )
    scenario.source_execute(
        "INSERT INTO residents VALUES ('110105199001019999', '新居民', '13900000000', "
        "'2000-01-01', 5, '2026-11-21T00:00:00+00:00')"
    )
    code, summary = _run(capsys, "PSB-RES-001")
    assert code == 0
    assert summary["read"] == 4
    assert {d["delivered"] for d in summary["deliveries"]} == {4}
    gsc = {r["id_no"]: r for r in scenario.target_rows("gsc_pg", "gsc_residents")}
    assert gsc["110105199001010002"]["score"] == 99
    assert gsc["110105199001019999"]["name"] == "新**"
    hpf = Counter(r["id_no"] for r in scenario.target_rows("hpf_maria", "hpf_residents"))
    assert hpf["110105199001010002"] == 2  # append keeps history: one row per delivery


def test_killed_between_batches_then_rerun_delivers_exactly_once(
    scenario: Any, tmp_path: Path, make_rows: Any
) -> None:
    """SIGKILL after three committed batch writes; the rerun completes with no loss and no
    duplicate in any target, append included."""
    script = textwrap.dedent("""
        import os, signal
        import connectors
        from govex.settings import load_settings
        from exchange.run import run_resource
        from exchange.store import open_store

        real_open_sink = connectors.open_sink
        writes = {"n": 0}

        def open_sink(*args, **kwargs):
            sink = real_open_sink(*args, **kwargs)
            real_write = sink.write
            def write(*a, **k):
                if writes["n"] == 3:
                    os.kill(os.getpid(), signal.SIGKILL)
                writes["n"] += 1
                return real_write(*a, **k)
            sink.write = write
            return sink

        connectors.open_sink = open_sink
        run_resource(open_store(load_settings()), "PSB-RES-001")
    """)
    env = {**os.environ, "GOVEX_BATCH_ROWS": "100"}
    child = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                           timeout=300, check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    expire_at(scenario.store_url)  # the killed run's lease, no longer renewed, runs out
    partial = scenario.target_rows("gsc_pg", "gsc_residents")
    assert 0 < len(partial) < N - N // BAD_EVERY

    rerun = subprocess.run(
        [sys.executable, "-m", "exchange.cli", "run", "PSB-RES-001", "--json"],
        env=env, capture_output=True, timeout=300, check=False,
    )
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert json.loads(rerun.stdout)["status"] == "success"

    expected = {r["id_no"]: r for r in make_rows(N, bad_every=BAD_EVERY)
                if not r["id_no"].startswith("BAD")}
    gsc = scenario.target_rows("gsc_pg", "gsc_residents")
    assert Counter(r["id_no"] for r in gsc) == Counter(expected.keys())
    assert all(r["score"] == expected[r["id_no"]]["score"] for r in gsc)
    hpf = scenario.target_rows("hpf_maria", "hpf_residents")
    assert Counter(r["id_no"] for r in hpf) == Counter(expected.keys())
    snap = scenario.target_rows("gsc_lite", "gsc_snapshot")
    assert len(snap) == len(expected)


def test_dirty_batch_is_blocked_and_nothing_is_delivered(
    scenario_factory: Any, pg_url: str, tmp_path: Path, capsys: Any, make_rows: Any
) -> None:
    targets = {"gsc_pg": pg_url, "hpf_maria": f"sqlite:///{tmp_path / 'hpf.db'}",
               "gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"}
    scenario_factory(pg_url, targets, three_subscriptions(), make_rows(200, bad_every=10),
                     max_error_rate=0.05)
    code, summary = _run(capsys, "PSB-RES-001")
    assert code == 1
    assert summary["status"] == "blocked"
    assert summary["deliveries"] == []
    assert "pattern on id_no (20)" in summary["message"]
    assert "max_error_rate 5.0%" in summary["message"]


def test_subscription_outside_its_window_gets_nothing(
    scenario_factory: Any, pg_url: str, tmp_path: Path, capsys: Any, make_rows: Any
) -> None:
    subs = three_subscriptions()
    subs[1]["valid_from"] = "2029-01-01"
    targets = {"gsc_pg": pg_url, "hpf_maria": f"sqlite:///{tmp_path / 'hpf.db'}",
               "gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"}
    scenario_factory(pg_url, targets, subs, make_rows(100))
    code, summary = _run(capsys, "PSB-RES-001")
    assert code == 0
    assert [d["subscription"] for d in summary["deliveries"]] == ["SUB-GSC-001", "SUB-GSC-002"]
    assert not (tmp_path / "hpf.db").exists()


def test_unknown_resource_is_bad_input(scenario: Any, capsys: Any) -> None:
    assert main(["run", "NOPE-001"]) == 2
    assert "unknown resource 'NOPE-001'" in capsys.readouterr().err


def test_quarantine_matches_the_run_and_empties_when_fixed_at_source(
    scenario: Any, capsys: Any
) -> None:
    scenario.source_execute(
        "UPDATE residents SET score = -5 WHERE id_no = '110105199001010007'"
    )
    code, summary = _run(capsys, "PSB-RES-001")
    assert code == 0
    capsys.readouterr()
    assert main(["quality", "quarantine", "PSB-RES-001", "--json"]) == 0
    held = json.loads(capsys.readouterr().out)
    assert len(held) == summary["quarantined"] == N // BAD_EVERY + 1
    by_key = {item["key"]: item for item in held}
    assert {"check": "minimum", "column": "score", "detail": "value is less than the minimum 0",
            "value": "-5"} in by_key["110105199001010007"]["failed_checks"]
    bad_id = next(c for c in by_key[f"BAD{0:015d}"]["failed_checks"] if c["check"] == "pattern")
    assert bad_id["value"] == "BAD000********0000"  # x-govex-pii id_number: mask_id_number
    assert all(item["run_id"] == summary["run_id"] and item["first_seen"] for item in held)

    assert main(["quality", "report", "PSB-RES-001", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    checks = {(c["check"], c["column"]): c["failed"] for c in report[-1]["checks"]}
    assert checks[("minimum", "score")] == 1
    assert checks[("pattern", "id_no")] == N // BAD_EVERY

    # The provider fixes the record at the source; the next run passes it and releases it.
    scenario.source_execute(
        "UPDATE residents SET score = 7, updated_at = :t WHERE id_no = '110105199001010007'",
        t="2026-11-25T00:00:00+00:00",
    )
    code, summary = _run(capsys, "PSB-RES-001")
    assert (code, summary["read"], summary["quarantined"]) == (0, 1, 0)
    assert main(["quality", "quarantine", "PSB-RES-001", "--json"]) == 0
    keys = {item["key"] for item in json.loads(capsys.readouterr().out)}
    assert "110105199001010007" not in keys
    assert len(keys) == N // BAD_EVERY
    gsc = {r["id_no"]: r for r in scenario.target_rows("gsc_pg", "gsc_residents")}
    assert gsc["110105199001010007"]["score"] == 7


def test_every_event_of_a_run_is_stored_and_valid_openlineage(
    scenario: Any, capsys: Any
) -> None:
    import lineage
    from tests.lineage.spec_validation import load_validator

    code, summary = _run(capsys, "PSB-RES-001")
    assert code == 0
    engine = scenario.store()
    with engine.connect() as conn:
        events = lineage.list_events(conn, summary["run_id"])
    engine.dispose()
    kinds = sorted((e["job"]["name"], e["eventType"]) for e in events)
    assert kinds == sorted(
        [("exchange.PSB-RES-001", "START"), ("exchange.PSB-RES-001", "COMPLETE")]
        + [(f"exchange.PSB-RES-001.deliver.{s}", t)
           for s in ("SUB-GSC-001", "SUB-GSC-002", "SUB-HPF-001") for t in ("START", "COMPLETE")]
    )
    validator = load_validator()
    for event in events:
        validator.validate(event)
    capsys.readouterr()
    assert main(["lineage", "events", "--run", summary["run_id"], "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["eventType"] for line in lines] == [e["eventType"] for e in events]
    complete = next(e for e in events if e["eventType"] == "COMPLETE"
                    and e["job"]["name"] == "exchange.PSB-RES-001")
    assertions = complete["inputs"][0]["inputFacets"]["dataQualityAssertions"]["assertions"]
    assert {"assertion": "pattern", "success": False, "column": "id_no"} in assertions


def test_applies_runs_and_deliveries_are_in_the_verified_audit_log(
    scenario: Any, capsys: Any
) -> None:

    code, summary = _run(capsys, "PSB-RES-001")
    assert code == 0
    engine = scenario.store()
    with engine.connect() as conn:
        entries = records.list_audit(conn, limit=100)
        assert records.verify_audit(conn).ok
    engine.dispose()
    kinds = [(e.kind, e.subject) for e in entries]
    assert ("run", summary["run_id"]) in kinds
    for sub in ("SUB-GSC-001", "SUB-GSC-002", "SUB-HPF-001"):
        assert ("delivery", f"{summary['run_id']}/{sub}") in kinds
    capsys.readouterr()
    assert main(["audit", "verify"]) == 0
    assert "audit log intact" in capsys.readouterr().out
