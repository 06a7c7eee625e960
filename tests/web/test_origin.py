"""Cross-site request forgery: sign-in and every state-changing request a browser sends with
the sign-in cookie must come from govex's own origin (Origin, else Referer); bearer-token API
calls are not browser sessions and pass."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

import lineage
from exchange.store import tokens
from exchange.web import create_app
from exchange.web.origin import origin_of
from records.disputes import disputes as dispute_rows

from .conftest import City

OWN = "http://testserver"  # TestClient's scheme and Host
EVIL = "https://evil.example"


@pytest.fixture
def browser(city: City) -> TestClient:
    """A client with its own cookie jar and no headers a browser would add by itself."""
    return TestClient(create_app(city.engine, docs_dir=city.docs_dir))


def _signin(browser: TestClient, city: City, headers: dict[str, str],
            role: str = "admin", department: str = "gsc") -> Any:
    return browser.post("/signin", data={"token": city.token(role, department),
                                         "next": "/quality"},
                        headers=headers, follow_redirects=False)


def _signed_in(browser: TestClient, city: City, role: str, department: str) -> None:
    assert _signin(browser, city, {"Origin": OWN}, role, department).status_code == 303


@pytest.mark.parametrize("headers", [
    {"Origin": EVIL},
    {"Origin": "null"},  # sandboxed frames, data: URLs
    {"Origin": "http://testserver.evil.example"},
    {"Origin": "https://testserver"},  # same host, other scheme
    {"Origin": "http://testserver:8080"},  # same host, other port
    {"Referer": f"{EVIL}/login-csrf.html"},
    {"Origin": EVIL, "Referer": f"{OWN}/signin"},  # the Origin decides when both are sent
    {},
])
def test_cross_origin_signin_is_refused(browser: TestClient, city: City,
                                        headers: dict[str, str]) -> None:
    response = _signin(browser, city, headers)
    assert response.status_code == 403
    assert "set-cookie" not in response.headers
    detail = response.json()["detail"]
    assert detail.startswith("refused: ")
    assert "nothing was changed" in detail
    assert "\n" not in detail


@pytest.mark.parametrize("headers", [
    {"Origin": OWN},
    {"Origin": "HTTP://TESTSERVER:80"},  # case and the default port do not matter
    {"Referer": f"{OWN}/signin?next=/quality"},  # no Origin: the Referer's origin
])
def test_same_origin_signin_is_accepted(browser: TestClient, city: City,
                                        headers: dict[str, str]) -> None:
    response = _signin(browser, city, headers)
    assert response.status_code == 303
    assert response.headers["set-cookie"].startswith("govex_session=")


def _disputes(city: City) -> int:
    with city.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(dispute_rows))
                   .scalar_one())


def _dispute_form() -> dict[str, str]:
    return {"resource": "PSB-RES-001", "key": "11010519900101123X", "field": "name",
            "claim": "应为 张三"}


@pytest.mark.parametrize("headers", [{}, {"Origin": EVIL}, {"Referer": f"{EVIL}/x"}])
def test_a_signed_in_form_post_must_name_this_site(browser: TestClient, city: City,
                                                   headers: dict[str, str]) -> None:
    """The dispute form with the sign-in cookie: no Origin and no Referer, or another site's,
    is refused before the route runs, and no dispute is opened."""
    _signed_in(browser, city, "consumer", "gsc")
    before = _disputes(city)
    response = browser.post("/disputes", data=_dispute_form(), headers=headers,
                            follow_redirects=False)
    assert response.status_code == 403
    assert "refused" in response.json()["detail"]
    assert _disputes(city) == before
    # The same form from the app's own page reaches the route (which then answers for itself).
    own = browser.post("/disputes", data=_dispute_form(), headers={"Origin": OWN},
                       follow_redirects=False)
    assert own.status_code == 404  # the city never delivered this record to gsc
    assert "delivered to department &#39;gsc&#39; has this key" in own.text


def test_signout_and_cookie_api_calls_are_checked_too(browser: TestClient, city: City) -> None:
    _signed_in(browser, city, "admin", "gsc")
    assert browser.post("/signout", headers={"Origin": EVIL},
                        follow_redirects=False).status_code == 403
    run_id = str(uuid.uuid4())
    event = {"eventType": "START", "eventTime": "2026-11-27T08:00:00Z",
             "run": {"runId": run_id}, "job": {"namespace": "airflow", "name": "t"},
             "producer": "https://github.com/apache/airflow",
             "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json"}
    # JSON with the cookie: a same-site page could send it; without an origin it is refused.
    assert browser.post("/api/v1/lineage", json=event).status_code == 403
    assert browser.post("/api/v1/lineage", json=event,
                        headers={"Origin": EVIL}).status_code == 403
    with city.engine.connect() as conn:
        assert lineage.list_events(conn, run_id) == []
    assert browser.post("/api/v1/lineage", json=event,
                        headers={"Origin": OWN}).status_code == 201
    assert browser.post("/signout", headers={"Origin": OWN},
                        follow_redirects=False).status_code == 303


def test_bearer_token_calls_need_no_origin(client: Any, city: City) -> None:
    run_id = str(uuid.uuid4())
    event = {"eventType": "START", "eventTime": "2026-11-27T08:00:00Z",
             "run": {"runId": run_id}, "job": {"namespace": "airflow", "name": "t"},
             "producer": "https://github.com/apache/airflow",
             "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json"}
    response = client.post("/api/v1/lineage", json=event,
                           headers=city.headers("lineage_producer", "psb"))
    assert response.status_code == 201, response.text
    # A bearer call from a foreign page cannot happen (it cannot set Authorization), so even a
    # foreign Origin on one is not a forgery.
    again = client.post("/api/v1/lineage", json={**event, "eventType": "COMPLETE"},
                        headers={**city.headers("lineage_producer", "psb"), "Origin": EVIL})
    assert again.status_code == 201


def test_the_check_holds_under_the_airflow_mount_and_another_host(city: City) -> None:
    """Inside Airflow's API server the app is mounted at /govex, reached under Airflow's own
    host and port: the check compares with the Host the request came with."""
    outer = FastAPI()
    outer.mount("/govex", create_app(city.engine, docs_dir=city.docs_dir))
    base = "http://airflow.example:8080"
    browser = TestClient(outer, base_url=base)
    ok = browser.post("/govex/signin", data={"token": city.token("admin", "gsc")},
                      headers={"Origin": base}, follow_redirects=False)
    assert ok.status_code == 303
    assert ok.headers["location"] == "/govex/catalog"
    for origin in (OWN, "http://airflow.example", "http://airflow.example:8793"):
        refused = browser.post("/govex/signin", data={"token": city.token("admin", "gsc")},
                               headers={"Origin": origin}, follow_redirects=False)
        assert refused.status_code == 403, origin
        assert base in refused.json()["detail"]
    https = TestClient(outer, base_url="https://gov.example")
    assert https.post("/govex/signin", data={"token": city.token("admin", "gsc")},
                      headers={"Origin": "https://gov.example:443"},
                      follow_redirects=False).status_code == 303


def test_a_forged_signin_leaves_no_trace(city: City, browser: TestClient) -> None:
    """Login CSRF changes nothing: no cookie, and the token is not even looked at (its
    last-used time stays as it was)."""
    with city.engine.begin() as conn:
        secret = tokens.create_token(conn, "gsc", "auditor")
    response = browser.post("/signin", data={"token": secret}, headers={"Origin": EVIL},
                            follow_redirects=False)
    assert response.status_code == 403
    with city.engine.connect() as conn:
        row = conn.execute(sa.select(tokens.tokens.c.last_used_at).where(
            tokens.tokens.c.token_hash == tokens.hash_token(secret))).one()
    assert row.last_used_at is None


@pytest.mark.parametrize(("url", "origin"), [
    ("http://Example.org", "http://example.org"),
    ("http://example.org:80/x", "http://example.org"),
    ("https://example.org:443", "https://example.org"),
    ("https://example.org:8443/a?b", "https://example.org:8443"),
    ("http://[::1]:8765/", "http://[::1]:8765"),
    ("http://user:pw@example.org/", "http://example.org"),
    ("null", None),
    ("/relative", None),
    ("http://example.org:99999", None),
])
def test_origin_of(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin
