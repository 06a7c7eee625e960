"""`govex … | head`: a reader that goes away ends the command quietly, never with a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


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
