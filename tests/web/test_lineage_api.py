"""POST /api/v1/lineage: events from any OpenLineage producer are stored, with a token."""

from __future__ import annotations

import uuid
from typing import Any

import lineage


def _event(run_id: str) -> dict[str, Any]:
    return {
        "eventType": "START",
        "eventTime": "2026-11-27T08:00:00.000Z",
        "run": {"runId": run_id},
        "job": {"namespace": "airflow", "name": "govex__PSB-RES-001.extract"},
        "producer": "https://github.com/apache/airflow",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "inputs": [],
        "outputs": [],
    }


def test_lineage_post_stores_the_event(client: Any, city: Any) -> None:
    run_id = str(uuid.uuid4())
    response = client.post("/api/v1/lineage", json=_event(run_id),
                           headers=city.headers("provider", "psb"))
    assert response.status_code == 201, response.text
    with city.engine.connect() as conn:
        (stored,) = lineage.list_events(conn, run_id)
    assert stored["job"]["name"] == "govex__PSB-RES-001.extract"


def test_lineage_post_needs_a_token_and_a_real_event(client: Any, city: Any) -> None:
    assert client.post("/api/v1/lineage", json=_event(str(uuid.uuid4()))).status_code == 401
    broken = _event(str(uuid.uuid4()))
    del broken["eventTime"]
    response = client.post("/api/v1/lineage", json=broken, headers=city.headers("admin", "gsc"))
    assert response.status_code == 400
    assert "eventTime" in response.json()["detail"]
