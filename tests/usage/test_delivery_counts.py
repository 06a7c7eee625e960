"""Deliveries are metered in the store transaction that writes their provenance: for every
subscription and day, usage's records equal the non-delete provenance rows, after runs,
deletes, a dispute's correction, a sink that fails partway and a process killed partway."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from typing import Any

import pytest
import sqlalchemy as sa

import connectors
import records
from exchange.cli import main
from exchange.run.correction import resolve_dispute
from exchange.store import create_store_engine
from tests.exchange.conftest import SCENARIO_BAD_EVERY, SCENARIO_ROWS, Scenario
from tests.exchange.test_leases import expire_at

pytestmark = pytest.mark.integration

CODE = "PSB-RES-001"
DELIVERED = SCENARIO_ROWS - SCENARIO_ROWS // SCENARIO_BAD_EVERY  # 980 pass the gate
SUBS = ("SUB-GSC-001", "SUB-GSC-002", "SUB-HPF-001")


def counted(store_url: str) -> dict[tuple[str, dt.date], int]:
    """Usage's records per (subscription, day), after checking them against provenance:
    the non-delete rows per subscription and Asia/Shanghai day of `delivered_at`."""
    engine = create_store_engine(store_url)
    try:
        with engine.connect() as conn:
            p = records.provenance.provenance.c
            expected = Counter(
                (sub, records.usage_day(at))
                for sub, at, value_hash in conn.execute(
                    sa.select(p.subscription, p.delivered_at, p.value_hash))
                if value_hash != records.DELETED
            )
            report = records.usage(conn)
    finally:
        engine.dispose()
    usage = {(r.subscription, r.day): r.records for r in report.rows}
    assert usage == dict(expected)
    assert all(r.calls == r.matches == r.not_found == 0 for r in report.rows)
    return usage


def per_sub(usage: dict[tuple[str, dt.date], int]) -> dict[str, int]:
    totals: Counter[str] = Counter()
    for (sub, _), n in usage.items():
        totals[sub] += n
    return dict(totals)


def bytes_of(store_url: str, sub: str) -> int:
    engine = create_store_engine(store_url)
    try:
        with engine.connect() as conn:
            return sum(r.bytes for r in records.usage(conn).rows if r.subscription == sub)
    finally:
        engine.dispose()


def text_bytes(rows: list[dict[str, Any]], fields: list[str]) -> int:
    """What the consumer holds, measured the documented way: each value as text, UTF-8."""
    return sum(len(str(r[f]).encode()) for r in rows for f in fields if r[f] is not None)


def run(capsys: Any, *argv: str) -> dict[str, Any]:
    capsys.readouterr()
    main(["run", CODE, *argv, "--json"])
    return dict(json.loads(capsys.readouterr().out))


def test_usage_equals_provenance_across_runs_deletes_a_correction_and_a_failed_sink(
    scenario: Scenario, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVEX_BATCH_ROWS", "100")
    first = run(capsys)
    assert first["status"] == "success", first
    usage = counted(scenario.store_url)
    assert per_sub(usage) == dict.fromkeys(SUBS, DELIVERED)
    # Bytes: what each consumer's table holds, values as text (masked as delivered).
    assert bytes_of(scenario.store_url, "SUB-GSC-001") == text_bytes(
        scenario.target_rows("gsc_pg", "gsc_residents"), ["id_no", "name", "birth_date", "score"])
    assert bytes_of(scenario.store_url, "SUB-HPF-001") == text_bytes(
        scenario.target_rows("hpf_maria", "hpf_residents"), ["id_no", "phone"])

    # An incremental run: three changed records and a new one, to every subscriber.
    scenario.source_execute(
        "UPDATE residents SET score = 99, updated_at = :t WHERE id_no IN "
        "('110105199001010001', '110105199001010002', '110105199001010003')",
        t="2026-11-20T00:00:00+00:00")
    scenario.source_execute(
        "INSERT INTO residents VALUES ('110105199001019999', '新居民', '13900000000', "
        "'2000-01-01', 5, '2026-11-21T00:00:00+00:00')")
    assert run(capsys)["status"] == "success"
    assert per_sub(counted(scenario.store_url)) == dict.fromkeys(SUBS, DELIVERED + 4)

    # Deletes reach the upsert target and provenance (`deleted`), and are not counted.
    scenario.source_execute("DELETE FROM residents WHERE id_no IN "
                            "('110105199001010004', '110105199001010005')")
    reconciled = run(capsys, "--reconcile")
    assert reconciled["status"] == "success", reconciled
    with create_store_engine(scenario.store_url).connect() as conn:
        p = records.provenance.provenance.c
        deleted = conn.execute(sa.select(sa.func.count()).where(
            p.value_hash == records.DELETED)).scalar_one()
    assert deleted >= 2
    before_failure = counted(scenario.store_url)

    # A sink that fails on its third write to the upsert target: two batches committed.
    scenario.source_execute(
        "UPDATE residents SET score = 42, updated_at = :t WHERE id_no < '110105199001010500'",
        t="2026-11-22T00:00:00+00:00")
    real_open_sink = connectors.open_sink

    def failing_sink(*args: Any, **kwargs: Any) -> Any:
        sink = real_open_sink(*args, **kwargs)
        real_write, writes = sink.write, Counter[str]()

        def write(spec: Any, *rest: Any, **more: Any) -> int:
            if spec.table == "gsc_residents":
                writes[spec.table] += 1
                if writes[spec.table] == 3:
                    raise ConnectionError("the target went away")
            return int(real_write(spec, *rest, **more))

        sink.write = write
        return sink

    monkeypatch.setattr(connectors, "open_sink", failing_sink)
    failed = run(capsys)
    assert failed["status"] != "success"
    status = {d["subscription"]: d.get("status") for d in failed["deliveries"]}
    assert status["SUB-GSC-001"] == "failed", failed
    after_failure = per_sub(counted(scenario.store_url))
    partial = after_failure["SUB-GSC-001"] - per_sub(before_failure)["SUB-GSC-001"]
    assert 0 <= partial <= 200  # at most the two committed batches, as provenance says
    monkeypatch.setattr(connectors, "open_sink", real_open_sink)
    assert run(capsys)["status"] == "success"
    counted(scenario.store_url)

    # A dispute's correction goes through the same delivery path and is counted too.
    key = "110105199001010007"
    engine = create_store_engine(scenario.store_url)
    try:
        with engine.begin() as conn:
            dispute = records.open_dispute(conn, resource=CODE, key=key, field="score",
                                           claim="分数应为 77", opened_by="gsc")
            records.acknowledge(conn, dispute["id"])
        scenario.source_execute("UPDATE residents SET score = 77, phone = '13900000007', "
                                "updated_at = updated_at + interval '1 day' WHERE id_no = :k",
                                k=key)
        before = per_sub(counted(scenario.store_url))
        resolved = resolve_dispute(engine, dispute["id"])
    finally:
        engine.dispose()
    corrected = resolved["evidence"]["subscriptions"]
    assert corrected
    after = per_sub(counted(scenario.store_url))
    assert {s: after[s] - before[s] for s in SUBS} == {s: int(s in corrected) for s in SUBS}


def test_a_process_killed_mid_delivery_leaves_counts_equal_to_provenance(
    scenario: Scenario,
) -> None:
    """SIGKILL after three committed batch writes (the store's provenance writer may be
    between two transactions): the counts still equal provenance, and after the rerun."""
    script = textwrap.dedent("""
        import os, signal
        import connectors
        from govex.settings import load_settings
        from exchange.run import run_resource
        from exchange.store import open_store

        import records

        real_open_sink = connectors.open_sink
        real_record = records.record_provenance
        writes, recorded = {"n": 0}, {"n": 0}

        # One provenance writer thread, one transaction per batch: once it is in its second
        # batch, the first committed, so the kill lands with some use counted (not 0).
        def record_provenance(*a, **k):
            recorded["n"] += 1
            return real_record(*a, **k)

        def open_sink(*args, **kwargs):
            sink = real_open_sink(*args, **kwargs)
            real_write = sink.write
            def write(*a, **k):
                if writes["n"] >= 3 and recorded["n"] >= 2:
                    os.kill(os.getpid(), signal.SIGKILL)
                writes["n"] += 1
                return real_write(*a, **k)
            sink.write = write
            return sink

        records.record_provenance = record_provenance
        connectors.open_sink = open_sink
        run_resource(open_store(load_settings()), "PSB-RES-001")
    """)
    env = {**os.environ, "GOVEX_BATCH_ROWS": "100"}
    child = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                           timeout=300, check=False)
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    killed = per_sub(counted(scenario.store_url))
    assert 0 < sum(killed.values()) < len(SUBS) * DELIVERED
    expire_at(scenario.store_url)  # the killed run's lease, no longer renewed, runs out
    rerun = subprocess.run([sys.executable, "-m", "exchange.cli", "run", CODE, "--json"],
                           env=env, capture_output=True, timeout=300, check=False)
    assert rerun.returncode == 0, rerun.stderr.decode()
    after = per_sub(counted(scenario.store_url))
    # The rerun delivers what the killed run did not finish (again, where provenance was
    # not written): every subscriber has been counted for at least everything once.
    assert all(after[s] >= DELIVERED for s in SUBS)
