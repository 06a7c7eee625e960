"""Who may trace which record and act on which dispute; the REST API and the pages both call
these, so they cannot disagree (like `service.Context` for the other reads).

- trace: admin, checklist_owner, auditor and the resource's provider see everything; a
  department with subscriptions to the resource sees only its own deliveries (and its own
  disputes, the quality verdicts of the runs that delivered to it, no source fingerprint: a
  hash over fields it is not approved for could be used to confirm guesses of them);
- disputes: readable by the full readers, the provider it is routed to and the department that
  opened it; opened by a consumer on a resource it subscribes to (admin: for any department);
  acknowledged, rejected and resolved by the provider it is routed to (or admin);
- disputes on records a department received (`?consumer=me`, the disputed-record flag): every
  dispute on a record one of its subscriptions holds, whoever opened it, with the flag of each
  of its subscriptions; one it did not open shows no claim, opener, reason or evidence (words
  and hashes of another department's case), only that the record is disputed, on which field
  and how far the dispute has come. The department itself (`me`, a consumer token), or any
  department for the full readers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import sqlalchemy as sa

import catalog
import records
from exchange.store import Principal
from exchange.web import policy
from exchange.web.service import Denied, Limited, Missing
from govex.errors import DeclarationError, DeclarationErrors

Step = Literal["ack", "reject", "resolve"]
STEPS: tuple[Step, ...] = ("ack", "reject", "resolve")

# `records` words its errors for the command line (`field '--by'`, "(--reason TEXT)", "see
# `govex dispute list`"). API and form users know the JSON body or form fields and the routes
# instead; the same errors are reworded here, so both speak their own user's language.
BODY_FIELDS = {"--by": "opened_by", "--field": "field", "--claim": "claim",
               "--reason": "reason", "--force": "force", "KEY": "key", "ID": "dispute_id"}
_FLAG = re.compile(r"(\()?(--[a-z][a-z-]*)(?: [A-Z]+)?(?(1)\))")
_COMMANDS = {
    "`govex dispute list`": "GET /api/v1/disputes",
    "`govex dispute ack`": "POST /api/v1/disputes/{id}/ack",
    "`govex dispute reject`": "POST /api/v1/disputes/{id}/reject",
}


def in_body_terms(error: DeclarationError) -> DeclarationError:
    """`error` reworded for the API and the pages: body fields for CLI flags and arguments,
    routes for commands; the same class, so it answers with the same status."""
    if isinstance(error, DeclarationErrors):
        return DeclarationErrors([in_body_terms(e) for e in error.errors])

    def field_of(match: re.Match[str]) -> str:
        name = BODY_FIELDS.get(match[2])
        if name is None:
            return match[0]
        return f"(the '{name}' field)" if match[1] else f"the '{name}' field"

    message = _FLAG.sub(field_of, error.message)
    for command, route in _COMMANDS.items():
        if error.field == "ID" and error.value:
            route = route.replace("{id}", str(error.value))
        message = message.replace(command, route)
    field = BODY_FIELDS.get(error.field, error.field) if error.field else None
    return type(error)(message, file=error.file, field=field, value=error.value)


@contextmanager
def _body_terms() -> Iterator[None]:
    try:
        yield
    except DeclarationError as error:
        raise in_body_terms(error) from error


def actor(principal: Principal) -> str:
    return f"{principal.department}/{principal.role}"


def _is_provider(principal: Principal, provider: str) -> bool:
    return principal.role == "provider" and principal.department == provider


def count_lookup(store: sa.Engine, principal: Principal) -> None:
    """Count one trace, dispute opening or disclosure against the token's GOVEX_LOOKUP_RATE
    (per minute, in the store, so every process serving the API shares the count); Limited
    (429) beyond."""
    from exchange.store import tokens
    from govex.settings import load_settings

    limit = load_settings().lookup_rate
    caller = principal.token_id or actor(principal)
    count, retry_after = tokens.count_lookup(store, caller)
    if count > limit:
        msg = (
            f"more than {limit} record lookups (trace, dispute opening, disclosure) in one "
            f"minute by this token (GOVEX_LOOKUP_RATE); retry in {retry_after} s"
        )
        raise Limited(msg, retry_after)


def _consumer_view(principal: Principal, provider: str) -> bool:
    """Whether `principal` sees a resource of `provider` as a consumer does: by what it
    received, not by source keys."""
    return not policy.reads_everything(principal) and not _is_provider(principal, provider)


def _secret(store: sa.Engine) -> bytes:
    from exchange.run import master_key

    return master_key(store)


def _not_received(code: str, department: str) -> Missing:
    """The one answer to a key a consumer never received, whether or not the record exists:
    the same status and the same body (not even the key echoed)."""
    return Missing(
        f"no record of {code} delivered to department '{department}' has this key; name a "
        "record by its key as delivered to you (hashed where it was hashed) or by its "
        "_govex_key"
    )


def _resolve(
    secret: bytes, conn: sa.Connection, resource: catalog.Resource,
    subs: list[catalog.Subscription], key: str, department: str,
) -> str:
    """The source key of the record a consumer named `key` (as one of `subs` received it);
    Missing, the same whether or not the record exists, when none received it so."""
    from exchange.web import received_keys

    found = received_keys.source_keys(conn, resource, subs, key, secret)
    if len(found) != 1:  # none, or (a clear key and another's hash colliding) ambiguous
        raise _not_received(resource.code, department)
    return found.pop()


def trace_for(store: sa.Engine, principal: Principal, code: str, key: str) -> dict[str, Any]:
    """Trace record `key` of `code` (Limited, Denied, Missing). Full readers and the
    resource's provider name it by its source key; a subscriber by what it received."""
    count_lookup(store, principal)
    # Read before the store connection below (on first use it is written: see master_key).
    secret = b"" if policy.reads_everything(principal) else _secret(store)
    with store.connect() as conn:
        try:
            resource = catalog.load_resource(conn, code)
        except DeclarationError as error:
            raise Missing(str(error)) from error
        full = not _consumer_view(principal, resource.provider)
        subs = [
            s for s in catalog.load_subscriptions(conn, code)
            if s.consumer == principal.department
        ]
        mine = {s.id for s in subs}
        if not full and not mine:
            msg = (
                f"department '{principal.department}' has no subscription to {code}; only its "
                f"provider '{resource.provider}', its subscribers and the checklist owners may "
                "trace its records"
            )
            raise Denied(msg)
        source_key = key if full else _resolve(secret, conn, resource, subs, key,
                                               principal.department)
        try:
            found = records.trace(conn, code, source_key, read_source=full)
        except DeclarationError as error:
            if full:
                raise Missing(str(in_body_terms(error))) from error
            raise _not_received(code, principal.department) from error
        if full:
            return found
        own = {d["id"] for d in records.list_disputes(
            conn, resource=code, key=source_key, opened_by=principal.department)}
    deliveries = [d for d in found["deliveries"] if d["subscription"] in mine]
    if not deliveries:  # pragma: no cover - resolved from its own deliveries
        raise _not_received(code, principal.department)
    runs = {d["run_id"] for d in deliveries}
    return {
        **found,
        "key": key,  # as the consumer named it: never the source key it may not have received
        "source": {**found["source"], "current_hash": None},
        "deliveries": deliveries,
        "quality": [q for q in found["quality"] if q["run_id"] in runs],
        "disputes": [d for d in found["disputes"] if d["id"] in own],
    }


