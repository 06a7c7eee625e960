"""Shared fixtures: fresh PostgreSQL and MariaDB databases per test, created and dropped here.

A test that needs a service skips with the reason when it is absent, except under CI=true,
where the absence is a failure: CI must never go green by skipping the real thing.
"""

from __future__ import annotations

import functools
import os
import signal
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get("GOVEX_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MARIADB_ADMIN_URL = os.environ.get("GOVEX_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/")

# A suite started in the background (`make test &` from a script) inherits SIGINT ignored, and
# an ignored signal stays ignored in every process the tests start: the tests that stop a
# broker or an ingest worker with Ctrl-C would then wait for a process that cannot hear it.
# A handled signal is reset to the default in a started program, so handle it here.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _unavailable(what: str, error: Exception) -> None:
    reason = f"{what} is not reachable ({error.__class__.__name__}: {error})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true a missing service is a failure, not a skip")
    pytest.skip(reason)


def _fresh_database(admin_url: str, what: str, quote: str) -> Iterator[str]:
    name = f"govex_t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {quote}{name}{quote}"))
    except sa.exc.OperationalError as error:
        engine.dispose()
        _unavailable(what, error)
    url = sa.make_url(admin_url).set(database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            if what == "PostgreSQL":
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS `{name}`"))
        engine.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    yield from _fresh_database(PG_ADMIN_URL, "PostgreSQL", '"')


@pytest.fixture
def mariadb_url() -> Iterator[str]:
    """URL of a fresh, empty MariaDB database, dropped after the test."""
    yield from _fresh_database(MARIADB_ADMIN_URL, "MariaDB", "`")


@functools.lru_cache(maxsize=1)
def _spec_validator() -> Any:
    """The official-spec validator, or None outside CI when the schemas are not beside us."""
    from tests.lineage.spec_validation import load_validator

    try:
        return load_validator()
    except pytest.skip.Exception:
        return None


@pytest.fixture(autouse=True)
def _every_emitted_event_is_valid_openlineage(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Whatever govex builds and emits during any test — facets included — must validate
    against the official OpenLineage schemas: `lineage.emit` is wrapped to check each RunEvent
    govex produced (its JSON, or an openlineage-python object). Other mappings are what tests
    hand-craft, broken on purpose, to exercise the emitter."""
    import lineage

    invalid: list[str] = []
    emit = lineage.emit

    def checked(target: Any, event: Any, **kwargs: Any) -> Any:
        validator = _spec_validator()
        ours = not isinstance(event, dict) or event.get("producer") == lineage.producer()
        if validator is not None and ours:
            if isinstance(event, dict):
                payload = event
            else:
                from openlineage.client.serde import Serde

                payload = Serde.to_dict(event)
            try:
                validator.validate(payload)
            except AssertionError as error:
                invalid.append(f"{payload.get('job', {}).get('name')}: {error}")
        return emit(target, event, **kwargs)

    monkeypatch.setattr(lineage, "emit", checked)
    yield
    assert not invalid, "emitted OpenLineage events that break the spec:\n" + "\n".join(invalid)
