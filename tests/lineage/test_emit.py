"""The emitter: stores every event, sends it over HTTP when configured, and never fails the
transfer — a refused connection, a missing table, a broken event are logged and counted."""

from __future__ import annotations

import importlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
import sqlalchemy as sa

import lineage
from tests.lineage.samples import sample_run

Validate = Callable[[Any], dict[str, Any]]
# `lineage.emit` is the function; the module of the same name holds the URL helper.
emit_module = importlib.import_module("lineage.emit")


def refused_url() -> str:
    """An HTTP URL on a local port nothing listens on: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Receiver:
    """A minimal OpenLineage HTTP endpoint that keeps what it receives."""

    def __init__(self) -> None:
        received = self.received = []  # type: list[tuple[str, dict[str, str], dict[str, Any]]]

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, dict(self.headers), json.loads(body)))
                self.send_response(201)
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


def count_events(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return len(lineage.list_events(conn))


def test_emit_stores_the_event(sqlite_store: sa.Engine, validate_event: Validate) -> None:
    run = sample_run()
    event_id = lineage.emit(sqlite_store, lineage.run_started(run))
    assert isinstance(event_id, int)
    with sqlite_store.connect() as conn:
        (stored,) = lineage.list_events(conn, run.run_id)
        assert lineage.failure_count(conn) == 0
    # What the store holds is still a valid OpenLineage event.
    validate_event(stored)


def test_emit_inside_the_callers_transaction(sqlite_store: sa.Engine) -> None:
    run = sample_run()
    with sqlite_store.connect() as conn:
        lineage.emit(conn, lineage.run_started(run))
        conn.rollback()
    assert count_events(sqlite_store) == 0
    with sqlite_store.begin() as conn:
        lineage.emit(conn, lineage.run_started(run))
    assert count_events(sqlite_store) == 1


def test_emit_also_sends_over_http(
    sqlite_store: sa.Engine, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
    validate_event: Validate,
) -> None:
    monkeypatch.setenv("GOVEX_LINEAGE_URL", receiver.url)
    monkeypatch.setenv("GOVEX_LINEAGE_API_KEY", "tok-123")
    run = sample_run()
    lineage.emit(sqlite_store, lineage.run_started(run))
    lineage.emit(sqlite_store, lineage.run_failed(run, "boom"))
    assert [path for path, _, _ in receiver.received] == ["/api/v1/lineage"] * 2
    _, headers, body = receiver.received[0]
    assert headers["Authorization"] == "Bearer tok-123"
    assert body["run"]["runId"] == run.run_id
    validate_event(body)
    assert receiver.received[1][2]["eventType"] == "FAIL"
    assert count_events(sqlite_store) == 2
    with sqlite_store.connect() as conn:
        assert lineage.failure_count(conn) == 0


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("http://h:5000", ("http://h:5000/", "api/v1/lineage")),
        ("http://h:5000/", ("http://h:5000/", "api/v1/lineage")),
        ("http://h:8765/api/v1/lineage", ("http://h:8765/", "api/v1/lineage")),
        ("http://h/marquez", ("http://h/marquez/", "api/v1/lineage")),
        ("https://h/govex/api/v1/lineage/", ("https://h/govex/", "api/v1/lineage")),
    ],
)
def test_lineage_url_forms(url: str, endpoint: tuple[str, str]) -> None:
    assert emit_module._split_endpoint(url) == endpoint


def test_a_refused_http_endpoint_never_fails_the_transfer(
    sqlite_store: sa.Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GOVEX_LINEAGE_URL", refused_url())
    monkeypatch.setenv("GOVEX_LINEAGE_RETRIES", "0")
    before = lineage.emission_failures().get("transport", 0)
    run = sample_run()
    event_id = lineage.emit(sqlite_store, lineage.run_started(run))  # no exception
    assert event_id is not None
    with sqlite_store.connect() as conn:
        assert len(lineage.list_events(conn, run.run_id)) == 1  # still stored
        assert lineage.failure_count(conn) == 1
        assert lineage.failure_count(conn, stage="transport") == 1
        (failure,) = lineage.list_failures(conn)
    assert failure["run_id"] == run.run_id
    assert failure["job_name"] == "exchange.PSB-RES-001"
    assert failure["event_type"] == "START"
    assert "Connection" in failure["error"]
    assert lineage.emission_failures()["transport"] == before + 1
    assert "OpenLineage emission failed at transport" in caplog.text


def test_a_malformed_lineage_url_is_counted_not_raised(
    sqlite_store: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOVEX_LINEAGE_URL", "not a url")
    assert lineage.emit(sqlite_store, lineage.run_started(sample_run())) is not None
    with sqlite_store.connect() as conn:
        assert lineage.failure_count(conn, stage="transport") == 1


def test_a_store_without_lineage_tables_never_fails_the_transfer(tmp_path: Any) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    before = lineage.emission_failures().get("store", 0)
    assert lineage.emit(engine, lineage.run_started(sample_run())) is None
    assert lineage.emission_failures()["store"] == before + 1


def test_a_failed_store_does_not_spoil_the_callers_transaction(sqlite_store: sa.Engine) -> None:
    """Inside the caller's transaction the event goes in a SAVEPOINT: a refused event (here:
    no runId) is rolled back alone and counted, and the caller's own writes still commit."""
    sa.Table("work", sa.MetaData(), sa.Column("n", sa.Integer)).create(sqlite_store)
    with sqlite_store.begin() as conn:
        conn.execute(sa.text("INSERT INTO work (n) VALUES (1)"))
        assert lineage.emit(conn, {"eventTime": "2026-11-27T08:00:00Z", "run": {}}) is None
        conn.execute(sa.text("INSERT INTO work (n) VALUES (2)"))
    with sqlite_store.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM work")).scalar_one() == 2
        assert lineage.failure_count(conn, stage="store") == 1
        assert "run.runId" in lineage.list_failures(conn)[0]["error"]


