"""What `POST /api/v1/lineage` stores, and from whom.

Departments do not trust each other, and what is posted here is shown beside govex's own
lineage, so an event is stored only when all of these hold (each refusal changes nothing):

1. the token may post lineage (`policy.may_post_lineage`: admin, lineage_producer), else 403;
2. the event is a valid OpenLineage RunEvent (`lineage.validate_run_event`), else 422;
3. it does not speak for govex: no job (its own, its parent's, its root's) in govex's
   namespace, govex not its producer, and no run id it names (run, parent, root) a govex run
   (a row of `runs`, or a run govex stored events for in its own namespace), else 403.
   govex stores its own events directly, never over HTTP, so such an event is a forgery.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

import lineage
from exchange.run import runs
from exchange.store import Principal
from exchange.web import policy
from exchange.web.service import Denied


def _govex_runs(conn: sa.Connection, ids: set[str]) -> set[str]:
    if not ids:
        return set()
    found = {
        str(run_id)
        for (run_id,) in conn.execute(sa.select(runs.c.run_id).where(runs.c.run_id.in_(ids)))
    }
    return found | lineage.govex_run_ids(conn, ids)


def accept(store: sa.Engine, principal: Principal, payload: Any) -> int:
    """Store one event posted over HTTP; its id. `Denied` (403) or `DeclarationError` (422)."""
    if not policy.may_post_lineage(principal):
        msg = (
            f"role '{principal.role}' may not post lineage events; only admin and "
            "lineage_producer tokens may"
        )
        raise Denied(msg)
    event = lineage.validate_run_event(payload)
    claim = lineage.govex_claims(event)
    if claim is not None:
        msg = (
            f"the event's {claim} speaks for govex, whose own events are never accepted over "
            "HTTP; report your runs under your own namespace and producer"
        )
        raise Denied(msg)
    with store.begin() as conn:
        taken = _govex_runs(conn, lineage.run_ids(event))
        if taken:
            msg = (
                f"run {sorted(taken)[0]} is a govex run, whose events govex alone records; "
                "an event may not name it as its run, parent or root"
            )
            raise Denied(msg)
        return lineage.store_event(conn, event)
