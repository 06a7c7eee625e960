"""The pages of sharing requests (供需对接), server-rendered forms without scripts: the consumer's
request form and "my requests", the provider's inbox (approve, narrowing fields and adding
masking; reject with a reason), the authority's review queue and supervision page, and the
revoke form on the checklist.

Every form posts to a route here that calls the same service as the REST API
(`exchange.requests`, `exchange.run.ending`), which authorises the step. A refused step
re-renders its page with the service's one sentence and the API's status (403 or 422; an
unknown request or subscription 404), and changes nothing. Posts pass the same-origin check
of every browser form (`exchange.web.origin`).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

import catalog
import exchange.requests as sharing
from catalog import tables
from exchange.run import deliveries, ending
from exchange.store import Principal
from exchange.web import pages, queries
from exchange.web.api import validation_sentence
from exchange.web.auth import PageError, PagePrincipal
from exchange.web.requests_api import supervision_report
from exchange.web.service import Context, Denied, Missing
from govex.errors import DeclarationError, Forbidden, one_line
from govex.workdays import local_date

router = APIRouter(include_in_schema=False)

STEPS = ("review", "approve", "reject", "withdraw")
DELIVERIES_SHOWN = 10  # the latest deliveries of a request's subscription on its page
DEFAULT_VALIDITY_DAYS = 365  # the form's suggested window; the consumer may change it
FORM_CHOICES = 200  # resources the form lists at once; beyond, a department's at a time
REQUEST_ID = re.compile(r"REQ-\d{8}-\d{4,}")  # `back` of the revoke form: a request page


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


def _status(error: Exception) -> int:
    """The REST API's status for a refused step: the page answers the same."""
    if isinstance(error, Forbidden | Denied):
        return 403
    if isinstance(error, sharing.UnknownRequest | ending.UnknownSubscription | Missing):
        return 404
    if isinstance(error, ending.AlreadyEnded):
        return 409
    return 422


def _sentence(error: Exception) -> str:
    if isinstance(error, ValidationError):
        return validation_sentence(
            [{**e, "loc": ("form field", *e["loc"])} for e in error.errors()])
    if isinstance(error, DeclarationError):
        return one_line(error.message)
    return one_line(str(error))


# ---- the consumer's form -------------------------------------------------------------------


def own_connections(conn: sa.Connection, department: str) -> list[str]:
    """Database and file connections the department owns (`owner:`): the targets it may ask
    deliveries to."""
    found = []
    for name, declaration in conn.execute(
        sa.select(tables.connections.c.name, tables.connections.c.declaration)
        .order_by(tables.connections.c.name)
    ):
        declared = catalog.Connection.model_validate(declaration)
        if declared.owner == department and declared.kind != "kafka":
            found.append(str(name))
    return found


def _form_page(
    request: Request, principal: Principal, values: dict[str, Any], *,
    error: str | None = None, status_code: int = 200,
) -> HTMLResponse:
    ctx = _ctx(request)
    code = str(values.get("resource") or "")
    fields: list[dict[str, Any]] = []
    shown: dict[str, Any] | None = None
    if code:
        try:
            shown = ctx.resource(principal, code)
        except (Denied, Missing) as missing:
            error = error or _sentence(missing)
            status_code = status_code if status_code != 200 else 404
    department = str(values.get("department") or "") or None
    with ctx.store.connect() as conn:
        # The choice lists one providing department's resources once the catalog is too long
        # for one list (a city's thousands would make the form megabytes): the department
        # asked for, or the chosen resource's.
        long_catalog = catalog.count_resources(conn) > FORM_CHOICES
        if long_catalog and department is None and shown is not None:
            department = str(shown["provider"])
        listed = ([] if long_catalog and department is None
                  else catalog.list_resources(conn, provider=department))
    resources = [r for r in listed if r["sharing"] != "none" and r["classification"] != "L4"]
    if shown is not None:
        for name, spec in shown["contract_schema"].get("properties", {}).items():
            fields.append({"name": name, "pii": spec.get("x-govex-pii", ""),
                           "description": spec.get("description") or spec.get("title")
                           or ""})
    with ctx.store.connect() as conn:
        connections = own_connections(conn, principal.department)
    return pages.render(
        request, "request_new.html", principal, status_code=status_code, error=error,
        resources=resources, fields=fields, values=values, connections=connections,
        masking_functions=catalog.MASKING_FUNCTIONS, modes=catalog.DELIVERY_MODES,
        departments=ctx.department_names(), department=department,
        by_department=long_catalog or department is not None,
    )


