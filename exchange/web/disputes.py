"""Who may trace which record and act on which dispute; the REST API and the pages both call
these, so they cannot disagree (like `service.Context` for the other reads).

- trace: admin, checklist_owner, auditor and the resource's provider see everything; a
  department with subscriptions to the resource sees only its own deliveries (and its own
  disputes, the quality verdicts of the runs that delivered to it, no source fingerprint: a
  hash over fields it is not approved for could be used to confirm guesses of them);
- disputes: readable by the full readers, the provider it is routed to and the department that
  opened it; opened by a consumer on a resource it subscribes to (admin: for any department);
  acknowledged, rejected and resolved by the provider it is routed to (or admin).
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
from exchange.web.service import Denied, Missing
from govex.errors import DeclarationError, DeclarationErrors

Step = Literal["ack", "reject", "resolve"]
STEPS: tuple[Step, ...] = ("ack", "reject", "resolve")

# `records` words its errors for the command line (`field '--by'`, "(--reason TEXT)", "see
# `govex dispute list`"). API and form users know the JSON body or form fields and the routes
# instead; the same errors are reworded here, so both speak their own user's language.
BODY_FIELDS = {"--by": "opened_by", "--field": "field", "--claim": "claim",
               "--reason": "reason", "KEY": "key", "ID": "dispute_id"}
_FLAG = re.compile(r"(\()?(--[a-z][a-z-]*)(?: [A-Z]+)?(?(1)\))")
_COMMANDS = {
    "`govex dispute list`": "GET /api/v1/disputes",
    "`govex dispute ack`": "POST /api/v1/disputes/{id}/ack",
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


def trace_for(store: sa.Engine, principal: Principal, code: str, key: str) -> dict[str, Any]:

    with store.connect() as conn:
        try:
            resource = catalog.load_resource(conn, code)
        except DeclarationError as error:
            raise Missing(str(error)) from error
        full = policy.reads_everything(principal) or _is_provider(principal, resource.provider)
        mine = {
            s.id for s in catalog.load_subscriptions(conn, code)
            if s.consumer == principal.department
        }
        if not full and not mine:
            msg = (
                f"department '{principal.department}' has no subscription to {code}; only its "
                f"provider '{resource.provider}', its subscribers and the checklist owners may "
                "trace its records"
            )
            raise Denied(msg)
        try:
            found = records.trace(conn, code, key, read_source=full)
        except DeclarationError as error:
            raise Missing(str(in_body_terms(error))) from error
        if full:
            return found
        own = {d["id"] for d in records.list_disputes(
            conn, resource=code, key=key, opened_by=principal.department)}
    deliveries = [d for d in found["deliveries"] if d["subscription"] in mine]
    if not deliveries:
        msg = f"record '{key}' of {code} was never delivered to department '{principal.department}'"
        raise Denied(msg)
    runs = {d["run_id"] for d in deliveries}
    return {
        **found,
        "source": {**found["source"], "current_hash": None},
        "deliveries": deliveries,
        "quality": [q for q in found["quality"] if q["run_id"] in runs],
        "disputes": [d for d in found["disputes"] if d["id"] in own],
    }


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
    resource: str | None = None,
) -> list[dict[str, Any]]:

    with store.connect() as conn:
        items = records.list_disputes(conn, state=state, resource=resource)
    return [d for d in items if may_read(principal, d)]


def show_for(store: sa.Engine, principal: Principal, dispute_id: str) -> dict[str, Any]:

    with store.connect() as conn:
        try:
            found = records.get_dispute(conn, dispute_id)
        except DeclarationError as error:
            raise Missing(str(in_body_terms(error))) from error
    if not may_read(principal, found):
        msg = f"department '{principal.department}' may not read dispute {dispute_id}"
        raise Denied(msg)
    return found


def open_for(
    store: sa.Engine, principal: Principal, *, resource: str, key: str, field: str,
    claim: str, opened_by: str | None = None,
) -> dict[str, Any]:
    """Open a dispute; DeclarationError for bad input (400), Denied for the wrong role."""

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
    with _body_terms(), store.begin() as conn:
        return records.open_dispute(
            conn, resource=resource, key=key, field=field, claim=claim, opened_by=department,
            actor=actor(principal),
        )


def step_for(
    store: sa.Engine, principal: Principal, dispute_id: str, step: Step,
    reason: str | None = None,
) -> dict[str, Any]:
    """Acknowledge, reject or resolve; DisputeStateError (409) for a step the state does not
    allow, DataQualityError (409) when the corrected record fails the gate."""

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
            return resolve_dispute(store, dispute_id, actor=actor(principal))
    with _body_terms(), store.begin() as conn:
        if step == "ack":
            return records.acknowledge(conn, dispute_id, actor=actor(principal))
        return records.reject(conn, dispute_id, reason or "", actor=actor(principal))
