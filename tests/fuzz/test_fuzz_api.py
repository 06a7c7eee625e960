"""Fuzz: random JSON bodies (and random bytes sent as JSON) to the web API's JSON-body routes.

On the demo city of the web tests (SQLite store, one token per role), random and mutated bodies
go to `POST /api/v1/disputes`, `/disputes/{id}/ack|reject|resolve`, `/trace` and `/lineage`
with tokens of several roles. Never a 5xx: every answer is 2xx or 4xx with a JSON body whose
`detail`, when present, is text without a traceback; and the dispute, transition
and lineage rows of the store change only on a 2xx answer. Fixed, derandomised budget.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lineage
from exchange.web import create_app
from records.disputes import disputes as dispute_rows
from records.disputes import transitions
from records.provenance import provenance
from tests.web.conftest import City, build_city

FUZZ = settings(max_examples=400, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))

ROLES = [("admin", "gsc"), ("consumer", "gsc"), ("consumer", "hpf"), ("provider", "psb"),
         ("auditor", "gsc"), ("lineage_producer", "psb"), (None, None)]
DISPUTE_IDS = ["DSP-open0001", "DSP-ackd0001", "DSP-ackd0002"]


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    """A city of this module's own (the fuzzing adds disputes and lineage), with disputes in
    each state a step can start from."""
    built = build_city(tmp_path_factory.mktemp("fuzz-city"))
    now = dt.datetime.now(dt.UTC)
    with built.engine.begin() as conn:
        for dispute_id in DISPUTE_IDS:
            conn.execute(sa.insert(dispute_rows).values(
                id=dispute_id, resource="PSB-RES-001", record_key="11010519900101123X",
                field="name", claim="应为 张三", opened_by="gsc", provider="psb",
                state="open" if "open" in dispute_id else "acknowledged", reason=None,
                due=now + dt.timedelta(days=7), evidence=None, opened_at=now, updated_at=now,
            ))
        # One delivered record, so that a dispute on it can be opened.
        conn.execute(sa.insert(provenance).values(
            resource="PSB-RES-001", record_key="11010519900101123X", subscription="SUB-GSC-001",
            run_id=built.runs["PSB-RES-001"][-1], value_hash="0" * 16, delivered_at=now,
        ))
    yield built
    built.engine.dispose()


@pytest.fixture(scope="module")
def client(city: City) -> Iterator[TestClient]:
    with TestClient(create_app(city.engine, docs_dir=city.docs_dir),
                    raise_server_exceptions=False) as test_client:
        yield test_client


def _counts(city: City) -> dict[str, int]:
    with city.engine.connect() as conn:
        return {
            table.name: conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
            for table in (dispute_rows, transitions, lineage.tables.events)
        }


# -- strategies --------------------------------------------------------------------------------

_text = st.text(max_size=16) | st.sampled_from(
    ["", " ", "\x00", "\ud800", "PSB-RES-001", "AMR-RES-001", "NOPE-001", "11010519900101123X",
     "name", "id_no", "phone", "gsc", "psb", "hpf", "nobody", "a" * 5000, "' OR 1=1 --",
     "../../etc/passwd", "${HOME}", "NaN", *DISPUTE_IDS])
_scalars = (st.none() | st.booleans() | st.integers() | st.integers(-(2**100), 2**100)
            | st.floats(allow_nan=False) | _text)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=12,
)


def _lineage_event() -> dict[str, Any]:
    return {
        "eventType": "START", "eventTime": "2026-11-27T08:00:00.000Z",
        "run": {"runId": str(uuid.UUID(int=0x1234))},
        "job": {"namespace": "airflow", "name": "fuzz.extract"},
        "producer": "https://github.com/apache/airflow",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "inputs": [], "outputs": [],
    }


BASES: dict[str, dict[str, Any]] = {
    "/api/v1/disputes": {"resource": "PSB-RES-001", "key": "11010519900101123X",
                         "field": "name", "claim": "应为 张三"},
    "/api/v1/trace": {"resource": "PSB-RES-001", "key": "11010519900101123X"},
    "/api/v1/lineage": _lineage_event(),
    "reject": {"reason": "the value stands"},
}


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    body: dict[str, Any] = json.loads(json.dumps(base))
    if "run" in body and draw(st.booleans()):
        body["run"]["runId"] = str(draw(st.uuids()))
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["drop", "replace", "extra"]))
        if action == "drop" and body:
            body.pop(draw(st.sampled_from(sorted(body))))
        elif action == "replace" and body:
            body[draw(st.sampled_from(sorted(body)))] = draw(json_values)
        else:
            body[draw(_text)] = draw(json_values)
    return body


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str | None, dict[str, Any]]:
    """(path, role:department or None, httpx keyword arguments)."""
    route = draw(st.sampled_from(
        ["/api/v1/disputes", "/api/v1/trace", "/api/v1/lineage", "reject", "ack", "resolve"]))
    if route in ("reject", "ack", "resolve"):
        dispute_id = draw(st.sampled_from(DISPUTE_IDS) | _text.filter(bool))
        quoted = urllib.parse.quote(dispute_id, safe="", errors="surrogatepass")
        path = f"/api/v1/disputes/{quoted}/{route}"
    else:
        path = route
    role, department = draw(st.sampled_from(ROLES))
    kind = draw(st.sampled_from(["mutated", "mutated", "json", "bytes", "text"]))
    base = BASES.get(route, {})
    if kind == "mutated":
        body = json.dumps(draw(mutated(base)), ensure_ascii=draw(st.booleans()))
        content: bytes = body.encode("utf-8", "surrogatepass")
    elif kind == "json":
        content = json.dumps(draw(json_values)).encode()
    elif kind == "text":
        content = json.dumps(draw(mutated(base))).replace("1", draw(st.sampled_from(
            ["NaN", "Infinity", "1e999", "-", "\\ud800", "\\u0000", "{", "]"])), 1).encode()
    else:
        content = draw(st.binary(max_size=200))
    headers = {"Content-Type": draw(st.sampled_from(
        ["application/json", "application/json", "application/json; charset=utf-8",
         "text/plain", "application/x-www-form-urlencoded"]))}
    return path, f"{role}:{department}" if role else None, {"content": content,
                                                           "headers": headers}


# -- the property --------------------------------------------------------------------------------


@FUZZ
@given(request=requests())
def test_json_routes_answer_random_bodies_without_5xx_or_partial_writes(
    client: TestClient, city: City, request: tuple[str, str | None, dict[str, Any]],
) -> None:
    path, who, kwargs = request
    if who is not None:
        kwargs["headers"]["Authorization"] = f"Bearer {city.tokens[who]}"
    before = _counts(city)

    response = client.post(path, **kwargs)

    after = _counts(city)
    status = response.status_code
    assert 200 <= status < 500, f"{status} for {path} {kwargs}: {response.text[:2000]}"
    assert "Traceback" not in response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    answer = response.json()
    if isinstance(answer, dict) and "detail" in answer:
        detail = answer["detail"]
        assert isinstance(detail, str), f"{status}: {answer}"
        assert detail.strip()
        assert "\n" not in detail, detail  # one sentence, even quoting a hostile value
    assert all(after[name] >= before[name] for name in before), (before, after)
    if not 200 <= status < 300:
        assert after == before, f"{status} for {path} changed the store: {before} -> {after}"


def test_the_seed_bodies_are_accepted(client: TestClient, city: City) -> None:
    """The mutations start from bodies that pass, so the fuzzing reaches past validation."""
    admin = {"Authorization": f"Bearer {city.token('admin', 'gsc')}"}
    event = _lineage_event()
    event["run"]["runId"] = str(uuid.uuid4())
    assert client.post("/api/v1/lineage", json=event, headers=admin).status_code == 201
    assert client.post("/api/v1/trace", json=BASES["/api/v1/trace"],
                       headers=admin).status_code == 200
    consumer = {"Authorization": f"Bearer {city.token('consumer', 'gsc')}"}
    opened = client.post("/api/v1/disputes", json=BASES["/api/v1/disputes"], headers=consumer)
    assert opened.status_code == 201, opened.text
