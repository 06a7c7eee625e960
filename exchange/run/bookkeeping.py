"""Run records: one row per exchange run, one per delivery, one watermark per resource, one
progress row per subscription.

The exchange package owns these tables. Every statement on them is a named function here:
the engine (`steps`, `delivery`) and the dispute correction call these instead of writing their
own, so there is one way to open a run, record a delivery or move a watermark. Read-only views
(the web app) may select from `runs` and `deliveries` directly.

Why progress per subscription as well as a watermark per resource: the watermark says how far
the resource has been read; it cannot say what each target holds. A subscription added after
the resource ran, or whose target changed, holds nothing of what was read before, so an
incremental run would send it only what is new (`backfill` decides what it needs instead).
Progress rows hold cursor positions (a watermark, as `watermarks` does) and the shape they
were delivered in, no records, and live in the store: nothing of them goes to the consumer's
database, whose ledger holds no cursor either (a cursor's key values are record values).

A run's summary (`RunSummary.to_json()`) is exactly the object `govex run --json` prints
(INTERFACES.md).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

from exchange.run.encoding import storable
from govex.moments import aware

metadata = sa.MetaData()
TS = sa.DateTime(timezone=True)

RunStatus = Literal["running", "success", "failed", "blocked"]

runs = sa.Table(
    "exchange_runs",
    metadata,
    sa.Column("run_id", sa.String(36), primary_key=True),
    sa.Column("resource", sa.String(64), nullable=False, index=True),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("subscription", sa.String(64), nullable=True),
    sa.Column("subscriptions", sa.JSON, nullable=False),
    sa.Column("full", sa.Boolean, nullable=False),
    sa.Column("parent", sa.JSON, nullable=True),
    sa.Column("cursor_start", sa.JSON, nullable=True),
    sa.Column("cursor_end", sa.JSON, nullable=True),
    sa.Column("read", sa.Integer, nullable=False),
    sa.Column("passed", sa.Integer, nullable=False),
    sa.Column("quarantined", sa.Integer, nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("ended_at", TS, nullable=True),
    sa.Column("message", sa.Text, nullable=True),
    # The subscriptions this run backfills (`backfill`), fixed at start like `subscriptions`.
    sa.Column("backfills", sa.JSON, nullable=True),
)

deliveries = sa.Table(
    "exchange_deliveries",
    metadata,
    sa.Column("run_id", sa.String(36), sa.ForeignKey("exchange_runs.run_id"), primary_key=True),
    sa.Column("subscription", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("delivered", sa.Integer, nullable=False),
    sa.Column("started_at", TS, nullable=False),
    sa.Column("ended_at", TS, nullable=True),
    sa.Column("message", sa.Text, nullable=True),
    # This delivery sent the subscription the whole data set the others already hold.
    sa.Column("backfill", sa.Boolean, nullable=False, default=False,
              server_default=sa.false()),
)

watermarks = sa.Table(
    "exchange_watermarks",
    metadata,
    sa.Column("resource", sa.String(64), primary_key=True),
    sa.Column("cursor", sa.JSON, nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("updated_at", TS, nullable=False),
)

progress = sa.Table(
    "exchange_subscription_progress",
    metadata,
    sa.Column("subscription", sa.String(64), primary_key=True),
    sa.Column("resource", sa.String(64), nullable=False, index=True),
    # How far the subscription holds the resource: the resource watermark (a cursor position,
    # as in `watermarks`) it was brought level with; null for a resource read whole each run.
    sa.Column("cursor", sa.JSON, nullable=True),
    sa.Column("run_id", sa.String(36), nullable=False),  # the run that brought it there
    # What it was delivered as: the resource's contract version and the subscription's target,
    # mode, fields and masking (`backfill.delivered_shape`). Null: carried over by migration
    # 0009 from before govex kept them, taken as unchanged.
    sa.Column("contract", sa.String(120), nullable=True),
    sa.Column("shape", sa.JSON, nullable=True),
    sa.Column("updated_at", TS, nullable=False),
)

secrets = sa.Table(
    "exchange_secrets",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
    sa.Column("created_at", TS, nullable=False),
)


@dataclass(frozen=True)
class Delivery:
    subscription: str
    delivered: int
    status: str = "success"
    message: str | None = None
    backfill: bool = False  # the whole data set the others already hold (`backfill`)

    @classmethod
    def from_row(cls, row: sa.RowMapping) -> Delivery:
        """A delivery as summaries show it, from its `exchange_deliveries` row."""
        return cls(row["subscription"], row["delivered"], row["status"], row["message"],
                   bool(row["backfill"]))

    def to_json(self) -> dict[str, Any]:
        """`backfill` appears only on a backfill (additive: other deliveries keep their shape)."""
        out: dict[str, Any] = {
            "subscription": self.subscription, "delivered": self.delivered, "status": self.status,
        }
        if self.backfill:
            out["backfill"] = True
        if self.status == "skipped":  # an ended subscription: why it got nothing
            out["reason"] = self.message
        return out


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    resource: str
    status: RunStatus
    read: int
    passed: int
    quarantined: int
    deliveries: tuple[Delivery, ...] = field(default_factory=tuple)
    started_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    message: str = ""

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "success" else 1

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "resource": self.resource,
            "status": self.status,
            "read": self.read,
            "passed": self.passed,
            "quarantined": self.quarantined,
            "deliveries": [d.to_json() for d in self.deliveries],
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "message": self.message,
        }


# ---- summaries -------------------------------------------------------------------------------


def load_summary(conn: sa.Connection, run_id: str) -> RunSummary:
    """The run as `govex run --json` prints it: its row and its delivery rows."""
    row = conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().one()
    delivered = conn.execute(
        sa.select(deliveries).where(deliveries.c.run_id == run_id).order_by(
            deliveries.c.subscription
        )
    ).mappings()
    return RunSummary(
        run_id=row["run_id"],
        resource=row["resource"],
        status=row["status"],
        read=row["read"],
        passed=row["passed"],
        quarantined=row["quarantined"],
        deliveries=tuple(Delivery.from_row(d) for d in delivered),
        started_at=aware(row["started_at"]),
        ended_at=aware(row["ended_at"]),
        message=row["message"] or "",
    )


def list_runs(conn: sa.Connection, resource: str | None = None, limit: int = 100) -> list[str]:
    """Run ids, newest first, of every resource or of one."""
    query = sa.select(runs.c.run_id).order_by(runs.c.started_at.desc()).limit(limit)
    if resource is not None:
        query = query.where(runs.c.resource == resource)
    return [r for (r,) in conn.execute(query)]


# ---- runs -------------------------------------------------------------------------------------


def insert_run(
    conn: sa.Connection,
    run_id: str,
    resource: str,
    *,
    subscriptions: list[str],
    started_at: dt.datetime,
    subscription: str | None = None,
    full: bool = False,
    parent: dict[str, Any] | None = None,
    cursor_start: dict[str, Any] | None = None,
    backfills: list[str] | None = None,
    read: int = 0,
    passed: int = 0,
    message: str | None = None,
) -> None:
    """Record a run as running: every step after this one finds what it needs by the run id.
    `cursor_start` is the resource watermark the run's increment starts after; `backfills`
    the subscriptions that also get what lies at or before it. A correction run knows its
    counts up front (one record read, one passed)."""
    conn.execute(sa.insert(runs), {
        "run_id": run_id, "resource": resource, "status": "running",
        "subscription": subscription, "subscriptions": subscriptions, "full": full,
        "parent": parent, "cursor_start": cursor_start, "cursor_end": None, "read": read,
        "passed": passed, "quarantined": 0, "started_at": started_at, "ended_at": None,
        "message": message, "backfills": list(backfills or []),
    })


def abandon_running(
    conn: sa.Connection, resource: str, superseded_by: str, now: dt.datetime
) -> None:
    """Fail the runs of `resource` still marked running: they never finished (a crash or a
    kill). Marking them is what lets append targets discard their rows, and what stops a
    superseded run from delivering older data over the newer run's."""
    conn.execute(
        sa.update(runs)
        .where(runs.c.resource == resource, runs.c.status == "running")
        .values(
            status="failed", ended_at=now,
            message=f"abandoned: it never finished, superseded by run {superseded_by}",
        )
    )


