"""The lineage store: events from any producer in, one run's events (and its children's) out,
on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from openlineage.client.serde import Serde

import lineage
from govex.errors import DeclarationError
from tests.lineage.samples import new_run_id, sample_run


def airflow_event(run_id: str, event_type: str = "START") -> dict[str, Any]:
    """What Airflow's OpenLineage provider posts: another producer, other facets."""
    return {
        "eventType": event_type,
        "eventTime": "2026-11-27T08:00:00.123Z",
        "producer": "https://github.com/apache/airflow/tree/providers-openlineage/2.3.0",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id, "facets": {"airflow": {"dag": {"dag_id": "govex__X"}}}},
        "job": {"namespace": "airflow", "name": "govex__PSB-RES-001.run"},
        "inputs": [],
        "outputs": [],
    }


def store_run_events(conn: sa.Connection) -> lineage.ResourceRun:
    run = sample_run()
    sub = run.subscriptions[0]
    for event in (
        lineage.run_started(run),
        lineage.delivery_started(run, sub),
        lineage.delivery_completed(run, sub, 3),
        lineage.run_completed(run, counts=lineage.RunCounts(3, 3, 0, 3)),
    ):
        lineage.store_event(conn, Serde.to_dict(event))
    other = sample_run()
    lineage.store_event(conn, Serde.to_dict(lineage.run_started(other)))
    return run


def check_store(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        run = store_run_events(conn)
        airflow_run = run.parent[2]  # type: ignore[index]
        first = lineage.store_event(conn, airflow_event(airflow_run))
        second = lineage.store_event(conn, airflow_event(airflow_run, "COMPLETE"))
        assert second > first
    with engine.connect() as conn:
        everything = lineage.list_events(conn)
        assert len(everything) == 7
        mine = lineage.list_events(conn, run.run_id)
        # The run's own events and its deliveries' (whose parent it is), oldest first.
        assert [(e["job"]["name"], e["eventType"]) for e in mine] == [
            ("exchange.PSB-RES-001", "START"),
            ("exchange.PSB-RES-001.deliver.SUB-GSC-001", "START"),
            ("exchange.PSB-RES-001.deliver.SUB-GSC-001", "COMPLETE"),
            ("exchange.PSB-RES-001", "COMPLETE"),
        ]
        delivery = lineage.delivery_run_id(run.run_id, "SUB-GSC-001")
        assert len(lineage.list_events(conn, delivery)) == 2
        # The Airflow task run: its own events and the govex run it spawned.
        airflow = lineage.list_events(conn, airflow_run)
        assert [e["producer"].split("/")[4] for e in airflow] == [
            "airflow", "airflow", "govex", "govex"
        ]
        assert lineage.list_events(conn, new_run_id()) == []
        assert len(lineage.list_events(conn, limit=2)) == 2
        # Stored whole: the payload comes back exactly, and serializes as one JSON line.
        assert mine[0] == Serde.to_dict(lineage.run_started(run)) | {
            "eventTime": mine[0]["eventTime"]
        }
        assert "\n" not in json.dumps(mine[0], ensure_ascii=False)
        row = conn.execute(
            sa.select(lineage.tables.events).where(lineage.tables.events.c.id == first)
        ).mappings().one()
        assert row["job_namespace"] == "airflow"
        assert row["event_type"] == "START"
        assert row["event_time"].replace(tzinfo=None).isoformat() == "2026-11-27T08:00:00.123000"


def test_store_on_sqlite(sqlite_store: sa.Engine) -> None:
    check_store(sqlite_store)


@pytest.mark.integration
def test_store_on_postgresql(pg_url: str) -> None:
    engine = sa.create_engine(pg_url)
    try:
        lineage.metadata.create_all(engine)
        check_store(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("path", "field"),
    [
        (("eventTime",), "eventTime"),
        (("run", "runId"), "run.runId"),
        (("run",), "run.runId"),
        (("job", "namespace"), "job.namespace"),
        (("job", "name"), "job.name"),
        (("job",), "job.namespace"),
    ],
)
def test_an_event_missing_a_required_field_is_refused(
    sqlite_store: sa.Engine, path: tuple[str, ...], field: str
) -> None:
    event = airflow_event(new_run_id())
    node: Any = event
    for part in path[:-1]:
        node = node[part]
    del node[path[-1]]
    with sqlite_store.begin() as conn, pytest.raises(DeclarationError) as caught:
        lineage.store_event(conn, event)
    assert f"field '{field}'" in str(caught.value)
    assert "eventTime, run.runId, job.namespace and job.name" in str(caught.value)
    with sqlite_store.connect() as conn:
        assert lineage.list_events(conn) == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"eventTime": "yesterday"}, "eventTime"),
        ({"eventTime": 1700000000}, "eventTime"),
        ({"eventType": "DONE"}, "eventType"),
        ({"run": {"runId": ""}}, "run.runId"),
        ({"job": {"namespace": "airflow", "name": ["x"]}}, "job.name"),
    ],
)
def test_malformed_values_are_refused(
    sqlite_store: sa.Engine, change: dict[str, Any], field: str
) -> None:
    with sqlite_store.begin() as conn, pytest.raises(DeclarationError, match=f"'{field}'"):
        lineage.store_event(conn, airflow_event(new_run_id()) | change)


def test_a_non_object_is_refused(sqlite_store: sa.Engine) -> None:
    with sqlite_store.begin() as conn, pytest.raises(DeclarationError, match="JSON object"):
        lineage.store_event(conn, ["not", "an", "event"])  # type: ignore[arg-type]


def test_event_time_without_offset_is_taken_as_utc(sqlite_store: sa.Engine) -> None:
    with sqlite_store.begin() as conn:
        lineage.store_event(conn, airflow_event(new_run_id()) | {"eventTime": "2026-11-27T08:00"})
        stored = conn.execute(sa.select(lineage.tables.events.c.event_time)).scalar_one()
    assert stored.replace(tzinfo=None).isoformat() == "2026-11-27T08:00:00"
