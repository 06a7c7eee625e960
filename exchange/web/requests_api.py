"""The REST API of sharing requests (供需对接, INTERFACES.md "Sharing requests"): thin routes over
`exchange.requests`, which authorises every step. 403 for a step the token's role or department
may not take, 404 for an unknown request, 422 for a body the step cannot take (including a
step the request's state does not allow); a refused step changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

import exchange.requests as sharing
from exchange.store import Principal
from exchange.web import disputes
from exchange.web.api import ERRORS, Problem, StoredText
from exchange.web.auth import ApiPrincipal
from govex.errors import DeclarationError, Forbidden, one_line

State = Literal[
    "submitted", "reviewed", "approved", "rejected", "withdrawn", "returned", "revoked"
]


class Step(BaseModel):
    state: State
    by: str = Field(description="'department/role' of the token that took the step")
    department: str
    role: str
    at: str
    reason: str | None
    detail: dict[str, Any] | None = Field(
        description="what the step fixed: the resource and fields asked for, the approved "
        "fields and masking, the subscription created")


class RequestOut(BaseModel):
    """A sharing request as its readers see it (the same object `govex request show --json`
    prints)."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(description="REQ-YYYYMMDD-NNNN (the date in Asia/Shanghai)")
    state: State
    resource: str
    consumer: str = Field(description="the requesting department")
    provider: str = Field(description="the resource's provider, who answers")
    purpose: str
    legal_basis: str
    fields: list[str] = Field(description="asked for; once approved, what was approved")
    masking: dict[str, str]
    delivery: str
    target: dict[str, Any] | None
    mode: str | None
    schedule: str | None = Field(default=None, description="when the consumer wants deliveries")
    valid_from: str
    valid_until: str | None
    retain_after_end: bool
    due: str | None = Field(description="deadline of the step awaited: the review (submitted) "
                            "or the provider's answer (reviewed)")
    overdue: bool = Field(description="awaiting a step and past its due time")
    calendar: Literal["chinese", "weekdays-only"] = Field(
        description="how working days were counted: the Chinese calendar, or Monday–Friday "
        "for a year the holiday data does not cover yet")
    submitted_at: str
    updated_at: str
    subscription: str | None = Field(description="the subscription the approval created")
    history: list[Step]


class ReviewIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    compliant: bool = Field(description="true: compliant (reviewed; approved at once for an "
                            "unconditional resource); false: returned, with a reason")
    reason: StoredText | None = Field(default=None, description="required when not compliant")


class ApproveIn(BaseModel):
    """Optional narrowing: fields removed, masking added to fields that had none."""

    model_config = ConfigDict(extra="forbid")

    fields: list[StoredText] | None = Field(
        default=None, description="the approved fields, a subset of those asked for")
    masking: dict[str, StoredText] | None = Field(
        default=None, description="field -> masking function, for fields asked for unmasked")


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: StoredText | None = Field(default=None, description="why (required)")


_STEP_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": Problem, "description": "the token's role or department may not take "
          "this step"},
    404: {"model": Problem, "description": "unknown request id"},
    422: {"model": Problem, "description": "the body cannot be taken (unknown, L4 or "
          "`sharing: none` resource, field not in the contract, a widened approval, a "
          "missing reason, a target of another department), or the request's state does not "
          "allow the step"},
}


def _http(error: Exception) -> HTTPException:
    if isinstance(error, Forbidden):
        return HTTPException(status_code=403, detail=one_line(str(error)))
    if isinstance(error, sharing.UnknownRequest):
        return HTTPException(status_code=404, detail=one_line(str(error)))
    return HTTPException(status_code=422, detail=one_line(_body_terms(error)))


def _body_terms(error: Exception) -> str:
    """The service names the request by `ID` (as the command line does): here it is the path."""
    if isinstance(error, DeclarationError) and error.field == "ID":
        return error.message
    return str(error)


def _store(request: Request) -> Any:
    return request.app.state.store


router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["requests"])


@router.post("/requests", response_model=RequestOut, status_code=201, responses=_STEP_ERRORS)
def submit_request(request: Request, principal: ApiPrincipal, body: sharing.Ask) -> Any:
    """A consumer asks for a resource (供需对接). Refused at once (422, with the reason): an L4
    or `sharing: none` resource, a field not in the contract, an unknown masking function, a
    target connection the department does not own, a window that ends before it starts. Due
    for review in GOVEX_REVIEW_DAYS working days."""
    try:
        return sharing.submit(_store(request), principal, body)
    except (Forbidden, DeclarationError) as error:
        raise _http(error) from error


@router.get("/requests", response_model=list[RequestOut])
def list_requests(
    request: Request, principal: ApiPrincipal,
    state: Annotated[State | None, Query(description="only requests in this state")] = None,
) -> Any:
    """The requests the token may read, newest first: a consumer its department's, a provider
    those for its resources, the authority, auditors and admins all."""
    return sharing.list_requests(_store(request), principal, state=state)


