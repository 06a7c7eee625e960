"""Lineage fixtures: the offline OpenLineage spec validator and sample exchange runs.

`validate_event(event)` validates a RunEvent (object or JSON dict) against the official
schemas and govex's facet schemas and returns it as a dict; it raises AssertionError listing
every problem. Other test packages can use the same check through
`tests.lineage.spec_validation.load_validator()`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import lineage
from tests.lineage.samples import sample_run
from tests.lineage.spec_validation import SpecValidator, load_validator


@pytest.fixture(scope="session")
def spec_validator() -> SpecValidator:
    return load_validator()


@pytest.fixture
def validate_event(spec_validator: SpecValidator) -> Callable[[Any], dict[str, Any]]:
    return spec_validator.validate


@pytest.fixture(autouse=True)
def _lineage_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every lineage test starts with emission on and no HTTP endpoint."""
    for name in (
        "GOVEX_LINEAGE_URL", "GOVEX_LINEAGE_API_KEY", "GOVEX_LINEAGE_DISABLED",
        "OPENLINEAGE_DISABLED", "GOVEX_LINEAGE_TIMEOUT", "GOVEX_LINEAGE_RETRIES",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def exchange_run() -> lineage.ResourceRun:
    """A resource run of PSB-RES-001 from PostgreSQL to two subscriptions, inside Airflow."""
    return sample_run()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> sa.Engine:
    """A SQLite metadata store with the lineage tables."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'govex.db'}")
    lineage.metadata.create_all(engine)
    return engine