def get_run(conn: sa.Connection, run_id: str) -> sa.RowMapping | None:
    """The run's row, from which each step rebuilds its plan (steps share only the run id)."""
    return conn.execute(sa.select(runs).where(runs.c.run_id == run_id)).mappings().first()


def run_status(conn: sa.Connection, run_id: str) -> str:
    """The run's status as of this transaction: only a running run is closed by `finish`."""
    status: str = conn.execute(
        sa.select(runs.c.status).where(runs.c.run_id == run_id)
    ).scalar_one()
    return status


def run_ids_of(resource: str) -> sa.Select[tuple[str]]:
    """The ids of every run of `resource`, as a subquery: quarantine rows held under any other
    id were refused by `govex ingest`, and the next run takes them over."""
    return sa.select(runs.c.run_id).where(runs.c.resource == resource)


def ended_runs(conn: sa.Connection, resource: str, run_ids: Sequence[str]) -> list[str]:
    """Those of `run_ids` that are runs of `resource` and have ended (any status but
    running, abandoned ones included): their staged batches may go. An id this store does
    not know is left out, whatever it is."""
    ended: list[str] = []
    for start in range(0, len(run_ids), 500):  # bound parameters per statement
        ended += conn.execute(
            sa.select(runs.c.run_id).where(
                runs.c.resource == resource, runs.c.status != "running",
                runs.c.run_id.in_(run_ids[start:start + 500]),
            )
        ).scalars()
    return ended


