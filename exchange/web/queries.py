"""What the web app reads from the metadata store, shaped as JSON-ready dicts.

Runs come from the run bookkeeping; the catalog through its public API; quality results and the
quarantine through lightweight table clauses (the quality package owns those tables; the web app
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
from exchange.run import Delivery, RunSummary, deliveries, ending, runs
from exchange.store import Principal
from exchange.web import policy
from exchange.web.durations import check_promise

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
    return {
        code: str(decl["provider"]) for code, decl in catalog.resource_declarations(conn).items()
    }


def visible_subscriptions(
    conn: sa.Connection, principal: Principal, resource: str | None = None
) -> list[dict[str, Any]]:
    """Checklist lines the principal may read (each a subscription declaration), by id, each
    with its `state` (`active`, `revoked`, `expired`) and, once ended, when, by whom, why and
    when its target was purged: the consumer learns why deliveries stopped."""
    provider_of = providers(conn)
    ended = ending.ended_subscriptions(conn, resource, dt.datetime.now(dt.UTC).date())

    def with_state(decl: dict[str, Any]) -> dict[str, Any]:
        end = ended.get(str(decl["id"]))
        if end is None:
            return {**decl, "state": "active", "ended_at": None, "ended_by": None,
                    "reason": None, "purged_at": None}
        return {**decl, "state": end.state, "ended_at": end.at.isoformat(),
                "ended_by": end.by, "reason": end.message() if end.state == "expired"
                else end.reason,
                "purged_at": end.purged_at.isoformat() if end.purged_at else None}

    return [
        with_state(decl)
        for decl in catalog.subscription_declarations(conn, resource).values()
        if policy.may_read_subscription(principal, decl, provider_of.get(decl["resource"]))
    ]


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
    conn: sa.Connection, resources: Iterable[str] | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Run summaries (the `govex run --json` object), newest first; `resources` None = all."""
    query = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.run_id).limit(limit)
    if resources is not None:
        query = query.where(runs.c.resource.in_(list(resources)))
    rows = list(conn.execute(query).mappings())
    return [s.to_json() for s in _summaries(conn, rows)]


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


def quarantine_backlog(conn: sa.Connection, code: str, with_quality: bool) -> Backlog:
    if not with_quality:
        return Backlog(0, None)
    count, oldest = conn.execute(
        sa.select(sa.func.count(), sa.func.min(quarantine.c.first_seen)).where(
            quarantine.c.resource == code
        )
    ).one()
    return Backlog(int(count or 0), aware(oldest))


def _last_success(conn: sa.Connection, code: str) -> dt.datetime | None:
    ended = sa.func.coalesce(runs.c.ended_at, runs.c.started_at)
    value = conn.execute(
        sa.select(sa.func.max(ended)).where(runs.c.resource == code, runs.c.status == "success")
    ).scalar()
    return aware(value)


def pass_rate(points: Iterable[Mapping[str, Any]]) -> tuple[float | None, int]:
    """The one meaning of "pass rate over N runs", for a resource and a department alike:
    records passed over records read, summed over the finished runs that read any record; N
    counts those runs (a run that read nothing has no rate and is not counted). Weighted by
    records, so a department's rate is its resources' runs pooled, not an average of rates."""
    rated = [p for p in points if int(p["read"])]
    read = sum(int(p["read"]) for p in rated)
    passed = sum(int(p["passed"]) for p in rated)
    return (passed / read if read else None), len(rated)


