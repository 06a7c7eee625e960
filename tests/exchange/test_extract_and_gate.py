"""`steps.extract_and_gate`: in one process the gate judges each batch as soon as extract has
staged it, the source read a batch ahead in a thread. The run must end exactly as the steps run
one after the other (Airflow's tasks) end it, and a failure on either side must fail the run as
that step's and stop the other side."""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlalchemy as sa

import catalog
import connectors
import quality
from exchange.run import bookkeeping, steps
from govex.errors import DataQualityError
from quality.tables import quarantined_records
from tests.exchange.conftest import Scenario, make_rows, write_workspace

SUBSCRIPTION = {"id": "SUB-GSC-001", "consumer": "gsc", "fields": ["id_no", "name", "score"],
                "masking": {"name": "mask_name"}, "mode": "upsert",
                "target": {"connection": "lite", "table": "residents"}}
NEW_SUBSCRIPTION = {"id": "SUB-GSC-002", "consumer": "gsc", "fields": ["id_no", "phone"],
                    "mode": "upsert", "target": {"connection": "lite", "table": "phones"}}


def _scenario(factory: Any, root: Path, rows: list[dict[str, Any]]) -> Scenario:
    """A scenario in `root`; the factory writes the workspace at the same place each time, so
    what an earlier scenario of the test added to it goes first."""
    shutil.rmtree(root.parent / "ws", ignore_errors=True)
    root.mkdir()
    made: Scenario = factory(
        f"sqlite:///{root / 'source.db'}", {"lite": f"sqlite:///{root / 'targets.db'}"},
        [SUBSCRIPTION], rows, store_url=f"sqlite:///{root / 'store.db'}")
    return made


def _steps_one_by_one(store: sa.Engine) -> steps.RunSummary:
    run_id = steps.start_run(store, "PSB-RES-001")
    steps.extract(store, run_id)
    steps.gate(store, run_id)
    for sub in steps.subscriptions_of(store, run_id):
        steps.deliver(store, run_id, sub)
    return steps.finish(store, run_id)


def _outcome(scenario: Scenario, summary: steps.RunSummary) -> dict[str, Any]:
    store = scenario.store()
    try:
        with store.connect() as conn:
            held = {r["key"]: (r["failed_checks"], r["record"])
                    for r in quarantined_records(conn, "PSB-RES-001")}
            watermark = bookkeeping.read_watermark(conn, "PSB-RES-001")
    finally:
        store.dispose()
    delivered = sorted(
        (r["id_no"], r["name"], r["score"]) for r in scenario.target_rows("lite", "residents")
    )
    counts = (summary.status, summary.read, summary.passed, summary.quarantined)
    return {"counts": counts, "quarantine": held, "delivered": delivered,
            "watermark": watermark}


