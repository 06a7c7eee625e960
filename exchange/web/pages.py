"""Server-rendered pages (Jinja2, no scripts): catalog, resource, checklist, runs, quality
dashboard, quarantine, Data Docs; and the sign-in form that sets the HttpOnly session cookie.
The sharing-request pages (forms, inbox, supervision) are in `request_pages.py`.

Links are built from the request's root path, so the pages work both standalone (`govex serve`)
and mounted under `/govex` in Airflow's API server.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

import catalog
import contracts
import exchange.requests as sharing
from exchange.run import ending
from exchange.store import InvalidToken, Principal
from exchange.web import auth, charts, paging, policy
from exchange.web.auth import COOKIE, LEGACY_COOKIE, PageError, PagePrincipal
from exchange.web.paging import Page, PageRequest
from exchange.web.queries import MAX_WINDOW_DAYS, TOP_WINDOW_DAYS
from exchange.web.service import Context, Denied, Limited, Missing

TEMPLATES = Path(__file__).with_name("templates")
# The pages need no scripts at all; inline styles and SVG only.
CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

ROLE_LABELS = {
    "admin": "admin 管理员",
    "authority": "authority 数据主管部门",
    "provider": "provider 提供方",
    "consumer": "consumer 使用方",
    "checklist_owner": "checklist owner 清单管理",
    "auditor": "auditor 审计",
    "lineage_producer": "lineage producer 血缘上报",
}
STATE_LABELS = {
    "on_time": "on time 按时",
    "late": "late 逾期",
    "never": "no successful run 未成功运行",
    "unknown": "unknown 未知",
}


def _when(value: Any) -> str:
    if not value:
        return "—"
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(moment, dt.datetime):
        return str(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _pct(value: Any, digits: int = 1) -> str:
    return "—" if value is None else f"{float(value) * 100:.{digits}f}%"


def _age(seconds: Any) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {rest // 60} min"
    return f"{rest // 60} min"


SHORT_ID = 8  # characters of a run id shown at least; more where ids on the page share them


def _short_ids(ids: Iterable[Any]) -> dict[str, str]:
    """Each id cut to the shortest prefix (at least SHORT_ID characters) that no other id on
    the page shares. Run ids are time-ordered (UUIDv7): runs minutes apart share their first
    eight characters, so a fixed cut would show two runs under one name."""
    ordered = sorted({str(i) for i in ids if i})
    shown: dict[str, str] = {}
    for n, run_id in enumerate(ordered):
        common = 0
        for other in ordered[max(n - 1, 0):n] + ordered[n + 1:n + 2]:
            same = next((i for i, (a, b) in enumerate(zip(run_id, other, strict=False))
                         if a != b), min(len(run_id), len(other)))
            common = max(common, same)
        length = max(SHORT_ID, common + 1)
        if run_id[length - 1:length] == "-":  # never end on a UUID's dash
            length += 1
        shown[run_id] = run_id[:length]
    return shown


templates = Jinja2Templates(directory=str(TEMPLATES))
templates.env.filters.update(when=_when, pct=_pct, age=_age)
templates.env.globals.update(
    role_labels=ROLE_LABELS, state_labels=STATE_LABELS,
    chart=charts.pass_rate_chart, sparkline=charts.sparkline, short_ids=_short_ids,
    may_supervise=sharing.may_supervise,
)

router = APIRouter(include_in_schema=False)


def base_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _ctx(request: Request) -> Context:
    ctx: Context = request.app.state.context
    return ctx


def render(
    request: Request,
    template: str,
    principal: Principal | None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request,
        template,
        {
            "base": base_path(request),
            "principal": principal,
            "may_operate": principal is not None and policy.may_read_operations(principal),
            **context,
        },
        status_code=status_code,
    )
    response.headers["Content-Security-Policy"] = CSP
    return response


def _page_error(error: Exception) -> PageError:
    if isinstance(error, Limited):
        return PageError(429, str(error), {"Retry-After": str(error.retry_after)})
    return PageError(403 if isinstance(error, Denied) else 404, str(error))


def _safe_next(value: str | None) -> str:
    """Only same-site paths (`/catalog`), never `//host` or `https://...`: no open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/catalog"
    return value


