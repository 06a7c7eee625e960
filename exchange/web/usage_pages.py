"""The usage page (可控可计量): records per day by consumer as a chart, the totals per consumer,
and the rows per subscription and day, with filters and a link to the CSV export.

It reads through `usage_api.read_usage`, so it shows exactly what `GET /api/v1/usage` would
answer the same token (a refused filter is the same 403). Without dates it shows the last
DEFAULT_DAYS days in Asia/Shanghai, so the chart has a bounded, readable x axis.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from exchange.web import pages, usage_chart
from exchange.web.auth import PageError, PagePrincipal
from exchange.web.service import Denied
from exchange.web.usage_api import BadParameter, day_range, may_read_usage, read_usage
from govex.workdays import local_date

router = APIRouter(include_in_schema=False)
# The navigation (base.html) links the page for the roles that may read it.
pages.templates.env.globals["may_read_usage"] = may_read_usage

DEFAULT_DAYS = 30  # shown without ?from= / ?to=
MAX_CHART_DAYS = 3660  # about ten years of days on one x axis


def _today() -> dt.date:
    return local_date()


def _period(start: dt.date | None, end: dt.date | None) -> tuple[dt.date, dt.date]:
    """The days shown: those asked for, a missing end today, a missing start DEFAULT_DAYS
    before the end."""
    last = end or max(_today(), start or _today())
    first = start or last - dt.timedelta(days=DEFAULT_DAYS - 1)
    if (last - first).days >= MAX_CHART_DAYS:
        msg = (f"the period from {first} to {last} is over {MAX_CHART_DAYS} days; "
               "narrow 'from' or 'to'")
        raise PageError(422, msg)
    return first, last


@router.get("/usage", response_class=HTMLResponse)
def usage_page(
    request: Request, principal: PagePrincipal, resource: str | None = None,
    consumer: str | None = None, to: str | None = None,
) -> HTMLResponse:
    """`?from=` is read from the query string: `from` is a Python keyword."""
    start_text = request.query_params.get("from")
    try:
        first, last = _period(*day_range(start_text, to))
        report = read_usage(request.app.state.store, principal, resource=resource or None,
                            consumer=consumer or None, start=first, end=last)
    except BadParameter as error:
        raise PageError(422, str(error)) from error
    except Denied as error:
        raise PageError(403, str(error)) from error
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]
    per_day: Counter[tuple[str, dt.date]] = Counter()
    per_consumer: dict[str, Counter[str]] = {}
    for row in report.rows:
        per_day[(row.consumer, row.day)] += row.records
        per_consumer.setdefault(row.consumer, Counter()).update(row.counts())
    lines = usage_chart.series(per_day, days)
    filters = {"resource": resource or "", "consumer": consumer or "",
               "from": first.isoformat(), "to": last.isoformat()}
    csv_query = urlencode({k: v for k, v in filters.items() if v})
    return pages.render(
        request, "usage.html", principal, report=report, rows=list(reversed(report.rows)),
        usage_svg=usage_chart.records_chart(lines, days), lines=lines,
        consumers=sorted(per_consumer.items()), filters=filters,
        csv_link=f"{pages.base_path(request)}/api/v1/usage.csv?{csv_query}",
    )
