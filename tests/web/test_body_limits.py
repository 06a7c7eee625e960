"""Request bodies over their route's limit answer 413 and change nothing, whether the size is
declared (Content-Length) or only found out while a chunked body streams in."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

import lineage
from exchange.web import create_app, limits
from records.disputes import disputes as dispute_rows

from .conftest import City

OWN = {"Origin": "http://testserver"}


def _event(run_id: str, padding: int = 0) -> dict[str, Any]:
    """A valid RunEvent, `padding` characters bigger than it needs to be."""
    facets = {"x_note": {"_producer": "https://example.org", "_schemaURL":
                         "https://example.org/note.json", "text": "x" * padding}}
    return {
        "eventType": "START", "eventTime": "2026-11-27T08:00:00Z",
        "run": {"runId": run_id, "facets": facets},
        "job": {"namespace": "airflow", "name": "big"},
        "producer": "https://github.com/apache/airflow",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }


def _lineage_count(city: City) -> int:
    with city.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(lineage.tables.events))
                   .scalar_one())


def _headers(city: City) -> dict[str, str]:
    return {**city.headers("lineage_producer", "psb"), "Content-Type": "application/json"}


def test_the_limits_are_per_route() -> None:
    assert limits.limit_for("POST", "/api/v1/lineage") == limits.LINEAGE_EVENT_MAX == 2**20
    assert limits.limit_for("POST", "/signin") == limits.SIGNIN_FORM_MAX == 8 * 2**10
    assert limits.limit_for("POST", "/api/v1/disputes") == limits.BODY_MAX == 64 * 2**10
    assert limits.limit_for("POST", "/disputes/DSP-1/reject") == limits.BODY_MAX
    assert limits.limit_for("GET", "/api/v1/lineage") == limits.BODY_MAX


def test_a_50_mb_lineage_post_is_refused_unstored(client: Any, city: City) -> None:
    run_id = str(uuid.uuid4())
    body = json.dumps(_event(run_id, 50 * 2**20)).encode()
    before = _lineage_count(city)
    response = client.post("/api/v1/lineage", content=body, headers=_headers(city))
    assert response.status_code == 413
    assert response.json()["detail"] == (
        "the request body is larger than 1 MiB, the limit for POST /api/v1/lineage, so it was "
        "refused and nothing was changed"
    )
    assert _lineage_count(city) == before


def test_an_event_under_the_limit_is_stored(client: Any, city: City) -> None:
    run_id = str(uuid.uuid4())
    body = json.dumps(_event(run_id, 900 * 2**10)).encode()
    assert len(body) < limits.LINEAGE_EVENT_MAX
    response = client.post("/api/v1/lineage", content=body, headers=_headers(city))
    assert response.status_code == 201, response.text[:300]


def _chunks(body: bytes, size: int = 64 * 2**10) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


def test_a_chunked_body_without_content_length_is_counted(client: Any, city: City) -> None:
    """No Content-Length to trust: the body is counted as it arrives."""
    body = json.dumps(_event(str(uuid.uuid4()), 2 * 2**20)).encode()
    before = _lineage_count(city)
    response = client.post("/api/v1/lineage", content=_chunks(body), headers=_headers(city))
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert _lineage_count(city) == before


@pytest.fixture(scope="module")
def served(city: City) -> Iterator[str]:
    """The app under a real uvicorn server (real HTTP/1.1 chunked framing), in a thread."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(create_app(city.engine, docs_dir=city.docs_dir),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_a_streamed_chunked_body_is_refused_by_a_real_server(served: str, city: City) -> None:
    body = json.dumps(_event(str(uuid.uuid4()), 3 * 2**20)).encode()
    sent = 0

    def stream() -> Iterator[bytes]:
        nonlocal sent
        for chunk in _chunks(body):
            sent += len(chunk)
            yield chunk

    before = _lineage_count(city)
    response = httpx.post(f"{served}/api/v1/lineage", content=stream(), headers=_headers(city),
                          timeout=30)
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert "1 MiB" in response.json()["detail"]
    assert sent > limits.LINEAGE_EVENT_MAX
    assert _lineage_count(city) == before
    # Under the limit, the same streaming works.
    small = json.dumps(_event(str(uuid.uuid4()), 10)).encode()
    ok = httpx.post(f"{served}/api/v1/lineage", content=_chunks(small, 100),
                    headers=_headers(city), timeout=30)
    assert ok.status_code == 201, ok.text


def test_the_signin_form_is_limited_to_8_kib(city: City) -> None:
    browser = TestClient(create_app(city.engine, docs_dir=city.docs_dir), headers=OWN)
    response = browser.post("/signin", data={"token": city.token("admin", "gsc"),
                                             "next": "/" + "x" * 9000}, follow_redirects=False)
    assert response.status_code == 413
    assert "8 KiB" in response.json()["detail"]
    assert "set-cookie" not in response.headers


def _disputes(city: City) -> int:
    with city.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(dispute_rows))
                   .scalar_one())


def test_dispute_bodies_are_limited_to_64_kib(client: Any, city: City) -> None:
    before = _disputes(city)
    body = {"resource": "PSB-RES-001", "key": "11010519900101123X", "field": "name",
            "claim": "x" * (65 * 2**10)}
    response = client.post("/api/v1/disputes", json=body, headers=city.headers("consumer", "gsc"))
    assert response.status_code == 413
    assert "64 KiB" in response.json()["detail"]
    chunked = client.post("/api/v1/disputes", content=_chunks(json.dumps(body).encode()),
                          headers={**city.headers("consumer", "gsc"),
                                   "Content-Type": "application/json"})
    assert chunked.status_code == 413
    assert _disputes(city) == before


def test_limits_follow_the_airflow_mount(city: City) -> None:
    outer = FastAPI()
    outer.mount("/govex", create_app(city.engine, docs_dir=city.docs_dir))
    browser = TestClient(outer)
    body = json.dumps(_event(str(uuid.uuid4()), 2 * 2**20)).encode()
    response = browser.post("/govex/api/v1/lineage", content=body, headers=_headers(city))
    assert response.status_code == 413
    assert "POST /api/v1/lineage" in response.json()["detail"]
    # ... and the lineage route keeps its own 1 MiB, not the 64 KiB default.
    fits = json.dumps(_event(str(uuid.uuid4()), 500 * 2**10)).encode()
    assert browser.post("/govex/api/v1/lineage", content=fits,
                        headers=_headers(city)).status_code == 201
