"""What the web app reads from the metadata store, shaped as JSON-ready dicts.

Runs come from the run bookkeeping; the catalog through its public API, and its tables where a
list is paged or joined in the database; quality results and the quarantine through lightweight
table clauses (the quality package owns those tables; the web app
only reads the columns named here). A store whose quality tables do not exist yet reads as "no
results", so the catalog pages keep working on a store migrated before the quality schema.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

import catalog
from catalog import tables as catalog_tables
from exchange.run import Delivery, RunSummary, deliveries, ending, runs
from exchange.store import Principal
from exchange.web import policy
from exchange.web.durations import check_promise
from exchange.web.paging import PageRequest
from govex.workdays import local_date

TS = sa.DateTime(timezone=True)
check_results = sa.table(
    "quality_check_results",
    sa.column("run_id", sa.String), sa.column("resource", sa.String),
    sa.column("check", sa.String), sa.column("column", sa.String),
    sa.column("evaluated", sa.Integer), sa.column("failed", sa.Integer),
    sa.column("failure_rate", sa.Float), sa.column("recorded_at", TS),
)
quarantine = sa.table(
    "quality_quarantine",
    sa.column("resource", sa.String), sa.column("record_key", sa.String),
    sa.column("run_id", sa.String), sa.column("failed_checks", sa.JSON),
    sa.column("record", sa.JSON), sa.column("first_seen", TS), sa.column("last_seen", TS),
)
departments_table = sa.table("catalog_departments", sa.column("code"), sa.column("name"))

RECENT_RUNS = 30  # runs per resource on the dashboard and in /api/v1/quality/{code}
TOP_CHECKS = 10
TOP_WINDOW_DAYS = 30  # default window of "top failing checks" (`?days=` on pages and API)
MAX_WINDOW_DAYS = 3660

Codes = Iterable[str] | sa.Select[Any]  # resource codes, or a subquery of them


def aware(value: Any) -> dt.datetime | None:
    """A stored timestamp as an aware UTC datetime (SQLite hands back naive ones, and JSON
    columns or raw SQL may hand back ISO strings)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if not isinstance(value, dt.datetime):
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def iso(value: Any) -> str | None:
    moment = aware(value)
    return moment.isoformat() if moment else None


def has_quality_tables(conn: sa.Connection) -> bool:
    inspector = sa.inspect(conn)
    return bool(inspector.has_table("quality_check_results")) and bool(
        inspector.has_table("quality_quarantine")
    )


# ---- catalog -------------------------------------------------------------------------------


def department_names(conn: sa.Connection) -> dict[str, str]:
    rows = conn.execute(
        sa.select(departments_table.c.code, departments_table.c.name).order_by(
            departments_table.c.code
        )
    )
    return {code: name for code, name in rows}


def providers(conn: sa.Connection) -> dict[str, str]:
    """Resource code -> provider department."""
    return catalog.resource_providers(conn)


def has_department(conn: sa.Connection, code: str) -> bool:
    return conn.execute(
        sa.select(departments_table.c.code).where(departments_table.c.code == code)
    ).first() is not None


def visible_codes(principal: Principal, department: str | None = None) -> sa.Select[Any]:
    """The codes of the resources whose operations (runs, quality, quarantine) the principal
    may read, of one providing department when given: a subquery for `IN`."""
    resources = catalog_tables.resources
    query = sa.select(resources.c.code).where(
        policy.operations_scope(principal, resources.c.provider))
    if department is not None:
        query = query.where(resources.c.provider == department)
    return query