# ---- sign-in -------------------------------------------------------------------------------


def signin_page(request: Request, message: str | None, status_code: int,
                next_path: str | None = None) -> HTMLResponse:
    if next_path is None and request.method != "GET":
        # A form post (the trace form, say) cannot be replayed as a GET after signing in.
        next_path = "/catalog"
    if next_path is None:
        base = base_path(request)
        path = request.url.path
        next_path = path[len(base):] if base and path.startswith(base) else path
        if request.url.query:
            next_path += "?" + request.url.query
    return render(request, "signin.html", None, status_code=status_code,
                  message=message, next=_safe_next(next_path))


@router.get("/signin", response_class=HTMLResponse)
def signin_form(request: Request, next: str | None = None) -> HTMLResponse:  # noqa: A002
    return signin_page(request, None, 200, next)


def _cookie_path(request: Request) -> str:
    return base_path(request) or "/"


def _forget_legacy_cookie(request: Request, response: Response) -> None:
    """Before sessions the cookie held the raw token: make the browser drop it."""
    if LEGACY_COOKIE in request.cookies:
        response.delete_cookie(LEGACY_COOKIE, path=_cookie_path(request), httponly=True,
                               samesite="strict", secure=request.url.scheme == "https")


@router.post("/signin")
def signin(
    request: Request,
    token: Annotated[str, Form()],
    next: Annotated[str | None, Form()] = None,  # noqa: A002 - the form field's name
) -> Response:
    """Trade the token for a sign-in session: the cookie carries the session id, not the
    token, and lives as long as the session (12 hours at most, never past the token)."""
    try:
        session = auth.start_session(request, token.strip())
    except InvalidToken as error:
        return signin_page(request, f"That token is not valid ({error}). 令牌无效。", 401, next)
    response = RedirectResponse(base_path(request) + _safe_next(next), status_code=303)
    seconds = int((session.expires_at - dt.datetime.now(dt.UTC)).total_seconds())
    response.set_cookie(
        COOKIE, session.id, max_age=max(seconds, 1), path=_cookie_path(request),
        httponly=True, samesite="strict", secure=request.url.scheme == "https",
    )
    _forget_legacy_cookie(request, response)
    return response


@router.post("/signout")
def signout(request: Request) -> Response:
    """End the session server-side (the cookie is worthless from now on) and drop the cookie."""
    auth.end_session(request)
    response = RedirectResponse(base_path(request) + "/signin", status_code=303)
    response.delete_cookie(COOKIE, path=_cookie_path(request), httponly=True,
                           samesite="strict", secure=request.url.scheme == "https")
    _forget_legacy_cookie(request, response)
    return response


# ---- pages ---------------------------------------------------------------------------------


@router.get("/")
def home(request: Request, principal: PagePrincipal) -> Response:
    del principal
    return RedirectResponse(base_path(request) + "/catalog", status_code=303)


def _page_asked(page: str | None, per_page: str | None) -> PageRequest:
    """`?page=` and `?per_page=` of a list page; 400 naming the one at fault."""
    try:
        return paging.parse(page, per_page)
    except ValueError as error:
        raise PageError(400, str(error)) from error


def _pager(request: Request, page: Page[Any]) -> dict[str, Any]:
    """What `_pager.html` shows: the page and its links (the other query parameters kept)."""
    return {"page": page, "page_links": paging.links(request.query_params, page)}


@router.get("/catalog", response_class=HTMLResponse)
def catalog_page(request: Request, principal: PagePrincipal, department: str | None = None,
                 page: str | None = None, per_page: str | None = None) -> HTMLResponse:
    ctx = _ctx(request)
    try:
        found = ctx.resource_page(principal, department or None, _page_asked(page, per_page))
    except Missing as error:
        raise _page_error(error) from error
    return render(request, "catalog.html", principal, resources=found.items,
                  departments=ctx.department_names(), department=department or None,
                  **_pager(request, found))


