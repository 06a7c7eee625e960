"""Fixtures for the Airflow adapter: a throw-away AIRFLOW_HOME with a SQLite Airflow database,
govex stores with the demo city (or a generated catalog) applied.

Airflow reads its configuration when first imported, so the environment is set here, at
collection time, before any test module imports `exchange.airflow`.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from exchange.demo.files import copy_workspace

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
AIRFLOW_BIN = Path(sys.executable).with_name("airflow")

_HOME = Path(tempfile.mkdtemp(prefix="govex-airflow-home-"))
atexit.register(shutil.rmtree, _HOME, ignore_errors=True)
AIRFLOW_ENV = {
    "AIRFLOW_HOME": str(_HOME),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{_HOME / 'airflow.db'}",
    # The provider has no transport here, so it stays quiet; tests call the lineage methods.
    "AIRFLOW__OPENLINEAGE__DISABLED": "True",
}
os.environ.update(AIRFLOW_ENV)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite Airflow database (once per session, ~5 s: a fresh database is created
    from the ORM models and stamped, not migrated step by step)."""
    result = subprocess.run(
        [str(AIRFLOW_BIN), "db", "migrate"],
        env={**os.environ, **AIRFLOW_ENV},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return _HOME / "airflow.db"


def copy_city(destination: Path) -> Path:
    """The demo workspace's declarations (not its generated data) copied to `destination`."""
    return copy_workspace(destination)


def store_with(workspace: Path, db_file: Path) -> str:
    """A fresh govex store at `db_file` with `workspace` applied and its sharing requests
    granted (as `govex demo` does); returns its URL."""
    import catalog
    from exchange.demo.grants import grant_requests
    from exchange.store import create_store_engine, upgrade

    url = f"sqlite:///{db_file}"
    engine = create_store_engine(url)
    try:
        upgrade(engine)
        catalog.apply_workspace(engine, workspace)
        grant_requests(engine, workspace)
    finally:
        engine.dispose()
    return url


@pytest.fixture(scope="session")
def city_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A store with the demo city's declarations applied (no data needed to build DAGs)."""
    root = tmp_path_factory.mktemp("city-store")
    workspace = copy_city(root / "city")
    return store_with(workspace, root / "govex.db")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("GOVEX_DB_URL", "GOVEX_STAGING_DIR"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(workspace, store URL): the demo city generated into a copied workspace, applied."""
    import catalog
    from exchange.demo import city as democity

    for name in ("PSB", "AMR", "HRSS", "HEALTH", "GSC", "HPF", "TAX", "CIVIL", "HOUSING",
                 "STATS"):
        os.environ.pop(f"GOVEX_DEMO_{name}_URL", None)  # the SQLite defaults under data/
    root = tmp_path_factory.mktemp("e2e")
    ws = catalog.load_workspace(copy_city(root / "city"))
    targets = {  # as `govex demo` resolves them
        name: catalog.resolve_connection(name, d.item, ws.root, file=d.file).target
        for name, d in ws.connections.items()
        if d.item.kind != "kafka"
    }
    democity.generate_city(ws.root, targets)
    return ws.root, store_with(ws.root, root / "govex.db")
