"""Disputes (数据异议): a consumer objects to a field of a delivered record; the dispute goes to
the resource's authoritative provider, who acknowledges it and then either corrects the record
at the source and resolves it (the exchange re-delivers the correction, see
`exchange.run.correction`) or rejects it with a reason.

    open ──ack──► acknowledged ──resolve──► resolved
                              └──reject───► rejected

Every transition is a conditional UPDATE (`WHERE state = <expected>`), so two people acting on
one dispute at once cannot both succeed; it is recorded in `lineage_dispute_transitions` and in
the hash-chained audit log, in the same transaction, as are the flags the consumers' copies
of the record must show (`records.dispute_flags`: set while the dispute is open or
acknowledged, cleared when it is resolved or rejected). A dispute is due a number of working days
(the Chinese calendar with its holidays and adjusted working days, govex.workdays;
GOVEX_DISPUTE_DAYS, default 5) after it was opened, and is overdue while it
is still open or acknowledged after that moment.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args

import sqlalchemy as sa

import catalog
from govex.errors import DeclarationError
from govex.moments import aware
from govex.settings import DEFAULT_DISPUTE_DAYS, load_settings
from govex.workdays import add_working_days
from records import audit, dispute_flags
from records.notifications import EventType, notify
from records.provenance import deliveries_of, split_key

__all__ = [
    "DEFAULT_DISPUTE_DAYS",
    "STATES",
    "DisputeState",
    "DisputeStateError",
    "NothingToCorrectError",
    "acknowledge",
    "dispute_days",
    "disputed_keys",
    "disputes",
    "get_dispute",
    "list_disputes",
    "mark_resolved",
    "metadata",
    "open_dispute",
    "reject",
    "require_state",
    "sync_flags",
    "transitions",
    "working_days_after",
]

DisputeState = Literal["open", "acknowledged", "resolved", "rejected"]
STATES: tuple[DisputeState, ...] = get_args(DisputeState)
ACTIVE: tuple[DisputeState, ...] = ("open", "acknowledged")

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

disputes = sa.Table(
    "lineage_disputes",
    metadata,
    sa.Column("id", sa.String(20), primary_key=True),
    sa.Column("resource", sa.String(64), nullable=False),
    sa.Column("record_key", sa.String(500), nullable=False),
    sa.Column("field", sa.String(200), nullable=False),
    sa.Column("claim", sa.Text, nullable=False),
    sa.Column("opened_by", sa.String(64), nullable=False),  # the consumer department
    sa.Column("provider", sa.String(64), nullable=False),  # routed to: the authoritative source
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),  # why it was rejected
    sa.Column("due", TS, nullable=False),
    sa.Column("evidence", sa.JSON, nullable=True),  # set on resolve: run, re-deliveries, hashes
    sa.Column("opened_at", TS, nullable=False),
    sa.Column("updated_at", TS, nullable=False),
    sa.Index("ix_lineage_disputes_record", "resource", "record_key"),
    sa.Index("ix_lineage_disputes_provider", "provider"),
    sa.Index("ix_lineage_disputes_opened_by", "opened_by"),
)

transitions = sa.Table(
    "lineage_dispute_transitions",
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column(
        "dispute_id", sa.String(20), sa.ForeignKey("lineage_disputes.id"), nullable=False
    ),
    sa.Column("from_state", sa.String(16), nullable=True),  # null: the opening
    sa.Column("to_state", sa.String(16), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("reason", sa.Text, nullable=True),
    sa.Column("at", TS, nullable=False),
    sa.Index("ix_lineage_dispute_transitions_dispute", "dispute_id"),
)

# The catalog's department list, by name only (no import of the catalog's internals).
_departments = sa.table("catalog_departments", sa.column("code"))


class DisputeStateError(DeclarationError):
    """The dispute is not in a state that allows this step (HTTP 409, exit code 2)."""


class NothingToCorrectError(DisputeStateError):
    """Resolving would re-deliver nothing: every subscription already holds what the source
    holds now. Closing such a dispute as resolved would claim a correction that never happened,
    so it is refused unless forced (HTTP 409, exit code 2); rejecting it is usually meant."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def dispute_days(env: Mapping[str, str] | None = None) -> int:
    """Working days a provider has to handle a dispute: GOVEX_DISPUTE_DAYS, default 5."""
    return load_settings(env).dispute_days


