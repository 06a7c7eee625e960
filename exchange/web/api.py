"""The REST API (INTERFACES.md): `/api/v1/...`, JSON, bearer tokens; `/healthz` without.

401 without or with a bad (unknown, expired, revoked) token or an ended sign-in session, 403
when the role may not, 404 for unknown codes and runs, 413 for a body over its route's limit
(`exchange.web.limits`), 422 for a body that is not what the route takes. Every error is
`{"detail": "<one sentence>"}` naming the body field, query parameter or value at fault, and a
refused request changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Request, Response
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

import records
from exchange.web import paging, policy
from exchange.web.auth import ApiPrincipal
from exchange.web.paging import API_PER_PAGE, MAX_PER_PAGE, Page, PageRequest
from exchange.web.queries import MAX_WINDOW_DAYS, TOP_WINDOW_DAYS
from exchange.web.service import Context, Denied, Limited, Missing
from govex.errors import DeclarationError, one_line


class Problem(BaseModel):
    """Every error answer: one sentence saying what was wrong and where."""

    detail: str = Field(description="what was wrong, naming the field or value at fault")


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no token, or an unknown, expired or revoked one, "
          "or a sign-in session that ended"},
    403: {"model": Problem, "description": "the token's role or department may not do this, "
          "or a request carrying the sign-in cookie came from another origin"},
    404: {"model": Problem, "description": "unknown resource code or run id"},
    422: {"model": Problem, "description": "a body, query parameter or path value that is not "
          "what the route takes"},
}
_TOO_LARGE: dict[int | str, dict[str, Any]] = {
    413: {"model": Problem, "description": "the body is over this route's size limit"},
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class ResourceSummary(_Model):
    code: str
    name: str
    provider: str = Field(description="providing department code")
    contract: str = Field(description="contract name@version")
    sharing: Literal["unconditional", "conditional", "none"]
    classification: str
    update_frequency: str = Field(description="ISO-8601 duration the provider promises")
    subscriptions: int


class DeliveryOut(_Model):
    subscription: str
    delivered: int
    status: str


class RunOut(_Model):
    """The object `govex run --json` prints."""

    run_id: str
    resource: str
    status: Literal["running", "success", "failed", "blocked"]
    read: int
    passed: int
    quarantined: int
    deliveries: list[DeliveryOut]
    started_at: str | None
    ended_at: str | None
    message: str


class CheckCount(_Model):
    check: str
    column: str | None
    evaluated: int
    failed: int
    failure_rate: float


class QualityRun(_Model):
    run_id: str
    status: str
    started_at: str | None
    ended_at: str | None
    read: int
    passed: int
    quarantined: int
    pass_rate: float | None = Field(description="passed / read; null for a run that read none")
    checks: list[CheckCount]
    data_docs: str | None = Field(description="path of the run's Data Docs, if rendered")


class FailingCheck(_Model):
    check: str
    column: str | None
    failed: int = Field(description="failed records summed over the runs of the window")
    evaluated: int
    runs_failing: int


class FailingWindow(_Model):
    days: int = Field(description="the window of top_failing_checks, in days (`?days=`)")
    since: str = Field(description="start of the window (now minus `days`)")
    runs: int = Field(description="finished runs started in the window")


class Backlog(_Model):
    records: int = Field(description="records currently in quarantine")
    oldest_first_seen: str | None
    age_seconds: int | None


class TimelinessOut(_Model):
    state: Literal["on_time", "late", "never", "unknown"]
    update_frequency: str
    last_success: str | None
    due: str | None


class QualityReport(_Model):
    """Quality results over time for one resource: its recent runs oldest first."""

    resource: str
    name: str | None
    provider: str | None
    max_error_rate: float
    runs: list[QualityRun]
    pass_rate: float | None = Field(
        description="records passed / records read over the runs shown that read any; the "
        "quality dashboard's department rate pools runs the same way")
    rated_runs: int = Field(description="the runs shown that read any record (pass_rate's N)")
    top_failing_checks: list[FailingCheck] = Field(
        description="most failed records first, over the runs of top_failing_window")
    top_failing_window: FailingWindow
    quarantine: Backlog
    timeliness: TimelinessOut


class FailedCheck(_Model):
    check: str
    column: str | None = None
    detail: str | None = Field(
        default=None, description="the part of the check that failed, e.g. 'check digit'"
    )
    value: str | None = Field(
        default=None, description="the failing value, masked by the column's x-govex-pii"
    )


class QuarantinedRecord(_Model):
    """The shape of `govex quality quarantine --json`, plus resource, last_seen and record."""

    resource: str
    key: str
    failed_checks: list[FailedCheck]
    run_id: str | None
    first_seen: str | None
    last_seen: str | None
    record: Any = None


class Health(BaseModel):
    status: Literal["ok"]


_PLACES = {"query": "query parameter", "path": "path parameter", "header": "header",
           "cookie": "cookie"}
# pydantic's wording where it speaks Python rather than JSON.
_PHRASES = {"missing": "is required", "dict_type": "must be a JSON object",
            "model_attributes_type": "must be a JSON object"}


def validation_sentence(errors: Sequence[Mapping[str, Any]]) -> str:
    """FastAPI's list of validation errors as one sentence naming the first field at fault
    (`body field 'reason'`, `query parameter 'limit'`), for the 422 answer."""
    if not errors:
        return "the request is not what this route takes"
    first = errors[0]
    loc = [str(part) for part in first.get("loc", ())]
    message = str(first.get("msg", "is not valid"))
    if first.get("type") == "json_invalid":
        reason = (first.get("ctx") or {}).get("error", "")
        sentence = f"the request body is not valid JSON ({reason})" if reason else (
            "the request body is not valid JSON")
    else:
        kind, names = (loc[0], loc[1:]) if loc else ("body", [])
        field = ".".join(names)
        if kind == "body":
            where = f"body field '{field}'" if field else "the request body"
        else:
            where = f"{_PLACES.get(kind, kind)} '{field}'"
        phrase = _PHRASES.get(str(first.get("type")))
        sentence = f"{where} {phrase}" if phrase else f"{where}: {message[:1].lower()}{message[1:]}"
    more = len(errors) - 1
    if more:
        sentence += f" (and {more} more problem{'s' if more > 1 else ''})"
    return sentence


def _http(error: Exception) -> HTTPException:
    if isinstance(error, Limited):
        return HTTPException(status_code=429, detail=str(error),
                             headers={"Retry-After": str(error.retry_after)})
    if isinstance(error, Denied):
        return HTTPException(status_code=403, detail=one_line(str(error)))
    return HTTPException(status_code=404, detail=one_line(str(error)))


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


router = APIRouter()
api = APIRouter(prefix="/api/v1", responses=ERRORS)


@router.get("/healthz", response_model=Health, tags=["health"])
def healthz() -> dict[str, str]:
    """Liveness, no authentication."""
    return {"status": "ok"}


_DEPARTMENT_404: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "unknown resource code or department"},
}
_PAGED: dict[int | str, dict[str, Any]] = {
    200: {"headers": {
        "X-Total-Count": {"description": "the length of the whole list, all pages",
                          "schema": {"type": "integer"}},
        "Link": {"description": "RFC 8288 links to the first, prev, next and last pages",
                 "schema": {"type": "string"}},
    }},
}
PageNumber = Annotated[int, Query(ge=1, description="page number, from 1")]
PerPage = Annotated[int, Query(ge=1, le=MAX_PER_PAGE, description="items per page")]
Department = Annotated[str | None, Query(description="only this department's (its code)")]


def _page_out(request: Request, response: Response, page: Page[dict[str, Any]],
              size_parameter: str = "per_page") -> list[dict[str, Any]]:
    """The page's items as the body (a bare list, as before paging); where it stands in the
    whole list in the `X-Total-Count` and `Link` headers."""
    response.headers.update(paging.headers(request.url, page, size_parameter))
    return page.items


@api.get("/resources", response_model=list[ResourceSummary], tags=["catalog"],
         responses={**_PAGED, **_DEPARTMENT_404})
def list_resources(
    request: Request, response: Response, principal: ApiPrincipal,
    department: Department = None, page: PageNumber = 1, per_page: PerPage = API_PER_PAGE,
) -> list[dict[str, Any]]:
    """The catalog: one summary per resource, ordered by code (every role), `per_page` a page
    (default 500); `department` keeps one providing department's. `X-Total-Count` and `Link`
    say where the page stands."""
    try:
        found = _ctx(request).resource_page(principal, department, PageRequest(page, per_page))
    except Missing as error:
        raise _http(error) from error
    return _page_out(request, response, found)


@api.get("/resources/{code}", tags=["catalog"])
def show_resource(request: Request, principal: ApiPrincipal, code: str) -> dict[str, Any]:
    """One resource as `govex catalog show --json` prints it: declaration, provider department,
    contract schema and the subscriptions the caller may read."""
    try:
        return _ctx(request).resource(principal, code)
    except (Denied, Missing) as error:
        raise _http(error) from error


@api.get("/subscriptions", tags=["catalog"], responses={**_PAGED, **_DEPARTMENT_404})
def list_subscriptions(
    request: Request,
    response: Response,
    principal: ApiPrincipal,
    resource: str | None = Query(None, description="only subscriptions to this resource"),
    department: str | None = Query(
        None, description="only the lines this department takes part in, as the consumer or "
        "as the resource's provider"),
    page: PageNumber = 1,
    per_page: PerPage = API_PER_PAGE,
) -> list[dict[str, Any]]:
    """The shared-responsibility checklist (共享责任清单): the subscription declarations the caller
    may read (a consumer its own, a provider those to its resources and its own), by id,
    `per_page` a page (default 500). `X-Total-Count` and `Link` say where the page stands."""
    try:
        found = _ctx(request).subscription_page(
            principal, resource, department, PageRequest(page, per_page))
    except Missing as error:
        raise _http(error) from error
    return _page_out(request, response, found)


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000,
                        description="why the subscription ends (the consumer sees it)")


@api.post("/subscriptions/{subscription_id}/revoke", tags=["catalog"], responses={
    409: {"model": Problem, "description": "the subscription was already revoked"},
})
def revoke_subscription(
    request: Request, principal: ApiPrincipal, subscription_id: str, body: RevokeIn
) -> dict[str, Any]:
    """The resource's provider or the platform authority ends a subscription, with a reason:
    the next run delivers nothing to it and purges what it was delivered (unless its approval
    said `retain_after_end`). Anyone else: 403, nothing changed."""
    from exchange.run import ending
    from govex.errors import Forbidden

    try:
        with _ctx(request).store.begin() as conn:
            return ending.revoke(conn, subscription_id, principal, body.reason)
    except Forbidden as error:
        raise HTTPException(status_code=403, detail=one_line(str(error))) from error
    except ending.UnknownSubscription as error:
        raise HTTPException(status_code=404, detail=one_line(str(error))) from error
    except ending.AlreadyEnded as error:
        raise HTTPException(status_code=409, detail=one_line(str(error))) from error
    except DeclarationError as error:
        raise HTTPException(status_code=422, detail=one_line(str(error))) from error


@api.get("/runs", response_model=list[RunOut], tags=["runs"],
         responses={**_PAGED, **_DEPARTMENT_404})
def list_runs(
    request: Request,
    response: Response,
    principal: ApiPrincipal,
    resource: str | None = Query(None, description="only runs of this resource"),
    department: Department = None,
    limit: int = Query(100, ge=1, le=1000, description="runs per page"),
    page: PageNumber = 1,
) -> list[dict[str, Any]]:
    """Run summaries, newest first (a provider: its own resources' only), `limit` a page;
    `department` keeps the runs of one providing department's resources. `X-Total-Count` and
    `Link` say where the page stands."""
    try:
        found = _ctx(request).run_page(principal, resource, department, PageRequest(page, limit))
    except (Denied, Missing) as error:
        raise _http(error) from error
    return _page_out(request, response, found, "limit")


@api.get("/runs/{run_id}", response_model=RunOut, tags=["runs"])
def show_run(request: Request, principal: ApiPrincipal, run_id: str) -> dict[str, Any]:
    """One run summary, as `govex run --json` prints it."""
    try:
        return _ctx(request).run(principal, run_id)
    except (Denied, Missing) as error:
        raise _http(error) from error


@api.get("/quality/{code}", response_model=QualityReport, tags=["quality"])
def quality(
    request: Request, principal: ApiPrincipal, code: str,
    days: int = Query(TOP_WINDOW_DAYS, ge=1, le=MAX_WINDOW_DAYS,
                      description="window of top_failing_checks, in days"),
) -> dict[str, Any]:
    """Quality results over time: per run the pass rate and per-check counts, the pass rate
    over those runs, the most failing checks over the last `days` days (default 30), the
    quarantine backlog and timeliness against the promised update frequency."""
    try:
        return _ctx(request).quality(principal, code, days)
    except (Denied, Missing) as error:
        raise _http(error) from error


@api.get(
    "/quality/{code}/quarantine", response_model=list[QuarantinedRecord], tags=["quality"]
)
def quarantine(request: Request, principal: ApiPrincipal, code: str) -> list[dict[str, Any]]:
    """The resource's quarantined records, oldest first (a provider: its own resources only)."""
    try:
        return _ctx(request).quarantine(principal, code)
    except (Denied, Missing) as error:
        raise _http(error) from error


class LineageAccepted(_Model):
    id: int = Field(description="id of the stored event")


_LINEAGE_ERRORS: dict[int | str, dict[str, Any]] = {
    **_TOO_LARGE,
    403: {"model": Problem, "description": "the token is not an admin or lineage_producer "
          "one, or the event speaks for govex's own runs (its namespace, producer or run ids)"},
    422: {"model": Problem, "description": "not a valid OpenLineage RunEvent (spec 2-0-2), or "
          "NaN/Infinity in the JSON"},
}


@api.post("/lineage", response_model=LineageAccepted, status_code=201, tags=["lineage"],
          responses=_LINEAGE_ERRORS)
def accept_lineage(
    request: Request, principal: ApiPrincipal,
    event: Annotated[dict[str, Any], Body(description="one OpenLineage RunEvent")],
) -> dict[str, int]:
    """Store one OpenLineage RunEvent from another producer (the path the OpenLineage HTTP
    transport and Marquez use, so Airflow's provider can send here with an api_key token).
    Admin and lineage_producer tokens only; the event must be valid against the spec and may
    not speak for govex's own runs, whose events govex records itself. Stored as sent."""
    from exchange.web import lineage_intake

    try:
        return {"id": lineage_intake.accept(_ctx(request).store, principal, event)}
    except Denied as error:
        raise _http(error) from error
    except DeclarationError as error:
        raise HTTPException(status_code=422, detail=str(error)) from error


# ---- trace and disputes ---------------------------------------------------------------------


class TraceSource(_Model):
    connection: str
    table: str | None
    current_hash: str | None = Field(
        description="fingerprint of the record at the source now; null when it is gone (or "
        "hidden from a consumer)"
    )


class TraceDelivery(_Model):
    subscription: str
    consumer: str | None
    run_id: str
    delivered_at: str | None
    hash: str = Field(description="fingerprint of the values the subscription received")
    fields: list[str]


class TraceQuality(_Model):
    run_id: str
    passed: bool
    failed_checks: list[FailedCheck]


class TraceDispute(_Model):
    id: str
    state: Literal["open", "acknowledged", "resolved", "rejected"]


class TraceOut(_Model):
    """The object `govex trace --json` prints."""

    resource: str
    key: str
    provider: str
    source: TraceSource
    deliveries: list[TraceDelivery]
    quality: list[TraceQuality]
    disputes: list[TraceDispute]


class DisputeFlagOut(_Model):
    """Whether one subscription's copy of the disputed record shows the flag (异议标注):
    `_govex_disputed` on its row (upsert, snapshot), a `_govex_disputes` row (append)."""

    subscription: str
    consumer: str
    state: Literal["flagged", "pending", "cleared"] = Field(
        description="flagged: the copy shows the open dispute; cleared: the dispute is closed "
        "and the copy no longer shows it; pending: the target has not been written yet (it "
        "was unreachable): govex writes it at the next run of the resource"
    )
    error: str | None = Field(default=None, description="why the last write failed")


class DisputeOut(_Model):
    """A dispute, as `govex dispute show --json` prints it."""

    id: str
    state: Literal["open", "acknowledged", "resolved", "rejected"]
    resource: str
    key: str
    field: str
    claim: str
    opened_by: str
    provider: str
    due: str
    overdue: bool
    reason: str | None
    evidence: dict[str, Any] | None
    opened_at: str
    updated_at: str
    flags: list[DisputeFlagOut] | None = Field(
        default=None,
        description="the flag of each subscription holding the record (a consumer sees its "
        "own); in one dispute, and in the list with `consumer`",
    )


def _storable(value: str) -> str:
    """Text a body field carries into the store: no NUL (PostgreSQL text cannot hold it) and no
    lone surrogate (not a character; no UTF-8 spelling), refused as 422 naming the field."""
    if "\x00" in value:
        msg = "holds a NUL character (U+0000), which govex cannot store"
        raise ValueError(msg)
    if any("\ud800" <= char <= "\udfff" for char in value):
        msg = "holds a lone surrogate, which is not a character"
        raise ValueError(msg)
    return value


StoredText = Annotated[str, AfterValidator(_storable)]


class DisputeIn(BaseModel):
    """A consumer's objection to one field of a delivered record."""

    model_config = ConfigDict(extra="forbid")

    resource: StoredText = Field(description="resource code, e.g. PSB-RES-001")
    key: StoredText = Field(description="record key values joined by ',', as delivered to "
                            "you (hashed where it was hashed) or its _govex_key; an admin "
                            "gives the source key")
    field: StoredText = Field(description="the disputed field (of the contract)")
    claim: StoredText = Field(min_length=1, description="what is wrong with the value")
    opened_by: StoredText | None = Field(
        default=None, description="consumer department; default the token's (admin: any)"
    )


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: StoredText = Field(min_length=1, description="why the value stands")


class ResolveIn(BaseModel):
    """Optional: without a body, a resolve that would re-deliver nothing is refused (409)."""

    model_config = ConfigDict(extra="forbid")

    force: bool = Field(
        default=False, description="close the dispute as resolved even when every "
        "subscription already holds the source's value (nothing was corrected; rejecting is "
        "usually meant)",
    )


def _dispute_http(error: Exception) -> HTTPException:
    from govex.errors import DataQualityError, FatalError, TransientError
    from records import DisputeStateError

    if isinstance(error, Denied | Missing | Limited):
        return _http(error)
    # TransientError: a run of the resource holds its lease; resolving again later works.
    if isinstance(error, DisputeStateError | DataQualityError | FatalError | TransientError):
        return HTTPException(status_code=409, detail=one_line(str(error)))
    return HTTPException(status_code=400, detail=one_line(str(error)))


_NOT_RECEIVED = (
    "unknown resource code; for a consumer also a key it never received (the same answer "
    "whether or not the record exists)"
)
_LOOKUP: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": _NOT_RECEIVED},
    429: {"model": Problem, "description": "over GOVEX_LOOKUP_RATE lookups (traces and dispute "
          "openings) by this token in the current minute; the Retry-After header says when "
          "to retry",
          "headers": {"Retry-After": {"description": "seconds until the next minute",
                                      "schema": {"type": "integer"}}}},
}
_DISPUTE_ERRORS: dict[int | str, dict[str, Any]] = {
    **_TOO_LARGE,
    400: {"model": Problem,
          "description": "bad input: unknown field, department or record, empty reason"},
    409: {"model": Problem, "description": "the dispute's state does not allow the step, "
          "the corrected record fails the quality gate, or (resolve without force) nothing "
          "changed at the source: reject the dispute instead"},
}