def record_read(
    conn: sa.Connection, run_id: str, read: int, cursor_end: dict[str, Any] | None
) -> None:
    """What extract read and where it stopped; the watermark moves to `cursor_end` only when
    the run finishes successfully."""
    conn.execute(
        sa.update(runs).where(runs.c.run_id == run_id).values(read=read, cursor_end=cursor_end)
    )


def record_gate_outcome(
    conn: sa.Connection,
    run_id: str,
    *,
    passed: int,
    quarantined: int,
    read: int | None = None,
    message: str | None = None,
    blocked_at: dt.datetime | None = None,
) -> None:
    """The gate's counts and message. `blocked_at` ends the run blocked: nothing is delivered.
    `read` is rewritten for a Kafka-fed run, whose count includes the ingest refusals."""
    values: dict[str, Any] = {"passed": passed, "quarantined": quarantined}
    if read is not None:
        values["read"] = read
    if message is not None:
        values["message"] = storable(message)  # it may quote a source value
    if blocked_at is not None:
        values |= {"status": "blocked", "ended_at": blocked_at}
    conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(**values))


def fail_if_running(conn: sa.Connection, run_id: str, message: str, now: dt.datetime) -> None:
    """A step failed: fail the run unless it has already ended (a blocked run keeps its
    status, a superseded one its reason)."""
    conn.execute(
        sa.update(runs)
        .where(runs.c.run_id == run_id, runs.c.status == "running")
        .values(status="failed", ended_at=now, message=storable(message))
    )


def close_run(
    conn: sa.Connection,
    run_id: str,
    status: Literal["success", "failed"],
    *,
    ended_at: dt.datetime,
    message: str | None = None,
    subscriptions: list[str] | None = None,
) -> None:
    """End the run. Without `message` the run keeps the one it has (say, the gate's count of
    quarantined records); a correction narrows `subscriptions` to those it re-delivered."""
    values: dict[str, Any] = {"status": status, "ended_at": ended_at}
    if message is not None:
        values["message"] = storable(message)  # it may quote a source value
    if subscriptions is not None:
        values["subscriptions"] = subscriptions
    conn.execute(sa.update(runs).where(runs.c.run_id == run_id).values(**values))


def unfinished_runs(
    conn: sa.Connection, resource: str, subscription: str, current: str
) -> list[str]:
    """Runs of `resource` that did not succeed but began delivering to `subscription` since
    its progress last moved: their appended rows, if any, must go before `current` appends the
    same records again. A run writes into a target only after its delivery row is committed
    (`open_delivery`), so runs without one left nothing there; a subscription without progress
    (new, or needing a backfill) looks at every such run."""
    since = conn.execute(
        sa.select(runs.c.started_at)
        .join(progress, progress.c.run_id == runs.c.run_id)
        .where(progress.c.subscription == subscription, progress.c.resource == resource)
    ).scalar_one_or_none()
    query = (
        sa.select(runs.c.run_id)
        .join(deliveries, deliveries.c.run_id == runs.c.run_id)
        .where(
            runs.c.resource == resource, runs.c.status != "success", runs.c.run_id != current,
            deliveries.c.subscription == subscription,
        )
    )
    if since is not None:
        query = query.where(runs.c.started_at >= since)
    return [r for (r,) in conn.execute(query)]


# ---- deliveries -------------------------------------------------------------------------------


def open_delivery(
    conn: sa.Connection,
    run_id: str,
    subscription: str,
    started_at: dt.datetime,
    *,
    backfill: bool = False,
) -> None:
    """Mark one subscription's delivery running, replacing the row a failed attempt of the
    same run left (an Airflow retry delivers again). It is committed before anything is
    written to the target: `unfinished_runs` relies on that."""
    conn.execute(
        sa.delete(deliveries).where(
            deliveries.c.run_id == run_id, deliveries.c.subscription == subscription
        )
    )
    conn.execute(sa.insert(deliveries), {
        "run_id": run_id, "subscription": subscription, "status": "running", "delivered": 0,
        "started_at": started_at, "ended_at": None, "message": None, "backfill": backfill,
    })


