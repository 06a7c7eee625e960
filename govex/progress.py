"""Progress of long work (runs, ingest, the demo), reported per batch to whoever shows it.

Why here: the engine (exchange.run, exchange.ingest) reports and the command line shows, and
neither should know the other. The engine calls `start` and `advance` once per phase and per
batch (never per row: a context-variable lookup per batch costs nothing next to the batch);
with no meter installed, as in Airflow tasks and the web app, both do nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol


class Meter(Protocol):
    """Something that shows progress: a terminal display, a test's recorder."""

    def start(self, phase: str, total: int | None) -> None:
        """A new phase begins (`total` rows when known, for an ETA)."""

    def advance(self, rows: int) -> None:
        """`rows` more rows of the current phase are done."""


_meter: ContextVar[Meter | None] = ContextVar("govex_progress_meter", default=None)


@contextmanager
def metered(meter: Meter | None) -> Iterator[None]:
    """Report the progress of the work inside the block to `meter` (None: to nobody)."""
    token = _meter.set(meter)
    try:
        yield
    finally:
        _meter.reset(token)


def start(phase: str, total: int | None = None) -> None:
    meter = _meter.get()
    if meter is not None:
        meter.start(phase, total)


def advance(rows: int) -> None:
    meter = _meter.get()
    if meter is not None:
        meter.advance(rows)
