"""Verification records under GOVEX_PROVENANCE_RETENTION: `govex provenance maintain` deletes
every `verify_records` row verified before the horizon (now minus the retention), in bounded
batches, and appends one audit entry per run saying how many rows it removed and before when;
a dry run only counts them. On SQLite and on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

import records
from exchange.cli.main import main
from exchange.store import create_store_engine, upgrade
from records import verifications

UTC = dt.UTC
NOW = dt.datetime(2025, 7, 15, 12, tzinfo=UTC)  # P3M: the horizon is 15 April, noon
HORIZON = dt.datetime(2025, 4, 15, 12, tzinfo=UTC)
VERIFIED = {  # record key -> when it was asked about
    "january": dt.datetime(2025, 1, 5, 9, tzinfo=UTC),
    "march": dt.datetime(2025, 3, 10, 9, tzinfo=UTC),
    "just-before": HORIZON - dt.timedelta(minutes=1),
    "at-horizon": HORIZON,
    "june": dt.datetime(2025, 6, 1, 9, tzinfo=UTC),
}
EXPIRED = {"january", "march", "just-before"}


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.Engine]:
    url = (f"sqlite:///{tmp_path / 'govex.db'}" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    engine = create_store_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


def _verified(engine: sa.Engine, rows: dict[str, dt.datetime]) -> None:
    # Inserted newest first: ids need not follow the time of verification.
    with engine.begin() as conn:
        conn.execute(sa.insert(records.verify_records), [
            {"call_id": f"call-{key}", "resource": "R", "record_key": key,
             "subscription": "SUB-V-001", "fields": "name", "found": True, "matched": True,
             "verified_at": at}
            for key, at in sorted(rows.items(), key=lambda item: item[1], reverse=True)
        ])


def _left(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(records.verify_records.c.record_key)).scalars())


def _entries(engine: sa.Engine) -> list[records.AuditEntry]:
    with engine.connect() as conn:
        assert records.verify_audit(conn).ok
        return [e for e in records.list_audit(conn, kind="retention", limit=None)
                if e.subject == "verify_records"]


@pytest.mark.parametrize("batch", [1, 2, 3, 10_000])
def test_retention_deletes_exactly_the_expired_verifications_in_batches(
    store: sa.Engine, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verifications, "BATCH", batch)
    _verified(store, VERIFIED)
    dry = records.maintain_provenance(store, retention="P3M", now=NOW, dry_run=True)
    assert dry.verifications == verifications.Expired(HORIZON, 3)
    assert _left(store) == set(VERIFIED)  # a dry run changes nothing
    assert _entries(store) == []

    done = records.maintain_provenance(store, retention="P3M", now=NOW)
    assert done.verifications == verifications.Expired(HORIZON, 3)
    assert done.to_json()["verifications"] == {
        "table": "verify_records", "before": "2025-04-15T12:00:00+00:00", "rows": 3}
    assert _left(store) == set(VERIFIED) - EXPIRED
    [entry] = _entries(store)
    assert entry.detail == {"table": "verify_records", "rows": 3,
                            "before": "2025-04-15T12:00:00+00:00", "retention": "P3M"}

    # One entry per run, even when nothing was old enough; none without a retention.
    again = records.maintain_provenance(store, retention="P3M", now=NOW)
    assert again.verifications == verifications.Expired(HORIZON, 0)
    assert records.maintain_provenance(store, retention=None, now=NOW).verifications is None
    assert [e.detail["rows"] for e in _entries(store)] == [3, 0]
    assert _left(store) == set(VERIFIED) - EXPIRED


def test_govex_provenance_maintain_says_what_it_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'govex.db'}"
    monkeypatch.setenv("GOVEX_DB_URL", url)
    monkeypatch.setenv("GOVEX_PROVENANCE_RETENTION", "P3Y")
    engine = create_store_engine(url)
    upgrade(engine)
    now = dt.datetime.now(UTC)
    _verified(engine, {"ancient": dt.datetime(2001, 1, 1, tzinfo=UTC), "recent": now})
    capsys.readouterr()
    assert main(["provenance", "maintain", "--dry-run", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)["verifications"]
    assert (shown["table"], shown["rows"]) == ("verify_records", 1)
    assert main(["provenance", "maintain"]) == 0
    out = capsys.readouterr().out
    assert "verification records removed: 1 (verified before " in out
    assert _left(engine) == {"recent"}
    engine.dispose()


def test_the_migrated_tables_are_the_declared_ones(store: sa.Engine) -> None:
    """Migration 0021's index on `verified_at` (BRIN on PostgreSQL) is the one declared."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    with store.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), verifications.metadata)
        indexes = {i["name"] for i in sa.inspect(conn).get_indexes("verify_records")}
    assert [d for d in diff if "verify_records" in repr(d)] == []
    assert "ix_verify_records_verified_at" in indexes