def _defaults(resource: str | None, delivery: str | None) -> dict[str, Any]:
    today = local_date()
    return {"resource": resource or "", "fields": [], "masking": {}, "mode": "upsert",
            "delivery": "verify" if delivery == "verify" else "bulk",
            "valid_from": today.isoformat(),
            "valid_until": (today + dt.timedelta(days=DEFAULT_VALIDITY_DAYS)).isoformat()}


@router.get("/requests/new", response_class=HTMLResponse)
def request_form(request: Request, principal: PagePrincipal, resource: str | None = None,
                 department: str | None = None, delivery: str | None = None) -> HTMLResponse:
    """Pick a resource (of a providing department, in a large catalog) and how it is
    delivered, then its fields (from the contract), purpose, legal basis, schedule and
    validity; for a bulk delivery also masking, target, mode and retention after the end
    (a verify request receives no copy, so its form has none of those to send)."""
    return _form_page(request, principal,
                      {**_defaults(resource, delivery), "department": department})


def _masking(pairs: list[str]) -> dict[str, str]:
    """`field:function` of the per-field selects; `none` means unmasked."""
    chosen: dict[str, str] = {}
    for pair in pairs:
        name, _, function = pair.partition(":")
        if name and function and function != "none":
            chosen[name] = function
    return chosen


def _copy_asked(
    delivery: str, masks: dict[str, str], connection: str, table: str, mode: str,
    retain_after_end: bool,
) -> dict[str, Any]:
    """What the form asks about the copy: for bulk, all of it (mode upsert unless chosen);
    for verify, which has no copy, only what was posted anyway (the verify form sends none
    of it), so that the service refuses it as the API would."""
    if delivery != "verify":
        return {"masking": masks, "mode": mode or "upsert",
                "target": {"connection": connection, "table": table},
                "retain_after_end": retain_after_end}
    sent: dict[str, Any] = {}
    if connection or table:
        sent["target"] = {"connection": connection, "table": table}
    if masks:
        sent["masking"] = masks
    if mode:
        sent["mode"] = mode
    if retain_after_end:
        sent["retain_after_end"] = True
    return sent


@router.post("/requests", response_class=HTMLResponse)
def submit_form(
    request: Request,
    principal: PagePrincipal,
    resource: Annotated[str, Form()],
    purpose: Annotated[str, Form()] = "",
    legal_basis: Annotated[str, Form()] = "",
    fields: Annotated[list[str] | None, Form()] = None,
    masking: Annotated[list[str] | None, Form()] = None,
    delivery: Annotated[str, Form()] = "bulk",
    connection: Annotated[str, Form()] = "",
    table: Annotated[str, Form()] = "",
    mode: Annotated[str, Form()] = "",
    schedule: Annotated[str, Form()] = "",
    valid_from: Annotated[str, Form()] = "",
    valid_until: Annotated[str, Form()] = "",
    retain_after_end: Annotated[bool, Form()] = False,
) -> Response:
    """Submit the form as `POST /api/v1/requests` would; refused: the form again, as filled
    in, with the sentence saying why."""
    chosen = [f for f in fields or [] if f]
    masks = {f: m for f, m in _masking(masking or []).items() if f in chosen}
    values: dict[str, Any] = {
        "resource": resource, "purpose": purpose, "legal_basis": legal_basis,
        "fields": chosen, "masking": masks, "delivery": delivery, "connection": connection,
        "table": table, "mode": mode or "upsert", "schedule": schedule,
        "valid_from": valid_from, "valid_until": valid_until,
        "retain_after_end": retain_after_end,
    }
    try:
        ask = sharing.Ask.model_validate({
            "resource": resource, "purpose": purpose, "legal_basis": legal_basis,
            "fields": chosen, "delivery": delivery,
            **_copy_asked(delivery, masks, connection, table, mode, retain_after_end),
            "schedule": schedule.strip() or None, "valid_from": valid_from,
            "valid_until": valid_until,
        })
        asked = sharing.submit(_ctx(request).store, principal, ask)
    except (ValidationError, Forbidden, DeclarationError) as error:
        return _form_page(request, principal, values, error=_sentence(error),
                          status_code=_status(error))
    return RedirectResponse(f"{pages.base_path(request)}/requests/{asked['id']}",
                            status_code=303)


