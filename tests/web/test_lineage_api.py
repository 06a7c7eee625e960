"""POST /api/v1/lineage: events from other OpenLineage producers are stored, but only from
admin and lineage_producer tokens, only when valid against the spec, and never for govex's own
runs; the run page draws whatever is stored without failing."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import lineage
from exchange.run import runs
from exchange.web import create_app

from .conftest import City, build_city


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    """A city of this module's own: its tests add runs and lineage that the other modules do
    not expect."""
    built = build_city(tmp_path_factory.mktemp("city"))
    yield built
    built.engine.dispose()


@pytest.fixture(scope="module")
def client(city: City) -> Iterator[TestClient]:
    with TestClient(create_app(city.engine, docs_dir=city.docs_dir)) as test_client:
        yield test_client


EVENT_TIME = "2026-11-27T08:00:00.000Z"


def _event(run_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "eventType": "START",
        "eventTime": EVENT_TIME,
        "run": {"runId": run_id},
        "job": {"namespace": "airflow", "name": "govex__PSB-RES-001.extract"},
        "producer": "https://github.com/apache/airflow",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "inputs": [],
        "outputs": [],
        **changes,
    }


def _parent(run_id: str, namespace: str = "airflow") -> dict[str, Any]:
    return {"parent": {
        "_producer": "https://github.com/apache/airflow",
        "_schemaURL": "https://openlineage.io/spec/facets/1-1-0/ParentRunFacet.json"
                      "#/$defs/ParentRunFacet",
        "run": {"runId": run_id}, "job": {"namespace": namespace, "name": "exchange.X"},
    }}


def _stored(city: City, run_id: str) -> list[dict[str, Any]]:
    with city.engine.connect() as conn:
        return lineage.list_events(conn, run_id)


def _stored_count(city: City) -> int:
    with city.engine.connect() as conn:
        return int(conn.execute(
            sa.select(sa.func.count()).select_from(lineage.tables.events)).scalar_one())


@pytest.mark.parametrize(("role", "department"), [("lineage_producer", "psb"), ("admin", "gsc")])
def test_lineage_post_stores_the_event(client: Any, city: City, role: str,
                                       department: str) -> None:
    run_id = str(uuid.uuid4())
    response = client.post("/api/v1/lineage", json=_event(run_id),
                           headers=city.headers(role, department))
    assert response.status_code == 201, response.text
    (stored,) = _stored(city, run_id)
    assert stored["job"]["name"] == "govex__PSB-RES-001.extract"


@pytest.mark.parametrize(("role", "department"), [
    ("provider", "psb"), ("provider", "amr"), ("consumer", "gsc"), ("checklist_owner", "gsc"),
    ("auditor", "gsc"),
])
def test_other_roles_may_not_post_lineage(client: Any, city: City, role: str,
                                          department: str) -> None:
    run_id = str(uuid.uuid4())
    response = client.post("/api/v1/lineage", json=_event(run_id),
                           headers=city.headers(role, department))
    assert response.status_code == 403
    assert response.json()["detail"] == (
        f"role '{role}' may not post lineage events; only admin and lineage_producer tokens may"
    )
    assert _stored(city, run_id) == []


def test_lineage_post_needs_a_token(client: Any) -> None:
    assert client.post("/api/v1/lineage", json=_event(str(uuid.uuid4()))).status_code == 401


def _govex_events(run_id: str, resource: str = "PSB-RES-001") -> list[dict[str, Any]]:
    """What govex itself stored for a run: the resource run and one delivery."""
    return [
        _event(run_id, job={"namespace": "govex", "name": f"exchange.{resource}"},
               producer=lineage.producer(),
               inputs=[{"namespace": "postgres://psb:5432", "name": "psb.public.residents"}]),
        _event(lineage.delivery_run_id(run_id, "SUB-GSC-001"),
               job={"namespace": "govex", "name": f"exchange.{resource}.deliver.SUB-GSC-001"},
               producer=lineage.producer(), run={
                   "runId": lineage.delivery_run_id(run_id, "SUB-GSC-001"),
                   "facets": _parent(run_id, "govex")},
               outputs=[{"namespace": "postgres://gsc:5432", "name": "gsc.public.residents"}]),
    ]


#: A govex run with letters in its id (the city's are all digits), for the upper-case forgery.
GOVEX_RUN = "5f0c2a9e-3b1d-4c7e-9a2b-6d8e0f1a2b3c"


def _insert_run(conn: sa.Connection, run_id: str) -> None:
    started = dt.datetime.now(dt.UTC)
    conn.execute(sa.insert(runs).values(
        run_id=run_id, resource="PSB-RES-001", status="success", subscription=None,
        subscriptions=["SUB-GSC-001"], full=False, parent=None, cursor_start=None,
        cursor_end=None, read=10, passed=10, quarantined=0, started_at=started,
        ended_at=started, message="",
    ))


@pytest.fixture(scope="module")
def _govex_lineage(city: City) -> None:
    """A govex run with its own events, stored the way govex stores them."""
    with city.engine.begin() as conn:
        _insert_run(conn, GOVEX_RUN)
        for event in _govex_events(GOVEX_RUN):
            lineage.store_event(conn, event)


def _forgeries(city: City) -> dict[str, dict[str, Any]]:
    unlogged = city.runs["PSB-RES-001"][0]  # a govex run with no lineage stored
    delivery = lineage.delivery_run_id(GOVEX_RUN, "SUB-GSC-001")
    fresh = str(uuid.uuid4())
    evil = [{"namespace": "postgres://evil:5432", "name": "evil.public.forged"}]
    return {
        "govex namespace": _event(fresh, job={"namespace": "govex",
                                              "name": "exchange.PSB-RES-001"}, inputs=evil),
        "govex namespace, any case": _event(fresh, job={"namespace": "GOVEX", "name": "x"}),
        "govex producer": _event(fresh, producer=lineage.producer()),
        "a govex run's id": _event(GOVEX_RUN, inputs=evil),
        "a govex run's id, upper case": _event(GOVEX_RUN.upper(), inputs=evil),
        "a govex run without lineage": _event(unlogged, inputs=evil),
        "a govex run as parent": _event(fresh, run={"runId": fresh,
                                                    "facets": _parent(GOVEX_RUN)}, outputs=evil),
        "a govex job as parent": _event(fresh, run={"runId": fresh,
                                                    "facets": _parent(fresh, "govex")}),
        "a govex delivery run's id": _event(delivery, outputs=evil),
    }


def _graph(page: str) -> str:
    match = re.search(r'<svg class="lineage".*?</svg>', page, re.DOTALL)
    assert match is not None
    return match.group(0)


@pytest.mark.usefixtures("_govex_lineage")
@pytest.mark.parametrize("forgery", [
    "govex namespace", "govex namespace, any case", "govex producer", "a govex run's id",
    "a govex run's id, upper case", "a govex run without lineage", "a govex run as parent",
    "a govex job as parent", "a govex delivery run's id",
])
@pytest.mark.parametrize(("role", "department"), [("lineage_producer", "psb"), ("admin", "gsc")])
def test_events_for_govex_runs_are_refused(client: Any, city: City, forgery: str, role: str,
                                           department: str) -> None:
    before = _stored_count(city)
    graph_before = _graph(client.get(f"/runs/{GOVEX_RUN}",
                                     headers=city.headers("admin", "gsc")).text)
    assert "psb.public.residents" in graph_before
    response = client.post("/api/v1/lineage", json=_forgeries(city)[forgery],
                           headers=city.headers(role, department))
    assert response.status_code == 403, response.text
    detail = response.json()["detail"]
    assert "govex" in detail
    assert detail.count(". ") == 0  # one sentence
    assert "\n" not in detail
    assert _stored_count(city) == before
    page = client.get(f"/runs/{GOVEX_RUN}", headers=city.headers("admin", "gsc")).text
    assert _graph(page) == graph_before
    assert "evil" not in page


def _raw_post(client: Any, city: City, body: bytes) -> Any:
    return client.post("/api/v1/lineage", content=body, headers={
        **city.headers("lineage_producer", "psb"), "Content-Type": "application/json"})


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_in_the_json_is_refused_by_name(client: Any, city: City, constant: str) -> None:
    run_id = str(uuid.uuid4())
    body = json.dumps(_event(run_id, run={"runId": run_id, "facets": {"x_stats": {
        "_producer": "https://example.org", "_schemaURL": "https://example.org/s.json",
        "rows": 1.5}}})).replace("1.5", constant)
    response = _raw_post(client, city, body.encode())
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "run.facets.x_stats.rows" in detail
    assert "NaN" in detail
    assert _stored(city, run_id) == []


@pytest.mark.parametrize(("change", "named"), [
    ({"eventTime": None}, "eventTime"),
    ({"eventTime": "2026-11-27T08:00"}, "eventTime"),  # no time zone
    ({"eventType": "DONE"}, "eventType"),
    ({"producer": "airflow"}, "producer"),
    ({"schemaURL": None}, "schemaURL"),
    ({"job": {"namespace": "", "name": "x"}}, "job.namespace"),
    ({"job": {"namespace": "airflow", "name": "x" * 501}}, "job.name"),
    ({"inputs": [{"name": "no namespace"}]}, "inputs[0]"),
    ({"run": "r"}, "run"),
])
def test_an_event_off_the_spec_is_refused_with_422(client: Any, city: City,
                                                   change: dict[str, Any], named: str) -> None:
    run_id = str(uuid.uuid4())
    event = {k: v for k, v in _event(run_id, **change).items() if v is not None}
    before = _stored_count(city)
    response = client.post("/api/v1/lineage", json=event,
                           headers=city.headers("lineage_producer", "psb"))
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert named in detail
    assert _stored_count(city) == before


@pytest.mark.parametrize(("body", "named"), [
    (b"[1, 2]", "JSON object"),
    (b"{not json", "not valid JSON"),
    (b'"text"', "JSON object"),
])
def test_a_body_that_is_no_event_is_one_sentence(client: Any, city: City, body: bytes,
                                                 named: str) -> None:
    response = _raw_post(client, city, body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, str)
    assert named in detail


# --- the run page reads stored lineage defensively ---------------------------------------------


MALFORMED: list[Any] = [
    ["not", "an", "object"],
    "a string",
    {"job": "exchange.PSB-RES-001"},
    {"job": {"namespace": "govex", "name": None}},
    {"job": {"namespace": "govex", "name": "exchange.PSB-RES-001"}, "inputs": "psb.residents"},
    {"job": {"namespace": "govex", "name": "exchange.PSB-RES-001"}, "inputs": [None, {"name": 5}]},
    {"job": {"namespace": "govex", "name": "exchange.PSB-RES-001.deliver.SUB-GSC-001"},
     "outputs": [["x"], {"namespace": {"a": 1}, "name": "t"}]},
    {"job": {"namespace": "govex", "name": "exchange.PSB-RES-001.deliver.SUB-GSC-001"},
     "outputs": {"namespace": "x", "name": "y"}},
    {"job": {"namespace": "airflow", "name": "exchange.PSB-RES-001"},
     "inputs": [{"namespace": "postgres://evil", "name": "evil.forged"}]},
]


@pytest.mark.parametrize("payload", MALFORMED)
def test_the_run_page_survives_odd_stored_events(client: Any, city: City, payload: Any) -> None:
    """Rows stored before events were validated may hold anything: the page still answers,
    and draws only govex's own, well-formed facts."""
    run_id = str(uuid.uuid4())
    started = dt.datetime.now(dt.UTC)
    with city.engine.begin() as conn:
        _insert_run(conn, run_id)
        for event in _govex_events(run_id):
            lineage.store_event(conn, event)
        # Older than govex's own events, so it is read first.
        conn.execute(sa.insert(lineage.tables.events).values(
            run_id=run_id, parent_run_id=run_id, job_namespace="govex", job_name="x",
            event_type="START", event_time=dt.datetime(2000, 1, 1, tzinfo=dt.UTC),
            producer=None, payload=payload, received_at=started,
        ))
    response = client.get(f"/runs/{run_id}", headers=city.headers("admin", "gsc"))
    assert response.status_code == 200, response.text[:500]
    assert "psb.public.residents" in response.text  # govex's own lineage still drawn
    assert "evil" not in response.text
