"""Small decisions of the ingest worker, without a broker."""

from __future__ import annotations

import sqlite3
import time

import pytest
import sqlalchemy as sa

from exchange.ingest.landing import store_retries
from govex.errors import FatalError, TransientError


def _failing(orig: Exception) -> None:
    raise sa.exc.OperationalError("INSERT …", {}, orig)


def test_a_missing_table_is_not_retried_as_an_outage() -> None:
    store = sa.create_engine("sqlite://")
    started = time.monotonic()
    with pytest.raises(FatalError, match="no such table: landing_x.*govex db upgrade"):
        store_retries(store, lambda: _failing(sqlite3.OperationalError("no such table: "
                                                                       "landing_x")),
                      limit=30, progress=None, failed="x")
    assert time.monotonic() - started < 1


def test_a_locked_store_is_retried_then_named() -> None:
    store = sa.create_engine("sqlite://")
    waits: list[str] = []
    with pytest.raises(TransientError, match="sqlite://"):
        store_retries(store, lambda: _failing(sqlite3.OperationalError("database is locked")),
                      limit=0.6, progress=waits.append, failed="x")
    assert waits
    assert all("retrying" in w for w in waits)