class TraceIn(BaseModel):
    """Which record to trace. In a body rather than the URL, so the key (often a citizen ID
    number) reaches no access log, proxy log or browser history."""

    model_config = ConfigDict(extra="forbid")

    resource: StoredText = Field(description="resource code, e.g. PSB-RES-001")
    key: StoredText = Field(
        min_length=1,
        description="record key values joined by ',', as delivered to you (hashed where it "
        "was hashed) or its _govex_key",
    )


def _trace(request: Request, principal: ApiPrincipal, code: str, key: str) -> dict[str, Any]:
    from exchange.web import disputes

    try:
        return disputes.trace_for(_ctx(request).store, principal, code, key)
    except (Denied, Missing, Limited) as error:
        raise _http(error) from error


@api.post("/trace", response_model=TraceOut, tags=["lineage"],
          responses={**_TOO_LARGE, **_LOOKUP})
def trace_by_body(request: Request, principal: ApiPrincipal, body: TraceIn) -> dict[str, Any]:
    """Provenance of one record, named in the body: the same answer as
    `GET /api/v1/trace/{code}/{key}`, with the key kept out of URLs and access logs. Prefer
    this form."""
    return _trace(request, principal, body.resource, body.key)


@api.get("/trace/{code}/{key:path}", response_model=TraceOut, tags=["lineage"],
         responses=_LOOKUP)