@router.get("/resources/{code}", response_class=HTMLResponse)
def resource_page(request: Request, principal: PagePrincipal, code: str) -> HTMLResponse:
    ctx = _ctx(request)
    try:
        resource = ctx.resource(principal, code)
    except (Denied, Missing) as error:
        raise _page_error(error) from error
    runs: list[dict[str, Any]] | None = None
    if policy.may_read_resource_operations(principal, str(resource["provider"])):
        runs = ctx.runs(principal, code, limit=10)
    schema = resource["contract_schema"]
    fields = [
        {
            "name": name,
            "type": spec.get("type", ""),
            "format": spec.get("format") or spec.get("pattern") or "",
            "required": name in set(schema.get("required", [])),
            "element": resource.get("elements", {}).get(name, ""),
            "pii": spec.get("x-govex-pii", ""),
            "checks": ", ".join(name for name, _ in contracts.check_items(
                spec.get("x-govex-checks", []))),
            "description": spec.get("description") or spec.get("title") or "",
        }
        for name, spec in schema.get("properties", {}).items()
    ]
    return render(request, "resource.html", principal, resource=resource, fields=fields,
                  runs=runs)


def subscriptions_response(request: Request, principal: Principal, *,
                           error: str | None = None, status_code: int = 200,
                           department: str | None = None,
                           page: PageRequest | None = None) -> HTMLResponse:
    """One page of the checklist (of the lines `department` takes part in, when given), with
    a revoke form on the lines the principal may revoke (and the sentence of a refused
    revocation, `request_pages.revoke_form`)."""
    ctx = _ctx(request)
    try:
        found = ctx.subscription_page(principal, None, department, page or PageRequest())
    except Missing as missing:
        raise _page_error(missing) from missing
    with ctx.store.connect() as conn:
        provider_of = catalog.resource_providers(conn)
    lines = [
        {**s, "may_revoke": s["state"] == "active"
         and ending.may_revoke(principal, provider_of.get(str(s["resource"]), ""))}
        for s in found.items
    ]
    return render(request, "subscriptions.html", principal, subscriptions=lines,
                  departments=ctx.department_names(), department=department, error=error,
                  status_code=status_code, **_pager(request, found))


@router.get("/subscriptions", response_class=HTMLResponse)
def subscriptions_page(request: Request, principal: PagePrincipal,
                       department: str | None = None, page: str | None = None,
                       per_page: str | None = None) -> HTMLResponse:
    return subscriptions_response(request, principal, department=department or None,
                                  page=_page_asked(page, per_page))


@router.get("/runs", response_class=HTMLResponse)
def runs_page(request: Request, principal: PagePrincipal, resource: str | None = None,
              department: str | None = None, page: str | None = None,
              per_page: str | None = None) -> HTMLResponse:
    ctx = _ctx(request)
    try:
        found = ctx.run_page(principal, resource or None, department or None,
                             _page_asked(page, per_page))
    except (Denied, Missing) as error:
        raise _page_error(error) from error
    return render(request, "runs.html", principal, runs=found.items, resource=resource,
                  departments=ctx.department_names(), department=department or None,
                  **_pager(request, found))


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, principal: PagePrincipal, run_id: str) -> HTMLResponse:
    ctx = _ctx(request)
    try:
        run = ctx.run(principal, run_id)
        report = ctx.quality(principal, run["resource"])
    except (Denied, Missing) as error:
        raise _page_error(error) from error
    point = next((p for p in report["runs"] if p["run_id"] == run_id), None)
    import lineage
    from exchange.web.lineage_graph import lineage_svg

    with ctx.store.connect() as conn:
        events = lineage.list_events(conn, run_id)
    graph = lineage_svg(run, events, base=base_path(request))
    return render(request, "run.html", principal, run=run, checks=point["checks"] if point
                  else [], data_docs=ctx.data_docs_link(run_id), graph=graph)


