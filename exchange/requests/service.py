"""Sharing requests (供需对接) as authenticated acts: a consumer asks, the platform authority
reviews, the resource's provider answers; an approval is the subscription.

    submitted ──review (compliant)──► reviewed ──approve──► approved  (the subscription)
        │   └──review (unconditional resource)──────────────► approved
        │   └──review (not compliant, reason)──► returned    └──reject (reason)──► rejected
        └──withdraw (requester, before an answer)──► withdrawn ◄── reviewed

Every step takes the acting `Principal` (a token's department and role) and is authorised here,
once, for the REST API, the command line, the pages and the demo alike. A refused step raises
`Forbidden` (403, exit 2) or a `DeclarationError` (422, exit 2) before anything is written; a
step that succeeds writes the request, its `catalog_request_steps` row and its audit entry (the
actor's department and role) in one transaction. Moves are conditional UPDATEs
(`WHERE state = <expected>`), so two people acting on one request cannot both succeed.

Deadlines are in working days on the Chinese calendar (govex.workdays): the authority reviews
within GOVEX_REVIEW_DAYS (2) of submission, the provider answers within GOVEX_ANSWER_DAYS (5) of
the review. `due` is the deadline of the step now awaited; `overdue` says it passed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator

import catalog
import records
from catalog import tables
from catalog.declarations import SUBSCRIPTION_ID, DeliveryMode
from exchange.store import Principal
from govex.errors import DeclarationError, Forbidden
from govex.identifiers import FILE_IDENTIFIER_LENGTH, check_table
from govex.moments import aware
from govex.settings import load_settings
from govex.workdays import SHANGHAI, add_working_days, covers, local_date

# `revoked`: the approval's subscription was revoked later (the subscription's end, set there).
RequestState = Literal[
    "submitted", "reviewed", "approved", "rejected", "withdrawn", "returned", "revoked"
]
STATES: tuple[RequestState, ...] = get_args(RequestState)
AWAITING: tuple[RequestState, ...] = ("submitted", "reviewed")  # an answer is still due
READERS = frozenset({"admin", "authority", "auditor"})  # read every request
ID_ATTEMPTS = 20  # submissions racing for one day's next number retry this often

requests = tables.requests
steps = tables.request_steps
subscriptions = tables.subscriptions


class UnknownRequest(DeclarationError):
    """No request has this id (HTTP 404, exit code 2)."""


class RequestStateError(DeclarationError):
    """The request's state does not allow this step (HTTP 422, exit code 2)."""


