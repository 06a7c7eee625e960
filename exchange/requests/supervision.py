"""The platform authority's supervision of sharing requests (监督): per providing department,
how many requests it answered, how fast (median working days from the review to its answer),
how many answers are overdue now, and the reasons given for refusals; plus every overdue
request. The authority, auditors and operators read it; the web page and
`GET /api/v1/supervision` both call `supervision` so they cannot disagree.

An answer is the provider's `approved` or `rejected` step after a `reviewed` one; a request
approved at review (an unconditional resource) waits for no provider and is not counted as
an answer. Refusals are the provider's rejections and the authority's returns (a returned
request was refused before it reached the provider, but it was a request for that provider's
resource, so its reason belongs to that department's record).
"""

from __future__ import annotations

import datetime as dt
import statistics
from typing import Any

import sqlalchemy as sa

from exchange.requests.service import list_requests
from exchange.store import Principal
from govex.errors import Forbidden
from govex.workdays import SHANGHAI, covers, working_days_between

SUPERVISORS = frozenset({"authority", "admin", "auditor"})
REFUSALS = ("rejected", "returned")


def may_supervise(principal: Principal) -> bool:
    return principal.role in SUPERVISORS


def _at(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value)


def _answer_days(request: dict[str, Any]) -> float | None:
    """Working days from the review to the provider's answer, if the provider answered."""
    reviewed = next((s for s in request["history"] if s["state"] == "reviewed"), None)
    answer = next((s for s in request["history"]
                   if s["state"] in ("approved", "rejected") and s["role"] == "provider"), None)
    if reviewed is None or answer is None:
        return None
    return working_days_between(_at(reviewed["at"]), _at(answer["at"]))


def uncovered_years(requests: list[dict[str, Any]], now: dt.datetime) -> list[int]:
    """Years the supervised deadlines touch that the holiday calendar does not cover: for
    those, Monday–Friday were counted (the page says so)."""
    if not requests:
        years = {now.astimezone(SHANGHAI).year}
    else:
        first = min(_at(r["submitted_at"]) for r in requests).astimezone(SHANGHAI).year
        last = max([now.astimezone(SHANGHAI).year]
                   + [_at(r["due"]).astimezone(SHANGHAI).year for r in requests if r["due"]])
        years = set(range(first, last + 1))
    return sorted(y for y in years if not covers(y))


def supervision(
    store: sa.Engine, principal: Principal, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Per providing department: requests received and answered, median answer time in
    working days, overdue answers now, refusal reasons; every overdue request; and the years
    counted as weekdays only. Forbidden unless the authority, an auditor or an admin asks."""
    if not may_supervise(principal):
        msg = (f"{principal.department}/{principal.role} may not read the supervision of "
               "sharing requests: only the platform authority, auditors and admins may")
        raise Forbidden(msg)
    moment = now or dt.datetime.now(dt.UTC)
    every = list_requests(store, principal, now=moment)
    departments: dict[str, dict[str, Any]] = {}
    for request in every:
        entry = departments.setdefault(request["provider"], {
            "department": request["provider"], "requests": 0, "answered": 0,
            "median_answer_days": None, "overdue": 0, "awaiting_review": 0, "refusals": [],
            "_days": [],
        })
        entry["requests"] += 1
        days = _answer_days(request)
        if days is not None:
            entry["answered"] += 1
            entry["_days"].append(days)
        if request["overdue"]:
            # Overdue in review is the authority's delay, not the provider's.
            entry["overdue" if request["state"] == "reviewed" else "awaiting_review"] += 1
        for step in request["history"]:
            if step["state"] in REFUSALS:
                entry["refusals"].append({
                    "request": request["id"], "resource": request["resource"],
                    "consumer": request["consumer"], "state": step["state"], "by": step["by"],
                    "at": step["at"], "reason": step["reason"] or "",
                })
    for entry in departments.values():
        days = entry.pop("_days")
        entry["median_answer_days"] = round(statistics.median(days), 2) if days else None
    years = uncovered_years(every, moment)
    return {
        "departments": sorted(departments.values(), key=lambda d: d["department"]),
        "overdue": [
            {"id": r["id"], "state": r["state"], "resource": r["resource"],
             "consumer": r["consumer"], "provider": r["provider"], "due": r["due"],
             "awaiting": "authority" if r["state"] == "submitted" else "provider"}
            for r in every if r["overdue"]
        ],
        "calendar": "weekdays-only" if years else "chinese",
        "weekdays_only_years": years,
        "generated_at": moment.isoformat(),
    }
