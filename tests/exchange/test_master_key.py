"""The masking master key kept in the store: generated once, and the same for every worker,
even when several runs on a new store generate one at the same moment."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from exchange.run import bookkeeping, secrets
from exchange.store import create_store_engine, upgrade


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> sa.Engine:
    monkeypatch.delenv("GOVEX_SECRET_KEY", raising=False)
    engine = create_store_engine(f"sqlite:///{tmp_path / 'store.db'}")
    upgrade(engine)
    return engine


def test_the_first_run_generates_it_and_later_runs_read_it(store: sa.Engine) -> None:
    assert secrets.find_master_key(store) is None
    key = secrets.master_key(store)
    assert len(key) == 32
    assert secrets.master_key(store) == key == secrets.find_master_key(store)


def test_a_run_that_loses_the_race_takes_the_winners_key(
    store: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another worker stores its key between this run's look and its insert (the
    UniqueViolation eight workers on a new PostgreSQL store once met): this run uses that key."""
    winner = "ab" * 32
    looked = secrets.find_master_key

    def look_then_lose(engine: sa.Engine) -> bytes | None:
        found = looked(engine)
        with engine.begin() as conn:  # the other worker, just after this one looked
            conn.execute(sa.insert(bookkeeping.secrets), {
                "name": "masking_master_key", "value": winner,
                "created_at": dt.datetime.now(dt.UTC)})
        return found

    monkeypatch.setattr(secrets, "find_master_key", look_then_lose)
    assert secrets.master_key(store) == bytes.fromhex(winner)
    monkeypatch.setattr(secrets, "find_master_key", looked)
    assert secrets.master_key(store) == bytes.fromhex(winner)


def test_a_configured_secret_wins_and_nothing_is_stored(
    store: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVEX_SECRET_KEY", "a configured secret of enough length")
    key = secrets.master_key(store)
    monkeypatch.delenv("GOVEX_SECRET_KEY")
    assert secrets.find_master_key(store) is None
    assert key != secrets.master_key(store)
