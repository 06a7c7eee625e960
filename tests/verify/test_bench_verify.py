"""`govex bench verify` runs end to end at tiny sizes, so the benchmark cannot rot: the index
build, the HTTP server, the paced and batch calls (each answer checked) and both baselines."""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlalchemy as sa

from tests.conftest import PG_ADMIN_URL

pytestmark = pytest.mark.integration


def test_the_benchmark_runs_and_prints_every_figure(pg_url: str) -> None:
    del pg_url  # only to skip (or fail under CI) when PostgreSQL is absent
    admin = sa.make_url(PG_ADMIN_URL).set(drivername="postgresql")
    done = subprocess.run(  # noqa: S603 - our own benchmark, fixed arguments
        [sys.executable, "-m", "exchange.cli", "bench", "verify", "--records", "300",
         "--seconds", "1", "--rate", "20", "--batch", "100", "--batch-calls", "3",
         "--admin-url", admin.render_as_string(hide_password=False)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for line in ("records indexed                       300", "single-record verify, HTTP",
                 "baseline indexed SELECT", "single p99 ratio", "batch verify, HTTP",
                 "(3 calls of 100, 2 at a time)", "baseline SELECT = ANY(keys)",
                 "batch ratio", "target single p99 < 20 ms", "target batch > 20,000 rec/s"):
        assert line in out, out
