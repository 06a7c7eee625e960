"""Two runs of one resource never both deliver: a run holds its resource with a lease in the
store (`exchange.run.leases`), and only a run whose lease expired is marked abandoned."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import catalog
import connectors
from exchange.run import (
    bookkeeping,
    deliver,
    extract,
    finish,
    gate,
    run_resource,
    start_run,
    subscriptions_of,
)
from exchange.run.leases import LeaseLostError, ResourceBusyError, held, leases, take
from exchange.store import create_store_engine, upgrade
from tests.exchange.conftest import create_source, make_rows, write_workspace

# Leases expire and heartbeats renew on the clock: these run alone (`make test`'s second phase).
pytestmark = pytest.mark.solo

CODE = "PSB-RES-001"
ROWS = 300
GOVEX = str(Path(sys.executable).with_name("govex"))


def _status(store: sa.Engine, run_id: str) -> tuple[str, str]:
    with store.connect() as conn:
        row = bookkeeping.get_run(conn, run_id)
    assert row is not None
    return row["status"], row["message"] or ""


def expire(store: sa.Engine, resource: str = CODE) -> None:
    """What time does to the lease of a run that died: it is no longer renewed."""
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    with store.begin() as conn:
        conn.execute(sa.update(leases).where(leases.c.resource == resource)
                     .values(expires_at=past))


def expire_at(store_url: str, resource: str = CODE) -> None:
    """`expire` for a store known by its URL (a killed child process's)."""
    engine = create_store_engine(store_url)
    try:
        expire(engine, resource)
    finally:
        engine.dispose()


def _lease(store: sa.Engine) -> sa.RowMapping | None:
    with store.connect() as conn:
        return conn.execute(sa.select(leases).where(leases.c.resource == CODE)).mappings().first()


def _target_rows(tmp_path: Path) -> list[str]:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'gsc.db'}")
    try:
        with engine.connect() as conn:
            return [r for (r,) in conn.execute(sa.text("SELECT id_no FROM gsc_residents"))]
    finally:
        engine.dispose()


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[sa.Engine]:
    """One resource on SQLite (source, store, an append target: a second delivery of a record
    would show as a second row) with GOVEX_* set for in-process runs and subprocesses alike."""
    monkeypatch.setenv("GOVEX_STAGING_DIR", str(tmp_path / "staging"))
    monkeypatch.setenv("GOVEX_DATA_DOCS_DIR", str(tmp_path / "data_docs"))
    monkeypatch.setenv("GOVEX_LINEAGE_DISABLED", "true")
    source = f"sqlite:///{tmp_path / 'psb.db'}"
    create_source(source, make_rows(ROWS))
    root = tmp_path / "ws"
    write_workspace(root, source, {"gsc_lite": f"sqlite:///{tmp_path / 'gsc.db'}"}, [
        {"id": "SUB-GSC-001", "consumer": "gsc", "fields": ["id_no", "name"], "masking": {},
         "mode": "append", "target": {"connection": "gsc_lite", "table": "gsc_residents"}},
    ])
    resource = root / "resources" / "psb.yaml"  # shared without conditions: no request needed
    resource.write_text(resource.read_text().replace("sharing: conditional",
                                                     "sharing: unconditional"))
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = create_store_engine(store_url)
    upgrade(engine)
    catalog.apply_workspace(engine, root)
    monkeypatch.setenv("GOVEX_DB_URL", store_url)
    yield engine
    engine.dispose()


# ---- in one process ---------------------------------------------------------------------------


def test_a_live_run_is_never_abandoned_by_a_second_start(store: sa.Engine) -> None:
    first = start_run(store, CODE)
    extract(store, first)
    with pytest.raises(ResourceBusyError) as refused:
        start_run(store, CODE)
    message = str(refused.value)
    assert f"run {first}" in message
    assert f"pid {os.getpid()}" in message
    assert "since 20" in message
    assert "expiring at 20" in message
    assert "\n" not in message
    assert _status(store, first) == ("running", "")
    gate(store, first)
    for sub in subscriptions_of(store, first):
        deliver(store, first, sub)
    assert finish(store, first).status == "success"
    assert _lease(store) is None  # given back at finish
    assert run_resource(store, CODE).status == "success"


def test_an_expired_lease_lets_the_next_run_take_over_and_abandon_it(
    store: sa.Engine, tmp_path: Path
) -> None:
    dead = start_run(store, CODE)
    extract(store, dead)
    expire(store)  # the process running `dead` was killed: nobody renews its lease
    summary = run_resource(store, CODE)
    assert summary.status == "success"
    status, message = _status(store, dead)
    assert status == "failed"
    assert "abandoned" in message
    assert sorted(_target_rows(tmp_path)) == sorted(r["id_no"] for r in make_rows(ROWS))
    with pytest.raises(LeaseLostError, match=f"run {dead} no longer holds the lease"):
        gate(store, dead)  # woken up again, the dead run stops


