"""The lineage store: OpenLineage events as received, and a record of emissions that failed.

`lineage_events` keeps each event's JSON whole (`payload`) beside the columns that are queried:
the run, its parent run (so a resource run's query also finds its delivery runs), the job and
the event time. It accepts RunEvents from any producer (govex itself, Airflow's OpenLineage
provider via `POST /api/v1/lineage`, …), so validation here is deliberately minimal: what the
columns need (present, typed, and short enough for them). Events that arrive over HTTP are held
to the whole spec first (`lineage.validate`); rows already stored are read defensively, since
older versions stored what they were sent.

`lineage_emission_failures` is the counter STYLE.md asks for: lineage is a side channel, so a
failed emission is logged and recorded here instead of failing the transfer.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from govex.errors import DeclarationError
from lineage.events import JOB_NAMESPACE

__all__ = [
    "EVENT_TYPES",
    "events",
    "failure_count",
    "failures",
    "govex_run_ids",
    "list_events",
    "list_failures",
    "metadata",
    "record_failure",
    "store_event",
]

log = logging.getLogger(__name__)

metadata = sa.MetaData()

TS = sa.DateTime(timezone=True)
# SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid); elsewhere use 64 bits.
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

#: The RunEvent `eventType`s of the spec (OpenLineage 2-0-2).
EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")

events = sa.Table(
    "lineage_events",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.String(100), nullable=False),
    sa.Column("parent_run_id", sa.String(100), nullable=True),
    sa.Column("job_namespace", sa.String(500), nullable=False),
    sa.Column("job_name", sa.String(500), nullable=False),
    sa.Column("event_type", sa.String(10), nullable=True),
    sa.Column("event_time", TS, nullable=False),
    sa.Column("producer", sa.String(1000), nullable=True),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("received_at", TS, nullable=False),
    sa.Index("ix_lineage_events_run_id", "run_id"),
    sa.Index("ix_lineage_events_parent_run_id", "parent_run_id"),
    sa.Index("ix_lineage_events_job", "job_namespace", "job_name"),
)

failures = sa.Table(
    "lineage_emission_failures",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("failed_at", TS, nullable=False),
    # Where it failed: "serialize", "store" (this table's sibling) or "transport" (HTTP).
    sa.Column("stage", sa.String(20), nullable=False),
    sa.Column("run_id", sa.String(100), nullable=True),
    sa.Column("job_name", sa.String(500), nullable=True),
    sa.Column("event_type", sa.String(10), nullable=True),
    sa.Column("error", sa.Text, nullable=False),
    sa.Index("ix_lineage_emission_failures_run_id", "run_id"),
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _missing(field: str) -> DeclarationError:
    msg = (
        f"the lineage event has no {field}; an OpenLineage RunEvent needs eventTime, "
        "run.runId, job.namespace and job.name"
    )
    return DeclarationError(msg, field=field)


def _at(payload: Mapping[str, Any] | None, path: str) -> Any:
    """The value at a dotted `path` of the event's JSON, None where any step is missing."""
    node: Any = payload
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


def _text(payload: Mapping[str, Any], path: str, size: int) -> str:
    node = _at(payload, path)
    if not isinstance(node, str) or not node.strip():
        raise _missing(path)
    if len(node) > size:
        msg = f"{path} is {len(node)} characters long; the lineage store keeps at most {size}"
        raise DeclarationError(msg, field=path, value=node[:40] + "…")
    return node


