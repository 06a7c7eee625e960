"""Webhook notifications against a local HTTP receiver: request steps, a refused step, a flaky
receiver, a dispute step and an overdue request, each checked by the signature a receiver
verifies."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import exchange.requests as sharing
import records
from exchange.notify import delivery_log, department_secret, send_pending
from exchange.store import Principal, tokens
from exchange.web import create_app

from .conftest import City, build_city

ASK = {
    "resource": "PSB-RES-001", "purpose": "一网通办身份核验", "legal_basis": "政务服务条例",
    "fields": ["id_no", "name", "birth_date"], "masking": {"name": "mask_name"},
    "target": {"connection": "gsc_db", "table": "psb_notified"}, "mode": "upsert",
    "valid_from": "2026-01-01", "valid_until": "2099-12-31",
}
ROLES = [("consumer", "gsc"), ("provider", "psb"), ("authority", "data"), ("consumer", "hpf")]
GSC, PSB, DATA, HPF = ROLES


class Receiver:
    """Webhooks on 127.0.0.1: `/<dept>` answers 204; `/flaky` answers 500 twice, then 204."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.flaky_failures = 2
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 204
                if self.path == "/flaky" and receiver.flaky_failures > 0:
                    receiver.flaky_failures -= 1
                    status = 500
                else:
                    receiver.received.append((self.path, dict(self.headers.items()), body))
                self.send_response(status)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self, subject: str) -> list[tuple[str, dict[str, Any]]]:
        """(path, event) of every event about `subject` received, in order."""
        found = []
        for path, _headers, body in self.received:
            event = json.loads(body)
            if event["subject"] == subject:
                found.append((path, event))
        return found


@pytest.fixture(scope="module")
def notified(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[City, TestClient, Receiver]]:
    receiver = Receiver()

    def webhooks(workspace: Path) -> None:
        path = workspace / "departments.yaml"
        text = path.read_text(encoding="utf-8")
        for dept, hook in (("gsc", "/gsc"), ("psb", "/psb"), ("hpf", "/flaky")):
            text = text.replace(f"{{code: {dept}, ", f"{{notify: {{webhook: \"{receiver.url}"
                                f"{hook}\"}}, code: {dept}, ")
        path.write_text(text, encoding="utf-8")

    city = build_city(Path(tmp_path_factory.mktemp("notify")), edit=webhooks)
    with city.engine.begin() as conn:
        # The demo's own requests wrote events too; these tests watch only their own.
        conn.execute(sa.update(records.notify_outbox).values(state="failed"))
        for role, department in ROLES:
            city.tokens[f"{role}:{department}"] = tokens.create_token(conn, department, role)
    with TestClient(create_app(city.engine, docs_dir=city.docs_dir)) as client:
        yield city, client, receiver
    receiver.server.shutdown()
    city.engine.dispose()


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOVEX_NOTIFY_BACKOFF", "0")


def _verify(city: City, department: str, headers: dict[str, str], body: bytes) -> None:
    """What a receiver does: recompute the HMAC over "<timestamp>." + the raw body."""
    secret = department_secret(city.engine, department)
    signed = headers["X-Govex-Timestamp"].encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Govex-Signature"], expected)
    assert headers["X-Govex-Event-Id"] == json.loads(body)["id"]


def _post(client: TestClient, city: City, who: tuple[str, str], path: str,
          body: Any = None) -> Any:
    return client.post(f"/api/v1/requests{path}", json=body, headers=city.headers(*who))


def _event_count(city: City) -> int:
    with city.engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count())
                                .select_from(records.notify_events)).scalar_one())


def test_request_steps_reach_both_webhooks_signed(notified: Any) -> None:
    city, client, receiver = notified
    answer = _post(client, city, GSC, "", ASK)
    assert answer.status_code == 201, answer.text
    rid = answer.json()["id"]
    assert _post(client, city, DATA, f"/{rid}/review", {"compliant": True}).status_code == 200
    # Nothing is sent by the step itself: the sender does it.
    assert receiver.events(rid) == []
    # A refused step (403) writes no event.
    before = _event_count(city)
    assert _post(client, city, GSC, f"/{rid}/approve").status_code == 403
    assert _event_count(city) == before
    assert _post(client, city, PSB, f"/{rid}/approve").status_code == 200

    send_pending(city.engine)
    got = receiver.events(rid)
    by_path: dict[str, list[str]] = {}
    for path, event in got:
        by_path.setdefault(path, []).append(event["type"])
    assert by_path == {
        "/gsc": ["request.submitted", "request.reviewed", "request.approved"],
        "/psb": ["request.submitted", "request.reviewed", "request.approved"],
    }
    for path, headers, body in receiver.received:
        if json.loads(body)["subject"] == rid:
            _verify(city, path.strip("/"), headers, body)
    approved = got[-1][1]
    assert approved["data"]["by"] == "psb/provider"
    assert approved["departments"] == ["gsc", "psb"]
    # A signature made with another department's secret does not verify.
    path, headers, body = next(r for r in receiver.received if r[0] == "/gsc")
    with pytest.raises(AssertionError):
        _verify(city, "psb", headers, body)
    # Delivered once: another pass sends nothing more.
    count = len(receiver.received)
    send_pending(city.engine)
    assert len(receiver.received) == count
    # The revocation of the approval's subscription is a step too.
    sub = approved["data"]["subscription"]
    answer = client.post(f"/api/v1/subscriptions/{sub}/revoke", json={"reason": "法规变更"},
                         headers=city.headers(*PSB))
    assert answer.status_code == 200, answer.text
    send_pending(city.engine)
    revoked = [(p, e["data"]["reason"]) for p, e in receiver.events(rid)
               if e["type"] == "request.revoked"]
    assert sorted(revoked) == [("/gsc", "法规变更"), ("/psb", "法规变更")]