def trace(request: Request, principal: ApiPrincipal, code: str, key: str) -> dict[str, Any]:
    """Provenance of one record: its source, every delivery (newest first), its quality history
    and disputes. Consumers see only their own deliveries and name the record by what they
    received: the key as delivered (hashed where it was hashed) or its `_govex_key`; any other
    key answers 404, whether or not the record exists. Counted against GOVEX_LOOKUP_RATE (429
    with Retry-After beyond). The key travels in the URL: prefer `POST /api/v1/trace`."""
    return _trace(request, principal, code, key)


@api.post("/disputes", response_model=DisputeOut, status_code=201, tags=["disputes"],
          responses={**_DISPUTE_ERRORS, **_LOOKUP})
def open_dispute(request: Request, principal: ApiPrincipal, body: DisputeIn) -> dict[str, Any]:
    """Open a dispute (a consumer, on a record of a resource it subscribes to); it is routed
    to the resource's provider and due in GOVEX_DISPUTE_DAYS working days. A consumer names
    the record as it received it (as for trace: 404 for a key it never received); an admin by
    its source key. Counted against GOVEX_LOOKUP_RATE (429 with Retry-After beyond)."""
    from exchange.web import disputes

    try:
        return disputes.open_for(
            _ctx(request).store, principal, resource=body.resource, key=body.key,
            field=body.field, claim=body.claim, opened_by=body.opened_by,
        )
    except (Denied, Missing, Limited, DeclarationError) as error:
        raise _dispute_http(error) from error