# ---- lists ---------------------------------------------------------------------------------


@router.get("/requests", response_class=HTMLResponse)
def requests_page(request: Request, principal: PagePrincipal) -> HTMLResponse:
    """What awaits the signed-in department first (the authority: the review queue; a
    provider: its inbox of reviewed requests; a consumer: its requests still open), then
    every request it may read."""
    ctx = _ctx(request)
    every = sharing.list_requests(ctx.store, principal)
    awaiting = {"authority": ("submitted",), "provider": ("reviewed",),
                "consumer": ("submitted", "reviewed")}.get(principal.role, ())
    return pages.render(
        request, "requests.html", principal, requests=every,
        awaiting=[r for r in every if r["state"] in awaiting],
        overdue=sum(1 for r in every if r["overdue"]), departments=ctx.department_names(),
    )


# ---- one request and its steps -------------------------------------------------------------


def _subscription(request: Request, principal: Principal,
                  found: dict[str, Any]) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The approval's subscription as the checklist shows it (state, why it ended) and its
    latest deliveries: the consumer sees its data arrive, or why it stopped."""
    sub_id = found["subscription"]
    if not sub_id or found["state"] not in ("approved", "revoked"):
        return None, []
    with _ctx(request).store.connect() as conn:
        line = next((s for s in queries.visible_subscriptions(conn, principal, found["resource"])
                     if s["id"] == sub_id), None)
        shipped = [dict(d) for d in conn.execute(
            sa.select(deliveries).where(deliveries.c.subscription == sub_id)
            .order_by(deliveries.c.started_at.desc()).limit(DELIVERIES_SHOWN)
        ).mappings()]
    return line, shipped


def _request_page(
    request: Request, principal: Principal, request_id: str, *,
    error: str | None = None, status_code: int = 200,
) -> HTMLResponse:
    ctx = _ctx(request)
    try:
        found = sharing.get_request(ctx.store, principal, request_id)
    except (Forbidden, DeclarationError) as refused:
        raise PageError(_status(refused), _sentence(refused)) from refused
    line, shipped = _subscription(request, principal, found)
    provider = found["provider"]
    mine = principal.department
    return pages.render(
        request, "request.html", principal, status_code=status_code, error=error, req=found,
        subscription=line, deliveries=shipped, departments=ctx.department_names(),
        masking_functions=catalog.MASKING_FUNCTIONS,
        may_review=principal.role == "authority" and found["state"] == "submitted",
        may_answer=(principal.role == "provider" and mine == provider
                    and found["state"] == "reviewed"),
        may_withdraw=(principal.role == "consumer" and mine == found["consumer"]
                      and found["state"] in ("submitted", "reviewed")),
        may_revoke=(line is not None and line["state"] == "active"
                    and ending.may_revoke(principal, provider)),
    )


def _refused_on_request(request: Request, principal: Principal, request_id: str,
                        error: Exception) -> HTMLResponse:
    """The request page again with the refused step's sentence; the error page with it when
    the principal may not even read the request (or it does not exist)."""
    try:
        return _request_page(request, principal, request_id, error=_sentence(error),
                             status_code=_status(error))
    except PageError as unreadable:
        raise PageError(_status(error), _sentence(error)) from unreadable


@router.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(request: Request, principal: PagePrincipal, request_id: str) -> HTMLResponse:
    return _request_page(request, principal, request_id)


def _take(
    store: sa.Engine, principal: Principal, request_id: str, step: str, decision: str,
    reason: str, fields: list[str], masking: dict[str, str],
) -> None:
    """One step of the request page's forms, through the service (which authorises it)."""
    if step == "review":
        if decision not in ("compliant", "return"):
            msg = "choose compliant (合规) or return (退回) with a reason"
            raise DeclarationError(msg, field="decision")
        sharing.review(store, principal, request_id, compliant=decision == "compliant",
                       reason=reason.strip() or None)
    elif step == "approve":
        # Masking of an unchecked field is moot: only the approved fields' selects count.
        sharing.approve(store, principal, request_id, fields=fields,
                        masking={f: m for f, m in masking.items() if f in fields})
    elif step == "reject":
        sharing.reject(store, principal, request_id, reason)
    else:
        sharing.withdraw(store, principal, request_id)


