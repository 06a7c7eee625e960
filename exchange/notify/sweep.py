"""The overdue sweep: one `request.overdue` or `dispute.overdue` event per item and deadline.

An item is a request waiting for its review or its answer, or a dispute open or acknowledged,
past its `due`. The event's once-key is `overdue:<id>:<due>`: a sweep that finds it again emits
nothing, and a request overdue for review and later for its answer (a new `due`) gets one event
for each. Each item is written in its own transaction, so a sweep racing another (the unique
once-key refuses the second) loses that item only.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

import records
from catalog import tables
from exchange.requests import request_event
from govex.moments import aware

AWAITING = ("submitted", "reviewed")  # a request waiting for the authority or the provider


def sweep_overdue(store: sa.Engine, *, now: dt.datetime | None = None) -> int:
    """Emit the overdue events not emitted yet; returns how many."""
    moment = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    requests = tables.requests
    with store.connect() as conn:
        late_requests = [
            (row["id"], row["state"], aware(row["due"])) for row in conn.execute(
                sa.select(requests.c.id, requests.c.state, requests.c.due)
                .where(requests.c.state.in_(AWAITING), requests.c.due.is_not(None))
            ).mappings() if aware(row["due"]) < moment
        ]
        late_disputes = [d for d in records.list_disputes(conn, now=moment) if d["overdue"]]
    emitted = 0
    for request_id, state, due in late_requests:
        try:
            with store.begin() as conn:
                event = request_event(
                    conn, request_id, state, "govex", moment, event="request.overdue",
                    once_key=f"overdue:{request_id}:{due.isoformat()}")
                emitted += event is not None
        except sa.exc.IntegrityError:
            continue  # another sweep emitted it first
    for dispute in late_disputes:
        try:
            with store.begin() as conn:
                event = records.notify(
                    conn, "dispute.overdue", dispute["id"],
                    [dispute["opened_by"], dispute["provider"]], {
                        "id": dispute["id"], "state": dispute["state"],
                        "resource": dispute["resource"], "field": dispute["field"],
                        "opened_by": dispute["opened_by"], "provider": dispute["provider"],
                        "by": "govex", "reason": None, "due": dispute["due"],
                    }, at=moment, once_key=f"overdue:{dispute['id']}:{dispute['due']}")
                emitted += event is not None
        except sa.exc.IntegrityError:
            continue
    return emitted

