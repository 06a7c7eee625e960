"""Run records: one row per exchange run, one per delivery, one watermark per resource.

The exchange package owns these tables. A run's summary (`RunSummary.to_json()`) is exactly the
object `govex run --json` prints (INTERFACES.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa

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
)

watermarks = sa.Table(
    "exchange_watermarks",
    metadata,
    sa.Column("resource", sa.String(64), primary_key=True),
    sa.Column("cursor", sa.JSON, nullable=False),
    sa.Column("run_id", sa.String(36), nullable=False),
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
            "deliveries": [
                {"subscription": d.subscription, "delivered": d.delivered, "status": d.status}
                for d in self.deliveries
            ],
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "message": self.message,
        }


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands back naive datetimes; govex stores UTC, so make them aware again."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def load_summary(conn: sa.Connection, run_id: str) -> RunSummary:
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
        deliveries=tuple(
            Delivery(d["subscription"], d["delivered"], d["status"], d["message"])
            for d in delivered
        ),
        started_at=_aware(row["started_at"]),
        ended_at=_aware(row["ended_at"]),
        message=row["message"] or "",
    )


def list_runs(conn: sa.Connection, resource: str | None = None, limit: int = 100) -> list[str]:
    query = sa.select(runs.c.run_id).order_by(runs.c.started_at.desc()).limit(limit)
    if resource is not None:
        query = query.where(runs.c.resource == resource)
    return [r for (r,) in conn.execute(query)]