@router.post("/requests/{request_id}/{step}", response_class=HTMLResponse)
def step_form(
    request: Request,
    principal: PagePrincipal,
    request_id: str,
    step: str,
    decision: Annotated[str, Form()] = "",
    reason: Annotated[str, Form()] = "",
    fields: Annotated[list[str] | None, Form()] = None,
    masking: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """review (`decision` compliant or return, with `reason`), approve (the fields left
    checked, masking chosen for unmasked ones), reject (`reason`), withdraw."""
    if step not in STEPS:
        raise PageError(404, f"no step '{step}': use {', '.join(STEPS)}")
    try:
        _take(_ctx(request).store, principal, request_id, step, decision, reason,
              [f for f in fields or [] if f], _masking(masking or []))
    except (Forbidden, DeclarationError) as error:
        return _refused_on_request(request, principal, request_id, error)
    return RedirectResponse(f"{pages.base_path(request)}/requests/{request_id}",
                            status_code=303)


# ---- revocation ----------------------------------------------------------------------------


@router.post("/subscriptions/{subscription_id}/revoke", response_class=HTMLResponse)
def revoke_form(
    request: Request,
    principal: PagePrincipal,
    subscription_id: str,
    reason: Annotated[str, Form()] = "",
    back: Annotated[str, Form()] = "",
) -> Response:
    """The provider or the authority ends a subscription, with a reason (required): the next
    run delivers nothing to it and purges its target. `back`: the request page it was
    revoked from, else the checklist."""
    ctx = _ctx(request)
    try:
        with ctx.store.begin() as conn:
            ending.revoke(conn, subscription_id, principal, reason)
    except (Forbidden, DeclarationError) as error:
        if REQUEST_ID.fullmatch(back):
            return _refused_on_request(request, principal, back, error)
        return pages.subscriptions_response(request, principal, error=_sentence(error),
                                            status_code=_status(error))
    target = f"/requests/{back}" if REQUEST_ID.fullmatch(back) else "/subscriptions"
    return RedirectResponse(pages.base_path(request) + target, status_code=303)


# ---- supervision ---------------------------------------------------------------------------


@router.get("/supervision", response_class=HTMLResponse)
def supervision_page(request: Request, principal: PagePrincipal) -> HTMLResponse:
    """The authority's supervision: per providing department, answers, median answer time,
    overdue now, refusal reasons; every overdue request and dispute."""
    try:
        report = supervision_report(request, principal)
    except Forbidden as error:
        raise PageError(403, _sentence(error)) from error
    return pages.render(request, "supervision.html", principal, report=report,
                        departments=_ctx(request).department_names())