@api.get("/disputes", response_model=list[DisputeOut], tags=["disputes"])
def list_disputes(
    request: Request,
    principal: ApiPrincipal,
    state: Literal["open", "acknowledged", "resolved", "rejected"] | None = Query(None),
    resource: str | None = Query(None, description="only disputes on this resource"),
    consumer: str | None = Query(
        None, description="`me` (a consumer token: its department) or a department code "
        "(admin, authority, checklist_owner, auditor): every dispute on a record that "
        "department received, whoever opened it, with its subscriptions' flags",
    ),
) -> list[dict[str, Any]]:
    """Disputes the caller may read, newest first, with `overdue` flags. With `consumer`, the
    disputes on records that department received (异议标注): while one is open or
    acknowledged its copies carry `_govex_disputed = true`; `flags` says, per subscription,
    whether the target shows it yet. A dispute the department did not open shows no claim,
    opener, reason or evidence."""
    from exchange.web import disputes

    try:
        return disputes.list_for(_ctx(request).store, principal, state=state,
                                 resource=resource, consumer=consumer)
    except Denied as error:
        raise _http(error) from error


@api.get("/disputes/{dispute_id}", response_model=DisputeOut, tags=["disputes"])
def show_dispute(request: Request, principal: ApiPrincipal, dispute_id: str) -> dict[str, Any]:
    """One dispute with its history and, once resolved, the re-delivery evidence."""
    from exchange.web import disputes

    try:
        return disputes.show_for(_ctx(request).store, principal, dispute_id)
    except (Denied, Missing) as error:
        raise _http(error) from error


