"""Backfills on real databases: a subscription added after its resource ran gets the whole
current data set once (`"backfill": true` on its delivery), the others get nothing again, and
from then on everyone gets the increments. A killed backfill, a killed `--full` run into a new
snapshot target, a `--subscription` backfill, a changed target and a subscription left behind
while inactive are all finished by the next run, every record exactly once in every target.
PostgreSQL source; PostgreSQL (upsert), MariaDB (append) and SQLite (snapshot) subscribers."""

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

import catalog
from exchange.cli import main
from tests.exchange.conftest import (
    SCENARIO_BAD_EVERY,
    SCENARIO_ROWS,
    Scenario,
    three_subscriptions,
    write_workspace,
)
from tests.exchange.test_leases import expire_at

pytestmark = pytest.mark.integration

N = SCENARIO_ROWS
BAD_EVERY = SCENARIO_BAD_EVERY  # 20 malformed id_no values, quarantined: 980 pass
NEW_APPEND = {"id": "SUB-NEW-001", "consumer": "hpf", "fields": ["id_no", "name", "score"],
              "mode": "append", "target": {"connection": "hpf_maria", "table": "new_residents"}}
NEW_SNAPSHOT = {"id": "SUB-NEW-002", "consumer": "gsc", "fields": ["id_no", "score"],
                "mode": "snapshot", "target": {"connection": "gsc_pg", "table": "new_snapshot"}}


@pytest.fixture
def expected(make_rows: Any) -> dict[str, dict[str, Any]]:
    """The records that pass the gate, by id_no."""
    return {r["id_no"]: r for r in make_rows(N, bad_every=BAD_EVERY)
            if not r["id_no"].startswith("BAD")}


def _subscribe(scenario: Scenario, *extra: dict[str, Any]) -> None:
    """Re-apply the workspace with the original subscriptions plus `extra`."""
    write_workspace(scenario.root, scenario.source_url, scenario.targets,
                    [*three_subscriptions(), *extra])
    engine = scenario.store()
    try:
        catalog.apply_workspace(engine, scenario.root)
    finally:
        engine.dispose()


def _run(capsys: Any, *argv: str) -> dict[str, Any]:
    capsys.readouterr()
    code = main(["run", *argv, "--json"])
    summary: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert (code, summary["status"]) == (0, "success"), summary["message"]
    return summary


def _by_sub(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["subscription"]: d for d in summary["deliveries"]}


def _run_ids(scenario: Scenario, connection: str, table: str) -> Counter[str]:
    return Counter(r["_govex_run_id"] for r in scenario.target_rows(connection, table))


def _change_three(scenario: Scenario) -> None:
    """Two records updated, one inserted: the increment of the next run."""
    scenario.source_execute(
        "UPDATE residents SET score = 77, updated_at = :t WHERE id_no IN "
        "('110105199001010001', '110105199001010002')", t="2026-12-01T00:00:00+00:00",
    )
    scenario.source_execute(
        "INSERT INTO residents VALUES ('110105199001019999', '新居民', '13900000000', "
        "'2000-01-01', 5, '2026-12-02T00:00:00+00:00')"
    )


