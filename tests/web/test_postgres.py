"""The web app's queries on PostgreSQL (the production store): quoting of the quality tables'
`check`/`column` columns, timestamps, JSON columns, token writes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from exchange.web import create_app

from .conftest import City, build_city

pytestmark = pytest.mark.integration


@pytest.fixture
def pg_city(pg_url: str, tmp_path: Path) -> Iterator[City]:
    city = build_city(tmp_path, pg_url)
    yield city
    city.engine.dispose()


def test_api_and_dashboard_on_postgresql(pg_city: City) -> None:
    client = TestClient(create_app(pg_city.engine, docs_dir=pg_city.docs_dir))
    owner = pg_city.headers("checklist_owner", "gsc")
    report = client.get("/api/v1/quality/PSB-RES-001", headers=owner).json()
    assert [p["run_id"] for p in report["runs"]] == pg_city.runs["PSB-RES-001"]
    assert report["top_failing_checks"][0]["check"] == "cn_resident_id"
    assert report["quarantine"]["records"] == 2
    assert report["timeliness"]["state"] == "on_time"
    assert len(client.get("/api/v1/runs", headers=owner).json()) == 8
    html = client.get("/quality", headers=owner).text
    assert "<code>cn_uscc</code>" in html
    own = client.get("/quarantine", headers=pg_city.headers("provider", "amr")).text
    assert "91110000BADUSCC0001" in own
    assert "11010519900101123X" not in own
    assert client.get("/api/v1/quality/PSB-RES-001/quarantine",
                      headers=pg_city.headers("provider", "amr")).status_code == 403
