"""API and page errors speak the language of their users: the JSON body (or form) field at
fault and the route to call, never the CLI's flags and commands; and every refusal, FastAPI's
own validation included, is one sentence."""

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

from exchange.web import create_app
from exchange.web.disputes import in_body_terms
from govex.errors import DeclarationError
from records.disputes import DisputeStateError
from records.disputes import disputes as dispute_rows

from .conftest import City, build_city


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> Iterator[City]:
    """A city of this module's own: its tests add disputes the other modules do not expect."""
    built = build_city(tmp_path_factory.mktemp("city"))
    yield built
    built.engine.dispose()


@pytest.fixture(scope="module")
def client(city: City) -> Iterator[TestClient]:
    with TestClient(create_app(city.engine, docs_dir=city.docs_dir)) as test_client:
        yield test_client


CLI = re.compile(r"--[a-z]|`govex |field '(KEY|ID)'")


def _no_cli(detail: str) -> None:
    assert not CLI.search(detail), detail


def _dispute(city: City, state: str) -> str:
    """A dispute on a PSB record from gsc, straight into the store."""
    dispute_id = f"DSP-{uuid.uuid4().hex[:8]}"
    now = dt.datetime.now(dt.UTC)
    with city.engine.begin() as conn:
        conn.execute(sa.insert(dispute_rows).values(
            id=dispute_id, resource="PSB-RES-001", record_key="11010519900101123X",
            field="name", claim="应为 张三", opened_by="gsc", provider="psb", state=state,
            reason=None, due=now + dt.timedelta(days=7), evidence=None, opened_at=now,
            updated_at=now,
        ))
    return dispute_id


BODY = {"resource": "PSB-RES-001", "key": "11010519900101123X", "field": "name",
        "claim": "应为 张三"}


@pytest.mark.parametrize(("who", "change", "named"), [
    (("admin", "gsc"), {"opened_by": "mars"}, "field 'opened_by'"),
    (("consumer", "gsc"), {"field": "nope"}, "field 'field'"),
    (("admin", "gsc"), {"opened_by": "gsc"}, "field 'key'"),  # never delivered to gsc
    (("admin", "gsc"), {"opened_by": "gsc", "key": "a,b"}, "field 'key'"),
])
def test_opening_a_dispute_names_the_body_field(client: Any, city: City, who: tuple[str, str],
                                                change: dict[str, str], named: str) -> None:
    response = client.post("/api/v1/disputes", json={**BODY, **change},
                           headers=city.headers(*who))
    assert response.status_code == 400, response.text
    detail = response.json()["detail"]
    assert detail.startswith(named)
    _no_cli(detail)


def test_a_consumer_disputing_a_key_it_never_received_gets_404(client: Any, city: City) -> None:
    """Never delivered to gsc, or no key at all: the same answer (INTERFACES.md)."""
    answers = [
        client.post("/api/v1/disputes", json={**BODY, **change},
                    headers=city.headers("consumer", "gsc"))
        for change in ({}, {"key": "a,b"})
    ]
    assert [a.status_code for a in answers] == [404, 404]
    assert answers[0].json() == answers[1].json()
    assert "delivered to department 'gsc' has this key" in answers[0].json()["detail"]
    _no_cli(answers[0].json()["detail"])


def test_a_blank_rejection_reason_names_the_reason_field(client: Any, city: City) -> None:
    dispute_id = _dispute(city, "acknowledged")
    response = client.post(f"/api/v1/disputes/{dispute_id}/reject", json={"reason": "   "},
                           headers=city.headers("provider", "psb"))
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert detail == ("field 'reason': a rejection needs a reason: say why the value stands "
                      "(the 'reason' field)")
    _no_cli(detail)


def test_a_step_out_of_order_names_the_route(client: Any, city: City) -> None:
    dispute_id = _dispute(city, "open")
    for step in ("resolve", "reject"):
        response = client.post(f"/api/v1/disputes/{dispute_id}/{step}",
                               json={"reason": "stands"} if step == "reject" else None,
                               headers=city.headers("provider", "psb"))
        assert response.status_code == 409, response.text
        detail = response.json()["detail"]
        assert f"POST /api/v1/disputes/{dispute_id}/ack" in detail
        _no_cli(detail)