def _window(days: str | None) -> int:
    """`?days=` of the quality pages: the window of "top failing checks" (default 30)."""
    if days in (None, ""):
        return TOP_WINDOW_DAYS
    if not days.isdigit() or not 1 <= int(days) <= MAX_WINDOW_DAYS:
        msg = f"days must be a whole number from 1 to {MAX_WINDOW_DAYS}, got {days!r}"
        raise PageError(400, msg)
    return int(days)


@router.get("/quality", response_class=HTMLResponse)
def dashboard_page(request: Request, principal: PagePrincipal,
                   department: str | None = None, days: str | None = None,
                   page: str | None = None, per_page: str | None = None) -> HTMLResponse:
    ctx = _ctx(request)
    window = _window(days)
    try:
        board = ctx.dashboard(principal, department or None, window,
                              _page_asked(page, per_page))
    except (Denied, Missing) as error:
        raise _page_error(error) from error
    from exchange.web import disputes

    overdue = [
        d for d in disputes.list_for(ctx.store, principal, state=None)
        if d["overdue"] and (not department or d["provider"] == department)
    ]
    # The signed-in department's overdue sharing requests (a provider's: its answers; the
    # authority's: every one), as the supervision page counts them.
    late_requests = [
        r for r in sharing.list_requests(ctx.store, principal)
        if r["overdue"] and (not department or department in (r["provider"], r["consumer"]))
    ]
    return render(request, "quality.html", principal, departments=board.departments,
                  department=department, now=dt.datetime.now(dt.UTC), overdue=overdue,
                  overdue_requests=late_requests, days=window,
                  weekdays_only=sharing.uncovered_years(late_requests, dt.datetime.now(dt.UTC)),
                  department_choices=ctx.department_names()
                  if policy.reads_everything(principal) else {},
                  **_pager(request, board.page))


@router.get("/quality/{code}", response_class=HTMLResponse)
def quality_page(request: Request, principal: PagePrincipal, code: str,
                 days: str | None = None) -> HTMLResponse:
    ctx = _ctx(request)
    window = _window(days)
    try:
        report = ctx.quality(principal, code, window)
    except (Denied, Missing) as error:
        raise _page_error(error) from error
    return render(request, "quality_resource.html", principal, report=report,
                  threshold=1 - report["max_error_rate"])


@router.get("/quarantine", response_class=HTMLResponse)
def quarantine_page(request: Request, principal: PagePrincipal,
                    resource: str | None = None) -> HTMLResponse:
    try:
        records = _ctx(request).quarantine(principal, resource or None)
    except (Denied, Missing) as error:
        raise _page_error(error) from error
    return render(request, "quarantine.html", principal, records=records, resource=resource)


@router.get("/data-docs/{run_id}/{path:path}")
def data_docs(request: Request, principal: PagePrincipal, run_id: str, path: str) -> Response:
    try:
        target = _ctx(request).data_docs_file(principal, run_id, path)
    except (Denied, Missing) as error:
        raise _page_error(error) from error
    return FileResponse(target)


# ---- trace and disputes ----------------------------------------------------------------------


def _dispute_page_error(error: Exception) -> PageError:
    from govex.errors import DataQualityError, DeclarationError, FatalError
    from records import DisputeStateError

    if isinstance(error, Denied | Missing | Limited):
        return _page_error(error)
    if isinstance(error, DisputeStateError | DataQualityError | FatalError):
        return PageError(409, str(error))
    if isinstance(error, DeclarationError):
        return PageError(400, str(error))
    raise error


@router.get("/trace", response_class=HTMLResponse)
def trace_lookup(
    request: Request, principal: PagePrincipal, resource: str, key: str
) -> RedirectResponse:
    """The run page's "trace a record" form as it was (GET): kept so old bookmarks work. The
    form now posts (`trace_form`), so the key stays out of URLs and access logs."""
    del principal  # the trace page itself authorises
    target = f"{base_path(request)}/trace/{quote(resource, safe='')}/{quote(key, safe='')}"
    return RedirectResponse(target, status_code=303)


