"""The progress display of long commands (`run`, `ingest`, `demo`): rows per second and an
ETA on a terminal, nothing at all otherwise (pipes, logs, CI), so output stays parseable.

The engine reports per batch through `govex.progress`; this module only draws, with rich.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from govex import progress


def _rows_column() -> Any:
    """A rich column: the current phase's rows and rows per second."""
    from rich.progress import ProgressColumn  # rich loads only when a terminal shows it
    from rich.text import Text

    class RowsPerSecond(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            rate = f"{speed:,.0f} rows/s" if speed else "… rows/s"
            return Text(f"{int(task.completed):,} rows  {rate}")

    return RowsPerSecond()


class RichMeter:
    """A `govex.progress.Meter` drawing one line per phase with rich."""

    def __init__(self, display: Any) -> None:
        self._display = display
        self._task: Any = None

    def start(self, phase: str, total: int | None) -> None:
        if self._task is not None:
            self._display.stop_task(self._task)
        self._task = self._display.add_task(phase, total=total)

    def advance(self, rows: int) -> None:
        if self._task is not None:
            self._display.advance(self._task, rows)


@contextmanager
def showing_progress(console: Any = None) -> Iterator[RichMeter | None]:
    """Show the progress of the block's work when the output is a terminal.

    `console` (a rich Console) is for tests and callers that draw elsewhere; by default the
    display goes to stderr, and only when both stdout and stderr are terminals.
    """
    if console is None:
        if not (sys.stdout.isatty() and sys.stderr.isatty()):
            with progress.metered(None):
                yield None
            return
        from rich.console import Console

        console = Console(stderr=True)
    if not console.is_terminal:
        with progress.metered(None):
            yield None
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    display = Progress(
        TextColumn("{task.description}"), BarColumn(), _rows_column(),
        TextColumn("ETA"), TimeRemainingColumn(), console=console, transient=False,
    )
    meter = RichMeter(display)
    with display, progress.metered(meter):
        yield meter
