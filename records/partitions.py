"""Provenance over time: monthly partitions (PostgreSQL), the index of the months each record
was delivered in, and retention.

Partitions. On PostgreSQL `lineage_provenance` is partitioned by `delivered_at`, one partition
per calendar month in UTC (`lineage_provenance_p202612`), each listed in
`lineage_provenance_partitions`. Every row of one delivery carries the delivery's time, so a
batch goes into one partition: `partition_for` names it, creating it when it is missing, so
that rows never arrive before their partition; `maintain` creates next month's ahead so that a
delivery rarely has to. A partition is created on its own and then attached: ATTACH PARTITION
takes a SHARE UPDATE EXCLUSIVE lock on the parent, which reads and writes pass, where
`CREATE TABLE … PARTITION OF` would take an ACCESS EXCLUSIVE one and stop every trace until
the delivery that created it commits. There is no default partition: every delivery time has
its month, and a default partition would make each attach scan it.

What bounds a trace. A trace asks for one record, by (resource, record_key), with no time:
partitioned by time alone it would probe the record index of every partition, 36 of them at
a retention of three years. Partitioning by a hash of the record would let it probe one, but
then retention could only delete rows, not drop partitions. So partitions are by time, and
the months a record was delivered in are kept beside them: `lineage_provenance_months` holds,
for every sealed partition, each (resource, record_key) it holds and the month. `maintain`
seals a partition once its month has ended, with one INSERT … SELECT DISTINCT over it, off
the write path (maintaining the index per delivered row would be an upsert per row on the
exchange's hot path). A trace reads its record's months there and probes only those
partitions, and the ones not sealed yet: the current month's and the next, empty, one.
Measured on 30 million rows in 12 partitions, see docs/benchmarks.md.

A delivery still writing into a sealed partition (a run that began before its month ended)
adds its own keys to the months index. The partition's registry row is the lock between the
two: a writer reads it FOR KEY SHARE before writing, sealing and dropping lock it FOR UPDATE
first, so they wait for the writers in flight and a later writer sees `sealed_at` set.

Retention (GOVEX_PROVENANCE_RETENTION, e.g. P3Y). `maintain` drops every partition whose end
is older than now minus the retention, oldest first, each in one transaction: the last
delivery of every record and subscription in it is folded into `lineage_provenance_latest`,
its rows of the months index are deleted, the partition is dropped, and an audit entry (kind
`retention`) says what went. SQLite has no partitions: there the same happens a calendar
month (UTC) at a time, with DELETE. The same retention then applies to the verification
records (`records.verifications.expire`: every row older than the horizon, one audit entry
per run), which disclosure reads beside provenance.
"""

from __future__ import annotations

import calendar
import dataclasses
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from govex.durations import duration_parts
from govex.errors import DeclarationError, TransientError
from records import audit, verifications
from records.provenance_tables import TS, months, partitions, provenance
from records.verifications import Expired

__all__ = [
    "AHEAD",
    "RANGES",
    "Dropped",
    "Maintenance",
    "Partition",
    "horizon",
    "index_late_keys",
    "maintain",
    "month_start",
    "partition_for",
    "partition_name",
]

AHEAD = 1  # months `maintain` creates beyond the current one
PREFIX = "lineage_provenance_p"  # + YYYYMM
# Every partition DDL of the store takes this transaction-level advisory lock first, so that two
# deliveries needing the same new month create it once.
_DDL_LOCK = 7_310_201_212_020
# How long dropping a partition waits for the parent's ACCESS EXCLUSIVE lock (traces and
# deliveries queue behind a waiting DROP); past it the drop is undone and maintain says so.
_DROP_LOCK_TIMEOUT = "5s"
_LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for lock_timeout


@dataclass(frozen=True)
class Partition:
    """One partition as the registry lists it (`starts` None: no lower bound)."""

    name: str
    starts: dt.datetime | None
    ends: dt.datetime
    sealed: bool