def _trace_page(request: Request, principal: Principal, code: str, key: str) -> HTMLResponse:
    from exchange.web import disputes

    ctx = _ctx(request)
    try:
        found = disputes.trace_for(ctx.store, principal, code, key)
    except (Denied, Missing, Limited) as error:
        raise _page_error(error) from error
    # A consumer receiving the record may dispute the fields it receives.
    fields: list[str] = []
    if principal.role in ("consumer", "admin"):
        fields = sorted({f for d in found["deliveries"] for f in d["fields"]})
    return render(request, "trace.html", principal, trace=found, dispute_fields=fields)


@router.post("/trace", response_class=HTMLResponse)
def trace_form(
    request: Request,
    principal: PagePrincipal,
    resource: Annotated[str, Form()],
    key: Annotated[str, Form()],
) -> HTMLResponse:
    """A record's trace page, the key sent in the form body: the URL stays `/trace`."""
    return _trace_page(request, principal, resource, key)


@router.get("/trace/{code}/{key:path}", response_class=HTMLResponse)
def trace_page(request: Request, principal: PagePrincipal, code: str, key: str) -> HTMLResponse:
    """A record's trace page with the key in the path (links from before `POST /trace`)."""
    return _trace_page(request, principal, code, key)


@router.get("/disputes", response_class=HTMLResponse)
def disputes_page(request: Request, principal: PagePrincipal,
                  state: str | None = None) -> HTMLResponse:
    from exchange.web import disputes

    items = disputes.list_for(_ctx(request).store, principal, state=state or None)
    return render(request, "disputes.html", principal, disputes=items, state=state,
                  overdue=sum(1 for d in items if d["overdue"]))


@router.post("/disputes")
def open_dispute_form(
    request: Request,
    principal: PagePrincipal,
    resource: Annotated[str, Form()],
    key: Annotated[str, Form()],
    field: Annotated[str, Form()],
    claim: Annotated[str, Form()],
) -> Response:
    from exchange.web import disputes
    from govex.errors import DeclarationError

    try:
        opened = disputes.open_for(_ctx(request).store, principal, resource=resource, key=key,
                                   field=field, claim=claim)
    except (Denied, Missing, Limited, DeclarationError) as error:
        raise _dispute_page_error(error) from error
    return RedirectResponse(f"{base_path(request)}/disputes/{opened['id']}", status_code=303)


@router.get("/disputes/{dispute_id}", response_class=HTMLResponse)
def dispute_page(request: Request, principal: PagePrincipal, dispute_id: str) -> HTMLResponse:
    from exchange.web import disputes

    try:
        found = disputes.show_for(_ctx(request).store, principal, dispute_id)
    except (Denied, Missing) as error:
        raise _page_error(error) from error
    return render(request, "dispute.html", principal, dispute=found,
                  may_act=disputes.may_act(principal, found),
                  every_flag=disputes.sees_every_flag(principal, found))


@router.post("/disputes/{dispute_id}/{step}")
def dispute_step_form(
    request: Request,
    principal: PagePrincipal,
    dispute_id: str,
    step: str,
    reason: Annotated[str | None, Form()] = None,
    force: Annotated[bool, Form()] = False,
) -> Response:
    from exchange.web import disputes
    from govex.errors import DataQualityError, DeclarationError, FatalError

    chosen = next((s for s in disputes.STEPS if s == step), None)
    if chosen is None:
        raise PageError(404, f"no step '{step}': use ack, reject or resolve")
    try:
        disputes.step_for(_ctx(request).store, principal, dispute_id, chosen, reason,
                          force=force)
    except (Denied, Missing, DeclarationError, DataQualityError, FatalError) as error:
        raise _dispute_page_error(error) from error
    return RedirectResponse(f"{base_path(request)}/disputes/{dispute_id}", status_code=303)
