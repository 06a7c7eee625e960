"""Notifications: the transactional outbox of events for departments' webhooks.

A step that a department should hear about (a sharing request moving, a dispute moving, an
item found overdue) calls `notify` in the step's own transaction: the event row and one outbox
row per concerned department that declares a webhook (`notify: {webhook: …}` in
departments.yaml) commit or roll back with the step, so no event is lost and none is sent for
a step that did not happen. Sending is someone else's job (`exchange.notify`): it reads the
outbox, POSTs, logs each attempt in `notify_attempts` and never holds up a step.

The body is fixed here, once, as canonical JSON text: every recipient gets the same bytes, and
a retry sends exactly what the first attempt sent (the signature covers these bytes).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Literal, get_args

import sqlalchemy as sa

__all__ = [
    "EVENT_TYPES",
    "OUTBOX_STATES",
    "EventType",
    "attempts",
    "events",
    "metadata",
    "notify",
    "outbox",
    "webhooks",
]

EventType = Literal[
    "request.submitted", "request.reviewed", "request.returned", "request.approved",
    "request.rejected", "request.withdrawn", "request.revoked", "request.overdue",
    "dispute.open", "dispute.acknowledged", "dispute.resolved", "dispute.rejected",
    "dispute.overdue",
]
EVENT_TYPES: tuple[EventType, ...] = get_args(EventType)
# pending: to be sent (again) at next_attempt_at; delivered: a 2xx came back; failed: the
# attempts ran out, or the department no longer declares a webhook.
OutboxState = Literal["pending", "delivered", "failed"]
OUTBOX_STATES: tuple[OutboxState, ...] = get_args(OutboxState)

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

events = sa.Table(
    "notify_events",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),  # a UUID: X-Govex-Event-Id
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("subject", sa.String(64), nullable=False),  # REQ-… or DSP-…
    sa.Column("departments", sa.JSON, nullable=False),  # every department concerned
    sa.Column("body", sa.Text, nullable=False),  # the exact JSON text sent
    # Set for events that must happen once per item (overdue: "overdue:<id>:<due>"); unique,
    # so two sweeps at once cannot both emit it.
    sa.Column("once_key", sa.String(200), nullable=True),
    sa.Column("created_at", TS, nullable=False),
    sa.UniqueConstraint("once_key", name="uq_notify_events_once_key"),
    sa.Index("ix_notify_events_subject", "subject"),
)

outbox = sa.Table(
    "notify_outbox",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(36), sa.ForeignKey("notify_events.id"), nullable=False),
    sa.Column("department", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("next_attempt_at", TS, nullable=False),
    sa.Column("delivered_at", TS, nullable=True),
    sa.Column("last_error", sa.Text, nullable=True),
    sa.Index("ix_notify_outbox_due", "state", "next_attempt_at"),
    sa.Index("ix_notify_outbox_department", "department"),
)

attempts = sa.Table(
    "notify_attempts",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("outbox_id", ID, sa.ForeignKey("notify_outbox.id"), nullable=False),
    sa.Column("url", sa.String(2000), nullable=False),
    sa.Column("at", TS, nullable=False),
    sa.Column("status_code", sa.Integer, nullable=True),  # null: no HTTP answer at all
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("duration_ms", sa.Integer, nullable=False),
    sa.Index("ix_notify_attempts_outbox", "outbox_id"),
)

# The catalog's departments, by name only (records does not reach into the catalog's tables).
_departments = sa.table(
    "catalog_departments", sa.column("code"), sa.column("declaration", sa.JSON)
)


def webhooks(conn: sa.Connection, departments: Iterable[str] | None = None) -> dict[str, str]:
    """Department code → the webhook URL it declares now (only those that declare one)."""
    query = sa.select(_departments.c.code, _departments.c.declaration)
    if departments is not None:
        query = query.where(_departments.c.code.in_(list(departments)))
    found: dict[str, str] = {}
    for code, declaration in conn.execute(query):
        url = ((declaration or {}).get("notify") or {}).get("webhook")
        if url:
            found[code] = str(url)
    return found


def _canonical(value: Mapping[str, Any]) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def notify(
    conn: sa.Connection,
    event_type: EventType,
    subject: str,
    departments: Iterable[str | None],
    data: Mapping[str, Any],
    *,
    at: dt.datetime | None = None,
    once_key: str | None = None,
) -> str | None:
    """Write the event and its outbox rows in the caller's transaction; returns the event id.

    With `once_key`, an event already written under that key makes this a no-op (None): the
    caller's check-then-write may still race, and the unique key then fails the caller's
    transaction, which the overdue sweep runs per item for that reason.
    """
    if event_type not in EVENT_TYPES:
        msg = f"unknown event type '{event_type}'"
        raise ValueError(msg)
    if once_key is not None and conn.execute(
        sa.select(events.c.id).where(events.c.once_key == once_key)
    ).first() is not None:
        return None
    moment = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    concerned = sorted({d for d in departments if d})
    event_id = str(uuid.uuid4())
    body = _canonical({
        "id": event_id, "type": event_type, "subject": subject, "at": moment.isoformat(),
        "departments": concerned, "data": dict(data),
    })
    conn.execute(sa.insert(events).values(
        id=event_id, type=event_type, subject=subject, departments=concerned, body=body,
        once_key=once_key, created_at=moment,
    ))
    for department in sorted(webhooks(conn, concerned)):
        conn.execute(sa.insert(outbox).values(
            event_id=event_id, department=department, state="pending", attempts=0,
            next_attempt_at=moment, delivered_at=None, last_error=None,
        ))
    return event_id