@pytest.mark.parametrize("switch", ["OPENLINEAGE_DISABLED", "GOVEX_LINEAGE_DISABLED"])
@pytest.mark.parametrize("value", ["true", "TRUE", "1"])
def test_the_kill_switch_turns_emission_off(
    sqlite_store: sa.Engine, receiver: Receiver, monkeypatch: pytest.MonkeyPatch,
    switch: str, value: str,
) -> None:
    monkeypatch.setenv("GOVEX_LINEAGE_URL", receiver.url)
    monkeypatch.setenv(switch, value)
    assert lineage.lineage_disabled()
    assert lineage.emit(sqlite_store, lineage.run_started(sample_run())) is None
    assert count_events(sqlite_store) == 0
    assert receiver.received == []


@pytest.mark.parametrize("value", ["false", "0", ""])
def test_the_kill_switch_off(sqlite_store: sa.Engine, monkeypatch: pytest.MonkeyPatch,
                             value: str) -> None:
    monkeypatch.setenv("GOVEX_LINEAGE_DISABLED", value)
    assert not lineage.lineage_disabled()
    assert lineage.emit(sqlite_store, lineage.run_started(sample_run())) is not None


def test_an_explicit_transport_is_used_instead(sqlite_store: sa.Engine) -> None:
    """Any openlineage-python transport (Kafka, composite, …) can be passed in."""
    from openlineage.client.transport import Transport

    sent: list[Any] = []

    class Keep(Transport):
        kind = "keep"

        def emit(self, event: Any) -> None:
            sent.append(event)

    run = sample_run()
    lineage.emit(sqlite_store, lineage.run_started(run), transport=Keep())
    assert [e["run"]["runId"] for e in sent] == [run.run_id]


def test_an_openlineage_python_event_is_stored_as_its_json(sqlite_store: sa.Engine) -> None:
    """govex builds its events as JSON; an openlineage-python `RunEvent` is taken too."""
    from openlineage.client.event_v2 import Job, Run, RunEvent, RunState

    run_id = sample_run().run_id
    event = RunEvent(
        eventType=RunState.START, eventTime="2026-11-27T08:00:00+00:00", run=Run(runId=run_id),
        job=Job(namespace="acme", name="load"), producer="https://acme.example/producer",
    )
    assert lineage.emit(sqlite_store, event) is not None
    with sqlite_store.connect() as conn:
        (stored,) = lineage.list_events(conn, run_id)
    assert (stored["eventType"], stored["job"]["name"]) == ("START", "load")