@api.post("/disputes/{dispute_id}/ack", response_model=DisputeOut, tags=["disputes"],
          responses=_DISPUTE_ERRORS)
def ack_dispute(request: Request, principal: ApiPrincipal, dispute_id: str) -> dict[str, Any]:
    """The provider acknowledges an open dispute."""
    from exchange.web import disputes

    try:
        return disputes.step_for(_ctx(request).store, principal, dispute_id, "ack")
    except (Denied, Missing, DeclarationError) as error:
        raise _dispute_http(error) from error


@api.post("/disputes/{dispute_id}/reject", response_model=DisputeOut, tags=["disputes"],
          responses=_DISPUTE_ERRORS)
def reject_dispute(
    request: Request, principal: ApiPrincipal, dispute_id: str, body: RejectIn
) -> dict[str, Any]:
    """The provider rejects an acknowledged dispute, with a reason."""
    from exchange.web import disputes

    try:
        return disputes.step_for(
            _ctx(request).store, principal, dispute_id, "reject", body.reason
        )
    except (Denied, Missing, DeclarationError) as error:
        raise _dispute_http(error) from error


@api.post("/disputes/{dispute_id}/resolve", response_model=DisputeOut, tags=["disputes"],
          responses=_DISPUTE_ERRORS)
def resolve_dispute(
    request: Request, principal: ApiPrincipal, dispute_id: str, body: ResolveIn | None = None
) -> dict[str, Any]:
    """The provider resolves an acknowledged dispute: the corrected record is re-read from the
    source, gated and re-delivered to every subscription holding a different value. When
    every subscription already holds the source's value nothing was corrected: 409, nothing
    written (reject the dispute, or send `{"force": true}` to close it as resolved anyway)."""
    from exchange.web import disputes
    from govex.errors import DataQualityError, FatalError, TransientError

    force = body.force if body is not None else False
    try:
        return disputes.step_for(_ctx(request).store, principal, dispute_id, "resolve",
                                 force=force)
    except (Denied, Missing, DeclarationError, DataQualityError, FatalError,
            TransientError) as error:
        raise _dispute_http(error) from error