def subscription_lines(
    conn: sa.Connection,
    principal: Principal,
    *,
    resource: str | None = None,
    department: str | None = None,
    page: PageRequest | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Checklist lines the principal may read (each a subscription declaration), by id: of one
    resource, or those a department takes part in (as the consumer or the resource's
    provider), when given; one page of them when `page` is given. Each with its `state`
    (`active`, `revoked`, `expired`) and, once ended, when, by whom, why and when its target
    was purged: the consumer learns why deliveries stopped. With the number of all lines."""
    s, r = catalog_tables.subscriptions, catalog_tables.resources
    where = [policy.subscription_scope(principal, s.c.consumer, r.c.provider)]
    if resource is not None:
        where.append(s.c.resource_code == resource)
    if department is not None:
        where.append(sa.or_(s.c.consumer == department, r.c.provider == department))
    joined = s.join(r, r.c.code == s.c.resource_code)
    query = sa.select(s.c.id, s.c.declaration).select_from(joined).where(*where).order_by(s.c.id)
    if page is not None:
        query = query.offset(page.offset).limit(page.per_page)
    declarations = [dict(declaration) for _, declaration in conn.execute(query)]
    total = len(declarations) if page is None else int(conn.execute(
        sa.select(sa.func.count()).select_from(joined).where(*where)).scalar_one())
    ended = ending.ended_subscriptions(
        conn, resource, local_date(),
        ids=[str(d["id"]) for d in declarations])

    def with_state(decl: dict[str, Any]) -> dict[str, Any]:
        end = ended.get(str(decl["id"]))
        if end is None:
            return {**decl, "state": "active", "ended_at": None, "ended_by": None,
                    "reason": None, "purged_at": None}
        return {**decl, "state": end.state, "ended_at": end.at.isoformat(),
                "ended_by": end.by, "reason": end.message() if end.state == "expired"
                else end.reason,
                "purged_at": end.purged_at.isoformat() if end.purged_at else None}

    return [with_state(decl) for decl in declarations], total


def visible_subscriptions(
    conn: sa.Connection, principal: Principal, resource: str | None = None
) -> list[dict[str, Any]]:
    """Every checklist line the principal may read (of `resource` when given), by id, with
    its state (`subscription_lines`)."""
    return subscription_lines(conn, principal, resource=resource)[0]


# ---- runs ----------------------------------------------------------------------------------


def _summaries(conn: sa.Connection, rows: Sequence[sa.RowMapping]) -> list[RunSummary]:
    """Run summaries for already selected `exchange_runs` rows, deliveries in one query."""
    ids = [r["run_id"] for r in rows]
    by_run: dict[str, list[Delivery]] = defaultdict(list)
    if ids:
        for d in conn.execute(
            sa.select(deliveries)
            .where(deliveries.c.run_id.in_(ids))
            .order_by(deliveries.c.subscription)
        ).mappings():
            by_run[d["run_id"]].append(Delivery.from_row(d))
    return [
        RunSummary(
            run_id=r["run_id"], resource=r["resource"], status=r["status"], read=r["read"],
            passed=r["passed"], quarantined=r["quarantined"],
            deliveries=tuple(by_run[r["run_id"]]),
            started_at=aware(r["started_at"]), ended_at=aware(r["ended_at"]),
            message=r["message"] or "",
        )
        for r in rows
    ]


def list_runs(
    conn: sa.Connection,
    resources: Codes | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Run summaries (the `govex run --json` object), newest first: `limit` of them from
    `offset`, of `resources` (codes, or a subquery of codes; None = all)."""
    query = (sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.run_id)
             .offset(offset).limit(limit))
    if resources is not None:
        query = query.where(runs.c.resource.in_(_codes(resources)))
    rows = list(conn.execute(query).mappings())
    return [s.to_json() for s in _summaries(conn, rows)]


def count_runs(conn: sa.Connection, resources: Codes | None = None) -> int:
    """How many runs `list_runs` pages through."""
    query = sa.select(sa.func.count()).select_from(runs)
    if resources is not None:
        query = query.where(runs.c.resource.in_(_codes(resources)))
    return int(conn.execute(query).scalar_one())


def _codes(resources: Codes) -> list[str] | sa.Select[Any]:
    return resources if isinstance(resources, sa.Select) else list(resources)


def run_row(conn: sa.Connection, run_id: str) -> dict[str, Any] | None:
    row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()
    if row is None:
        return None
    return _summaries(conn, [row])[0].to_json()


# ---- quality -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backlog:
    records: int
    oldest_first_seen: dt.datetime | None

    def age(self, now: dt.datetime) -> dt.timedelta | None:
        return now - self.oldest_first_seen if self.oldest_first_seen else None

    def to_json(self, now: dt.datetime) -> dict[str, Any]:
        age = self.age(now)
        return {
            "records": self.records,
            "oldest_first_seen": self.oldest_first_seen.isoformat()
            if self.oldest_first_seen else None,
            "age_seconds": int(age.total_seconds()) if age is not None else None,
        }