def test_one_process_ends_as_the_steps_do(
    scenario_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVEX_BATCH_ROWS", "7")  # many batches, cut inside equal watermarks
    rows = make_rows(200, bad_every=40)
    together = _scenario(scenario_factory, tmp_path / "together", rows)
    apart = _scenario(scenario_factory, tmp_path / "apart", rows)
    outcomes = []
    for scenario, run in ((together, lambda s: steps.run_resource(s, "PSB-RES-001")),
                          (apart, _steps_one_by_one)):
        # A second run after changes: some rows fixed, some broken, some new.
        store = scenario.store()
        first = _outcome(scenario, run(store))
        scenario.source_execute(
            "UPDATE residents SET id_no = id_no, score = score + 1, "
            "updated_at = '2026-12-01 00:00:00+00:00' WHERE score < 10")
        scenario.source_execute(
            "UPDATE residents SET phone = 'not a phone', updated_at = '2026-12-01 00:00:00+00:00'"
            " WHERE score = 50")
        second = _outcome(scenario, run(store))
        store.dispose()
        outcomes.append((first, second))
    assert outcomes[0] == outcomes[1]
    first, second = outcomes[0]
    assert first["counts"] == ("success", 200, 195, 5), first["counts"]
    assert second["counts"][1] > 0
    assert second["quarantine"] != first["quarantine"]


def _steps_one_by_one_however_they_end(store: sa.Engine) -> steps.RunSummary:
    run_id = steps.start_run(store, "PSB-RES-001")
    with contextlib.suppress(DataQualityError):
        steps.extract(store, run_id)
        steps.gate(store, run_id)
        for sub in steps.subscriptions_of(store, run_id):
            steps.deliver(store, run_id, sub)
    return steps.finish(store, run_id)


def test_a_split_read_is_judged_in_source_order_both_ways(
    scenario_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A source that repeats a key (a history table) on both sides of the watermark, read
    whole for a new subscription's backfill: the older version (at or before the watermark)
    fails, the newer passes. Judged in the order the source gives them, the record ends out
    of quarantine, in one process as in separate steps."""
    monkeypatch.setenv("GOVEX_BATCH_ROWS", "7")
    key = f"{110105199001010000 + 5:018d}"
    late = "2026-12-01 00:00:00+00:00"
    outcomes = []
    for name, run in (("together", lambda s: steps.run_resource(s, "PSB-RES-001")),
                      ("apart", _steps_one_by_one_however_they_end)):
        scenario = _scenario(scenario_factory, tmp_path / name, make_rows(50))
        for sql in ("CREATE TABLE history AS SELECT * FROM residents", "DROP TABLE residents",
                    "ALTER TABLE history RENAME TO residents"):  # no primary key any more
            scenario.source_execute(sql)
        store = scenario.store()
        assert run(store).status == "success"
        scenario.source_execute(
            "INSERT INTO residents SELECT id_no, name, phone, birth_date, score, :late "
            "FROM residents WHERE id_no = :key", late=late, key=key)
        scenario.source_execute(
            "UPDATE residents SET score = -1 WHERE id_no = :key AND updated_at < :late",
            late=late, key=key)
        write_workspace(scenario.root, scenario.source_url, scenario.targets,
                        [SUBSCRIPTION, NEW_SUBSCRIPTION])
        catalog.apply_workspace(store, scenario.root)
        second = run(store)
        outcomes.append(_outcome(scenario, second))
        with store.connect() as conn:
            assert key not in {r["key"] for r in quarantined_records(conn, "PSB-RES-001")}
        store.dispose()
    assert outcomes[0] == outcomes[1]


def test_a_source_in_the_store_file_takes_turns(
    scenario_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SQLite source table in the store's own file: a read held open in a thread would hold
    off the gate's commits (one writer per file), so extract and gate take turns."""
    monkeypatch.setenv("GOVEX_BATCH_ROWS", "10")
    root = tmp_path / "one-file"
    root.mkdir()
    shared = f"sqlite:///{root / 'store.db'}"
    scenario = scenario_factory(shared, {"lite": f"sqlite:///{root / 'targets.db'}"},
                                [SUBSCRIPTION], make_rows(100, bad_every=20), store_url=shared)
    store = scenario.store()
    started = time.monotonic()
    summary = steps.run_resource(store, "PSB-RES-001")
    store.dispose()
    assert (summary.status, summary.read, summary.passed) == ("success", 100, 95), summary
    assert time.monotonic() - started < 10  # SQLite's busy timeout, were they to wait on each other


class _Watched:
    """A source whose close is seen; it fails after `failing["after"]` batches (None: never)."""

    def __init__(self, inner: Any, failing: dict[str, int | None]) -> None:
        self.inner, self.failing = inner, failing
        self.closed = False

    def read_batches(self, spec: Any) -> Iterator[pa.Table]:
        for n, batch in enumerate(self.inner.read_batches(spec)):
            if n == self.failing["after"]:
                msg = "the source went away"
                raise OSError(msg)
            yield batch

    def close(self) -> None:
        self.closed = True
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _watch(monkeypatch: pytest.MonkeyPatch, failing: dict[str, int | None]) -> list[_Watched]:
    opened: list[_Watched] = []
    real = connectors.open_source

    def open_source(*args: Any, **kwargs: Any) -> _Watched:
        opened.append(_Watched(real(*args, **kwargs), failing))
        return opened[-1]

    monkeypatch.setattr(connectors, "open_source", open_source)
    return opened


def _no_reader_left() -> bool:
    return not any(t.name == "govex-extract" for t in threading.enumerate())


def _nothing_delivered(scenario: Scenario) -> bool:
    try:
        return scenario.target_rows("lite", "residents") == []
    except sa.exc.OperationalError:  # the table was never made
        return True


def test_a_source_failing_mid_read_fails_the_run_as_extract(
    scenario_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVEX_BATCH_ROWS", "10")
    scenario = _scenario(scenario_factory, tmp_path / "s", make_rows(100, bad_every=20))
    failing: dict[str, int | None] = {"after": 3}
    opened = _watch(monkeypatch, failing)
    store = scenario.store()
    summary = steps.run_resource(store, "PSB-RES-001")
    assert (summary.status, summary.message) == ("failed", "extract failed: the source went away")
    assert opened[0].closed
    assert _no_reader_left()
    assert _nothing_delivered(scenario)
    with store.connect() as conn:
        assert bookkeeping.read_watermark(conn, "PSB-RES-001") is None
    failing["after"] = None  # the source is back: the next run reads and delivers everything
    again = steps.run_resource(store, "PSB-RES-001")
    assert (again.status, again.read, again.passed, again.quarantined) == ("success", 100, 95, 5)
    assert len(scenario.target_rows("lite", "residents")) == 95
    store.dispose()


def test_a_gate_failing_mid_run_fails_it_as_the_gate_and_stops_the_read(
    scenario_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVEX_BATCH_ROWS", "10")
    scenario = _scenario(scenario_factory, tmp_path / "s", make_rows(100))
    opened = _watch(monkeypatch, {"after": None})
    real_gate = quality.resource_gate
    judged: list[int] = []

    def resource_gate(*args: Any, **kwargs: Any) -> Any:
        checker = real_gate(*args, **kwargs)
        evaluate = checker.evaluate

        def failing(batch: pa.Table) -> Any:
            if len(judged) == 2:
                msg = "the checker broke"
                raise RuntimeError(msg)
            judged.append(batch.num_rows)
            return evaluate(batch)

        checker.evaluate = failing  # type: ignore[method-assign]
        return checker

    monkeypatch.setattr(quality, "resource_gate", resource_gate)
    store = scenario.store()
    summary = steps.run_resource(store, "PSB-RES-001")
    store.dispose()
    assert (summary.status, summary.message) == ("failed", "gate failed: the checker broke")
    assert summary.read >= 30  # what was read before the gate stopped it (a batch may be ahead)
    assert opened[0].closed
    assert _no_reader_left()
    assert _nothing_delivered(scenario)
