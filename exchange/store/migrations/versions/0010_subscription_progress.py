"""exchange: progress per subscription; backfills noted on runs and deliveries

Revision ID: 0010_subscription_progress
Revises: 0009_token_expiry_sessions
Create Date: 2026-12-14

Until this revision only the resource had a watermark, so a subscription added after its
resource had run received only what changed afterwards. Each subscription now has its own
progress (`exchange_subscription_progress`: the watermark it holds the resource up to, no
records), and one without it is backfilled by the next run.

Existing subscriptions are carried over as current only where the run history shows they hold
everything: a successful full read delivered to them (a first run or `--full`), then every
later successful run of the resource delivered to them as well. The others — added after the
first run, or inactive while the resource ran — get a backfill from the next run, which is
exactly what they lack. Carried-over rows have no contract or shape (taken as unchanged).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0010_subscription_progress"
down_revision = "0009_token_expiry_sessions"
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "exchange_subscription_progress",
        sa.Column("subscription", sa.String(64), primary_key=True),
        sa.Column("resource", sa.String(64), nullable=False),
        sa.Column("cursor", sa.JSON, nullable=True),
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("contract", sa.String(120), nullable=True),
        sa.Column("shape", sa.JSON, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
    )
    op.create_index(
        "ix_exchange_subscription_progress_resource", "exchange_subscription_progress",
        ["resource"],
    )
    op.add_column("exchange_runs", sa.Column("backfills", sa.JSON, nullable=True))
    op.add_column(
        "exchange_deliveries",
        sa.Column("backfill", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    _carry_over(op.get_bind())


def _carry_over(conn: sa.Connection) -> None:
    """Progress for the subscriptions the run history shows current (see the docstring)."""
    runs = sa.table(
        "exchange_runs", sa.column("run_id", sa.String), sa.column("resource", sa.String),
        sa.column("status", sa.String), sa.column("subscription", sa.String),
        sa.column("cursor_start", sa.JSON), sa.column("cursor_end", sa.JSON),
        sa.column("started_at", TS),
    )
    deliveries = sa.table(
        "exchange_deliveries", sa.column("run_id", sa.String),
        sa.column("subscription", sa.String), sa.column("status", sa.String),
    )
    watermarks = sa.table(
        "exchange_watermarks", sa.column("resource", sa.String), sa.column("cursor", sa.JSON),
        sa.column("run_id", sa.String),
    )
    progress = sa.table(
        "exchange_subscription_progress", sa.column("subscription", sa.String),
        sa.column("resource", sa.String), sa.column("cursor", sa.JSON),
        sa.column("run_id", sa.String), sa.column("updated_at", TS),
    )
    now = dt.datetime.now(dt.UTC)
    carried: list[dict[str, Any]] = []
    for resource, cursor, watermark_run in conn.execute(
        sa.select(watermarks.c.resource, watermarks.c.cursor, watermarks.c.run_id)
    ).all():
        history = conn.execute(
            sa.select(runs.c.run_id, runs.c.subscription, runs.c.cursor_start,
                      runs.c.cursor_end)
            .where(runs.c.resource == resource, runs.c.status == "success")
            .order_by(runs.c.started_at)
        ).all()
        delivered = {
            (run_id, subscription) for run_id, subscription in conn.execute(
                sa.select(deliveries.c.run_id, deliveries.c.subscription)
                .join(runs, runs.c.run_id == deliveries.c.run_id)
                .where(runs.c.resource == resource, runs.c.status == "success",
                       deliveries.c.status == "success")
            )
        }
        for subscription in sorted({s for _, s in delivered}):
            if _current(history, delivered, subscription):
                carried.append({"subscription": subscription, "resource": resource,
                                "cursor": cursor, "run_id": watermark_run, "updated_at": now})
    if carried:
        conn.execute(sa.insert(progress), carried)


def _current(history: Sequence[Any], delivered: set[tuple[str, str]], subscription: str) -> bool:
    """Whether a full read reached `subscription` and every later run to all subscriptions
    did too. A full read started from no cursor and ended at one (a dispute's correction run
    has neither); a run to all subscriptions has no `subscription` and moved the watermark."""
    full = [i for i, r in enumerate(history)
            if r.cursor_start is None and r.cursor_end is not None
            and (r.run_id, subscription) in delivered]
    if not full:
        return False
    return all(
        (r.run_id, subscription) in delivered
        for r in history[full[-1] + 1:]
        if r.subscription is None and r.cursor_end is not None
    )


def downgrade() -> None:
    with op.batch_alter_table("exchange_deliveries") as batch:
        batch.drop_column("backfill")
    with op.batch_alter_table("exchange_runs") as batch:
        batch.drop_column("backfills")
    op.drop_index(
        "ix_exchange_subscription_progress_resource", table_name="exchange_subscription_progress"
    )
    op.drop_table("exchange_subscription_progress")
