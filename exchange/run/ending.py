"""The end of a subscription: revoked (by its resource's provider or the platform authority,
with a reason) or expired (its `valid_until` has passed).

An ended subscription gets nothing from the next run on: `start_run` leaves it out and records
a `skipped` delivery saying why, which the run summary shows. What it was delivered is purged
from its target at that next run (not at revocation: the run is where govex reaches the
target, with its retries and its lease), once, audited with the row count, unless its approval
said `retain_after_end: true` (the linked request's column, or the workspace declaration's
key). A purge that fails (the target unreachable) is retried by the next run.

A revocation is permanent: `govex apply` updates a revoked subscription's declaration but never
its state, so a workspace file that still declares it keeps it revoked.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa

import catalog
import connectors
import records
from catalog import tables
from exchange.run.delivery import VERIFICATION_INDEX
from exchange.run.targets import target_spec
from exchange.store import Principal
from exchange.verify import index as verify_index
from govex.errors import DeclarationError, Forbidden
from govex.moments import aware

log = logging.getLogger(__name__)

EndState = Literal["revoked", "expired"]
REVOKERS = ("authority",)  # besides the resource's provider
REASON_LENGTH = 2000  # characters: a sentence or a paragraph, not a document

subscriptions = tables.subscriptions
requests = tables.requests
steps = tables.request_steps


class UnknownSubscription(DeclarationError):
    """No subscription has this id (HTTP 404, exit code 2)."""


class AlreadyEnded(DeclarationError):
    """The subscription was already revoked (HTTP 409, exit code 2)."""


@dataclass(frozen=True)
class Ended:
    """Why a subscription gets nothing more, and whether its target was purged."""

    subscription: str
    state: EndState
    at: dt.datetime
    by: str | None
    reason: str
    retain: bool
    purged_at: dt.datetime | None

    def message(self) -> str:
        """One sentence for the run summary and the consumer."""
        if self.state == "revoked":
            return f"revoked on {self.at.date()} by {self.by}: {self.reason}"
        return self.reason


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _ending(row: sa.RowMapping, retain_requested: bool | None, today: dt.date) -> Ended | None:
    declared = row["declaration"] or {}
    retain = bool(retain_requested) or bool(declared.get("retain_after_end"))
    purged = aware(row["purged_at"])
    if row["state"] == "revoked":
        at = aware(row["ended_at"]) or _now()
        return Ended(row["id"], "revoked", at, row["ended_by"], row["ended_reason"] or "",
                     retain, purged)
    until = row["valid_until"]
    if until is not None and until < today:
        at = dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), dt.UTC)
        return Ended(row["id"], "expired", at, None,
                     f"expired: the approval was valid until {until}", retain, purged)
    return None


def ended_subscriptions(
    conn: sa.Connection, resource: str | None, today: dt.date,
    *, ids: list[str] | None = None,
) -> dict[str, Ended]:
    """The subscriptions (of `resource`, or all; only `ids` when given) that have ended by
    `today`, by id."""
    query = (
        sa.select(subscriptions, requests.c.retain_after_end)
        .select_from(subscriptions.outerjoin(
            requests, requests.c.id == subscriptions.c.request_id))
    )
    if resource is not None:
        query = query.where(subscriptions.c.resource_code == resource)
    if ids is not None:
        query = query.where(subscriptions.c.id.in_(ids))
    found: dict[str, Ended] = {}
    for row in conn.execute(query).mappings():
        ended = _ending(row, row["retain_after_end"], today)
        if ended is not None:
            found[ended.subscription] = ended
    return found


def may_revoke(principal: Principal, provider: str) -> bool:
    """The resource's provider or the platform authority (INTERFACES, "Sharing requests")."""
    return principal.role in REVOKERS or (
        principal.role == "provider" and principal.department == provider
    )