def _unstorable(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value)
    if isinstance(value, Mapping):
        return any(_unstorable(k) or _unstorable(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return any(_unstorable(v) for v in value)
    return False


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    connection: str = Field(min_length=1, description="a connection the requesting department "
                            "owns (`owner:` in connections.yaml)")
    table: str = Field(min_length=1, description="table (or file) govex creates and fills")


class Ask(BaseModel):
    """What a consumer asks for: `POST /api/v1/requests` and `govex request submit FILE`."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    resource: str = Field(min_length=1, description="resource code, e.g. PSB-RES-001")
    purpose: str = Field(min_length=1, description="why the data is needed (用途)")
    legal_basis: str = Field(min_length=1, description="the law or policy that allows the use")
    fields: list[Annotated[str, Field(min_length=1)]] = Field(
        min_length=1, description="the fields asked for")
    masking: dict[str, str] = Field(default_factory=dict,
                                    description="field -> masking function asked for")
    delivery: Literal["bulk", "verify"] = Field(
        default="bulk", description="bulk: delivered to `target`; verify: no copy, the consumer "
        "asks whether values it holds match (POST /api/v1/verify/{code}); no target, masking, "
        "mode or retain_after_end")
    target: TargetIn | None = Field(default=None, description="bulk only: where it is delivered")
    mode: DeliveryMode = Field(default="upsert")
    schedule: str | None = Field(
        default=None, max_length=100,
        description="when the consumer wants deliveries (an Airflow schedule, e.g. @daily)")
    valid_from: dt.date
    valid_until: dt.date
    retain_after_end: bool = Field(
        default=False, description="keep what was delivered after the subscription ends")
    subscription: str | None = Field(
        default=None, pattern=SUBSCRIPTION_ID,
        description="the checklist id wished for the subscription (default "
        "SUB-<CONSUMER>-<YYYYMMDD>-<NNNN>, from the request id)")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        """No NUL (PostgreSQL text cannot hold it) and no lone surrogate anywhere."""
        if _unstorable(data):
            msg = "holds a NUL character or a lone surrogate, which govex cannot store"
            raise ValueError(msg)
        return data

    @model_validator(mode="after")
    def _window(self) -> Ask:
        if self.valid_until < self.valid_from:
            msg = f"valid_until {self.valid_until} is before valid_from {self.valid_from}"
            raise ValueError(msg)
        if len(set(self.fields)) != len(self.fields):
            msg = "fields repeat"
            raise ValueError(msg)
        return self


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(now: dt.datetime | None) -> dt.datetime:
    """The moment of a step, in UTC: SQLite keeps no zone, so the store holds UTC only."""
    return (now or _now()).astimezone(dt.UTC)


def actor(principal: Principal) -> str:
    return f"{principal.department}/{principal.role}"


def _refuse(message: str, field: str | None = None, value: Any = None) -> DeclarationError:
    return DeclarationError(message, field=field, value=value)


# ---- reading --------------------------------------------------------------------------------


def may_read(principal: Principal, row: Mapping[Any, Any]) -> bool:
    """The requester, the resource's provider, the authority, auditors and operators."""
    if principal.role in READERS:
        return True
    if principal.role == "consumer" and principal.department == row["consumer"]:
        return True
    return principal.role == "provider" and principal.department == row["provider"]


def _calendar(start: dt.datetime, end: dt.datetime | None) -> str:
    """`chinese` when the holiday data covers every year the deadline spans, else
    `weekdays-only` (Monday–Friday were counted: say so rather than be silently wrong)."""
    first = start.astimezone(SHANGHAI).year
    last = (end or start).astimezone(SHANGHAI).year
    return "chinese" if all(covers(y) for y in range(first, last + 1)) else "weekdays-only"


def _shape(conn: sa.Connection, row: Mapping[Any, Any], now: dt.datetime) -> dict[str, Any]:
    due = aware(row["due"]) if row["due"] is not None else None
    submitted = aware(row["submitted_at"])
    history = [
        {"state": s["state"], "by": f"{s['by_department']}/{s['by_role']}",
         "department": s["by_department"], "role": s["by_role"],
         "at": aware(s["at"]).isoformat(), "reason": s["reason"], "detail": s["detail"]}
        for s in conn.execute(
            sa.select(steps).where(steps.c.request_id == row["id"]).order_by(steps.c.id)
        ).mappings()
    ]
    return {
        "id": row["id"], "state": row["state"], "resource": row["resource_code"],
        "consumer": row["consumer"], "provider": row["provider"], "purpose": row["purpose"],
        "legal_basis": row["legal_basis"], "fields": list(row["fields"]),
        "masking": dict(row["masking"] or {}), "delivery": row["delivery"],
        "target": row["target"], "mode": row["mode"], "schedule": row["schedule"],
        "valid_from": row["valid_from"].isoformat(),
        "valid_until": row["valid_until"].isoformat() if row["valid_until"] else None,
        "retain_after_end": bool(row["retain_after_end"]),
        "due": due.isoformat() if due else None,
        "overdue": row["state"] in AWAITING and due is not None and now > due,
        "calendar": _calendar(submitted, due),
        "submitted_at": submitted.isoformat(),
        "updated_at": aware(row["updated_at"]).isoformat(),
        "subscription": row["subscription_id"],
        "history": history,
    }


def _row(conn: sa.Connection, request_id: str) -> sa.RowMapping:
    row = conn.execute(sa.select(requests).where(requests.c.id == request_id)).mappings().first()
    if row is None:
        msg = f"unknown sharing request '{request_id}' (see `govex request list`)"
        raise UnknownRequest(msg, field="ID", value=request_id)
    return row


def get_request(
    store: sa.Engine, principal: Principal, request_id: str, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """One request with its history, if `principal` may read it (else Forbidden)."""
    with store.connect() as conn:
        row = _row(conn, request_id)
        if not may_read(principal, row):
            msg = (f"{actor(principal)} may not read request {request_id}: only its requester, "
                   "the resource's provider, the authority, auditors and admins may")
            raise Forbidden(msg)
        return _shape(conn, row, now or _now())


def list_requests(
    store: sa.Engine, principal: Principal, *, state: str | None = None,
    now: dt.datetime | None = None,
) -> list[dict[str, Any]]:
    """The requests `principal` may read, newest first, optionally in one state."""
    if state is not None and state not in STATES:
        msg = f"unknown request state '{state}' (known: {', '.join(STATES)})"
        raise _refuse(msg, "state", state)
    query = sa.select(requests).order_by(requests.c.submitted_at.desc(), requests.c.id.desc())
    if state is not None:
        query = query.where(requests.c.state == state)
    if principal.role == "consumer":
        query = query.where(requests.c.consumer == principal.department)
    elif principal.role == "provider":
        query = query.where(requests.c.provider == principal.department)
    elif principal.role not in READERS:
        return []
    moment = now or _now()
    with store.connect() as conn:
        return [_shape(conn, row, moment) for row in conn.execute(query).mappings()]


# ---- the steps ------------------------------------------------------------------------------


def _record(
    conn: sa.Connection, request_id: str, state: str, principal: Principal, at: dt.datetime,
    *, reason: str | None = None, detail: dict[str, Any] | None = None,
) -> None:
    """The step's row and its audit entry, in the caller's transaction."""
    conn.execute(sa.insert(steps).values(
        request_id=request_id, state=state, by_department=principal.department,
        by_role=principal.role, at=at, reason=reason, detail=detail,
    ))
    audit: dict[str, Any] = {"action": state, "department": principal.department,
                             "role": principal.role}
    if reason is not None:
        audit["reason"] = reason
    if detail:
        audit.update(detail)
    records.append_audit(conn, kind="request", subject=request_id, actor=actor(principal),
                         detail=audit)
    request_event(conn, request_id, state, actor(principal), at, reason=reason)


def request_event(
    conn: sa.Connection, request_id: str, state: str, by: str, at: dt.datetime,
    *, reason: str | None = None, event: str | None = None, once_key: str | None = None,
) -> str | None:
    """The step's notification to the requester and the provider, in the step's transaction
    (written with it or not at all; sent later by `exchange.notify`); the event id, or None
    when `once_key` was already used."""
    row = _row(conn, request_id)
    due = aware(row["due"]).isoformat() if row["due"] is not None else None
    kind = event or f"request.{state}"
    if kind not in records.EVENT_TYPES:
        return None
    return records.notify(conn, kind, request_id,
                   [row["consumer"], row["provider"]], {
        "id": request_id, "state": row["state"], "resource": row["resource_code"],
        "consumer": row["consumer"], "provider": row["provider"], "by": by, "reason": reason,
        "due": due, "subscription": row["subscription_id"],
    }, at=at, once_key=once_key)


def _move(
    conn: sa.Connection, row: Mapping[Any, Any], expected: tuple[str, ...], target: str,
    at: dt.datetime, **values: Any,
) -> None:
    """Move the request to `target` if it is still in one of `expected` states."""
    moved = conn.execute(
        sa.update(requests)
        .where(requests.c.id == row["id"], requests.c.state.in_(expected))
        .values(state=target, updated_at=at, **values)
    ).rowcount
    if moved != 1:
        msg = f"request {row['id']} changed while this step ran; look at it again"
        raise RequestStateError(msg, field="ID", value=row["id"])


def _require(row: Mapping[Any, Any], allowed: tuple[str, ...], step: str) -> None:
    if row["state"] not in allowed:
        msg = (f"request {row['id']} is {row['state']}; only a request that is "
               f"{' or '.join(allowed)} can be {step}")
        raise RequestStateError(msg, field="ID", value=row["id"])


def _resource(conn: sa.Connection, code: str) -> catalog.Resource:
    try:
        return catalog.load_resource(conn, code)
    except DeclarationError as error:
        raise _refuse(error.message, "resource", code) from error


def _shareable(resource: catalog.Resource) -> None:
    """Refuse a resource that is never shared in bulk, naming why."""
    if resource.sharing == "none":
        msg = (f"resource {resource.code} is declared sharing: none (不予共享) and cannot be "
               "requested")
        raise _refuse(msg, "resource", resource.code)
    if resource.classification == "L4":
        msg = (f"resource {resource.code} is classified L4 (core data) and is never delivered "
               "in bulk")
        raise _refuse(msg, "resource", resource.code)


def _check_fields(
    conn: sa.Connection, resource: catalog.Resource, fields: list[str], masking: Mapping[str, str]
) -> None:
    known = catalog.load_contract_version(conn, resource.contract).fields
    for name in fields:
        if name not in known:
            msg = f"field '{name}' is not in contract {resource.contract} of {resource.code}"
            raise _refuse(msg, "fields", name)
    for name, function in masking.items():
        if function not in catalog.MASKING_FUNCTIONS:
            msg = (f"unknown masking function '{function}' (known: "
                   f"{', '.join(catalog.MASKING_FUNCTIONS)})")
            raise _refuse(msg, f"masking.{name}", function)
        if name not in fields:
            msg = f"masked field '{name}' is not one of the fields asked for"
            raise _refuse(msg, f"masking.{name}", name)


def _check_target(conn: sa.Connection, consumer: str, target: TargetIn) -> None:
    """The target is a database or file connection the requesting department owns."""
    row = conn.execute(
        sa.select(tables.connections.c.declaration)
        .where(tables.connections.c.name == target.connection)
    ).first()
    if row is None:
        msg = f"unknown connection '{target.connection}' (not in the catalog)"
        raise _refuse(msg, "target.connection", target.connection)
    declared = catalog.Connection.model_validate(row[0])
    if declared.owner != consumer:
        owner = f"department '{declared.owner}'" if declared.owner else "no department"
        msg = (f"connection '{target.connection}' belongs to {owner}, not to '{consumer}': a "
               "request delivers only to a connection of the requesting department (`owner:` "
               "in connections.yaml)")
        raise _refuse(msg, "target.connection", target.connection)
    if declared.kind == "kafka":
        msg = f"a target needs a database or file connection; '{target.connection}' is kafka"
        raise _refuse(msg, "target.connection", target.connection)
    try:
        check_table(target.table, FILE_IDENTIFIER_LENGTH if declared.kind == "path" else 63)
    except DeclarationError as error:
        raise _refuse(error.message, "target.table", target.table) from error


def _check_verify(ask: Ask) -> None:
    """A verify request receives no copy: nothing that shapes a copy may be asked for."""
    given = [name for name in ("target", "masking", "mode", "retain_after_end")
             if name in ask.model_fields_set and getattr(ask, name) not in (None, {}, False)]
    if given:
        msg = (f"a verify request receives no copy (the consumer only asks whether values it "
               f"holds match), so it cannot ask for {', '.join(given)}")
        raise _refuse(msg, given[0])


def _subscription_taken(conn: sa.Connection, sub_id: str) -> bool:
    return conn.execute(
        sa.select(subscriptions.c.id).where(subscriptions.c.id == sub_id)
    ).first() is not None


def next_id(conn: sa.Connection, at: dt.datetime) -> str:
    """The next `REQ-YYYYMMDD-NNNN` of `at`'s day in Asia/Shanghai (numbers never reused)."""
    prefix = f"REQ-{at.astimezone(SHANGHAI):%Y%m%d}-"
    taken = conn.execute(
        sa.select(requests.c.id).where(requests.c.id.like(prefix + "%"))
    ).scalars()
    last = max((int(t.removeprefix(prefix)) for t in taken if t.removeprefix(prefix).isdigit()),
               default=0)
    return f"{prefix}{last + 1:04d}"


def submit(
    store: sa.Engine, principal: Principal, ask: Ask, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """A consumer department asks for a resource; returns the request (`id`, `state`, `due`).

    Refused before anything is written: a token that is not a consumer one (Forbidden); an
    unknown, L4 or `sharing: none` resource, a field not in the contract, an unknown masking
    function, a target that is not the department's own connection, a window already ended
    (DeclarationError). Two submissions at once get consecutive numbers: the id is the
    primary key, and the one that loses the race tries the next number.
    """
    if principal.role != "consumer":
        msg = (f"{actor(principal)} may not submit a sharing request: use a consumer token of "
               "the department that needs the data")
        raise Forbidden(msg)
    at = _utc(now)
    with store.connect() as conn:
        resource = _resource(conn, ask.resource)
        _shareable(resource)
        _check_fields(conn, resource, ask.fields, ask.masking)
        if ask.delivery == "verify":
            _check_verify(ask)
        elif ask.target is None:
            msg = "a bulk request needs a target: {connection, table} of your department"
            raise _refuse(msg, "target")
        else:
            _check_target(conn, principal.department, ask.target)
        if ask.valid_until < local_date(at):
            msg = f"the validity window ends on {ask.valid_until}, which has passed"
            raise _refuse(msg, "valid_until", str(ask.valid_until))
        if ask.subscription is not None and _subscription_taken(conn, ask.subscription):
            msg = f"subscription id '{ask.subscription}' is taken; choose another or leave it out"
            raise _refuse(msg, "subscription", ask.subscription)
    due = add_working_days(at, load_settings().review_days)
    masking = {f: m for f, m in ask.masking.items() if m != "none"}
    for _attempt in range(ID_ATTEMPTS):
        try:
            with store.begin() as conn:
                request_id = next_id(conn, at)
                conn.execute(sa.insert(requests).values(
                    id=request_id, resource_code=resource.code, consumer=principal.department,
                    provider=resource.provider, state="submitted", purpose=ask.purpose,
                    legal_basis=ask.legal_basis, fields=list(ask.fields), masking=masking,
                    delivery=ask.delivery,
                    target=ask.target.model_dump() if ask.target is not None else None,
                    mode=ask.mode if ask.delivery == "bulk" else None,
                    schedule=ask.schedule,
                    valid_from=ask.valid_from, valid_until=ask.valid_until,
                    retain_after_end=ask.retain_after_end, due=due,
                    subscription_id=ask.subscription, submitted_at=at, updated_at=at,
                ))
                _record(conn, request_id, "submitted", principal, at, detail={
                    "resource": resource.code, "consumer": principal.department,
                    "provider": resource.provider, "fields": list(ask.fields),
                    "masking": masking,
                })
                return _shape(conn, _row(conn, request_id), at)
        except sa.exc.IntegrityError:
            continue  # another submission took this number first: take the next
    msg = "too many sharing requests submitted at once; submit again"
    raise RequestStateError(msg)


def _create_subscription(
    conn: sa.Connection, row: Mapping[Any, Any], resource: catalog.Resource,
    fields: list[str], masking: dict[str, str], at: dt.datetime,
) -> str:
    """The approval's checklist line, declared exactly like a workspace subscription (so the
    run engine delivers to it unchanged), with origin `request`."""
    consumer = str(row["consumer"]).upper().replace("_", "-")
    sub_id = row["subscription_id"] or f"SUB-{consumer}-{str(row['id']).removeprefix('REQ-')}"
    # A verify subscription declares no copy: no target, masking, mode or retention at all.
    copy: dict[str, Any] = {"delivery": "verify"} if row["delivery"] == "verify" else {
        "masking": masking, "target": row["target"], "mode": row["mode"] or "upsert",
        "retain_after_end": True if row["retain_after_end"] else None,
    }
    declared = catalog.Subscription(
        id=sub_id, resource=resource.code, consumer=row["consumer"], purpose=row["purpose"],
        fields=fields, schedule=row["schedule"],
        valid_from=row["valid_from"], valid_until=row["valid_until"], request=row["id"],
        **copy,
    )
    if _subscription_taken(conn, sub_id):
        msg = f"subscription id '{sub_id}' was taken meanwhile; the request cannot become it"
        raise RequestStateError(msg, field="subscription", value=sub_id)
    conn.execute(sa.insert(subscriptions).values(
        id=sub_id, resource_code=resource.code, consumer=row["consumer"],
        contract_major=int(resource.contract_version.split(".")[0]),
        valid_from=row["valid_from"], valid_until=row["valid_until"],
        declaration=declared.model_dump(mode="json", exclude_none=True),
        file=f"request {row['id']}", updated_at=at, origin="request", request_id=row["id"],
        state="active",
    ))
    return sub_id


def _approve_in(
    conn: sa.Connection, row: Mapping[Any, Any], principal: Principal, at: dt.datetime,
    expected: tuple[str, ...], fields: list[str], masking: dict[str, str],
    detail: dict[str, Any],
) -> None:
    resource = _resource(conn, row["resource_code"])
    _shareable(resource)
    sub_id = _create_subscription(conn, row, resource, fields, masking, at)
    _move(conn, row, expected, "approved", at, fields=fields, masking=masking,
          subscription_id=sub_id)
    _record(conn, row["id"], "approved", principal, at,
            detail={**detail, "fields": fields, "masking": masking, "subscription": sub_id})


def review(
    store: sa.Engine, principal: Principal, request_id: str, *, compliant: bool,
    reason: str | None = None, now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The authority's compliance check of a submitted request: compliant → `reviewed` (due
    an answer in GOVEX_ANSWER_DAYS), or `approved` at once for an unconditional resource;
    not compliant → `returned`, with the reason (required)."""
    at = _utc(now)
    with store.begin() as conn:
        row = _row(conn, request_id)
        if principal.role != "authority":
            msg = (f"{actor(principal)} may not review request {request_id}: only the "
                   "platform authority (an authority token) reviews")
            raise Forbidden(msg)
        _require(row, ("submitted",), "reviewed")
        if not compliant:
            text = (reason or "").strip()
            if not text:
                msg = "returning a request needs a reason: say what is not compliant"
                raise _refuse(msg, "reason", reason)
            _move(conn, row, ("submitted",), "returned", at, due=None)
            _record(conn, request_id, "returned", principal, at, reason=text)
            return _shape(conn, _row(conn, request_id), at)
        sharing = conn.execute(
            sa.select(tables.resources.c.sharing)
            .where(tables.resources.c.code == row["resource_code"])
        ).scalar_one_or_none()
        if sharing == "unconditional":
            _move(conn, row, ("submitted",), "reviewed", at)
            _record(conn, request_id, "reviewed", principal, at, reason=reason)
            _approve_in(conn, row, principal, at, ("reviewed",), list(row["fields"]),
                        dict(row["masking"] or {}), {"unconditional": True})
        else:
            due = add_working_days(at, load_settings().answer_days)
            _move(conn, row, ("submitted",), "reviewed", at, due=due)
            _record(conn, request_id, "reviewed", principal, at, reason=reason)
        return _shape(conn, _row(conn, request_id), at)


def _is_provider(principal: Principal, row: Mapping[Any, Any]) -> bool:
    return principal.role == "provider" and principal.department == row["provider"]


def _narrowed(
    row: Mapping[Any, Any], fields: list[str] | None, masking: Mapping[str, str] | None
) -> tuple[list[str], dict[str, str]]:
    """The approved fields and masking: the request's, narrowed. A field may be removed, or
    masking added to a field that had none; adding a field, removing or changing masking
    widens what leaves the provider and is refused."""
    asked = list(row["fields"])
    chosen = asked if fields is None else list(fields)
    if not chosen:
        msg = "an approval needs at least one field (to refuse everything, reject the request)"
        raise _refuse(msg, "fields")
    for name in chosen:
        if name not in asked:
            msg = (f"field '{name}' was not asked for; an approval may remove fields, never "
                   "add one")
            raise _refuse(msg, "fields", name)
    if len(set(chosen)) != len(chosen):
        msg = "fields repeat"
        raise _refuse(msg, "fields")
    base = {f: m for f, m in (row["masking"] or {}).items() if f in chosen}
    result = dict(base)
    for name, function in (masking or {}).items():
        if name not in chosen:
            msg = f"masked field '{name}' is not one of the approved fields"
            raise _refuse(msg, f"masking.{name}", name)
        if function not in catalog.MASKING_FUNCTIONS:
            msg = (f"unknown masking function '{function}' (known: "
                   f"{', '.join(catalog.MASKING_FUNCTIONS)})")
            raise _refuse(msg, f"masking.{name}", function)
        current = base.get(name, "none")
        if function == current:
            continue
        if current != "none":
            msg = (f"field '{name}' was asked for with {current}; an approval may add masking "
                   f"to a field that had none, never remove or change it")
            raise _refuse(msg, f"masking.{name}", function)
        result[name] = function
    return chosen, {f: m for f, m in result.items() if m != "none"}


def approve(
    store: sa.Engine, principal: Principal, request_id: str, *,
    fields: list[str] | None = None, masking: Mapping[str, str] | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The resource's provider approves a reviewed request, possibly narrowed; the approval
    creates the subscription (active from the next run)."""
    at = _utc(now)
    with store.begin() as conn:
        row = _row(conn, request_id)
        if not _is_provider(principal, row):
            msg = (f"{actor(principal)} may not approve request {request_id}: only the "
                   f"provider of {row['resource_code']}, '{row['provider']}', answers it")
            raise Forbidden(msg)
        _require(row, ("reviewed",), "approved")
        if row["delivery"] == "verify" and masking:
            msg = ("a verify request receives no copy, so its approval adds no masking; "
                   "narrow it by removing fields")
            raise _refuse(msg, "masking")
        chosen, masks = _narrowed(row, fields, masking)
        narrowed = chosen != list(row["fields"]) or masks != dict(row["masking"] or {})
        _approve_in(conn, row, principal, at, ("reviewed",), chosen, masks,
                    {"narrowed": narrowed})
        return _shape(conn, _row(conn, request_id), at)


def reject(
    store: sa.Engine, principal: Principal, request_id: str, reason: str | None, *,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """The resource's provider refuses a reviewed request, saying why (required)."""
    at = _utc(now)
    with store.begin() as conn:
        row = _row(conn, request_id)
        if not _is_provider(principal, row):
            msg = (f"{actor(principal)} may not reject request {request_id}: only the "
                   f"provider of {row['resource_code']}, '{row['provider']}', answers it")
            raise Forbidden(msg)
        _require(row, ("reviewed",), "rejected")
        text = (reason or "").strip()
        if not text:
            msg = "a rejection needs a reason: say why the data cannot be shared"
            raise _refuse(msg, "reason", reason)
        _move(conn, row, ("reviewed",), "rejected", at)
        _record(conn, request_id, "rejected", principal, at, reason=text)
        return _shape(conn, _row(conn, request_id), at)


def withdraw(
    store: sa.Engine, principal: Principal, request_id: str, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The requesting department takes its request back, before it was answered."""
    at = _utc(now)
    with store.begin() as conn:
        row = _row(conn, request_id)
        if not (principal.role == "consumer" and principal.department == row["consumer"]):
            msg = (f"{actor(principal)} may not withdraw request {request_id}: only its "
                   f"requester, '{row['consumer']}', may")
            raise Forbidden(msg)
        _require(row, AWAITING, "withdrawn")
        _move(conn, row, AWAITING, "withdrawn", at)
        _record(conn, request_id, "withdrawn", principal, at)
        return _shape(conn, _row(conn, request_id), at)
