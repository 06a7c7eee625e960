"""Record keys (citizen ID numbers) stay out of URLs and logs: `POST /api/v1/trace` and the
pages' POST trace form take the key in the body; the old GET paths still answer; `token_use`
audit entries name the route and resource, never the key; and the server's access log
redacts the key from the GET paths, under `govex serve` as mounted in Airflow."""

from __future__ import annotations

import datetime as dt
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

import records
from exchange.store import tokens
from exchange.web import accesslog, create_app

from .conftest import City

KEY = "11010519900101123X"  # a quarantined PSB record of the city
SAME_ORIGIN = {"Origin": "http://testserver"}


def _fresh_token(city: City, role: str = "admin", department: str = "gsc") -> tokens.IssuedToken:
    """A token never used: its first use is audited (token_use is throttled per token)."""
    with city.engine.begin() as conn:
        return tokens.issue_token(conn, department, role)


def _token_uses(city: City, token_id: str) -> list[records.AuditEntry]:
    with city.engine.connect() as conn:
        return [e for e in records.list_audit(conn, limit=None, kind="token_use")
                if e.subject == token_id]


# ---- the API ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("role", "department"), [
    ("admin", "gsc"), ("provider", "psb"), ("consumer", "gsc"), ("provider", "amr"),
])
def test_post_trace_answers_as_the_get_route(client: TestClient, city: City, role: str,
                                             department: str) -> None:
    headers = city.headers(role, department)
    by_path = client.get(f"/api/v1/trace/PSB-RES-001/{KEY}", headers=headers)
    by_body = client.post("/api/v1/trace", json={"resource": "PSB-RES-001", "key": KEY},
                          headers=headers)
    assert by_body.status_code == by_path.status_code
    if by_path.status_code == 200:
        assert by_body.json() == by_path.json()
        assert by_body.json()["key"] == KEY
    else:
        assert by_body.json()["detail"] == by_path.json()["detail"]


def test_post_trace_refuses_what_it_does_not_take(client: TestClient, city: City) -> None:
    headers = city.headers("admin", "gsc")
    assert client.post("/api/v1/trace", json={"resource": "PSB-RES-001", "key": KEY}
                       ).status_code == 401
    unknown = client.post("/api/v1/trace", json={"resource": "NOPE", "key": KEY},
                          headers=headers)
    assert unknown.status_code == 404
    for body, field in [({"resource": "PSB-RES-001"}, "key"),
                        ({"resource": "PSB-RES-001", "key": KEY, "extra": 1}, "extra"),
                        ({"resource": "PSB-RES-001", "key": ""}, "key")]:
        refused = client.post("/api/v1/trace", json=body, headers=headers)
        assert refused.status_code == 422
        assert f"body field '{field}'" in refused.json()["detail"]


# ---- the pages -------------------------------------------------------------------------------


@pytest.fixture
def browser(city: City) -> TestClient:
    signed = TestClient(create_app(city.engine, docs_dir=city.docs_dir), headers=SAME_ORIGIN)
    response = signed.post("/signin", data={"token": city.token("admin", "gsc")},
                           follow_redirects=False)
    assert response.status_code == 303
    return signed


def test_the_trace_form_posts_the_key(browser: TestClient, city: City) -> None:
    run_page = browser.get(f"/runs/{city.runs['PSB-RES-001'][-1]}").text
    assert '<form method="post" action="/trace"' in run_page
    shown = browser.post("/trace", data={"resource": "PSB-RES-001", "key": KEY},
                         follow_redirects=False)
    assert shown.status_code == 200
    assert str(shown.url).endswith("/trace")
    assert KEY in shown.text
    assert "Trace 数据溯源" in shown.text
    # The old ways still answer: the path, and the GET form's redirect to it.
    assert browser.get(f"/trace/PSB-RES-001/{KEY}").status_code == 200
    jump = browser.get("/trace", params={"resource": "PSB-RES-001", "key": KEY},
                       follow_redirects=False)
    assert jump.headers["location"] == f"/trace/PSB-RES-001/{KEY}"


def test_the_trace_form_without_a_session_asks_to_sign_in(city: City) -> None:
    anonymous = TestClient(create_app(city.engine, docs_dir=city.docs_dir), headers=SAME_ORIGIN)
    response = anonymous.post("/trace", data={"resource": "PSB-RES-001", "key": KEY})
    assert response.status_code == 401
    assert 'action="/signin"' in response.text
    assert KEY not in response.text  # not echoed into the sign-in form's next path
    assert 'name="next" value="/catalog"' in response.text


