"""`GET /api/v1/notifications`: the webhook delivery log. Admins, the authority and auditors
read every department's; any other token its own department's only."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from exchange.notify import delivery_log
from exchange.web.api import ERRORS
from exchange.web.auth import ApiPrincipal


class AttemptOut(BaseModel):
    at: str
    url: str
    status_code: int | None = Field(description="the receiver's HTTP status; null: no answer")
    error: str | None
    duration_ms: int


class NotificationOut(BaseModel):
    id: int
    event_id: str = Field(description="X-Govex-Event-Id: the same for every department")
    type: str = Field(description="e.g. request.approved, dispute.open, request.overdue")
    subject: str = Field(description="the request (REQ-…) or dispute (DSP-…)")
    department: str
    state: str = Field(description="pending, delivered or failed (attempts ran out)")
    attempts: int
    created_at: str | None
    next_attempt_at: str | None
    delivered_at: str | None
    last_error: str | None
    log: list[AttemptOut]


router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["notifications"])


@router.get("/notifications", response_model=list[NotificationOut])
def notifications(
    request: Request, principal: ApiPrincipal,
    department: Annotated[str | None, Query(description="only this department's")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """The newest events sent (or to be sent) to departments' webhooks, with every attempt."""
    return delivery_log(request.app.state.store, principal, department=department,
                        limit=limit)
