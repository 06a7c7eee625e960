"""The 0005_lineage migration creates exactly the tables `lineage.metadata` declares."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

import lineage
from exchange.store import create_store_engine, upgrade
from tests.lineage.samples import sample_run


def lineage_drift(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), lineage.metadata)
    names = set(lineage.metadata.tables)
    # Other packages' tables are theirs to check: keep differences about lineage tables only.
    return [d for d in diff if any(name in repr(d) for name in names)]


def check_migrated(engine: sa.Engine) -> None:
    upgrade(engine)
    assert lineage_drift(engine) == []
    run = sample_run()
    assert lineage.emit(engine, lineage.run_started(run)) is not None
    with engine.connect() as conn:
        assert len(lineage.list_events(conn, run.run_id)) == 1


def test_migration_on_sqlite(tmp_path: Path) -> None:
    check_migrated(create_store_engine(f"sqlite:///{tmp_path / 'govex.db'}"))


@pytest.mark.integration
def test_migration_and_guarded_emit_on_postgresql(pg_url: str) -> None:
    engine = create_store_engine(pg_url)
    try:
        check_migrated(engine)
        # On PostgreSQL a failed statement aborts the transaction: the emitter's SAVEPOINT
        # keeps a refused event from spoiling the caller's own writes.
        with engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE work (n integer)"))
            conn.execute(sa.text("INSERT INTO work VALUES (1)"))
            assert lineage.emit(conn, {"eventTime": "2026-11-27T08:00:00Z"}) is None
            conn.execute(sa.text("INSERT INTO work VALUES (2)"))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM work")).scalar_one() == 2
            assert lineage.failure_count(conn, stage="store") == 1
    finally:
        engine.dispose()