def backlogs(conn: sa.Connection, codes: Codes, with_quality: bool) -> dict[str, Backlog]:
    """Per resource of `codes` with quarantined records: how many, and the oldest."""
    if not with_quality:
        return {}
    rows = conn.execute(
        sa.select(quarantine.c.resource, sa.func.count(), sa.func.min(quarantine.c.first_seen))
        .where(quarantine.c.resource.in_(_codes(codes)))
        .group_by(quarantine.c.resource)
    )
    return {code: Backlog(int(count or 0), aware(oldest)) for code, count, oldest in rows}


def last_successes(conn: sa.Connection, codes: Codes) -> dict[str, dt.datetime]:
    """Per resource of `codes` that ever ran successfully: when its last success ended."""
    ended = sa.func.max(sa.func.coalesce(runs.c.ended_at, runs.c.started_at))
    rows = conn.execute(
        sa.select(runs.c.resource, ended)
        .where(runs.c.resource.in_(_codes(codes)), runs.c.status == "success")
        .group_by(runs.c.resource)
    )
    return {code: moment for code, value in rows if (moment := aware(value)) is not None}


def _numbered_runs(codes: Codes) -> sa.Subquery:
    """The finished runs of `codes`, numbered per resource from its newest (`rn` 1)."""
    rn = sa.func.row_number().over(
        partition_by=runs.c.resource, order_by=(runs.c.started_at.desc(), runs.c.run_id)
    ).label("rn")
    return (
        sa.select(runs.c.run_id, runs.c.resource, runs.c.status, runs.c.read, runs.c.passed,
                  runs.c.quarantined, runs.c.started_at, runs.c.ended_at, rn)
        .where(runs.c.status != "running", runs.c.resource.in_(_codes(codes)))
        .subquery()
    )


def recent_runs(
    conn: sa.Connection, codes: Codes, recent: int = RECENT_RUNS
) -> dict[str, list[sa.RowMapping]]:
    """Per resource of `codes`: its `recent` latest finished runs, oldest first, in one query."""
    numbered = _numbered_runs(codes)
    rows = conn.execute(
        sa.select(numbered).where(numbered.c.rn <= recent)
        .order_by(numbered.c.resource, numbered.c.rn.desc())
    ).mappings()
    found: dict[str, list[sa.RowMapping]] = defaultdict(list)
    for row in rows:
        found[row["resource"]].append(row)
    return dict(found)


@dataclass(frozen=True)
class RunTotals:
    """A resource's recent runs that read any record (the N of its pass rate), and the records
    they read and passed."""

    rated: int
    read: int
    passed: int


def run_totals(conn: sa.Connection, codes: Codes, recent: int = RECENT_RUNS
               ) -> dict[str, RunTotals]:
    """`pass_rate`'s sums per resource of `codes` over its `recent` latest finished runs,
    added up in the database (one row per resource, however long the history)."""
    numbered = _numbered_runs(codes)
    rows = conn.execute(
        sa.select(numbered.c.resource, sa.func.count(), sa.func.sum(numbered.c.read),
                  sa.func.sum(numbered.c.passed))
        .where(numbered.c.rn <= recent, numbered.c.read > 0)
        .group_by(numbered.c.resource)
    )
    return {code: RunTotals(int(n), int(read or 0), int(passed or 0))
            for code, n, read, passed in rows}


def pass_rate(points: Iterable[Mapping[str, Any]]) -> tuple[float | None, int]:
    """The one meaning of "pass rate over N runs", for a resource and a department alike:
    records passed over records read, summed over the finished runs that read any record; N
    counts those runs (a run that read nothing has no rate and is not counted). Weighted by
    records, so a department's rate is its resources' runs pooled, not an average of rates."""
    rated = [p for p in points if int(p["read"])]
    read = sum(int(p["read"]) for p in rated)
    passed = sum(int(p["passed"]) for p in rated)
    return (passed / read if read else None), len(rated)


def pooled_rate(totals: Iterable[RunTotals]) -> tuple[float | None, int]:
    """`pass_rate` from runs already summed per resource (`run_totals`): the same figure."""
    rated = list(totals)
    read = sum(t.read for t in rated)
    passed = sum(t.passed for t in rated)
    return (passed / read if read else None), sum(t.rated for t in rated)


