"""`govex … | head`: a reader that goes away ends the command quietly, never with a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def test_a_closed_pipe_is_a_quiet_stop(tmp_path: Path) -> None:
    env = {**os.environ, "GOVEX_DB_URL": f"sqlite:///{tmp_path / 'govex.db'}"}
    child = subprocess.Popen(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "exchange.cli", "catalog", "list"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=tmp_path,
    )
    assert child.stdout is not None
    assert child.stderr is not None
    child.stdout.close()  # the reader is gone before govex prints anything
    stderr = child.stderr.read().decode()
    assert child.wait(timeout=60) == 141
    assert "Traceback" not in stderr
    assert "BrokenPipe" not in stderr


# ---- every listing command, with enough to print that the pipe fills -----------------------

BIG = 600  # rows of each kind: several pipe buffers (64 KiB) of output per command


@pytest.fixture(scope="module")
def full_store(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The web tests' city (catalog, runs, quality results), plus BIG audit entries, lineage
    events, quality results and disputes."""
    import datetime as dt
    import uuid

    import sqlalchemy as sa

    import lineage
    import records
    from exchange.run.bookkeeping import runs
    from tests.web.conftest import build_city, quality_tables

    root = tmp_path_factory.mktemp("pipe")
    city = build_city(root)
    results, _ = quality_tables(city.engine)
    now = dt.datetime.now(dt.UTC)
    with city.engine.begin() as conn:
        for i in range(BIG):
            records.append_audit(conn, kind="dispute", subject=f"DSP-{i:010d}",
                                 detail={"action": "test", "n": i}, actor="psb/provider")
            run_id = str(uuid.uuid4())
            lineage.store_event(conn, {
                "eventType": "COMPLETE", "eventTime": now.isoformat(),
                "producer": "https://example.org/pipe-test", "schemaURL":
                "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
                "run": {"runId": run_id}, "job": {"namespace": "pipe", "name": f"job-{i}"},
                "inputs": [], "outputs": []})
            conn.execute(sa.insert(runs).values(
                run_id=run_id, resource="PSB-RES-001", status="success", subscription=None,
                subscriptions=[], full=False, parent=None, cursor_start=None, cursor_end=None,
                read=100, passed=99, quarantined=1, started_at=now, ended_at=now, message=""))
            conn.execute(sa.insert(results).values(
                run_id=run_id, resource="PSB-RES-001", check="cn_resident_id", column="id_no",
                evaluated=100, failed=1, failure_rate=0.01, recorded_at=now))
            conn.execute(sa.insert(records.disputes.disputes).values(
                id=f"DSP-{i:010d}", resource="PSB-RES-001", record_key=f"{i:018d}",
                field="name", claim="应为 张三", opened_by="gsc", provider="psb", state="open",
                reason=None, due=now, evidence=None, opened_at=now, updated_at=now))
    url = city.engine.url.render_as_string(hide_password=False)
    city.engine.dispose()
    return {**os.environ, "GOVEX_DB_URL": url}


LISTINGS = [
    ["catalog", "list"], ["catalog", "list", "--json"],
    ["audit", "list", "--limit", str(BIG)], ["audit", "list", "--limit", str(BIG), "--json"],
    ["lineage", "events"],
    ["quality", "report"], ["quality", "report", "--json"],
    ["dispute", "list"], ["dispute", "list", "--json"],
]


@pytest.mark.parametrize("argv", LISTINGS, ids=" ".join)
def test_every_listing_stops_quietly_when_the_reader_goes(
    argv: list[str], full_store: dict[str, str], tmp_path: Path
) -> None:
    """`govex … | head -1`: the reader takes one line and goes while govex is still printing
    (the rows fill the pipe), or goes before the first line; either way no traceback."""
    for read_first_line in (True, False):
        child = subprocess.Popen(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "exchange.cli", *argv],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=full_store, cwd=tmp_path,
        )
        assert child.stdout is not None
        assert child.stderr is not None
        if read_first_line:
            assert child.stdout.readline()
        child.stdout.close()
        stderr = child.stderr.read().decode()
        code = child.wait(timeout=120)
        assert "Traceback" not in stderr, stderr
        assert "BrokenPipe" not in stderr, stderr
        assert stderr == "", stderr
        # 141 (128 + SIGPIPE) when a write failed; 0 when the kernel took the output in one
        # write (a short write is not an error) or all of it fitted before the reader went.
        assert code in (0, 141), (argv, code)
