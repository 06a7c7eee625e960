"""`GET /api/v1/disclosure/{code}/{key}` and `POST /api/v1/disclosure`: who may ask, what
each refusal says, the key out of URLs and logs, and the lookup rate."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import records
from exchange.web import accesslog
from tests.disclosure.city import id_number
from tests.disclosure.conftest import Delivered

PERSON = id_number(10)


@pytest.mark.parametrize(("role", "department"), [
    ("provider", "psb"), ("admin", "stats"), ("authority", "stats"), ("auditor", "edu"),
])
def test_who_may_ask(client: Any, delivered: Delivered, role: str, department: str) -> None:
    headers = delivered.headers(role, department)
    by_path = client.get(f"/api/v1/disclosure/PSB-RES-001/{PERSON}", headers=headers)
    by_body = client.post("/api/v1/disclosure", headers=headers,
                          json={"resource": "PSB-RES-001", "key": PERSON})
    assert by_path.status_code == by_body.status_code == 200, by_path.text
    assert by_path.json() == by_body.json() == records.disclosure(
        delivered.engine, "PSB-RES-001", PERSON)


@pytest.mark.parametrize(("role", "department", "says"), [
    ("consumer", "gsc", "role 'consumer' of department 'gsc' may not read"),
    ("provider", "hrss", "who received the records of PSB-RES-001"),
    ("checklist_owner", "tax", "role 'checklist_owner'"),
])
def test_everyone_else_is_refused(client: Any, delivered: Delivered, role: str,
                                  department: str, says: str) -> None:
    """A consumer is refused even for a record it received: the answer names the others."""
    headers = delivered.headers(role, department)
    for answer in (
        client.get(f"/api/v1/disclosure/PSB-RES-001/{PERSON}", headers=headers),
        client.post("/api/v1/disclosure", headers=headers,
                    json={"resource": "PSB-RES-001", "key": PERSON}),
    ):
        assert answer.status_code == 403
        assert says in answer.json()["detail"]
    assert client.get(f"/api/v1/disclosure/PSB-RES-001/{PERSON}").status_code == 401


def test_unknown_and_unreceived(client: Any, delivered: Delivered) -> None:
    headers = delivered.headers("provider", "psb")
    unknown = client.get(f"/api/v1/disclosure/NOPE-001/{PERSON}", headers=headers)
    assert unknown.status_code == 404
    assert "unknown resource 'NOPE-001'" in unknown.json()["detail"]
    nobody = client.post("/api/v1/disclosure", headers=headers,
                         json={"resource": "PSB-RES-001", "key": id_number(9000)})
    assert nobody.status_code == 200
    assert (nobody.json()["departments"], nobody.json()["disclosures"]) == ([], [])
    civil = delivered.headers("admin", "stats")
    wrong = client.get(f"/api/v1/disclosure/CIVIL-RES-001/{PERSON}", headers=civil)
    assert wrong.status_code == 404
    assert "give 2 value(s)" in wrong.json()["detail"]
    composite = client.post("/api/v1/disclosure", headers=civil,
                            json={"resource": "CIVIL-RES-001", "key": f"2025,{PERSON}"})
    assert composite.json()["departments"] == ["gsc"]
    bad = client.post("/api/v1/disclosure", headers=civil, json={"resource": "PSB-RES-001"})
    assert bad.status_code == 422
    assert "key" in bad.json()["detail"]


def test_the_lookup_rate(client: Any, delivered: Delivered,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    from exchange.store import tokens

    with delivered.engine.begin() as conn:
        fresh = tokens.create_token(conn, "psb", "provider")
    monkeypatch.setenv("GOVEX_LOOKUP_RATE", "2")
    headers = {"Authorization": f"Bearer {fresh}"}
    # Five calls within at most two minutes: at most four pass under a limit of 2 a minute.
    answers = [client.post("/api/v1/disclosure", headers=headers,
                           json={"resource": "PSB-RES-001", "key": PERSON})
               for _ in range(5)]
    assert answers[0].status_code == 200
    limited = next(a for a in answers if a.status_code == 429)
    assert int(limited.headers["Retry-After"]) >= 1
    assert "disclosure" in limited.json()["detail"]


def test_the_key_stays_out_of_the_access_log() -> None:
    redacted = accesslog.redact_text(f"GET /api/v1/disclosure/PSB-RES-001/{PERSON} HTTP/1.1")
    assert PERSON not in redacted
    assert "/api/v1/disclosure/PSB-RES-001/[redacted]" in redacted
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s"',
                               ("127.0.0.1", "GET", f"/api/v1/disclosure/X/{PERSON}"), None)
    accesslog.RedactKeys().filter(record)
    assert PERSON not in record.getMessage()
