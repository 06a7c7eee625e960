"""The exchange scenario (tests/exchange/conftest.py) for metering: a PostgreSQL source of
residents and upsert, append and snapshot subscribers in PostgreSQL, MariaDB and SQLite."""

from tests.exchange.conftest import (  # noqa: F401 - fixtures, registered by being imported
    make_rows_fixture,
    scenario,
    scenario_factory,
)