def record_skipped(
    conn: sa.Connection, run_id: str, subscription: str, reason: str, at: dt.datetime
) -> None:
    """A subscription the run does not deliver to because it has ended (revoked or expired):
    a `skipped` delivery row whose message says why, so the run summary tells it. `finish`
    judges only the run's own subscriptions, never these."""
    conn.execute(
        sa.delete(deliveries).where(
            deliveries.c.run_id == run_id, deliveries.c.subscription == subscription
        )
    )
    conn.execute(sa.insert(deliveries), {
        "run_id": run_id, "subscription": subscription, "status": "skipped", "delivered": 0,
        "started_at": at, "ended_at": at, "message": storable(reason), "backfill": False,
    })


def close_delivery(
    conn: sa.Connection,
    run_id: str,
    subscription: str,
    status: Literal["success", "failed"],
    *,
    ended_at: dt.datetime,
    delivered: int | None = None,
    message: str | None = None,
) -> None:
    """End one subscription's delivery: `finish` succeeds the run only when every delivery row
    says success."""
    values: dict[str, Any] = {"status": status, "ended_at": ended_at}
    if delivered is not None:
        values["delivered"] = delivered
    if message is not None:
        values["message"] = storable(message)  # it may quote a source value
    conn.execute(
        sa.update(deliveries)
        .where(deliveries.c.run_id == run_id, deliveries.c.subscription == subscription)
        .values(**values)
    )


def deliveries_of(conn: sa.Connection, run_id: str) -> dict[str, sa.RowMapping]:
    """The run's delivery rows by subscription, which `finish` checks before closing it."""
    return {
        r["subscription"]: r
        for r in conn.execute(sa.select(deliveries).where(deliveries.c.run_id == run_id)).mappings()
    }


RECONCILE_MESSAGE = "key reconciliation"  # how a reconciliation's run says what it is


def last_reconciled(conn: sa.Connection, resource: str) -> dt.datetime | None:
    """When the latest successful key reconciliation of `resource` started (None: never)."""
    started = conn.execute(
        sa.select(sa.func.max(runs.c.started_at)).where(
            runs.c.resource == resource, runs.c.status == "success",
            runs.c.message.like(f"{RECONCILE_MESSAGE}%"),
        )
    ).scalar_one_or_none()
    return aware(started)


# ---- watermarks -------------------------------------------------------------------------------


def read_watermark(conn: sa.Connection, resource: str) -> dict[str, Any] | None:
    """Where the last successful run of `resource` to all its subscriptions stopped reading;
    an incremental run reads strictly after it."""
    cursor: dict[str, Any] | None = conn.execute(
        sa.select(watermarks.c.cursor).where(watermarks.c.resource == resource)
    ).scalar_one_or_none()
    return cursor


def advance_watermark(
    conn: sa.Connection, resource: str, cursor: dict[str, Any], run_id: str, now: dt.datetime
) -> None:
    """Move the watermark, in the transaction that marks `run_id` successful: a crash before
    that leaves it where it was, so the next run reads again all the crashed one may have sent."""
    updated = conn.execute(
        sa.update(watermarks).where(watermarks.c.resource == resource).values(
            cursor=cursor, run_id=run_id, updated_at=now
        )
    ).rowcount
    if not updated:
        conn.execute(
            sa.insert(watermarks),
            {"resource": resource, "cursor": cursor, "run_id": run_id, "updated_at": now},
        )


# ---- subscription progress ---------------------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionProgress:
    """How far one subscription holds its resource (see the `progress` table)."""

    subscription: str
    cursor: dict[str, Any] | None
    run_id: str
    contract: str | None
    shape: dict[str, Any] | None


def read_progress(conn: sa.Connection, resource: str) -> dict[str, SubscriptionProgress]:
    """The progress of every subscription of `resource` that has any, by subscription."""
    rows = conn.execute(sa.select(progress).where(progress.c.resource == resource)).mappings()
    return {
        r["subscription"]: SubscriptionProgress(
            r["subscription"], r["cursor"], r["run_id"], r["contract"], r["shape"]
        )
        for r in rows
    }


def record_progress(
    conn: sa.Connection,
    subscription: str,
    resource: str,
    *,
    cursor: dict[str, Any] | None,
    run_id: str,
    contract: str,
    shape: dict[str, Any],
    now: dt.datetime,
) -> None:
    """Bring a subscription's progress to `cursor`, in the transaction that marks `run_id`
    successful (as the watermark moves): a crash before that leaves it where it was."""
    values = {"resource": resource, "cursor": cursor, "run_id": run_id, "contract": contract,
              "shape": shape, "updated_at": now}
    updated = conn.execute(
        sa.update(progress).where(progress.c.subscription == subscription).values(**values)
    ).rowcount
    if not updated:
        conn.execute(sa.insert(progress), {"subscription": subscription, **values})