def test_the_trace_form_is_refused_from_another_site(browser: TestClient) -> None:
    forged = browser.post("/trace", data={"resource": "PSB-RES-001", "key": KEY},
                          headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403


def test_dispute_pages_link_to_traces_without_the_key_in_a_url(browser: TestClient,
                                                               city: City) -> None:
    from records.disputes import disputes as dispute_rows

    opened = dt.datetime.now(dt.UTC)
    with city.engine.begin() as conn:
        conn.execute(dispute_rows.insert().values(
            id="D-KEYS-1", resource="PSB-RES-001", record_key=KEY, field="name",
            claim="姓名有误", opened_by="gsc", provider="psb", state="open",
            due=opened + dt.timedelta(days=7), opened_at=opened, updated_at=opened,
        ))
    for page in ("/disputes", "/disputes/D-KEYS-1"):
        html = browser.get(page).text
        assert KEY in html  # shown, as a button of a form that posts it
        assert f"/trace/PSB-RES-001/{KEY}" not in html
        assert 'action="/trace"' in html
        assert f'name="key" value="{KEY}"' in html


# ---- the audit log ---------------------------------------------------------------------------


def test_token_use_is_audited_with_the_resource_never_the_key(client: TestClient,
                                                              city: City) -> None:
    by_path = _fresh_token(city)
    assert client.get(f"/api/v1/trace/PSB-RES-001/{KEY}",
                      headers={"Authorization": f"Bearer {by_path.secret}"}).status_code == 200
    (entry,) = _token_uses(city, by_path.info.id)
    assert entry.detail == {"method": "GET", "path": "/api/v1/trace/PSB-RES-001/{key}"}

    by_page = _fresh_token(city)
    assert client.get(f"/trace/PSB-RES-001/{KEY}",
                      headers={"Authorization": f"Bearer {by_page.secret}"}).status_code == 200
    (entry,) = _token_uses(city, by_page.info.id)
    assert entry.detail == {"method": "GET", "path": "/trace/PSB-RES-001/{key}"}

    by_query = _fresh_token(city)
    client.get("/trace", params={"resource": "PSB-RES-001", "key": KEY},
               headers={"Authorization": f"Bearer {by_query.secret}"}, follow_redirects=False)
    (entry,) = _token_uses(city, by_query.info.id)
    assert entry.detail == {"method": "GET", "path": "/trace"}

    by_body = _fresh_token(city)
    assert client.post("/api/v1/trace", json={"resource": "PSB-RES-001", "key": KEY},
                       headers={"Authorization": f"Bearer {by_body.secret}"}).status_code == 200
    (entry,) = _token_uses(city, by_body.info.id)
    assert entry.detail == {"method": "POST", "path": "/api/v1/trace"}

    with city.engine.connect() as conn:
        logged = json.dumps([e.to_json() for e in records.list_audit(
            conn, limit=None, kind="token_use")], ensure_ascii=False)
    assert KEY not in logged


def test_other_path_parameters_are_still_audited(client: TestClient, city: City) -> None:
    fresh = _fresh_token(city)
    run_id = city.runs["PSB-RES-001"][-1]
    assert client.get(f"/api/v1/runs/{run_id}",
                      headers={"Authorization": f"Bearer {fresh.secret}"}).status_code == 200
    (entry,) = _token_uses(city, fresh.info.id)
    assert entry.detail == {"method": "GET", "path": f"/api/v1/runs/{run_id}"}


# ---- the access log --------------------------------------------------------------------------


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(city: City, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Lines]]:
    """`govex serve` itself (exchange.cli.serve.serve: the app, then uvicorn.run with uvicorn's
    own logging config) on a free port, and every access-log line it writes."""
    import importlib

    import uvicorn

    from exchange.cli.serve import serve

    started: list[uvicorn.Server] = []

    class Recorded(uvicorn.Server):  # the server uvicorn.run makes, so the test can stop it
        def __init__(self, config: uvicorn.Config) -> None:
            super().__init__(config)
            started.append(self)

    # `uvicorn.main` the attribute is the click command; the module is what uvicorn.run uses.
    monkeypatch.setattr(importlib.import_module("uvicorn.main"), "Server", Recorded)
    port = _free_port()
    thread = threading.Thread(target=serve, args=(city.engine, "127.0.0.1", port), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not (started and started[0].started):
        assert time.monotonic() < deadline, "govex serve did not start"
        time.sleep(0.05)
    lines = Lines()
    access = logging.getLogger("uvicorn.access")
    access.addHandler(lines)
    try:
        yield f"http://127.0.0.1:{port}", lines
    finally:
        access.removeHandler(lines)
        started[0].should_exit = True
        thread.join(timeout=20)


def test_the_access_log_never_shows_the_key(served: tuple[str, Lines], city: City) -> None:
    base, lines = served
    headers = city.headers("admin", "gsc")
    with httpx.Client(base_url=base, headers=headers) as http:
        assert http.get(f"/api/v1/trace/PSB-RES-001/{KEY}").status_code == 200
        assert http.get(f"/trace/PSB-RES-001/{KEY}").status_code == 200
        assert http.get("/trace", params={"resource": "PSB-RES-001", "key": KEY}
                        ).status_code == 303
        assert http.get(f"/api/v1/trace%2FPSB-RES-001%2F{KEY}").status_code in (200, 404)
        assert http.post("/api/v1/trace", json={"resource": "PSB-RES-001", "key": KEY}
                         ).status_code == 200
    deadline = time.monotonic() + 5
    while len(lines.lines) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(lines.lines) == 5, lines.lines
    assert not [line for line in lines.lines if KEY in line]
    assert "/api/v1/trace/PSB-RES-001/[redacted]" in lines.lines[0]
    assert "/trace/PSB-RES-001/[redacted]" in lines.lines[1]
    assert "/trace?resource=PSB-RES-001&key=[redacted]" in lines.lines[2]
    assert '"POST /api/v1/trace HTTP/1.1" 200' in lines.lines[4]


@pytest.mark.parametrize(("target", "shown"), [
    (f"/api/v1/trace/PSB-RES-001/{KEY}", "/api/v1/trace/PSB-RES-001/[redacted]"),
    (f"/govex/api/v1/trace/PSB-RES-001/{KEY}", "/govex/api/v1/trace/PSB-RES-001/[redacted]"),
    (f"/trace/PSB-RES-001/1%2C{KEY}", "/trace/PSB-RES-001/[redacted]"),
    (f"/api/v1/trace%2fPSB-RES-001%2f{KEY}", "/api/v1/trace/PSB-RES-001/[redacted]"),
    (f"/trace/{KEY}", "/trace/[redacted]"),
    (f"/trace?resource=PSB-RES-001&key={KEY}", "/trace?resource=PSB-RES-001&key=[redacted]"),
    (f"/trace?%6Bey={KEY}&resource=X", "/trace?%6Bey=[redacted]&resource=X"),
    ("/api/v1/trace", "/api/v1/trace"),
    ("/quality/PSB-RES-001?department=psb", "/quality/PSB-RES-001?department=psb"),
])
def test_redact_target(target: str, shown: str) -> None:
    assert accesslog.redact_target(target) == shown


def _record(args: Any) -> logging.LogRecord:
    return logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                             '%s - "%s %s HTTP/%s" %d', args, None)