def test_a_new_subscriber_gets_everything_once_then_increments(
    scenario: Scenario, capsys: Any, expected: dict[str, dict[str, Any]]
) -> None:
    first = _run(capsys, "PSB-RES-001")
    assert all("backfill" not in d for d in first["deliveries"])  # nobody held anything
    before = {(c, t): _run_ids(scenario, c, t) for c, t in (
        ("gsc_pg", "gsc_residents"), ("hpf_maria", "hpf_residents"), ("gsc_lite", "gsc_snapshot"))}

    _subscribe(scenario, NEW_APPEND)
    second = _run(capsys, "PSB-RES-001")  # no change at the source
    deliveries = _by_sub(second)
    assert deliveries["SUB-NEW-001"] == {"subscription": "SUB-NEW-001",
                                         "delivered": len(expected), "status": "success",
                                         "backfill": True}
    for old in ("SUB-GSC-001", "SUB-HPF-001", "SUB-GSC-002"):
        assert deliveries[old] == {"subscription": old, "delivered": 0, "status": "success"}
    new = scenario.target_rows("hpf_maria", "new_residents")
    assert Counter(r["id_no"] for r in new) == Counter(expected.keys())  # every record, once
    assert {r["_govex_run_id"] for r in new} == {second["run_id"]}
    assert all(r["score"] == expected[r["id_no"]]["score"] for r in new)
    for (connection, table), run_ids in before.items():  # the old targets got nothing again
        assert _run_ids(scenario, connection, table) == run_ids

    # The web API shows the run as `govex run --json` does, the backfill mark included.
    from exchange.web.queries import list_runs

    engine = scenario.store()
    with engine.connect() as conn:
        listed = {r["run_id"]: r for r in list_runs(conn)}
    engine.dispose()
    assert listed[second["run_id"]]["deliveries"] == second["deliveries"]

    # From now on the new subscriber is one of the others: increments only, no backfill.
    _change_three(scenario)
    third = _run(capsys, "PSB-RES-001")
    assert third["read"] == 3
    assert {s: (d["delivered"], "backfill" in d) for s, d in _by_sub(third).items()} == {
        s: (3, False) for s in ("SUB-GSC-001", "SUB-HPF-001", "SUB-GSC-002", "SUB-NEW-001")}
    new = Counter(r["id_no"] for r in scenario.target_rows("hpf_maria", "new_residents"))
    assert new["110105199001010001"] == 2  # append: one row per delivery
    assert new["110105199001019999"] == 1
    assert sum(new.values()) == len(expected) + 3
    gsc = {r["id_no"]: r for r in scenario.target_rows("gsc_pg", "gsc_residents")}
    assert gsc["110105199001010002"]["score"] == 77
    assert len(gsc) == len(expected) + 1

    idle = _run(capsys, "PSB-RES-001")
    assert (idle["read"], {d["delivered"] for d in idle["deliveries"]}) == (0, {0})
    assert all("backfill" not in d for d in idle["deliveries"])


_KILLER = textwrap.dedent("""
    import os, signal, sys
    import connectors
    from govex.settings import load_settings
    from exchange.run import run_resource
    from exchange.store import open_store

    table, method, after = sys.argv[1], sys.argv[2], int(sys.argv[3])
    real_open_sink = connectors.open_sink
    calls = {"n": 0}

    def open_sink(*args, **kwargs):
        sink = real_open_sink(*args, **kwargs)
        real = getattr(sink, method)
        def wrapped(spec, batches, *rest, **kw):
            if spec.table != table:
                return real(spec, batches, *rest, **kw)
            if method == "replace":  # die inside the swap, part of the snapshot staged
                def dying():
                    for i, batch in enumerate(batches):
                        if i == after:
                            os.kill(os.getpid(), signal.SIGKILL)
                        yield batch
                return real(spec, dying(), *rest, **kw)
            if calls["n"] == after:  # die after `after` committed batches into `table`
                os.kill(os.getpid(), signal.SIGKILL)
            calls["n"] += 1
            return real(spec, batches, *rest, **kw)
        setattr(sink, method, wrapped)
        return sink

    connectors.open_sink = open_sink
    run_resource(open_store(load_settings()), "PSB-RES-001", full="--full" in sys.argv)
""")