def _as_received(
    store: sa.Engine, principal: Principal, items: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Disputes with their key as the reader received the record, for a reader who sees them
    as the consumer that opened them (the provider and full readers keep source keys)."""
    from exchange.web import received_keys

    shown: list[dict[str, Any]] = []
    if all(not _consumer_view(principal, str(item["provider"])) for item in items):
        return items
    secret = _secret(store)  # before the connection below (see trace_for)
    with store.connect() as conn:
        for item in items:
            if not _consumer_view(principal, str(item["provider"])):
                shown.append(item)
                continue
            try:
                resource = catalog.load_resource(conn, str(item["resource"]))
            except DeclarationError:
                shown.append(item)  # a resource since removed: nothing left to key it by
                continue
            subs = [s for s in catalog.load_subscriptions(conn, resource.code)
                    if s.consumer == principal.department]
            key = received_keys.as_received(conn, resource, subs, str(item["key"]), secret)
            shown.append({**item, "key": key})
    return shown


def may_read(principal: Principal, dispute: Mapping[str, Any]) -> bool:
    return (
        policy.reads_everything(principal)
        or _is_provider(principal, str(dispute["provider"]))
        or principal.department == dispute["opened_by"]
    )


def may_act(principal: Principal, dispute: Mapping[str, Any]) -> bool:
    """Acknowledge, reject, resolve: the provider the dispute is routed to, or admin."""
    return principal.role == "admin" or _is_provider(principal, str(dispute["provider"]))


def list_for(
    store: sa.Engine, principal: Principal, *, state: str | None = None,
    resource: str | None = None, consumer: str | None = None,
) -> list[dict[str, Any]]:
    """Disputes the caller may read; with `consumer` (`me`: the token's department), those on
    records that department received, each with its subscriptions' flags."""
    if consumer is not None:
        return _received_for(store, principal, consumer, state=state, resource=resource)
    with store.connect() as conn:
        items = records.list_disputes(conn, state=state, resource=resource)
    return _as_received(store, principal, [d for d in items if may_read(principal, d)])


_WITHHELD = {"claim": "", "opened_by": "", "reason": None, "evidence": None}


def _received_for(
    store: sa.Engine, principal: Principal, consumer: str, *, state: str | None,
    resource: str | None,
) -> list[dict[str, Any]]:
    department = principal.department if consumer == "me" else consumer
    full = policy.reads_everything(principal)
    if not full and (principal.role != "consumer" or department != principal.department):
        msg = (
            f"role '{principal.role}' of department '{principal.department}' may not list the "
            f"disputes on records department '{department}' received; a consumer token asks "
            "for its own (consumer=me), admin, authority, checklist_owner and auditor tokens "
            "for any department"
        )
        raise Denied(msg)
    with store.connect() as conn:
        received = records.disputes_received_by(conn, department)
        items = [d for d in records.list_disputes(conn, state=state, resource=resource)
                 if d["id"] in received]
        flags = records.flags_of(conn, [d["id"] for d in items], consumer=department)
    shown = [{**d, "flags": flags[d["id"]]} for d in items]
    if full:
        return shown
    shown = [d if d["opened_by"] == department else {**d, **_WITHHELD} for d in shown]
    return _as_received(store, principal, shown)


def show_for(store: sa.Engine, principal: Principal, dispute_id: str) -> dict[str, Any]:

    with store.connect() as conn:
        try:
            found = records.get_dispute(conn, dispute_id)
        except DeclarationError as error:
            raise Missing(str(in_body_terms(error))) from error
    if not may_read(principal, found):
        msg = f"department '{principal.department}' may not read dispute {dispute_id}"
        raise Denied(msg)
    return _as_received(store, principal, [_own_flags(principal, found)])[0]


def sees_every_flag(principal: Principal, dispute: Mapping[str, Any]) -> bool:
    """Whether the reader sees the flags of every consumer of `dispute` (the full readers and
    its provider), not only its own department's."""
    return not _consumer_view(principal, str(dispute["provider"]))


def _own_flags(principal: Principal, dispute: dict[str, Any]) -> dict[str, Any]:
    """The dispute with the flags the reader may see: all for the full readers and its
    provider, the department's own subscriptions' for a consumer."""
    if sees_every_flag(principal, dispute):
        return dispute
    return {**dispute, "flags": [f for f in dispute.get("flags") or ()
                                 if f["consumer"] == principal.department]}


def open_for(
    store: sa.Engine, principal: Principal, *, resource: str, key: str, field: str,
    claim: str, opened_by: str | None = None,
) -> dict[str, Any]:
    """Open a dispute; DeclarationError for bad input (400), Denied for the wrong role,
    Limited over the lookup rate. A consumer names the record by what it received (Missing,
    404, for a key it never received, whether or not the record exists); an admin by its
    source key."""

    count_lookup(store, principal)
    department = opened_by or principal.department
    if principal.role != "admin":
        if principal.role != "consumer":
            msg = f"role '{principal.role}' may not open disputes; a consumer token may"
            raise Denied(msg)
        if department != principal.department:
            msg = (
                f"department '{principal.department}' may not open a dispute on behalf of "
                f"'{department}'"
            )
            raise Denied(msg)
    secret = _secret(store) if principal.role == "consumer" else b""

    def source_key(resource: catalog.Resource, subs: list[catalog.Subscription]) -> str:
        return _resolve(secret, conn, resource, subs, key, department)

    with _body_terms(), store.begin() as conn:
        opened = records.open_dispute(
            conn, resource=resource, key=key, field=field, claim=claim, opened_by=department,
            actor=actor(principal),
            source_key=source_key if principal.role == "consumer" else None,
        )
    return {**_flagged(store, principal, opened), "key": key}


def _flagged(store: sa.Engine, principal: Principal, dispute: dict[str, Any]) -> dict[str, Any]:
    """After a step that opened or closed `dispute` committed: its flags written to the
    consumers' targets where they can be (the rest stay pending for the next run,
    `exchange.run.dispute_flags`), and the dispute as it now stands."""
    from exchange.run import dispute_flags

    dispute_flags.settle(store, str(dispute["resource"]))
    with store.connect() as conn:
        now = records.get_dispute(conn, str(dispute["id"]))
    return _own_flags(principal, now)


def step_for(
    store: sa.Engine, principal: Principal, dispute_id: str, step: Step,
    reason: str | None = None, *, force: bool = False,
) -> dict[str, Any]:
    """Acknowledge, reject or resolve; DisputeStateError (409) for a step the state does not
    allow or a resolve that would re-deliver nothing (unless `force`), DataQualityError (409)
    when the corrected record fails the gate."""

    found = show_for(store, principal, dispute_id)
    if not may_act(principal, found):
        msg = (
            f"only the provider '{found['provider']}' (or an admin) may {step} dispute "
            f"{dispute_id}"
        )
        raise Denied(msg)
    if step == "resolve":
        from exchange.run import resolve_dispute

        with _body_terms():
            return resolve_dispute(store, dispute_id, actor=actor(principal), force=force)
    with _body_terms(), store.begin() as conn:
        if step == "ack":
            return _own_flags(principal, records.acknowledge(
                conn, dispute_id, actor=actor(principal)))
        rejected = records.reject(conn, dispute_id, reason or "", actor=actor(principal))
    return _flagged(store, principal, rejected)