def failing_checks_of(
    conn: sa.Connection, codes: Sequence[str], *, since: dt.datetime, with_quality: bool
) -> dict[str, tuple[list[dict[str, Any]], int]]:
    """Per resource of `codes`: its most failing checks over its finished runs started at or
    after `since`, most failed records first, and the number of those runs; two queries."""
    window = [runs.c.resource.in_(list(codes)), runs.c.status != "running",
              runs.c.started_at >= since]
    counts = {code: int(n) for code, n in conn.execute(
        sa.select(runs.c.resource, sa.func.count()).where(*window).group_by(runs.c.resource))}
    found: dict[str, tuple[list[dict[str, Any]], int]] = {
        code: ([], counts.get(code, 0)) for code in codes}
    if not with_quality or not counts:
        return found
    failed = sa.func.coalesce(sa.func.sum(check_results.c.failed), 0)
    rows = conn.execute(
        sa.select(
            check_results.c.resource, check_results.c.check, check_results.c.column,
            failed.label("failed"),
            sa.func.coalesce(sa.func.sum(check_results.c.evaluated), 0).label("evaluated"),
            sa.func.sum(sa.case((check_results.c.failed > 0, 1), else_=0)).label("runs_failing"),
        )
        .select_from(check_results.join(runs, runs.c.run_id == check_results.c.run_id))
        .where(check_results.c.resource == runs.c.resource, *window)
        .group_by(check_results.c.resource, check_results.c.check, check_results.c.column)
        .having(failed > 0)
    ).mappings()
    totals: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        totals[row["resource"]].append({
            "check": row["check"], "column": row["column"], "failed": int(row["failed"]),
            "evaluated": int(row["evaluated"]), "runs_failing": int(row["runs_failing"] or 0),
        })
    for code, checks in totals.items():
        top = sorted(checks, key=lambda t: (-t["failed"], t["check"], t["column"] or ""))
        found[code] = (top[:TOP_CHECKS], counts.get(code, 0))
    return found