def _killed(table: str, method: str, after: int, *flags: str) -> None:
    """A run in a child process, SIGKILLed in its delivery into `table`."""
    env = {**os.environ, "GOVEX_BATCH_ROWS": "100"}
    child = subprocess.run([sys.executable, "-c", _KILLER, table, method, str(after), *flags],
                           env=env, capture_output=True, timeout=300, check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()[-3000:]
    expire_at(env["GOVEX_DB_URL"])  # the killed run's lease, no longer renewed, runs out


def _cli_run() -> dict[str, Any]:
    env = {**os.environ, "GOVEX_BATCH_ROWS": "100"}
    rerun = subprocess.run([sys.executable, "-m", "exchange.cli", "run", "PSB-RES-001", "--json"],
                           env=env, capture_output=True, timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr.decode()[-3000:]
    summary: dict[str, Any] = json.loads(rerun.stdout)
    assert summary["status"] == "success", summary
    return summary


def _exactly_once(scenario: Scenario, expected: dict[str, dict[str, Any]],
                  changed: Counter[str] | None = None) -> None:
    """Every target holds every record once (the append target of the original subscribers
    once more per record in `changed`), with the source's current values."""
    gsc = scenario.target_rows("gsc_pg", "gsc_residents")
    assert Counter(r["id_no"] for r in gsc) == Counter(expected.keys())
    assert all(r["score"] == expected[r["id_no"]]["score"] for r in gsc)
    hpf = Counter(r["id_no"] for r in scenario.target_rows("hpf_maria", "hpf_residents"))
    assert hpf == Counter(expected.keys()) + (changed or Counter())
    assert len(scenario.target_rows("gsc_lite", "gsc_snapshot")) == len(expected)


def test_a_killed_backfill_is_finished_by_the_next_run(
    scenario: Scenario, capsys: Any, expected: dict[str, dict[str, Any]]
) -> None:
    _run(capsys, "PSB-RES-001")
    _subscribe(scenario, NEW_APPEND)
    _change_three(scenario)  # the others have an increment to receive in the same run
    _killed("new_residents", "write", 3)  # three batches of the backfill committed, then death
    partial = scenario.target_rows("hpf_maria", "new_residents")
    assert 0 < len(partial) < len(expected)

    summary = _cli_run()
    deliveries = _by_sub(summary)
    assert deliveries["SUB-NEW-001"]["backfill"] is True
    assert deliveries["SUB-NEW-001"]["delivered"] == len(expected) + 1
    assert all("backfill" not in deliveries[s]
               for s in ("SUB-GSC-001", "SUB-HPF-001", "SUB-GSC-002"))
    assert {deliveries[s]["delivered"] for s in ("SUB-GSC-001", "SUB-HPF-001")} == {3}

    now = dict(expected)
    for key in ("110105199001010001", "110105199001010002"):
        now[key] = {**now[key], "score": 77}
    now["110105199001019999"] = {"id_no": "110105199001019999", "score": 5}
    new = scenario.target_rows("hpf_maria", "new_residents")
    assert Counter(r["id_no"] for r in new) == Counter(now.keys())  # the killed run's are gone
    assert all(r["score"] == now[r["id_no"]]["score"] for r in new)
    _exactly_once(scenario, now, Counter(["110105199001010001", "110105199001010002"]))


def test_a_killed_full_run_into_a_new_snapshot_is_completed_by_a_normal_run(
    scenario: Scenario, capsys: Any, expected: dict[str, dict[str, Any]]
) -> None:
    first = _run(capsys, "PSB-RES-001")
    _subscribe(scenario, NEW_SNAPSHOT)
    _killed("new_snapshot", "replace", 4, "--full")  # four batches staged for the swap
    assert len(scenario.target_rows("gsc_pg", "new_snapshot")) == 0  # the swap never happened

    summary = _cli_run()
    deliveries = _by_sub(summary)
    assert deliveries["SUB-NEW-002"] == {"subscription": "SUB-NEW-002",
                                         "delivered": len(expected), "status": "success",
                                         "backfill": True}
    snapshot = scenario.target_rows("gsc_pg", "new_snapshot")
    assert Counter(r["id_no"] for r in snapshot) == Counter(expected.keys())
    assert {r["_govex_run_id"] for r in snapshot} == {summary["run_id"]}
    # The others were current before the killed --full run: they get nothing now, and whatever
    # the killed run appended is gone again.
    assert {deliveries[s]["delivered"] for s in ("SUB-GSC-001", "SUB-HPF-001",
                                                 "SUB-GSC-002")} == {0}
    assert set(_run_ids(scenario, "hpf_maria", "hpf_residents")) == {first["run_id"]}
    _exactly_once(scenario, expected)


def test_a_run_for_one_subscription_backfills_it_level_with_the_others(
    scenario: Scenario, capsys: Any, expected: dict[str, dict[str, Any]]
) -> None:
    first = _run(capsys, "PSB-RES-001")
    _subscribe(scenario, NEW_APPEND)
    _change_three(scenario)
    alone = _run(capsys, "PSB-RES-001", "--subscription", "SUB-NEW-001")
    # What the others hold (everything up to the watermark), not yet what changed since: that
    # reaches every subscription at once with the next run.
    assert alone["deliveries"] == [{"subscription": "SUB-NEW-001", "delivered": len(expected) - 2,
                                    "status": "success", "backfill": True}]
    held = Counter(r["id_no"] for r in scenario.target_rows("hpf_maria", "new_residents"))
    assert held == Counter(expected.keys()) - Counter(["110105199001010001",
                                                       "110105199001010002"])
    assert set(_run_ids(scenario, "gsc_pg", "gsc_residents")) == {first["run_id"]}

    together = _run(capsys, "PSB-RES-001")
    assert {s: (d["delivered"], "backfill" in d) for s, d in _by_sub(together).items()} == {
        s: (3, False) for s in ("SUB-GSC-001", "SUB-HPF-001", "SUB-GSC-002", "SUB-NEW-001")}
    new = scenario.target_rows("hpf_maria", "new_residents")
    assert Counter(r["id_no"] for r in new) == Counter([*expected, "110105199001019999"])
    assert {r["score"] for r in new if r["id_no"] == "110105199001010001"} == {77}


def test_a_changed_target_and_a_subscription_left_behind_are_backfilled(
    scenario_factory: Any, tmp_path: Path, capsys: Any, make_rows: Any,
    expected: dict[str, dict[str, Any]],
) -> None:
    """On SQLite alone, the source too (timestamps kept as text there, compared as UTC)."""
    subs = [
        {"id": "SUB-A-001", "consumer": "gsc", "fields": ["id_no", "score"], "mode": "upsert",
         "target": {"connection": "a_lite", "table": "t_a"}},
        {"id": "SUB-B-001", "consumer": "hpf", "fields": ["id_no", "score"], "mode": "upsert",
         "target": {"connection": "b_lite", "table": "t_b"}},
    ]
    targets = {"a_lite": f"sqlite:///{tmp_path / 'a.db'}",
               "b_lite": f"sqlite:///{tmp_path / 'b.db'}"}
    scenario = scenario_factory(f"sqlite:///{tmp_path / 'psb.db'}", targets, subs,
                                make_rows(N, bad_every=BAD_EVERY))

    def apply(a_table: str, b_from: str) -> None:
        changed = [{**subs[0], "target": {"connection": "a_lite", "table": a_table}},
                   {**subs[1], "valid_from": b_from}]
        write_workspace(scenario.root, scenario.source_url, targets, changed)
        engine = scenario.store()
        catalog.apply_workspace(engine, scenario.root)
        engine.dispose()

    _run(capsys, "PSB-RES-001")
    apply("t_a_v2", "2029-01-01")  # A moves to a new table; B lapses (not yet valid)
    _change_three(scenario)
    moved = _run(capsys, "PSB-RES-001")
    assert moved["deliveries"] == [{"subscription": "SUB-A-001", "delivered": len(expected) + 1,
                                    "status": "success", "backfill": True}]
    a = {r["id_no"]: r["score"] for r in scenario.target_rows("a_lite", "t_a_v2")}
    assert len(a) == len(expected) + 1
    assert a["110105199001010001"] == 77

    apply("t_a_v2", "2026-01-01")  # B is valid again, behind the others
    back = _by_sub(_run(capsys, "PSB-RES-001"))
    assert back["SUB-B-001"]["backfill"] is True
    assert back["SUB-B-001"]["delivered"] == len(expected) + 1
    assert back["SUB-A-001"] == {"subscription": "SUB-A-001", "delivered": 0, "status": "success"}
    b = {r["id_no"]: r["score"] for r in scenario.target_rows("b_lite", "t_b")}
    assert b == a
