"""Errors of the embedded broker that need no broker running."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange.demo.broker import EmbeddedBroker, broker_binary
from govex.errors import FatalError


def test_binary_that_cannot_run_is_a_fatal_error(tmp_path: Path) -> None:
    not_executable = tmp_path / "tansu"
    not_executable.write_text("not a program")
    with pytest.raises(FatalError, match="cannot run the Tansu broker binary"):
        EmbeddedBroker(binary=str(not_executable)).start()


def test_missing_binary_is_a_fatal_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALF_TANSU_BIN", str(tmp_path / "no-such-tansu"))
    with pytest.raises(FatalError, match="cannot find the Tansu broker binary"):
        broker_binary()


def test_bad_port_is_rejected() -> None:
    with pytest.raises(FatalError, match="not a TCP port"):
        EmbeddedBroker(port=70000)