def _parse_time(value: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as error:
        msg = f"eventTime {value!r} is not an ISO-8601 date-time (e.g. 2026-11-27T08:00:00Z)"
        raise DeclarationError(msg, field="eventTime", value=value) from error
    # A time without an offset is taken as UTC: govex stores aware times only.
    return parsed.replace(tzinfo=dt.UTC) if parsed.tzinfo is None else parsed.astimezone(dt.UTC)


def _parent_run_id(payload: Mapping[str, Any]) -> str | None:
    node = _at(payload, "run.facets.parent.run.runId")
    return node if isinstance(node, str) else None


def store_event(conn: sa.Connection, payload: Mapping[str, Any]) -> int:
    """Store one OpenLineage RunEvent (its JSON as a dict) and return its id.

    Raises `DeclarationError` naming the field when eventTime, run.runId, job.namespace or
    job.name is missing, eventTime is not a date-time, or eventType is not one of the spec's.
    """
    if not isinstance(payload, Mapping):
        msg = "a lineage event must be a JSON object (an OpenLineage RunEvent)"
        raise DeclarationError(msg, value=type(payload).__name__)
    event_time = _parse_time(_text(payload, "eventTime", 100))
    run_id = _text(payload, "run.runId", _size(events.c.run_id))
    namespace = _text(payload, "job.namespace", _size(events.c.job_namespace))
    name = _text(payload, "job.name", _size(events.c.job_name))
    event_type = payload.get("eventType")
    if event_type is not None and event_type not in EVENT_TYPES:
        msg = f"eventType {event_type!r} is not one of {', '.join(EVENT_TYPES)}"
        raise DeclarationError(msg, field="eventType", value=event_type)
    producer = payload.get("producer")
    if isinstance(producer, str) and len(producer) > _size(events.c.producer):
        producer = None  # kept whole in the payload; the column only serves queries
    result = conn.execute(
        sa.insert(events).values(
            run_id=run_id,
            parent_run_id=_parent_run_id(payload),
            job_namespace=namespace,
            job_name=name,
            event_type=event_type,
            event_time=event_time,
            producer=producer if isinstance(producer, str) else None,
            payload=dict(payload),
            received_at=_now(),
        )
    )
    key = result.inserted_primary_key
    assert key is not None  # noqa: S101 - an INSERT of one row always has one
    return int(key[0])


def _size(column: sa.Column[Any]) -> int:
    length = getattr(column.type, "length", None)
    assert isinstance(length, int)  # noqa: S101 - the String columns above all have one
    return length


def govex_run_ids(conn: sa.Connection, run_ids: Iterable[str]) -> set[str]:
    """Which of `run_ids` are runs govex stored events of in its own namespace (resource runs
    and their delivery child runs)."""
    wanted = sorted(set(run_ids))
    if not wanted:
        return set()
    query = sa.select(events.c.run_id).distinct().where(
        events.c.job_namespace == JOB_NAMESPACE, events.c.run_id.in_(wanted)
    )
    return {str(run_id) for (run_id,) in conn.execute(query)}


def list_events(
    conn: sa.Connection, run_id: str | None = None, *, limit: int | None = None
) -> list[dict[str, Any]]:
    """Stored events (their JSON), oldest first; with `run_id`, the events of that run and of
    the runs whose parent it is (a resource run and its deliveries)."""
    query = sa.select(events.c.id, events.c.payload).order_by(events.c.event_time, events.c.id)
    if run_id is not None:
        query = query.where(sa.or_(events.c.run_id == run_id, events.c.parent_run_id == run_id))
    if limit is not None:
        query = query.limit(limit)
    found = []
    for row_id, payload in conn.execute(query):
        if isinstance(payload, Mapping):
            found.append(dict(payload))
        else:  # an older version stored what it was sent: not an event, so not listed
            log.warning("lineage event %s is not a JSON object; it is left out", row_id)
    return found


def record_failure(
    conn: sa.Connection,
    stage: str,
    error: str,
    payload: Mapping[str, Any] | None = None,
) -> None:
    """Count one failed emission, with what is known of the event it was about."""

    def text(path: str, size: int) -> str | None:
        value = _at(payload, path)
        return value[:size] if isinstance(value, str) else None

    conn.execute(
        sa.insert(failures).values(
            failed_at=_now(),
            stage=stage[:20],
            run_id=text("run.runId", 100),
            job_name=text("job.name", 500),
            event_type=text("eventType", 10),
            error=error,
        )
    )


def failure_count(conn: sa.Connection, *, stage: str | None = None) -> int:
    """How many emissions failed (at `stage`, or anywhere)."""
    query = sa.select(sa.func.count()).select_from(failures)
    if stage is not None:
        query = query.where(failures.c.stage == stage)
    return int(conn.execute(query).scalar_one())


def list_failures(conn: sa.Connection) -> list[dict[str, Any]]:
    """Recorded failures, oldest first."""
    rows = conn.execute(sa.select(failures).order_by(failures.c.id)).mappings()
    return [dict(row) for row in rows]