def test_a_step_of_the_same_run_takes_over_its_own_expired_lease(store: sa.Engine) -> None:
    """An Airflow retry of a task, maybe on another machine, after its lease lapsed."""
    run_id = start_run(store, CODE)
    expire(store)
    extract(store, run_id)
    lease = _lease(store)
    assert lease is not None
    assert lease["run_id"] == run_id
    assert lease["expires_at"].replace(tzinfo=dt.UTC) > dt.datetime.now(dt.UTC)
    assert finish(store, run_id).status == "failed"  # nothing delivered: failed, not stuck
    assert _lease(store) is None


def test_a_second_run_waits_for_the_first_when_asked(store: sa.Engine) -> None:
    first = start_run(store, CODE)
    threading.Timer(1.0, finish, (store, first)).start()
    started = time.monotonic()
    assert run_resource(store, CODE, wait=30).status == "success"
    assert 0.9 < time.monotonic() - started < 30
    assert _lease(store) is None
    assert _status(store, first)[0] == "failed"  # finished by the timer, never abandoned


def test_a_start_that_fails_gives_the_lease_back(store: sa.Engine) -> None:
    from govex.errors import DeclarationError

    with pytest.raises(DeclarationError, match="not a subscription"):
        start_run(store, CODE, subscription="SUB-NONE")
    assert _lease(store) is None


def test_a_reconciliation_takes_the_lease_too(store: sa.Engine) -> None:
    from exchange.run import reconcile_resource

    first = start_run(store, CODE)
    with pytest.raises(ResourceBusyError, match=f"run {first}"):
        reconcile_resource(store, CODE)
    finish(store, first)
    assert reconcile_resource(store, CODE).status == "success"
    assert _lease(store) is None


@pytest.mark.parametrize("value", ["-1", "soon", "nan", "inf"])
def test_wait_takes_seconds(store: sa.Engine, value: str, capsys: pytest.CaptureFixture[str]
                            ) -> None:
    from exchange.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(["run", CODE, "--wait", value])
    assert exited.value.code == 2
    assert "--wait takes a number of seconds" in capsys.readouterr().err