def failing_checks(
    conn: sa.Connection, code: str, *, since: dt.datetime, with_quality: bool
) -> tuple[list[dict[str, Any]], int]:
    """The most failing checks of `code` over its finished runs started at or after `since`,
    most failed records first, and the number of those runs."""
    window = [runs.c.resource == code, runs.c.status != "running", runs.c.started_at >= since]
    count = int(conn.execute(sa.select(sa.func.count()).select_from(runs).where(*window))
                .scalar() or 0)
    if not with_quality or not count:
        return [], count
    rows = conn.execute(
        sa.select(check_results.c.check, check_results.c.column, check_results.c.evaluated,
                  check_results.c.failed)
        .select_from(check_results.join(runs, runs.c.run_id == check_results.c.run_id))
        .where(check_results.c.resource == code, *window)
    ).mappings()
    totals: dict[tuple[str, str | None], dict[str, Any]] = {}
    for row in rows:
        failed = int(row["failed"] or 0)
        total = totals.setdefault(
            (row["check"], row["column"]),
            {"check": row["check"], "column": row["column"], "failed": 0, "evaluated": 0,
             "runs_failing": 0},
        )
        total["failed"] += failed
        total["evaluated"] += int(row["evaluated"] or 0)
        total["runs_failing"] += 1 if failed else 0
    top = sorted(
        (t for t in totals.values() if t["failed"]),
        key=lambda t: (-t["failed"], t["check"], t["column"] or ""),
    )[:TOP_CHECKS]
    return top, count


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
    rows = list(
        conn.execute(
            sa.select(runs)
            .where(runs.c.resource == code, runs.c.status != "running")
            .order_by(runs.c.started_at.desc(), runs.c.run_id)
            .limit(recent)
        ).mappings()
    )
    rows.reverse()
    checks_by_run: dict[str, list[dict[str, Any]]] = defaultdict(list)
    if rows and with_quality:
        result_rows = conn.execute(
            sa.select(check_results)
            .where(
                check_results.c.resource == code,
                check_results.c.run_id.in_([r["run_id"] for r in rows]),
            )
            .order_by(check_results.c.check, check_results.c.column)
        ).mappings()
        for row in result_rows:
            evaluated, failed = int(row["evaluated"] or 0), int(row["failed"] or 0)
            rate = row["failure_rate"]
            checks_by_run[row["run_id"]].append({
                "check": row["check"],
                "column": row["column"],
                "evaluated": evaluated,
                "failed": failed,
                "failure_rate": float(rate) if rate is not None
                else (failed / evaluated if evaluated else 0.0),
            })
    run_points = []
    for r in rows:
        run_checks = checks_by_run.get(r["run_id"], [])
        read = int(r["read"])
        run_points.append({
            "run_id": r["run_id"],
            "status": r["status"],
            "started_at": iso(r["started_at"]),
            "ended_at": iso(r["ended_at"]),
            "read": read,
            "passed": int(r["passed"]),
            "quarantined": int(r["quarantined"]),
            "pass_rate": int(r["passed"]) / read if read else None,
            "checks": run_checks,
        })
    since = now - dt.timedelta(days=days)
    top, window_runs = failing_checks(conn, code, since=since, with_quality=with_quality)
    rate, rated = pass_rate(run_points)
    limit = float(declaration.get("quality", {}).get("max_error_rate", 0.0))
    promise = check_promise(
        str(declaration.get("update_frequency", "")), _last_success(conn, code), now
    )
    return {
        "resource": code,
        "name": declaration.get("name"),
        "provider": declaration.get("provider"),
        "max_error_rate": limit,
        "runs": run_points,
        "pass_rate": rate,
        "rated_runs": rated,
        "top_failing_checks": top,
        "top_failing_window": {"days": days, "since": since.isoformat(), "runs": window_runs},
        "quarantine": quarantine_backlog(conn, code, with_quality).to_json(now),
        "timeliness": promise.to_json(),
    }


def quarantined_records(
    conn: sa.Connection,
    resources: Iterable[str],
    *,
    with_quality: bool,
    limit: int = 500,
) -> list[dict[str, Any]]:
    """Quarantined records of `resources`, oldest first_seen first; each in the shape of
    `govex quality quarantine --json` plus its resource, last_seen and the record itself."""
    wanted = list(resources)
    if not with_quality or not wanted:
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