def test_an_unknown_dispute_names_the_route_that_lists_them(client: Any, city: City) -> None:
    response = client.get("/api/v1/disputes/DSP-nope", headers=city.headers("admin", "gsc"))
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "GET /api/v1/disputes" in detail
    _no_cli(detail)


def test_the_reject_form_names_the_form_field(city: City) -> None:
    dispute_id = _dispute(city, "acknowledged")
    browser = TestClient(create_app(city.engine, docs_dir=city.docs_dir),
                         headers={"Origin": "http://testserver"})
    signed = browser.post("/signin", data={"token": city.token("provider", "psb")},
                          follow_redirects=False)
    assert signed.status_code == 303
    page = browser.post(f"/disputes/{dispute_id}/reject", data={"reason": " "},
                        follow_redirects=False)
    assert page.status_code == 400
    assert "field &#39;reason&#39;: a rejection needs a reason" in page.text
    assert "--reason" not in page.text  # (the page's CSS has its own `--fg` variables)


@pytest.mark.parametrize(("method", "path", "kwargs", "sentence"), [
    ("post", "/api/v1/disputes", {"json": {}},
     "body field 'resource' is required (and 3 more problems)"),
    ("post", "/api/v1/disputes", {"json": ["a"]}, "the request body must be a JSON object"),
    ("post", "/api/v1/disputes", {"json": {**BODY, "claim": ""}},
     "body field 'claim': string should have at least 1 character"),
    ("post", "/api/v1/disputes", {"json": {**BODY, "colour": "red"}},
     "body field 'colour': extra inputs are not permitted"),
    ("get", "/api/v1/runs?limit=many", {}, "query parameter 'limit': input should be a valid "
     "integer, unable to parse string as an integer"),
])
def test_validation_errors_are_one_sentence(client: Any, city: City, method: str, path: str,
                                            kwargs: dict[str, Any], sentence: str) -> None:
    response = getattr(client, method)(path, headers=city.headers("admin", "gsc"), **kwargs)
    assert response.status_code == 422
    assert response.json() == {"detail": sentence}


def test_rewording_keeps_the_error_class() -> None:
    """So a state error still answers 409 and bad input 400."""
    state = in_body_terms(DisputeStateError("x (acknowledge it first: `govex dispute ack`)",
                                            field="ID", value="DSP-1"))
    assert isinstance(state, DisputeStateError)
    assert str(state) == "field 'dispute_id': x (acknowledge it first: POST " \
        "/api/v1/disputes/DSP-1/ack)"
    plain = in_body_terms(DeclarationError("give --by DEPT", field="--by"))
    assert type(plain) is DeclarationError
    assert str(plain) == "field 'opened_by': give the 'opened_by' field"


@pytest.mark.parametrize("field", ["resource", "key", "field", "claim", "opened_by"])
@pytest.mark.parametrize("hostile", ["\ud800", "a\x00b"])
def test_text_no_store_can_hold_is_a_422_naming_the_field(
    client: TestClient, city: City, field: str, hostile: str
) -> None:
    """A lone surrogate or a NUL in any body field is refused before it reaches the store (it
    used to reach the driver's UTF-8 encoder: a 500)."""
    body = {"resource": "PSB-RES-001", "key": "x", "field": "name", "claim": "wrong",
            "opened_by": "gsc", field: hostile}
    token = city.token("admin", "gsc")
    response = client.post(  # JSON spells the surrogate as an escape, as a client may send it
        "/api/v1/disputes", content=json.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]


def test_a_refusal_quoting_a_line_break_stays_one_line(client: TestClient, city: City) -> None:
    token = city.token("admin", "gsc")
    response = client.post("/api/v1/disputes/%0Aforged/reject", json={"reason": "r"},
                           headers={"Authorization": f"Bearer {token}"})
    assert 400 <= response.status_code < 500
    assert "\n" not in response.json()["detail"]