@router.get("/requests/{request_id}", response_model=RequestOut, responses=_STEP_ERRORS)
def show_request(request: Request, principal: ApiPrincipal, request_id: str) -> Any:
    """One request with its history (every step: state, who, when, why)."""
    try:
        return sharing.get_request(_store(request), principal, request_id)
    except (Forbidden, DeclarationError) as error:
        raise _http(error) from error


@router.post("/requests/{request_id}/review", response_model=RequestOut,
             responses=_STEP_ERRORS)
def review_request(
    request: Request, principal: ApiPrincipal, request_id: str, body: ReviewIn
) -> Any:
    """The authority's compliance review of a submitted request: compliant → reviewed (an
    unconditional resource: approved at once, the subscription created); not compliant →
    returned, with the reason."""
    try:
        return sharing.review(_store(request), principal, request_id,
                              compliant=body.compliant, reason=body.reason)
    except (Forbidden, DeclarationError) as error:
        raise _http(error) from error


@router.post("/requests/{request_id}/approve", response_model=RequestOut,
             responses=_STEP_ERRORS)
def approve_request(
    request: Request, principal: ApiPrincipal, request_id: str, body: ApproveIn | None = None
) -> Any:
    """The resource's provider approves a reviewed request, optionally narrowed (fields
    removed, masking added to unmasked fields; never widened). The approval creates the
    subscription (`subscription` in the answer); the next run delivers to it."""
    try:
        return sharing.approve(_store(request), principal, request_id,
                               fields=body.fields if body else None,
                               masking=body.masking if body else None)
    except (Forbidden, DeclarationError) as error:
        raise _http(error) from error


@router.post("/requests/{request_id}/reject", response_model=RequestOut,
             responses=_STEP_ERRORS)
def reject_request(
    request: Request, principal: ApiPrincipal, request_id: str, body: ReasonIn
) -> Any:
    """The resource's provider refuses a reviewed request, with its reason (required)."""
    try:
        return sharing.reject(_store(request), principal, request_id, body.reason)
    except (Forbidden, DeclarationError) as error:
        raise _http(error) from error


@router.post("/requests/{request_id}/withdraw", response_model=RequestOut,
             responses=_STEP_ERRORS)
def withdraw_request(request: Request, principal: ApiPrincipal, request_id: str) -> Any:
    """The requesting department takes its request back, before an answer."""
    try:
        return sharing.withdraw(_store(request), principal, request_id)
    except (Forbidden, DeclarationError) as error:
        raise _http(error) from error


class Refusal(BaseModel):
    request: str
    resource: str
    consumer: str
    state: Literal["rejected", "returned"] = Field(
        description="rejected by the provider, or returned by the authority")
    by: str = Field(description="'department/role' who refused")
    at: str
    reason: str


class DepartmentSupervision(BaseModel):
    department: str = Field(description="the providing department")
    requests: int = Field(description="requests for its resources, in any state")
    answered: int = Field(description="requests it approved or rejected after the review")
    median_answer_days: float | None = Field(
        description="median working days from the review to its answer (None: none answered)")
    overdue: int = Field(description="reviewed requests whose answer is overdue now")
    awaiting_review: int = Field(
        description="submitted requests for its resources whose review (the authority's) is "
        "overdue now")
    refusals: list[Refusal] = Field(description="rejections and returns, with their reasons")


class OverdueRequest(BaseModel):
    id: str
    state: State
    resource: str
    consumer: str
    provider: str
    due: str | None
    awaiting: Literal["authority", "provider"] = Field(description="whose step is late")


class OverdueDispute(BaseModel):
    id: str
    resource: str
    provider: str
    state: str
    due: str | None


class SupervisionOut(BaseModel):
    """The platform authority's view of sharing requests (监督)."""

    departments: list[DepartmentSupervision]
    overdue: list[OverdueRequest] = Field(description="every request past its due time")
    overdue_disputes: list[OverdueDispute] = Field(description="every dispute past its due time")
    calendar: Literal["chinese", "weekdays-only"] = Field(
        description="weekdays-only when some year counted is not in the holiday calendar")
    weekdays_only_years: list[int] = Field(
        description="years counted Monday–Friday, the holiday data not covering them yet")
    generated_at: str


def supervision_report(request: Request, principal: Principal) -> dict[str, Any]:
    """The supervision data with the overdue disputes (the page shows the same)."""
    report = sharing.supervision(_store(request), principal)
    report["overdue_disputes"] = [
        {"id": d["id"], "resource": d["resource"], "provider": d["provider"],
         "state": d["state"], "due": str(d["due"]) if d["due"] is not None else None}
        for d in disputes.list_for(_store(request), principal) if d["overdue"]
    ]
    return report


@router.get("/supervision", response_model=SupervisionOut, responses={
    403: {"model": Problem, "description": "only the authority, auditors and admins"},
})
def supervision(request: Request, principal: ApiPrincipal) -> Any:
    """Per providing department: requests answered, median answer time in working days,
    overdue answers now, refusal reasons; every overdue request and dispute. For the
    platform authority, auditors and admins."""
    try:
        return supervision_report(request, principal)
    except Forbidden as error:
        raise _http(error) from error