def working_days_after(start: dt.datetime, days: int) -> dt.datetime:
    """`start` moved forward by `days` Chinese working days (holidays off, adjusted weekend days
    on, counted in Asia/Shanghai; govex.workdays), keeping the time of day."""
    return add_working_days(start, days)


def _new_id() -> str:
    return "DSP-" + uuid.uuid4().hex[:10].upper()


def open_dispute(
    conn: sa.Connection,
    *,
    resource: str,
    key: str,
    field: str,
    claim: str,
    opened_by: str,
    actor: str = "cli",
    now: dt.datetime | None = None,
    source_key: Callable[[catalog.Resource, list[catalog.Subscription]], str] | None = None,
) -> dict[str, Any]:
    """Open a dispute on `field` of record `key` of `resource`, from department `opened_by`,
    routed to the resource's provider; returns it (as `get_dispute`).

    Refused (DeclarationError, nothing written): an unknown resource, department or field; a
    department with no subscription to the resource or not approved for the field; a record
    never delivered to that department; an empty claim.

    `source_key`, when given, turns `key` (as the department received it) into the record's
    source key once the rest of the request is found valid: called with the resource and the
    department's subscriptions to it, it raises what it likes for a key never received."""
    res = catalog.load_resource(conn, resource)
    contract = catalog.load_contract_version(conn, res.contract)
    if source_key is None:
        split_key(key, res.key)
    known = conn.execute(
        sa.select(_departments.c.code).where(_departments.c.code == opened_by)
    ).first()
    if known is None:
        msg = f"unknown department '{opened_by}' (not in the catalog's departments.yaml)"
        raise DeclarationError(msg, field="--by", value=opened_by)
    if field not in contract.fields:
        msg = (
            f"unknown field '{field}': resource {resource} (contract {res.contract}) has "
            f"{', '.join(contract.fields)}"
        )
        raise DeclarationError(msg, field="--field", value=field)
    if not claim.strip():
        msg = "the claim is empty: say what is wrong with the value"
        raise DeclarationError(msg, field="--claim", value=claim)
    subs = [s for s in catalog.load_subscriptions(conn, resource) if s.consumer == opened_by]
    if not subs:
        msg = (
            f"department '{opened_by}' has no subscription to {resource}; only a department "
            "that receives a resource can dispute its records"
        )
        raise DeclarationError(msg, field="--by", value=opened_by)
    if not any(field in s.fields for s in subs):
        msg = (
            f"department '{opened_by}' does not receive field '{field}' of {resource} "
            f"(its subscriptions carry {', '.join(sorted({f for s in subs for f in s.fields}))})"
        )
        raise DeclarationError(msg, field="--field", value=field)
    if source_key is not None:
        key = source_key(res, subs)
    mine = {s.id for s in subs}
    if not any(d["subscription"] in mine for d in deliveries_of(conn, resource, key)):
        msg = (
            f"record '{key}' of {resource} was never delivered to department '{opened_by}'; "
            "a dispute is about a value that was delivered"
        )
        raise DeclarationError(msg, field="KEY", value=key)
    opened = now or _now()
    dispute_id = _new_id()
    conn.execute(sa.insert(disputes).values(
        id=dispute_id, resource=resource, record_key=key, field=field, claim=claim.strip(),
        opened_by=opened_by, provider=res.provider, state="open", reason=None,
        due=working_days_after(opened, dispute_days()), evidence=None, opened_at=opened,
        updated_at=opened,
    ))
    conn.execute(sa.insert(transitions).values(
        dispute_id=dispute_id, from_state=None, to_state="open", actor=actor, reason=None,
        at=opened,
    ))
    audit.append(conn, kind="dispute", subject=dispute_id, actor=actor, detail={
        "action": "open", "resource": resource, "key": key, "field": field,
        "opened_by": opened_by, "provider": res.provider,
    })
    dispute_flags.want(conn, dispute_id, resource, key, True,
                       dispute_flags.holders(conn, resource, key), opened)
    shown = get_dispute(conn, dispute_id, now=opened)
    _notify(conn, "dispute.open", shown, actor, None, opened)
    return shown


