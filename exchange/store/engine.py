"""The metadata store: one SQLAlchemy engine, schema managed by Alembic migrations.

Every package owns its tables (`catalog.metadata`, …); the migrations in `migrations/` beside
this module create them in order. A brand-new store, and an embedded SQLite store, are migrated
on first use so `govex apply` works on a fresh machine and after an update; a server store
(PostgreSQL) that is behind the code asks for `govex db upgrade` instead of changing a shared
production schema by surprise.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from govex.errors import DeclarationError, FatalError
from govex.settings import Settings

MIGRATIONS = Path(__file__).with_name("migrations")


def create_store_engine(url: str) -> sa.Engine:
    """An engine for the store URL; SQLite gets its directory, foreign keys and a busy timeout."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as error:
        msg = "is not a valid SQLAlchemy URL"
        raise DeclarationError(
            msg, field="GOVEX_DB_URL", value=url
        ) from error
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)


def _script_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _alembic_config(connection: sa.Connection) -> Config:
    config = _script_config()
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_script_config()).get_current_head()
    assert head is not None  # noqa: S101 - the package ships its migrations
    return head


def current_revision(engine: sa.Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.Engine) -> tuple[str | None, str]:
    """Migrate the store to the newest revision; return (before, after)."""
    before = current_revision(engine)
    with engine.begin() as conn:
        command.upgrade(_alembic_config(conn), "head")
    return before, head_revision()


def open_store(settings: Settings) -> sa.Engine:
    """The store engine, created if the store is new; refused if its schema is out of date."""
    engine = create_store_engine(settings.db_url)
    try:
        revision = current_revision(engine)
    except sa.exc.OperationalError as error:
        msg = (
            f"cannot reach the metadata store at {sa.make_url(settings.db_url)!r}: "
            f"{error.orig}"
        )
        raise FatalError(
            msg
        ) from error
    # Reading the head parses every migration file: once per open, not per comparison.
    head = head_revision()
    if revision is None or (revision != head and engine.dialect.name == "sqlite"):
        # New stores, and the embedded SQLite store of one machine, follow the code by
        # themselves; a shared server store is migrated on purpose with `govex db upgrade`.
        upgrade(engine)
    elif revision != head:
        msg = (
            f"the metadata store is at revision {revision} but this govex needs "
            f"{head}: run `govex db upgrade`"
        )
        raise FatalError(
            msg
        )
    return engine
