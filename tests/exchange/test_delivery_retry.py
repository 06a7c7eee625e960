"""An Airflow retry of a delivery repeats it within the same run: to an append target, the
rows the failed try committed go first, so every record is there once (the Celery test found
the retry appending over them and failing on the run's own key)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import connectors
from exchange.run import steps
from exchange.store import create_store_engine
from tests.exchange.conftest import make_rows


def test_a_retried_append_delivery_replaces_what_the_failed_try_committed(
    scenario_factory: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVEX_BATCH_ROWS", "50")
    target = f"sqlite:///{tmp_path / 'hpf.db'}"
    scenario = scenario_factory(
        f"sqlite:///{tmp_path / 'source.db'}", {"hpf_lite": target},
        [{"id": "SUB-HPF-001", "consumer": "hpf", "fields": ["id_no", "phone"],
          "mode": "append", "target": {"connection": "hpf_lite", "table": "hpf_residents"}}],
        make_rows(300),
    )
    store = create_store_engine(scenario.store_url)
    run_id = steps.start_run(store, "PSB-RES-001")
    steps.extract(store, run_id)
    passed = steps.gate(store, run_id)

    real_open_sink = connectors.open_sink

    def failing_sink(*args: Any, **kwargs: Any) -> Any:
        sink = real_open_sink(*args, **kwargs)
        real_write, writes = sink.write, [0]

        def write(*a: Any, **k: Any) -> int:
            writes[0] += 1
            if writes[0] == 3:  # two batches committed, then the worker "dies"
                raise ConnectionError("the worker went away")
            return int(real_write(*a, **k))

        sink.write = write
        return sink

    monkeypatch.setattr(connectors, "open_sink", failing_sink)
    with pytest.raises(ConnectionError):
        steps.deliver(store, run_id, "SUB-HPF-001")
    engine = sa.create_engine(target)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM hpf_residents")).scalar_one() == 100

    monkeypatch.setattr(connectors, "open_sink", real_open_sink)
    assert steps.deliver(store, run_id, "SUB-HPF-001") == passed  # the retry
    assert steps.finish(store, run_id).status == "success"
    with engine.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT count(*), count(DISTINCT id_no) FROM hpf_residents")).one()
    engine.dispose()
    store.dispose()
    assert tuple(rows) == (passed, passed)
