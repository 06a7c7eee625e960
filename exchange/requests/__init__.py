"""Sharing requests (供需对接): the request lifecycle as authenticated acts, one service that the
REST API, the command line, the pages and the demo all call (`service.py`).

Public API: `Ask` (what a consumer asks for), the steps `submit`, `review`, `approve`,
`reject`, `withdraw`, the reads `get_request`, `list_requests`, the authority's `supervision`
(`supervision.py`), `request_event` (a step's notification), and the errors
`UnknownRequest` (404) and `RequestStateError` (422); a refused step raises
`govex.errors.Forbidden` (403).
"""

from exchange.requests.service import (
    STATES,
    Ask,
    RequestState,
    RequestStateError,
    TargetIn,
    UnknownRequest,
    approve,
    get_request,
    list_requests,
    may_read,
    next_id,
    reject,
    request_event,
    review,
    submit,
    withdraw,
)
from exchange.requests.supervision import may_supervise, supervision, uncovered_years

__all__ = [
    "STATES",
    "Ask",
    "RequestState",
    "RequestStateError",
    "TargetIn",
    "UnknownRequest",
    "approve",
    "get_request",
    "list_requests",
    "may_read",
    "may_supervise",
    "next_id",
    "reject",
    "request_event",
    "review",
    "submit",
    "supervision",
    "uncovered_years",
    "withdraw",
]
