"""The progress display of long commands: rows per second and an ETA on a terminal, nothing
when the output is not one; the engine reports per batch, not per row."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from exchange.cli.meter import showing_progress
from exchange.run import run_resource
from govex import progress


class Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def start(self, phase: str, total: int | None) -> None:
        self.calls.append(("start", phase))

    def advance(self, rows: int) -> None:
        self.calls.append(("advance", rows))


def test_nothing_is_printed_when_the_output_is_not_a_terminal() -> None:
    out = io.StringIO()
    with showing_progress(Console(file=out, force_terminal=False)) as meter:
        assert meter is None
        progress.start("PSB-RES-001: extract", 1000)
        progress.advance(500)
    assert out.getvalue() == ""


def test_nothing_is_printed_by_default_under_a_pipe(capsys: Any) -> None:
    with showing_progress() as meter:  # pytest's captured stdout is not a terminal
        progress.start("ingest", None)
        progress.advance(10)
    assert meter is None
    assert capsys.readouterr() == ("", "")


def test_a_terminal_shows_rows_per_second_and_an_eta() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with showing_progress(console) as meter:
        assert meter is not None
        progress.start("PSB-RES-001: gate", 1000)
        progress.advance(400)
        progress.advance(600)
    text = out.getvalue()
    assert "PSB-RES-001: gate" in text
    assert "1,000 rows" in text
    assert "rows/s" in text
    assert "ETA" in text


def test_without_a_meter_the_engine_reports_to_nobody() -> None:
    progress.start("x", 1)  # no meter installed: nothing happens, nothing fails
    progress.advance(1)


@pytest.mark.integration
def test_a_run_reports_each_phase_and_every_batch(
    scenario: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVEX_BATCH_ROWS", "300")
    recorder = Recorder()
    with progress.metered(recorder):
        summary = run_resource(scenario.store(), "PSB-RES-001")
    assert summary.status == "success"
    phases = [p for kind, p in recorder.calls if kind == "start"]
    # The gate judges each batch as extract stages it (`steps.extract_and_gate`): one phase.
    assert phases[0] == "PSB-RES-001: extract and gate"
    assert sum(1 for p in phases if "deliver to" in p) == 3
    batches = [n for kind, n in recorder.calls if kind == "advance"]
    # Per batch (1000 rows in batches of 300: 4 read, 4 per target), never per row.
    assert len(batches) <= 4 * 4
    rows: dict[str, int] = {}
    for kind, value in recorder.calls:
        if kind == "start":
            phase = value
        else:
            rows[phase] = rows.get(phase, 0) + value
    # Every phase reports its rows, deliveries too (their batches are shaped in a thread of
    # their own: `govex.ahead` carries the meter there).
    assert rows.get(phases[0], 0) == 1000
    assert all(rows.get(p, 0) > 0 for p in phases if "deliver to" in p), rows
