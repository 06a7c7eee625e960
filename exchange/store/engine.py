"""The metadata store: one SQLAlchemy engine, schema managed by Alembic migrations.

Every package owns its tables (`catalog.metadata`, …); the migrations in `migrations/` beside
this module create them in order. A brand-new store, and an embedded SQLite store, are migrated
on first use so `govex apply` works on a fresh machine and after an update; a server store
(PostgreSQL) that is behind the code asks for `govex db upgrade` instead of changing a shared
production schema by surprise.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from govex.errors import DeclarationError, FatalError
from govex.settings import Settings

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
#: Alembic's version table, as `migrations/env.py` leaves it (the default name, no schema).
VERSION_TABLE = "alembic_version"
_REVISION = re.compile(r'^revision(?:: str)? = "([^"]+)"$', re.MULTILINE)
_DOWN_REVISION = re.compile(r'^down_revision(?:: [^=]+)? = (?:"([^"]+)"|None)$', re.MULTILINE)
_PLAIN = re.compile(r"^(?:branch_labels|depends_on)(?:: [^=]+)? = None$", re.MULTILINE)


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
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def _alembic_config(connection: sa.Connection) -> Config:
    config = _script_config()
    config.attributes["connection"] = connection
    return config


def _linear_head() -> str | None:
    """The head of the migrations read as text, without importing Alembic (about 0.2 s of
    every command that opens the store): each file names its `revision` and `down_revision`
    and none has branch labels or dependencies, so the head is the one revision no other
    revises. None when the files are anything else; Alembic then reads them itself."""
    revisions: dict[str, str | None] = {}
    for path in sorted((MIGRATIONS / "versions").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        revision, down = _REVISION.findall(text), _DOWN_REVISION.findall(text)
        if len(revision) != 1 or len(down) != 1 or len(_PLAIN.findall(text)) != 2:
            return None
        revisions[revision[0]] = down[0] or None
    heads = set(revisions) - set(revisions.values())
    roots = [r for r, down in revisions.items() if down is None]
    linked = all(down is None or down in revisions for down in revisions.values())
    if len(heads) != 1 or len(roots) != 1 or not linked:
        return None
    return heads.pop()


def head_revision() -> str:
    head = _linear_head()
    if head is not None:
        return head
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_script_config()).get_current_head()
    assert head is not None  # noqa: S101 - the package ships its migrations
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The store's revision: None for a store without Alembic's version table or with an
    empty one. Read with one query; Alembic itself only when the table holds several rows
    (it raises, naming them)."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(VERSION_TABLE):
            return None
        rows = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).all()  # noqa: S608
        if len(rows) <= 1:
            return str(rows[0][0]) if rows else None
        from alembic.runtime.migration import MigrationContext

        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: sa.Engine) -> tuple[str | None, str]:
    """Migrate the store to the newest revision; return (before, after)."""
    from alembic import command

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