def test_the_heartbeat_renews_while_a_step_works(
    store: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVEX_LEASE_SECONDS", "1")
    run_id = start_run(store, CODE)
    with held(store, run_id) as beat:
        first = _lease(store)
        assert first is not None
        time.sleep(2.5)
        later = _lease(store)
        assert later is not None
        assert later["expires_at"] > first["expires_at"]
        beat.check()
        with store.begin() as conn:  # another run takes the resource over
            conn.execute(sa.update(leases).values(run_id="another"))
        time.sleep(1.5)
        with pytest.raises(LeaseLostError):
            list(beat.guard([1, 2]))


def test_a_run_paused_past_its_expiry_stops_before_its_next_batch(store: sa.Engine) -> None:
    """A frozen VM: the heartbeat thread had no chance to notice; the batch check renews."""
    paused = start_run(store, CODE)
    with held(store, paused) as beat:
        expire(store)
        taker = start_run(store, CODE)  # takes the resource over, abandons `paused`
        beat.renewed -= 3600  # as if the process had been stopped for an hour
        with pytest.raises(LeaseLostError, match=f"run {paused} no longer holds"):
            next(beat.guard([1]))
    finish(store, taker)


def test_a_delivery_that_loses_its_lease_mid_batch_writes_no_further_batch(
    store: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next batch is shaped while the target takes this one (`govex.ahead`), but the
    lease is checked on the writing side, just before each write: a batch shaped ahead is
    never written once the lease is gone."""
    monkeypatch.setenv("GOVEX_BATCH_ROWS", "100")  # three batches of the 300 rows
    monkeypatch.setenv("GOVEX_LEASE_SECONDS", "1")
    run_id = start_run(store, CODE)
    extract(store, run_id)
    gate(store, run_id)
    real_open_sink = connectors.open_sink

    def sink_losing_the_lease(*args: Any, **kwargs: Any) -> Any:
        sink = real_open_sink(*args, **kwargs)
        real_write = sink.write

        def write(*given: Any, **named: Any) -> int:
            written = int(real_write(*given, **named))
            with store.begin() as conn:  # another run takes the resource over meanwhile
                conn.execute(sa.update(leases).values(run_id="another"))
            time.sleep(1.2)  # past a renewal interval: the next check asks the store
            return written

        sink.write = write
        return sink

    monkeypatch.setattr(connectors, "open_sink", sink_losing_the_lease)
    with pytest.raises(LeaseLostError, match=f"run {run_id} no longer holds"):
        deliver(store, run_id, subscriptions_of(store, run_id)[0])
    assert len(_target_rows(tmp_path)) == 100  # the first batch only


@pytest.mark.integration
def test_taking_is_atomic_on_postgresql(pg_url: str) -> None:
    """Sixteen takers at once, on a free and then on an expired lease: one wins each time."""
    engine = create_store_engine(pg_url)
    upgrade(engine)
    for round_ in range(2):
        winners: list[str] = []
        barrier = threading.Barrier(16)

        def contend(name: str, barrier: threading.Barrier, winners: list[str]) -> None:
            barrier.wait()
            try:
                take(engine, CODE, name)
            except ResourceBusyError:
                return
            winners.append(name)

        threads = [threading.Thread(target=contend, args=(f"r{round_}-{i}", barrier, winners))
                   for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(winners) == 1
        expire(engine)
    engine.dispose()


# ---- separate processes: `govex run` -----------------------------------------------------------


def _govex_run(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(  # noqa: S603 - our own CLI, fixed arguments
        [GOVEX, "run", CODE, "--json", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=os.environ.copy(),
    )


def _wait_for_lease(store: sa.Engine, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lease = _lease(store)
        if lease is not None:
            return str(lease["run_id"])
        time.sleep(0.05)
    pytest.fail("no run took the lease")


def _pause_between_statements(run: subprocess.Popen[str], store_file: Path) -> None:
    """SIGSTOP `run` at a moment it holds no lock on the SQLite store (a paused writer, or
    reader, would block every other process's writes: that is SQLite, not the lease)."""
    for _attempt in range(200):
        assert run.poll() is None, "the run ended before it could be paused"
        run.send_signal(signal.SIGSTOP)
        probe = sqlite3.connect(store_file, timeout=0.1, isolation_level=None)
        try:
            probe.execute("BEGIN EXCLUSIVE")
            probe.execute("ROLLBACK")
        except sqlite3.OperationalError:
            run.send_signal(signal.SIGCONT)
            time.sleep(0.01)
            continue
        finally:
            probe.close()
        return
    pytest.fail("the run never left the store unlocked")


def _wait_for_delivered_rows(tmp_path: Path, run: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and run.poll() is None:
        try:
            if _target_rows(tmp_path):
                return
        except sa.exc.OperationalError:
            pass  # no target table yet
        time.sleep(0.01)
    pytest.fail(f"the run delivered nothing while it ran (exit {run.poll()})")


def test_two_concurrent_cli_runs_one_delivers_the_other_names_the_holder(
    store: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first run is paused (SIGSTOP) once it holds the resource, so that the second
    starts while it is surely under way, whatever the machine's load."""
    monkeypatch.setenv("GOVEX_BATCH_ROWS", "3")  # a hundred batches: a run of some seconds
    first = _govex_run()
    holder = _wait_for_lease(store)
    _pause_between_statements(first, tmp_path / "store.db")
    try:
        second = _govex_run()
        out, err = second.communicate(timeout=120)
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 1, (out, err)
    assert out == ""
    [line] = [e for e in err.splitlines() if e.startswith("error:")]
    assert line.startswith(f"error: resource {CODE} is being run by run {holder} (host ")
    assert "pid " in line
    assert "expiring at" in line
    won, err = first.communicate(timeout=120)
    assert first.returncode == 0, err
    summary = json.loads(won)
    assert summary["run_id"] == holder
    assert summary["deliveries"][0]["delivered"] == ROWS
    assert sorted(_target_rows(tmp_path)) == sorted(r["id_no"] for r in make_rows(ROWS))


def test_a_killed_cli_run_is_abandoned_only_once_its_lease_expired(
    store: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVEX_BATCH_ROWS", "3")
    monkeypatch.setenv("GOVEX_LEASE_SECONDS", "2")  # expires 6 s after its last renewal
    victim = _govex_run()
    killed = _wait_for_lease(store)
    _wait_for_delivered_rows(tmp_path, victim)  # mid-delivery: some batches committed
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert 0 < len(_target_rows(tmp_path)) < ROWS
    with pytest.raises(ResourceBusyError, match=f"run {killed}"):
        start_run(store, CODE)  # at once: its lease still stands
    assert _status(store, killed)[0] == "running"  # so it is not abandoned
    after = _govex_run("--wait", "60")  # waits out the lease, then runs
    _out, err = after.communicate(timeout=120)
    assert after.returncode == 0, err
    status, message = _status(store, killed)
    assert status == "failed"
    assert "abandoned" in message
    # Appended rows of the killed run went before the next run appended them again.
    assert sorted(_target_rows(tmp_path)) == sorted(r["id_no"] for r in make_rows(ROWS))