def test_the_filter_rewrites_uvicorn_and_gunicorn_records() -> None:
    redact = accesslog.RedactKeys()
    uvicorn_record = _record(("127.0.0.1:5000", "GET", f"/api/v1/trace/PSB-RES-001/{KEY}",
                              "1.1", 200))
    assert redact.filter(uvicorn_record) is True
    assert uvicorn_record.getMessage() == (
        '127.0.0.1:5000 - "GET /api/v1/trace/PSB-RES-001/[redacted] HTTP/1.1" 200')

    class Atoms(dict[str, Any]):  # gunicorn's: '-' for what the format names but is missing
        def __missing__(self, name: str) -> str:
            return "-"

    atoms = Atoms(r=f"GET /govex/trace/PSB-RES-001/{KEY} HTTP/1.1",
                  U=f"/govex/trace/PSB-RES-001/{KEY}", q="", s="200",
                  f=f"https://gov.example/govex/trace?resource=X&key={KEY}")
    gunicorn_record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1,
                                        "%(r)s %(s)s %(f)s %(x)s", (atoms,), None)
    assert redact.filter(gunicorn_record) is True
    line = gunicorn_record.getMessage()
    assert KEY not in line
    assert line.startswith("GET /govex/trace/PSB-RES-001/[redacted] HTTP/1.1 200 ")
    assert line.endswith(" -")


def test_create_app_installs_the_filter_once(city: City) -> None:
    create_app(city.engine, docs_dir=city.docs_dir)
    create_app(city.engine, docs_dir=city.docs_dir)
    for name in accesslog.ACCESS_LOGGERS:
        filters = logging.getLogger(name).filters
        assert sum(isinstance(f, accesslog.RedactKeys) for f in filters) == 1