def revoke(
    conn: sa.Connection, subscription: str, principal: Principal, reason: str,
    *, now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Revoke `subscription` for `principal` (Forbidden unless it may), with `reason`
    (required), in the caller's transaction: the subscription's end, the linked request's
    `revoked` step, and the audit entry with the actor's department and role."""
    at = now or _now()
    row = conn.execute(
        sa.select(subscriptions).where(subscriptions.c.id == subscription)
    ).mappings().one_or_none()
    if row is None:
        msg = f"unknown subscription '{subscription}' (see GET /api/v1/subscriptions)"
        raise UnknownSubscription(msg, value=subscription)
    provider = catalog.load_resource(conn, row["resource_code"]).provider
    by = f"{principal.department}/{principal.role}"
    if not may_revoke(principal, provider):
        msg = (f"only the provider '{provider}' of {row['resource_code']} or the authority may "
               f"revoke subscription {subscription}, not {by}")
        raise Forbidden(msg)
    text = (reason or "").strip()
    if not text:
        msg = "a revocation needs a reason: say why the subscription ends"
        raise DeclarationError(msg, field="reason")
    if len(text) > REASON_LENGTH:
        msg = f"the reason is longer than {REASON_LENGTH} characters"
        raise DeclarationError(msg, field="reason")
    moved = conn.execute(
        sa.update(subscriptions)
        .where(subscriptions.c.id == subscription, subscriptions.c.state == "active")
        .values(state="revoked", ended_at=at, ended_by=by, ended_reason=text)
    ).rowcount
    if not moved:
        msg = (f"subscription {subscription} was already revoked on "
               f"{(aware(row['ended_at']) or at).date()} by {row['ended_by']}")
        raise AlreadyEnded(msg, value=subscription)
    if row["request_id"]:
        conn.execute(sa.insert(steps).values(
            request_id=row["request_id"], state="revoked", by_department=principal.department,
            by_role=principal.role, at=at, reason=text,
        ))
        conn.execute(sa.update(requests).where(requests.c.id == row["request_id"])
                     .values(state="revoked", due=None, updated_at=at))
    records.append_audit(conn, kind="revoke", subject=subscription, actor=by, detail={
        "resource": row["resource_code"], "consumer": row["consumer"], "reason": text,
        "request": row["request_id"],
    })
    # The consumer learns it now, not at the next run (the event goes out with this commit).
    records.notify(conn, "request.revoked", row["request_id"] or subscription,
                   [row["consumer"], provider], {
                       "id": row["request_id"], "state": "revoked",
                       "resource": row["resource_code"], "consumer": row["consumer"],
                       "provider": provider, "by": by, "reason": text, "due": None,
                       "subscription": subscription,
                   }, at=at)
    return {"subscription": subscription, "state": "revoked", "ended_at": at.isoformat(),
            "ended_by": by, "reason": text, "request": row["request_id"]}


def purge(store: sa.Engine, code: str, ended: Ended, *, run_id: str | None = None) -> int | None:
    """Delete what `ended` delivered of resource `code` from its target, once: the rows, then
    `purged_at` and the audit entry (with the row count) in one store transaction. None when
    there is nothing to do (already purged, or retained); raises when the target fails (the
    next run tries again). A verify subscription's verification index is govex's, not the
    consumer's: it is always removed (`_purge_index`)."""
    if ended.purged_at is not None:
        return None
    with store.connect() as conn:
        resource = catalog.load_resource(conn, code)
        contract = catalog.load_contract_version(conn, resource.contract)
        sub = next(s for s in catalog.load_subscriptions(conn, code)
                   if s.id == ended.subscription)
    if sub.target is None:
        return _purge_index(store, code, ended, sub, run_id)
    if ended.retain:
        return None
    with store.connect() as conn:
        target = catalog.load_connection(conn, sub.sink.connection)
    sink = connectors.open_sink(target.kind, target.target, target.format)
    try:
        removed = sink.purge(target_spec(resource, contract, sub), code)
    finally:
        sink.close()
    with store.begin() as conn:
        _mark_purged(conn, code, ended, sub, removed, run_id,
                     {"target": sub.sink.table, "connection": sub.sink.connection})
    return removed


def _purge_index(
    store: sa.Engine, code: str, ended: Ended, sub: catalog.Subscription, run_id: str | None
) -> int:
    """Remove an ended verify subscription's index rows, `purged_at` and the audit entry in
    one store transaction: nothing is left to answer from."""
    with store.begin() as conn:
        removed = verify_index.remove(conn, sub.id)
        _mark_purged(conn, code, ended, sub, removed, run_id, {"target": VERIFICATION_INDEX})
    return removed


def _mark_purged(
    conn: sa.Connection, code: str, ended: Ended, sub: catalog.Subscription, removed: int,
    run_id: str | None, where: dict[str, str],
) -> None:
    """`purged_at` and the purge's audit entry, once (a second purge of the same end finds
    `purged_at` set and records nothing)."""
    done = conn.execute(
        sa.update(subscriptions)
        .where(subscriptions.c.id == ended.subscription, subscriptions.c.purged_at.is_(None))
        .values(purged_at=_now())
    ).rowcount
    if done:
        records.append_audit(conn, kind="purge", subject=ended.subscription, detail={
            "resource": code, "consumer": sub.consumer, **where, "rows": removed,
            "ended": ended.state, "run_id": run_id,
        })


def purge_ended(
    store: sa.Engine, code: str, ended: dict[str, Ended], *, run_id: str | None = None
) -> dict[str, str]:
    """Purge every ended subscription of `code` that is due one; returns, per subscription
    touched, what happened (for its skipped delivery's message). A failing target is logged
    and left for the next run: a purge never fails the run that delivers to the others."""
    notes: dict[str, str] = {}
    for sub_id, end in ended.items():
        try:
            removed = purge(store, code, end, run_id=run_id)
        except Exception as error:  # noqa: BLE001 - retried by the next run, noted meanwhile
            log.warning("purge of %s failed: %s", sub_id, error)
            notes[sub_id] = f"purge failed, retried next run: {error}"
            continue
        if removed is not None:
            notes[sub_id] = f"{removed} delivered rows purged from the target"
        elif end.retain:
            notes[sub_id] = "delivered rows retained (retain_after_end)"
    return notes