def _shape(row: sa.RowMapping, now: dt.datetime) -> dict[str, Any]:
    due = aware(row["due"])
    return {
        "id": row["id"],
        "state": row["state"],
        "resource": row["resource"],
        "key": row["record_key"],
        "field": row["field"],
        "claim": row["claim"],
        "opened_by": row["opened_by"],
        "provider": row["provider"],
        "due": due.isoformat(),
        "overdue": row["state"] in ACTIVE and now > due,
        "reason": row["reason"],
        "evidence": row["evidence"],
        "opened_at": aware(row["opened_at"]).isoformat(),
        "updated_at": aware(row["updated_at"]).isoformat(),
    }


def get_dispute(
    conn: sa.Connection, dispute_id: str, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """One dispute as `govex dispute show --json` prints it, with the flag of each
    subscription holding its record (`dispute_flags.flags_of`) and its history."""
    row = conn.execute(
        sa.select(disputes).where(disputes.c.id == dispute_id)
    ).mappings().first()
    if row is None:
        msg = f"unknown dispute '{dispute_id}' (see `govex dispute list`)"
        raise DeclarationError(msg, field="ID", value=dispute_id)
    shown = _shape(row, now or _now())
    shown["flags"] = dispute_flags.flags_of(conn, [dispute_id])[dispute_id]
    shown["history"] = [
        {"from": r["from_state"], "to": r["to_state"], "actor": r["actor"],
         "reason": r["reason"], "at": aware(r["at"]).isoformat()}
        for r in conn.execute(
            sa.select(transitions).where(transitions.c.dispute_id == dispute_id)
            .order_by(transitions.c.id)
        ).mappings()
    ]
    return shown


def list_disputes(
    conn: sa.Connection,
    *,
    resource: str | None = None,
    key: str | None = None,
    provider: str | None = None,
    opened_by: str | None = None,
    state: str | None = None,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """Disputes, newest first, optionally filtered (without history)."""
    query = sa.select(disputes).order_by(disputes.c.opened_at.desc(), disputes.c.id)
    for column, value in (("resource", resource), ("record_key", key),
                          ("provider", provider), ("opened_by", opened_by), ("state", state)):
        if value is not None:
            query = query.where(disputes.c[column] == value)
    moment = now or _now()
    return [_shape(row, moment) for row in conn.execute(query).mappings()]


def disputed_keys(
    conn: sa.Connection, resource: str, *, besides: str | None = None
) -> frozenset[str]:
    """The record keys of `resource` with an open or acknowledged dispute (other than
    dispute `besides`): the rows a delivery writes with `_govex_disputed = true`."""
    query = sa.select(disputes.c.record_key).where(
        disputes.c.resource == resource, disputes.c.state.in_(ACTIVE))
    if besides is not None:
        query = query.where(disputes.c.id != besides)
    return frozenset(conn.execute(query).scalars())


def sync_flags(conn: sa.Connection, resource: str, now: dt.datetime | None = None) -> int:
    """Flag rows for every holder of a record of `resource` under an open or acknowledged
    dispute that has none yet (`dispute_flags.missing`); returns how many were added."""
    moment = now or _now()
    active = conn.execute(
        sa.select(disputes.c.id, disputes.c.record_key).where(
            disputes.c.resource == resource, disputes.c.state.in_(ACTIVE))
        .order_by(disputes.c.id)
    ).all()
    if not active:
        return 0
    subs = catalog.load_subscriptions(conn, resource)
    return sum(dispute_flags.missing(conn, d, resource, k, moment, subs) for d, k in active)


_ALLOWED: dict[DisputeState, tuple[DisputeState, str]] = {
    # target state: (the state it must come from, the step's name)
    "acknowledged": ("open", "acknowledge"),
    "resolved": ("acknowledged", "resolve"),
    "rejected": ("acknowledged", "reject"),
}
_ARTICLE = {"open": "an open", "acknowledged": "an acknowledged"}


def require_state(conn: sa.Connection, dispute_id: str, target: DisputeState) -> dict[str, Any]:
    """The dispute, if it may move to `target` now; DisputeStateError naming why not."""
    current = get_dispute(conn, dispute_id)
    expected = _ALLOWED[target][0]
    if current["state"] != expected:
        hint = " (acknowledge it first: `govex dispute ack`)" if current["state"] == "open" else ""
        msg = (
            f"dispute {dispute_id} is {current['state']}; only {_ARTICLE[expected]} dispute "
            f"can be {target}{hint}"
        )
        raise DisputeStateError(msg, field="ID", value=dispute_id)
    return current


def _transition(
    conn: sa.Connection,
    dispute_id: str,
    target: DisputeState,
    *,
    actor: str,
    reason: str | None = None,
    evidence: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    current = require_state(conn, dispute_id, target)
    expected = _ALLOWED[target][0]
    now = _now()
    values: dict[str, Any] = {"state": target, "updated_at": now}
    if reason is not None:
        values["reason"] = reason
    if evidence is not None:
        values["evidence"] = dict(evidence)
    moved = conn.execute(
        sa.update(disputes)
        .where(disputes.c.id == dispute_id, disputes.c.state == expected)
        .values(**values)
    ).rowcount
    if moved != 1:  # someone else moved it between our read and our update
        require_state(conn, dispute_id, target)
        msg = f"dispute {dispute_id} changed while this step ran; look at it again"
        raise DisputeStateError(msg, field="ID", value=dispute_id)
    conn.execute(sa.insert(transitions).values(
        dispute_id=dispute_id, from_state=expected, to_state=target, actor=actor,
        reason=reason, at=now,
    ))
    if target not in ACTIVE:  # closed: the flag goes from every copy that holds the record
        code, key = str(current["resource"]), str(current["key"])
        dispute_flags.want(conn, dispute_id, code, key, False,
                           dispute_flags.holders(conn, code, key), now)
    detail: dict[str, Any] = {"action": _ALLOWED[target][1], "from": expected, "to": target}
    if reason is not None:
        detail["reason"] = reason
    if evidence is not None:
        detail["evidence"] = dict(evidence)
    audit.append(conn, kind="dispute", subject=dispute_id, actor=actor, detail=detail)
    shown = get_dispute(conn, dispute_id, now=now)
    _notify(conn, _EVENTS[target], shown, actor, reason, now)
    return shown


_EVENTS: dict[DisputeState, EventType] = {
    "open": "dispute.open", "acknowledged": "dispute.acknowledged",
    "resolved": "dispute.resolved", "rejected": "dispute.rejected",
}


def _notify(
    conn: sa.Connection, event: EventType, dispute: Mapping[str, Any], actor: str,
    reason: str | None, at: dt.datetime,
) -> None:
    """The step's event for the disputing department and the provider, in this transaction
    (no record values: the claim stays in govex, only ids, states and the field name go out)."""
    notify(conn, event, dispute["id"], [dispute["opened_by"], dispute["provider"]], {
        "id": dispute["id"], "state": dispute["state"], "resource": dispute["resource"],
        "field": dispute["field"], "opened_by": dispute["opened_by"],
        "provider": dispute["provider"], "by": actor, "reason": reason, "due": dispute["due"],
    }, at=at)


def acknowledge(conn: sa.Connection, dispute_id: str, *, actor: str = "cli") -> dict[str, Any]:
    """The provider has seen the dispute and is looking into it."""
    return _transition(conn, dispute_id, "acknowledged", actor=actor)


def reject(
    conn: sa.Connection, dispute_id: str, reason: str, *, actor: str = "cli"
) -> dict[str, Any]:
    """The provider stands by the value; `reason` (required) says why."""
    if not reason or not reason.strip():
        msg = "a rejection needs a reason: say why the value stands (--reason TEXT)"
        raise DeclarationError(msg, field="--reason", value=reason)
    return _transition(conn, dispute_id, "rejected", actor=actor, reason=reason.strip())


def mark_resolved(
    conn: sa.Connection, dispute_id: str, evidence: Mapping[str, Any], *, actor: str = "cli"
) -> dict[str, Any]:
    """Close the dispute with the re-delivery evidence (the exchange did the re-delivery)."""
    return _transition(conn, dispute_id, "resolved", actor=actor, evidence=evidence)
