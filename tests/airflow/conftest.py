"""Fixtures for the Airflow adapter: a throw-away AIRFLOW_HOME with a SQLite Airflow database,
govex stores with the demo city (or a generated catalog) applied; and, for the CeleryExecutor
tests, the Redis broker, module-long PostgreSQL and MariaDB databases and S3 staging.

Airflow reads its configuration when first imported, so the environment is set here, at
collection time, before any test module imports `exchange.airflow`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from exchange.demo.files import copy_workspace
from tests.conftest import MARIADB_ADMIN_URL, PG_ADMIN_URL, _fresh_database

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


# ---- the CeleryExecutor tests (tests/airflow/celery_cluster.py) ------------------------------


def _missing(what: str, error: Exception) -> None:
    reason = f"{what} is not reachable ({error.__class__.__name__}: {error})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; under CI=true a missing service is a failure, not a skip")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def redis_broker() -> str:
    """The Celery broker URL: this machine's Redis, the tests' own database number."""
    import redis

    from .celery_cluster import REDIS_DB, REDIS_HOST, REDIS_PORT, redis_url

    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=REDIS_DB, socket_timeout=5)
    try:
        client.ping()
    except redis.RedisError as error:
        _missing(f"Redis at {REDIS_HOST}:{REDIS_PORT}", error)
    finally:
        client.close()
    return redis_url()


@pytest.fixture(scope="module")
def module_pg() -> Iterator[Callable[[], str]]:
    """Makes fresh PostgreSQL databases that live as long as the module; all dropped after."""
    with contextlib.ExitStack() as stack:
        def make() -> str:
            return stack.enter_context(
                contextlib.contextmanager(_fresh_database)(PG_ADMIN_URL, "PostgreSQL", '"'))

        yield make


@pytest.fixture(scope="module")
def module_mariadb() -> Iterator[str]:
    """A fresh MariaDB database for the module, dropped after."""
    yield from _fresh_database(MARIADB_ADMIN_URL, "MariaDB", "`")


@pytest.fixture(scope="module")
def s3_staging() -> Iterator[tuple[str, dict[str, str]]]:
    """(staging URL, AWS environment): a fresh bucket on a local S3-API server (moto), the
    only place the workers' runs stage their batches."""
    import logging

    import boto3

    from benchmarks.s3_server import local_s3_server, s3_environment

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    with local_s3_server() as endpoint:
        env = s3_environment(endpoint)
        client = boto3.client(
            "s3", endpoint_url=endpoint, region_name=env["AWS_DEFAULT_REGION"],
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        )
        bucket = f"govex-celery-{uuid.uuid4().hex[:8]}"
        client.create_bucket(Bucket=bucket)
        yield f"s3://{bucket}/staging", env