def test_a_failing_receiver_gets_the_event_after_retries(notified: Any) -> None:
    city, client, receiver = notified
    answer = _post(client, city, HPF, "", {
        **ASK, "target": {"connection": "hpf_db", "table": "psb_notified"}})
    assert answer.status_code == 201, answer.text
    rid = answer.json()["id"]
    for _ in range(3):
        send_pending(city.engine)
    assert [(p, e["type"]) for p, e in receiver.events(rid)] == [
        ("/psb", "request.submitted"), ("/flaky", "request.submitted")]
    [row] = [r for r in delivery_log(city.engine, department="hpf") if r["subject"] == rid]
    assert row["state"] == "delivered"
    assert row["attempts"] == 3
    assert [a["status_code"] for a in row["log"]] == [500, 500, 204]
    assert row["log"][0]["error"].startswith("HTTP 500")
    # The API: the department reads its own log, not another's; the authority reads all.
    mine = client.get("/api/v1/notifications", headers=city.headers(*HPF)).json()
    assert {r["department"] for r in mine} == {"hpf"}
    everyone = client.get("/api/v1/notifications?limit=1000",
                          headers=city.headers(*DATA)).json()
    assert {"hpf", "psb"} <= {r["department"] for r in everyone}


def test_a_dispute_step_produces_an_event(notified: Any) -> None:
    city, _client, receiver = notified
    now = dt.datetime.now(dt.UTC)
    with city.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO lineage_disputes (id, resource, record_key, field, claim, opened_by, "
            "provider, state, due, opened_at, updated_at) VALUES ('DSP-NOTIFY01', "
            "'PSB-RES-001', '110105199001011234', 'name', 'wrong name', 'gsc', 'psb', 'open', "
            ":due, :now, :now)"), {"due": now + dt.timedelta(days=7), "now": now})
        records.acknowledge(conn, "DSP-NOTIFY01", actor="psb/provider")
    send_pending(city.engine)
    got = receiver.events("DSP-NOTIFY01")
    assert sorted(p for p, _ in got) == ["/gsc", "/psb"]
    event = got[0][1]
    assert event["type"] == "dispute.acknowledged"
    assert event["data"]["by"] == "psb/provider"
    assert "110105199001011234" not in json.dumps(event)  # no record key leaves govex


def test_an_overdue_request_is_announced_once(notified: Any) -> None:
    city, _client, receiver = notified
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    req = sharing.submit(city.engine, Principal("gsc", "consumer"),
                         sharing.Ask.model_validate(ASK), now=long_ago)
    for _ in range(3):
        send_pending(city.engine)
    kinds = [(p, e["type"]) for p, e in receiver.events(req["id"])]
    assert sorted(kinds) == [("/gsc", "request.overdue"), ("/gsc", "request.submitted"),
                             ("/psb", "request.overdue"), ("/psb", "request.submitted")]


def test_the_command_line_shows_the_secret_and_the_log(
    notified: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    from exchange.cli.main import main

    city, _client, _receiver = notified
    monkeypatch.setenv("GOVEX_DB_URL", city.engine.url.render_as_string(hide_password=False))
    assert main(["notify", "secret", "gsc"]) == 0
    assert capsys.readouterr().out.strip() == department_secret(city.engine, "gsc")
    assert main(["notify", "secret", "nobody"]) == 2
    assert "unknown department 'nobody'" in capsys.readouterr().err
    assert main(["notify", "log", "--json", "--department", "hpf"]) == 0
    rows = json.loads(capsys.readouterr().out)  # (the retry test above fills hpf's log)
    assert all(r["department"] == "hpf" and {"state", "attempts"} <= r.keys() for r in rows)
    assert main(["notify", "send", "--once"]) == 0
    assert "delivered" in capsys.readouterr().out