@dataclass(frozen=True)
class Dropped:
    """What retention removed: a partition (or, on SQLite, a month of rows), how many
    deliveries it held and how many (record, subscription) last deliveries it folded."""

    name: str
    starts: dt.datetime | None
    ends: dt.datetime
    rows: int | None  # None in a dry run
    kept: int | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "from": _iso(self.starts), "to": _iso(self.ends),
                "rows": self.rows, "kept": self.kept}


@dataclass(frozen=True)
class Maintenance:
    """What `maintain` did (or, in a dry run, would do)."""

    partitioned: bool
    retention: str | None
    horizon: dt.datetime | None
    created: tuple[str, ...]
    sealed: tuple[tuple[str, int | None], ...]  # (partition, records indexed)
    dropped: tuple[Dropped, ...]
    dry_run: bool
    # The verification records retention removed (None: no retention).
    verifications: Expired | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "partitioned": self.partitioned,
            "retention": self.retention,
            "horizon": _iso(self.horizon),
            "created": list(self.created),
            "sealed": [{"name": n, "indexed": k} for n, k in self.sealed],
            "dropped": [d.to_json() for d in self.dropped],
            "verifications": (self.verifications.to_json()
                              if self.verifications is not None else None),
            "dry_run": self.dry_run,
        }


def _iso(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat() if value is not None else None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime) -> dt.datetime:
    """Aware UTC (SQLite hands back naive UTC values; PostgreSQL the session's zone)."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def month_start(at: dt.datetime) -> dt.datetime:
    """The first instant (UTC) of the month of `at`."""
    at = _utc(at)
    return dt.datetime(at.year, at.month, 1, tzinfo=dt.UTC)


def _next_month(start: dt.datetime) -> dt.datetime:
    year, month = divmod(start.year * 12 + start.month, 12)  # month index + 1, 0-based
    return dt.datetime(year, month + 1, 1, tzinfo=dt.UTC)


def partition_name(start: dt.datetime) -> str:
    return f"{PREFIX}{_utc(start):%Y%m}"


def horizon(retention: str, now: dt.datetime) -> dt.datetime:
    """`now` minus the ISO-8601 duration `retention`: years and months on the calendar (P1M
    before 31 March is the last day of February), the rest as a timedelta. Deliveries in a
    month that ended before it are past retention."""
    parts = duration_parts(retention.strip())
    if parts is None:
        msg = f"must be an ISO-8601 duration such as P3Y (got {retention!r})"
        raise DeclarationError(msg, field="GOVEX_PROVENANCE_RETENTION", value=retention)
    now = _utc(now)
    year, month = divmod(now.year * 12 + now.month - 1 - int(parts["years"]) * 12
                         - int(parts["months"]), 12)
    moved = now.replace(year=year, month=month + 1,
                        day=min(now.day, calendar.monthrange(year, month + 1)[1]))
    return moved - dt.timedelta(weeks=parts["weeks"], days=parts["days"], hours=parts["hours"],
                                minutes=parts["minutes"], seconds=parts["seconds"])


# ---- the write path -------------------------------------------------------------------------


def _row(row: Any) -> Partition:
    return Partition(row.name, _utc(row.starts) if row.starts is not None else None,
                     _utc(row.ends), row.sealed_at is not None)


def _covering(conn: sa.Connection, at: dt.datetime, *, lock: bool) -> Partition | None:
    p = partitions
    query = sa.select(p).where(sa.or_(p.c.starts.is_(None), p.c.starts <= at), p.c.ends > at)
    if lock:
        query = query.with_for_update(read=True, key_share=True)  # FOR KEY SHARE
    found = conn.execute(query).first()
    return _row(found) if found is not None else None


def _partitioned(conn: sa.Connection) -> bool:
    """Whether this store's provenance table is partitioned (PostgreSQL after migration 0020;
    not a table made by `metadata.create_all`)."""
    if conn.dialect.name != "postgresql":
        return False
    return bool(conn.execute(sa.text(
        "SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass('lineage_provenance')"
    )).scalar())


def partition_for(conn: sa.Connection, at: dt.datetime) -> Partition | None:
    """The partition a delivery made at `at` writes into, created when missing, its registry
    row locked FOR KEY SHARE until the caller's transaction ends (sealing and dropping wait for
    it); None where provenance is one plain table (SQLite)."""
    if conn.dialect.name != "postgresql":
        return None
    found = _covering(conn, at, lock=True)
    if found is not None:
        return found
    if not _partitioned(conn):
        return None
    return _create(conn, month_start(at), lock=True)


def _create(conn: sa.Connection, start: dt.datetime, *, lock: bool) -> Partition:
    """The month partition starting at `start`, created and attached unless another
    transaction did so while this one waited for the DDL lock."""
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_DDL_LOCK)))
    found = _covering(conn, start, lock=lock)
    if found is not None:
        return found
    ends, name = _next_month(start), partition_name(start)
    # LIKE … INCLUDING DEFAULTS: a COPY straight into the partition takes ids from the
    # parent's sequence. ATTACH creates the parent's indexes on the (empty) table.
    conn.exec_driver_sql(f"CREATE TABLE {name} (LIKE lineage_provenance INCLUDING DEFAULTS)")
    conn.exec_driver_sql(
        f"ALTER TABLE lineage_provenance ATTACH PARTITION {name} "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{ends.isoformat()}')"
    )
    conn.execute(sa.insert(partitions).values(
        name=name, starts=start, ends=ends, created_at=_now(), sealed_at=None))
    return Partition(name, start, ends, sealed=False)


def index_late_keys(
    conn: sa.Connection, resource: str, keys: Sequence[str], at: dt.datetime
) -> None:
    """Keys delivered at `at` into an already sealed partition join the months index in the
    same transaction, so that a trace still finds them."""
    if not keys:
        return
    conn.execute(
        sa.text(
            "INSERT INTO lineage_provenance_months (resource, record_key, month) "
            "SELECT DISTINCT :resource, k, :month FROM unnest(CAST(:keys AS text[])) AS k "
            "ON CONFLICT DO NOTHING"
        ),
        {"resource": resource, "month": month_start(at).date(), "keys": list(keys)},
    )


# ---- the read path --------------------------------------------------------------------------


#: The delivery-time ranges [starts, ends) that can hold deliveries of records :keys of
#: :resource, as a query to join provenance with: every partition not sealed yet, and the
#: month of each sealed one the months index lists for them. They never overlap: the months
#: index holds months of sealed partitions only, and its rows go with their partition. One
#: range of all time when no partition is listed (a table made without the migrations).
RANGES = (
    "SELECT COALESCE(starts, timestamptz '-infinity') AS starts, ends "
    "FROM lineage_provenance_partitions WHERE sealed_at IS NULL "
    "UNION SELECT CAST(month AS timestamp) AT TIME ZONE 'UTC', "
    "CAST(month + interval '1 month' AS timestamp) AT TIME ZONE 'UTC' "
    "FROM lineage_provenance_months WHERE resource = :resource AND record_key IN :keys "
    "UNION SELECT timestamptz '-infinity', timestamptz 'infinity' "
    "WHERE NOT EXISTS (SELECT FROM lineage_provenance_partitions)"
)


# ---- maintenance: ahead, sealing, retention -------------------------------------------------


def _listed(conn: sa.Connection) -> list[Partition]:
    p = partitions
    return [_row(r) for r in conn.execute(sa.select(p).order_by(p.c.ends))]


def _seal(engine: sa.Engine, name: str) -> int | None:
    """Index the records of partition `name` by month; None when another maintain sealed or
    dropped it first. Waits for the deliveries writing into it (their FOR KEY SHARE)."""
    p = partitions
    with engine.begin() as conn:
        row = conn.execute(sa.select(p).where(p.c.name == name).with_for_update()).first()
        if row is None or row.sealed_at is not None:
            return None
        part = _row(row)
        month = (
            "CAST(date_trunc('month', delivered_at AT TIME ZONE 'UTC') AS date)"
            if part.starts is None else f"DATE '{part.starts:%Y-%m-%d}'"
        )
        added = conn.exec_driver_sql(
            "INSERT INTO lineage_provenance_months (resource, record_key, month) "
            f"SELECT DISTINCT resource, record_key, {month} FROM {name} ON CONFLICT DO NOTHING"
        ).rowcount
        conn.execute(sa.update(p).where(p.c.name == name).values(sealed_at=_now()))
        return int(added)


# The last delivery of each (record, subscription) of `source`, merged into the kept table
# (a later one already kept wins). The same statement on PostgreSQL and SQLite.
_FOLD = (
    "INSERT INTO lineage_provenance_latest "
    "(resource, record_key, subscription, id, run_id, value_hash, delivered_at) "
    "SELECT resource, record_key, subscription, id, run_id, value_hash, delivered_at FROM ("
    "SELECT resource, record_key, subscription, id, run_id, value_hash, delivered_at, "
    "ROW_NUMBER() OVER (PARTITION BY resource, record_key, subscription "
    "ORDER BY delivered_at DESC, id DESC) AS n FROM {source}{where}) AS ranked WHERE n = 1 "
    "ON CONFLICT (resource, record_key, subscription) DO UPDATE SET id = excluded.id, "
    "run_id = excluded.run_id, value_hash = excluded.value_hash, "
    "delivered_at = excluded.delivered_at "
    "WHERE excluded.delivered_at > lineage_provenance_latest.delivered_at "
    "OR (excluded.delivered_at = lineage_provenance_latest.delivered_at "
    "AND excluded.id > lineage_provenance_latest.id)"
)


def _audit_drop(
    conn: sa.Connection, dropped: Dropped, retention: str, limit: dt.datetime, actor: str
) -> None:
    audit.append(conn, kind="retention", subject=dropped.name, actor=actor, detail={
        **dropped.to_json(), "retention": retention, "horizon": _iso(limit),
    })


def _drop_partition(
    engine: sa.Engine, name: str, retention: str, limit: dt.datetime, actor: str
) -> Dropped | None:
    """Fold, unindex, drop and audit partition `name`, all or nothing; None when another
    maintain dropped it first."""
    p = partitions
    with engine.begin() as conn:
        row = conn.execute(sa.select(p).where(p.c.name == name).with_for_update()).first()
        if row is None:
            return None
        part = _row(row)
        rows = int(conn.exec_driver_sql(f"SELECT count(*) FROM {name}").scalar_one())
        kept = conn.exec_driver_sql(_FOLD.format(source=name, where="")).rowcount
        unindexed = sa.delete(months).where(months.c.month < part.ends.date())
        if part.starts is not None:
            unindexed = unindexed.where(months.c.month >= part.starts.date())
        conn.execute(unindexed)
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{_DROP_LOCK_TIMEOUT}'")
        try:
            conn.exec_driver_sql(f"DROP TABLE {name}")
        except sa.exc.OperationalError as error:
            if getattr(error.orig, "sqlstate", None) != _LOCK_NOT_AVAILABLE:
                raise
            msg = (
                f"cannot drop provenance partition {name}: other queries held "
                f"lineage_provenance for {_DROP_LOCK_TIMEOUT}; nothing was changed, run "
                "`govex provenance maintain` again"
            )
            raise TransientError(msg) from error
        conn.execute(sa.delete(p).where(p.c.name == name))
        dropped = Dropped(name, part.starts, part.ends, rows, int(kept))
        _audit_drop(conn, dropped, retention, limit, actor)
        return dropped


def _oldest_month(
    conn: sa.Connection, after: dt.datetime | None, before: dt.datetime
) -> dt.datetime | None:
    """The month of the oldest delivery in [after, before), None when there is none."""
    at = provenance.c.delivered_at
    query = sa.select(sa.func.min(at)).where(at < before)
    if after is not None:
        query = query.where(at >= after)
    oldest = conn.execute(query).scalar()
    return month_start(oldest) if oldest is not None else None


def _delete_month(
    engine: sa.Engine, start: dt.datetime, retention: str, limit: dt.datetime, actor: str
) -> Dropped:
    """The unpartitioned store's drop: fold, delete and audit one month of rows."""
    ends, at = _next_month(start), provenance.c.delivered_at
    in_month = sa.and_(at >= start, at < ends)
    with engine.begin() as conn:
        rows = int(conn.execute(
            sa.select(sa.func.count()).select_from(provenance).where(in_month)).scalar_one())
        fold = sa.text(_FOLD.format(
            source="lineage_provenance",
            where=" WHERE delivered_at >= :starts AND delivered_at < :ends",
        )).bindparams(sa.bindparam("starts", type_=TS), sa.bindparam("ends", type_=TS))
        kept = conn.execute(fold, {"starts": start, "ends": ends}).rowcount
        conn.execute(sa.delete(provenance).where(in_month))
        dropped = Dropped(partition_name(start), start, ends, rows, int(kept))
        _audit_drop(conn, dropped, retention, limit, actor)
        return dropped


