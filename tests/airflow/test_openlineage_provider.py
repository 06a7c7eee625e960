"""Airflow's own OpenLineage provider, pointed at a running govex web app: `airflow dags test`
sends its task events to POST /api/v1/lineage, and govex stores them beside its own."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from .conftest import AIRFLOW_BIN, AIRFLOW_ENV

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(city: tuple[Path, str]) -> Iterator[tuple[str, str, str]]:
    """(base URL, token, store URL): `govex serve`'s app under uvicorn in a thread."""
    import uvicorn

    from exchange.store import tokens
    from exchange.web import create_app

    _, store_url = city
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:
        token = tokens.create_token(conn, "amr", "lineage_producer")
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(engine), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield base, token, store_url
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


def test_airflow_provider_events_land_in_govex(
    airflow_db: object, served: tuple[str, str, str], tmp_path: Path
) -> None:
    base, token, store_url = served
    transport = {"type": "http", "url": base, "endpoint": "api/v1/lineage",
                 "auth": {"type": "api_key", "apiKey": token}}
    env = {
        **os.environ, **AIRFLOW_ENV,
        "AIRFLOW__OPENLINEAGE__DISABLED": "False",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "govex-test-airflow",
        "GOVEX_DB_URL": store_url, "GOVEX_STAGING_DIR": str(tmp_path / "staging"),
    }
    env.pop("OPENLINEAGE_DISABLED", None)
    result = subprocess.run(
        [str(AIRFLOW_BIN), "dags", "test", "govex__AMR-RES-001"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]

    import lineage

    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            events = lineage.list_events(conn)
    finally:
        engine.dispose()
    from_airflow = [e for e in events if e["job"]["namespace"] == "govex-test-airflow"]
    jobs = {e["job"]["name"] for e in from_airflow}
    assert "govex__AMR-RES-001.extract" in jobs, sorted(jobs)
    assert {e["eventType"] for e in from_airflow} >= {"START", "COMPLETE"}
    # govex's own run events name the Airflow task run as their parent.
    ours = [e for e in events if e["job"]["name"] == "exchange.AMR-RES-001"]
    assert ours
    parent = ours[0]["run"]["facets"]["parent"]
    assert parent["job"]["namespace"] == "govex-test-airflow"