# ---- audit log -------------------------------------------------------------------------------


class AuditEntryOut(_Model):
    """One audit log entry, as `govex audit list --json` prints it."""

    seq: int = Field(description="position in the chain, from 1")
    at: str = Field(description="UTC time with microseconds")
    actor: str = Field(description="'department/role' of the token, or 'cli'")
    kind: str
    subject: str = Field(description="resource code, run id, token id, dispute id…")
    detail: dict[str, Any]
    prev_hash: str
    hash: str


_AUDIT_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "the token is not an admin or auditor one"},
}


@api.get("/audit", response_model=list[AuditEntryOut], tags=["audit"], responses=_AUDIT_ERRORS)
def list_audit(
    request: Request,
    principal: ApiPrincipal,
    limit: int = Query(50, ge=1, le=1000, description="entries per page"),
    before: int | None = Query(
        None, ge=1, description="only entries with a seq below this: for the next page, the "
        "seq of the last entry of this one"),
    kind: Annotated[records.AuditKind | None,
                    Query(description="only entries of this kind")] = None,
) -> list[dict[str, Any]]:
    """The hash-chained audit log, newest first, `limit` entries a page: the entries
    `govex audit list` prints. Admin and auditor tokens only. Check the chain itself with
    `govex audit verify`."""
    if not policy.may_read_audit(principal):
        raise HTTPException(
            status_code=403,
            detail=f"role '{principal.role}' may not read the audit log: use an auditor or "
            "admin token",
        )
    with _ctx(request).store.connect() as conn:
        entries = records.list_audit(conn, limit=limit, kind=kind, before=before)
    return [e.to_json() for e in reversed(entries)]


router.include_router(api)
