"""`GET /api/v1/usage` and `GET /api/v1/usage.csv`: metering (可控可计量), per subscription and
day (Asia/Shanghai), with totals.

Who sees what, decided once here for the API and the usage page alike: the roles that read
everything elsewhere (`policy.READ_ALL`: admin, authority, checklist_owner, auditor)
everything; a provider the use of its own department's resources; a consumer its own
department's subscriptions; any other role 403. A filter outside the token's view (a consumer
asking for another department, a provider for another's resource) is refused with 403, not
answered with an empty report that would read as "no use".
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

import records
from exchange.store import Principal, Role
from exchange.web.api import ERRORS
from exchange.web.auth import ApiPrincipal
from exchange.web.policy import READ_ALL
from exchange.web.queries import providers
from exchange.web.service import Denied
from govex.errors import one_line

#: Roles that read every department's usage.
USAGE_READERS: frozenset[Role] = READ_ALL
CSV_FILENAME = "govex-usage.csv"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class BadParameter(ValueError):
    """A query parameter that is not what the route takes (422), naming it."""


def may_read_usage(principal: Principal) -> bool:
    """Whether the role may read usage at all (of some subscriptions)."""
    return principal.role in USAGE_READERS or principal.role in ("provider", "consumer")


def parse_day(name: str, text: str | None) -> dt.date | None:
    """`?from=` / `?to=`: a calendar date YYYY-MM-DD, or None when absent or empty."""
    if text is None or text == "":
        return None
    msg = f"query parameter '{name}' must be a date YYYY-MM-DD, got {text!r}"
    if not _DATE.fullmatch(text):  # fromisoformat would also take 20261101 and 2026-W44-1
        raise BadParameter(msg)
    try:
        return dt.date.fromisoformat(text)
    except ValueError as error:  # 2026-02-30
        raise BadParameter(msg) from error


def day_range(
    start_text: str | None, end_text: str | None
) -> tuple[dt.date | None, dt.date | None]:
    """The `from` and `to` parameters as dates, `from` not after `to`."""
    start, end = parse_day("from", start_text), parse_day("to", end_text)
    if start is not None and end is not None and start > end:
        msg = f"query parameter 'from' ({start}) is after 'to' ({end})"
        raise BadParameter(msg)
    return start, end


def read_usage(
    store: sa.Engine,
    principal: Principal,
    *,
    resource: str | None = None,
    consumer: str | None = None,
    start: dt.date | None = None,
    end: dt.date | None = None,
) -> records.UsageReport:
    """The usage the principal may read, filtered; Denied (403) for a role that reads none,
    or a filter outside the principal's view."""
    department, provider = principal.department, None
    if principal.role in USAGE_READERS:
        pass
    elif principal.role == "provider":
        provider = department
    elif principal.role == "consumer":
        if consumer not in (None, department):
            msg = (f"a consumer token reads its own department's usage only: "
                   f"'{department}', not '{consumer}'")
            raise Denied(msg)
        consumer = department
    else:
        msg = (f"role '{principal.role}' may not read usage; admin, authority, "
               "checklist_owner, auditor, provider and consumer tokens may")
        raise Denied(msg)
    with store.connect() as conn:
        if provider is not None and resource is not None and (
            providers(conn).get(resource) != provider
        ):
            msg = (f"resource {resource} is not provided by '{provider}': a provider token "
                   "reads the usage of its own department's resources only")
            raise Denied(msg)
        return records.usage(conn, resource=resource, consumer=consumer, provider=provider,
                             start=start, end=end)


class UsageRowOut(BaseModel):
    day: str = Field(description="the calendar day in Asia/Shanghai, YYYY-MM-DD")
    resource: str
    consumer: str = Field(description="the subscribing department")
    subscription: str
    records: int = Field(description="records delivered (deletes not counted) or answered "
                         "in verification calls")
    bytes: int = Field(description="UTF-8 bytes of the delivered values as text, and the "
                       "size of verification request bodies (docs/operations.md#metering)")
    calls: int = Field(description="verification calls (POST /api/v1/verify)")
    matches: int = Field(description="verified records that matched on every field asked")
    not_found: int = Field(description="verified records the source does not hold")


class UsageTotals(BaseModel):
    records: int
    bytes: int
    calls: int
    matches: int
    not_found: int


class UsageOut(BaseModel):
    """Usage per subscription and day, oldest day first, and the totals of those rows."""

    rows: list[UsageRowOut]
    totals: UsageTotals


router = APIRouter(prefix="/api/v1", responses=ERRORS, tags=["usage"])

ResourceFilter = Annotated[str | None, Query(description="only this resource's subscriptions")]
ConsumerFilter = Annotated[str | None, Query(description="only this consumer department's")]
FromFilter = Annotated[str | None, Query(
    alias="from", description="first day, YYYY-MM-DD in Asia/Shanghai (included)")]
ToFilter = Annotated[str | None, Query(description="last day, YYYY-MM-DD (included)")]


def _report(request: Request, principal: Principal, resource: str | None,
            consumer: str | None, start: str | None, end: str | None) -> records.UsageReport:
    try:
        first, last = day_range(start, end)
        return read_usage(request.app.state.store, principal, resource=resource or None,
                          consumer=consumer or None, start=first, end=last)
    except BadParameter as error:
        raise HTTPException(status_code=422, detail=str(error)) from error
    except Denied as error:
        raise HTTPException(status_code=403, detail=one_line(str(error))) from error


@router.get("/usage", response_model=UsageOut)
def usage(
    request: Request, principal: ApiPrincipal, resource: ResourceFilter = None,
    consumer: ConsumerFilter = None, start: FromFilter = None, to: ToFilter = None,
) -> dict[str, Any]:
    """Metering: records, bytes, verification calls, matches and not-found records per
    subscription and day, with totals. Admin, authority, auditor: every subscription; a
    provider: those to its resources; a consumer: its own; other roles 403."""
    return _report(request, principal, resource, consumer, start, to).as_json()


@router.get("/usage.csv", response_class=Response, responses={
    200: {"content": {"text/csv": {}}, "description": "the rows of GET /api/v1/usage as CSV"},
})
def usage_csv(
    request: Request, principal: ApiPrincipal, resource: ResourceFilter = None,
    consumer: ConsumerFilter = None, start: FromFilter = None, to: ToFilter = None,
) -> Response:
    """The rows of `GET /api/v1/usage` (same filters, same roles) as a CSV download: columns
    day, resource, consumer, subscription, records, bytes, calls, matches, not_found; no totals
    line. A text cell starting with = + - @ gets a leading apostrophe (no spreadsheet
    formulas)."""
    report = _report(request, principal, resource, consumer, start, to)
    return Response(
        report.to_csv(), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{CSV_FILENAME}"'},
    )