def maintain(
    engine: sa.Engine,
    *,
    retention: str | None,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    actor: str = "cli",
) -> Maintenance:
    """Create the partitions of this month and the next, seal the partitions whose month has
    ended, and with a `retention` (an ISO-8601 duration) drop what is older, then delete the
    verification records older than it, each step in its own transaction (what finished
    stays finished if a later step fails). On SQLite only retention applies, a month of
    provenance rows at a time."""
    moment = _utc(now or _now())
    limit = horizon(retention, moment) if retention else None
    with engine.connect() as conn:
        partitioned = _partitioned(conn)
    if not partitioned:
        done = _maintain_plain(engine, retention, limit, dry_run, actor)
    else:
        done = _maintain_partitioned(engine, retention, limit, moment, dry_run, actor)
    if retention is None or limit is None:
        return done
    expired = verifications.expire(engine, retention=retention, before=limit,
                                   dry_run=dry_run, actor=actor)
    return dataclasses.replace(done, verifications=expired)


def _maintain_partitioned(
    engine: sa.Engine, retention: str | None, limit: dt.datetime | None,
    moment: dt.datetime, dry_run: bool, actor: str,
) -> Maintenance:
    created: list[str] = []
    starts = [month_start(moment)]
    for _ in range(AHEAD):
        starts.append(_next_month(starts[-1]))
    with engine.begin() as conn:
        for start in starts:
            if _covering(conn, start, lock=False) is None:
                created.append(partition_name(start))
                if not dry_run:
                    _create(conn, start, lock=False)
    with engine.connect() as conn:
        listed = _listed(conn)
    expired = [p for p in listed if limit is not None and p.ends <= limit]
    to_seal = [p for p in listed if not p.sealed and p.ends <= moment and p not in expired]
    sealed = tuple(
        (p.name, None if dry_run else _seal(engine, p.name)) for p in to_seal
    )
    dropped: list[Dropped] = []
    if retention is not None and limit is not None:
        for part in expired:
            done = (
                Dropped(part.name, part.starts, part.ends, None, None) if dry_run
                else _drop_partition(engine, part.name, retention, limit, actor)
            )
            if done is not None:
                dropped.append(done)
    return Maintenance(True, retention, limit, tuple(created), sealed, tuple(dropped), dry_run)


def _maintain_plain(
    engine: sa.Engine, retention: str | None, limit: dt.datetime | None, dry_run: bool,
    actor: str,
) -> Maintenance:
    dropped: list[Dropped] = []
    if retention is not None and limit is not None:
        # Whole months only: the month of `limit` has not ended before it.
        cutoff, after = month_start(limit), None
        while True:
            with engine.connect() as conn:
                start = _oldest_month(conn, after, cutoff)
            if start is None:
                break
            after = _next_month(start)
            dropped.append(
                Dropped(partition_name(start), start, after, None, None) if dry_run
                else _delete_month(engine, start, retention, limit, actor)
            )
    return Maintenance(False, retention, limit, (), (), tuple(dropped), dry_run)