def _checks_by_run(conn: sa.Connection, run_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Per run: its per-check counts, by check and column."""
    by_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if not run_ids:
        return by_run
    rows = conn.execute(
        sa.select(check_results)
        .where(check_results.c.run_id.in_(run_ids))
        .order_by(check_results.c.check, check_results.c.column)
    ).mappings()
    for row in rows:
        evaluated, failed = int(row["evaluated"] or 0), int(row["failed"] or 0)
        rate = row["failure_rate"]
        by_run[row["run_id"]].append({
            "check": row["check"],
            "column": row["column"],
            "evaluated": evaluated,
            "failed": failed,
            "failure_rate": float(rate) if rate is not None
            else (failed / evaluated if evaluated else 0.0),
        })
    return by_run


def quality_reports(
    conn: sa.Connection,
    declarations: Mapping[str, Mapping[str, Any]],
    *,
    now: dt.datetime,
    with_quality: bool,
    recent: int = RECENT_RUNS,
    days: int = TOP_WINDOW_DAYS,
    with_checks: bool = True,
) -> dict[str, dict[str, Any]]:
    """`quality_report` of each resource of `declarations` (code -> declaration), in a fixed
    number of queries however many there are; without the per-run check counts when not
    `with_checks` (the dashboard shows none)."""
    codes = list(declarations)
    if not codes:
        return {}
    history = recent_runs(conn, codes, recent)
    checks = (_checks_by_run(conn, [r["run_id"] for rows in history.values() for r in rows])
              if with_checks and with_quality else {})
    since = now - dt.timedelta(days=days)
    failing = failing_checks_of(conn, codes, since=since, with_quality=with_quality)
    queued = backlogs(conn, codes, with_quality)
    succeeded = last_successes(conn, codes)
    reports = {}
    for code, declaration in declarations.items():
        run_points = []
        for r in history.get(code, []):
            read = int(r["read"])
            point = {
                "run_id": r["run_id"],
                "status": r["status"],
                "started_at": iso(r["started_at"]),
                "ended_at": iso(r["ended_at"]),
                "read": read,
                "passed": int(r["passed"]),
                "quarantined": int(r["quarantined"]),
                "pass_rate": int(r["passed"]) / read if read else None,
            }
            if with_checks:
                point["checks"] = checks.get(r["run_id"], [])
            run_points.append(point)
        top, window_runs = failing[code]
        rate, rated = pass_rate(run_points)
        limit = float(declaration.get("quality", {}).get("max_error_rate", 0.0))
        promise = check_promise(
            str(declaration.get("update_frequency", "")), succeeded.get(code), now)
        reports[code] = {
            "resource": code,
            "name": declaration.get("name"),
            "provider": declaration.get("provider"),
            "max_error_rate": limit,
            "runs": run_points,
            "pass_rate": rate,
            "rated_runs": rated,
            "top_failing_checks": top,
            "top_failing_window": {"days": days, "since": since.isoformat(),
                                   "runs": window_runs},
            "quarantine": queued.get(code, Backlog(0, None)).to_json(now),
            "timeliness": promise.to_json(),
        }
    return reports


def quality_report(
    conn: sa.Connection,
    code: str,
    declaration: dict[str, Any],
    *,
    now: dt.datetime,
    with_quality: bool,
    recent: int = RECENT_RUNS,
    days: int = TOP_WINDOW_DAYS,
) -> dict[str, Any]:
    """Quality of one resource over its recent runs (oldest first): per run the pass rate and
    the per-check counts, and the pass rate over them (`pass_rate`); the most failing checks
    over the last `days` days; the quarantine backlog and its age; timeliness against the
    promised update frequency."""
    return quality_reports(conn, {code: declaration}, now=now, with_quality=with_quality,
                           recent=recent, days=days)[code]


def department_totals(
    conn: sa.Connection, codes: sa.Select[Any], *, now: dt.datetime, with_quality: bool
) -> dict[str, dict[str, Any]]:
    """Per providing department of the resources `codes` selects: how many resources, the
    pass rate over their recent runs pooled (`pooled_rate`, the figure `pass_rate` gives over
    the same runs), the records in quarantine and the resources late on their promise (or
    never run). A fixed number of queries, one row per resource at most."""
    resources = catalog_tables.resources
    frequency = resources.c.declaration["update_frequency"].as_string()
    listed = conn.execute(
        sa.select(resources.c.code, resources.c.provider, frequency)
        .where(resources.c.code.in_(codes))
    ).all()
    totals = run_totals(conn, codes)
    queued = backlogs(conn, codes, with_quality)
    succeeded = last_successes(conn, codes)
    by_department: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for code, provider, every in listed:
        by_department[str(provider)].append((str(code), str(every or "")))
    out = {}
    for department, members in sorted(by_department.items()):
        rate, rated = pooled_rate(totals[c] for c, _ in members if c in totals)
        out[department] = {
            "department": department,
            "resource_count": len(members),
            "runs": rated,
            "pass_rate": rate,
            "backlog": sum(queued[c].records for c, _ in members if c in queued),
            "late": sum(1 for c, every in members
                        if check_promise(every, succeeded.get(c), now).state
                        in ("late", "never")),
        }
    return out


def page_of_codes(
    conn: sa.Connection, codes: sa.Select[Any], page: PageRequest
) -> tuple[list[str], int]:
    """One page of the resources `codes` selects, by providing department then code, and how
    many it selects in all."""
    resources = catalog_tables.resources
    chosen = conn.execute(
        sa.select(resources.c.code).where(resources.c.code.in_(codes))
        .order_by(resources.c.provider, resources.c.code)
        .offset(page.offset).limit(page.per_page)
    ).scalars().all()
    total = conn.execute(
        sa.select(sa.func.count()).select_from(resources).where(resources.c.code.in_(codes))
    ).scalar_one()
    return [str(c) for c in chosen], int(total)


def quarantined_records(
    conn: sa.Connection,
    resources: Codes,
    *,
    with_quality: bool,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Quarantined records of `resources` (codes, or a subquery of them), oldest first_seen
    first; each in the shape of `govex quality quarantine --json` plus its resource,
    last_seen and the record itself."""
    wanted = _codes(resources)
    if not with_quality or (isinstance(wanted, list) and not wanted):
        return []
    rows = conn.execute(
        sa.select(quarantine)
        .where(quarantine.c.resource.in_(wanted))
        .order_by(quarantine.c.first_seen, quarantine.c.resource, quarantine.c.record_key)
        .limit(limit)
    ).mappings()
    return [
        {
            "resource": r["resource"],
            "key": r["record_key"],
            "failed_checks": list(r["failed_checks"] or []),
            "run_id": r["run_id"],
            "first_seen": iso(r["first_seen"]),
            "last_seen": iso(r["last_seen"]),
            "record": r["record"],
        }
        for r in rows
    ]
