"""Run leases: at most one run of a resource at a time, across Airflow and the CLI.

A run's steps may work in different processes on different machines (Airflow tasks) that share
nothing but the store, so a run holds its resource with a row in the store, not with a process
lock: the lease belongs to the run id. `take` writes it when the run starts; every step renews
it on entry and then every GOVEX_LEASE_SECONDS from a background thread (`held`), recording the
process that renewed last; `release` deletes it in the transaction that ends the run. A lease
not renewed for three intervals has expired: its run died (a kill, a crash, a lost machine),
and only then may another run take the resource over and mark that run abandoned. A step of
the same run (an Airflow retry, on any machine) renews its own run's lease, expired or not,
as long as no other run has taken it meanwhile.

Taking is atomic without a SELECT-then-write race on every store: a conditional UPDATE takes
an expired lease (the database serialises writers of the row, and a second writer re-reads
the condition), else an INSERT takes a free one (the primary key refuses the second writer).
Each is its own short transaction. Times are the clocks of the machines that run the steps
(UTC): keep them synchronised (NTP), a skew eats into the three intervals.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy as sa

from exchange.run.bookkeeping import TS, metadata
from govex.errors import FatalError, TransientError
from govex.moments import aware
from govex.settings import load_settings

log = logging.getLogger(__name__)
T = TypeVar("T")

EXPIRY_INTERVALS = 3  # renewals a lease may miss (a slow store, a pause) before it expires

leases = sa.Table(
    "exchange_run_leases",
    metadata,
    sa.Column("resource", sa.String(64), primary_key=True),
    sa.Column("run_id", sa.String(36), nullable=False),
    sa.Column("holder", sa.String(255), nullable=False),  # host and process that renewed last
    sa.Column("taken_at", TS, nullable=False),
    sa.Column("renewed_at", TS, nullable=False),
    sa.Column("expires_at", TS, nullable=False),
)


@dataclass(frozen=True)
class Lease:
    """Who holds a resource, as the store says."""

    resource: str
    run_id: str
    holder: str
    taken_at: dt.datetime
    expires_at: dt.datetime


class ResourceBusyError(TransientError):
    """Another run holds the resource: trying again later may succeed (an Airflow retry)."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        super().__init__(
            f"resource {lease.resource} is being run by run {lease.run_id} ({lease.holder}) "
            f"since {_shown(lease.taken_at)}, its lease expiring at {_shown(lease.expires_at)} "
            "unless renewed: try again when it has finished, or wait for it "
            "(govex run --wait SECONDS)"
        )


class LeaseLostError(FatalError):
    """The run no longer holds its resource: another run took it over, so this one stops."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _shown(value: dt.datetime) -> str:
    return aware(value).isoformat(timespec="seconds")


def interval() -> int:
    """Seconds between renewals (GOVEX_LEASE_SECONDS)."""
    return load_settings().lease_seconds


def holder_name() -> str:
    """This process, as a lease names its holder."""
    return f"host {socket.gethostname()}, pid {os.getpid()}"[:255]


def _fresh(now: dt.datetime) -> dict[str, object]:
    return {
        "holder": holder_name(), "renewed_at": now,
        "expires_at": now + dt.timedelta(seconds=EXPIRY_INTERVALS * interval()),
    }


def take(store: sa.Engine, resource: str, run_id: str, *, wait: float = 0) -> None:
    """Take `resource` for `run_id`, waiting up to `wait` seconds for the holder to finish or
    its lease to expire; ResourceBusyError naming the holder after that."""
    deadline = time.monotonic() + max(wait, 0)
    while True:
        holding = _try_take(store, resource, run_id)
        if holding is None:
            return
        left = deadline - time.monotonic()
        if left <= 0:
            raise ResourceBusyError(holding)
        time.sleep(min(left, 1.0))  # a poll a second: cheap, and a wait ends soon after


def _try_take(store: sa.Engine, resource: str, run_id: str) -> Lease | None:
    """None when `run_id` now holds `resource`; else the lease of the run holding it."""
    for _attempt in range(3):  # the holder may release between our statements
        now = _now()
        values = {"run_id": run_id, "taken_at": now, **_fresh(now)}
        with store.begin() as conn:
            taken = conn.execute(
                sa.update(leases)
                .where(leases.c.resource == resource, leases.c.expires_at < now)
                .values(**values)
            ).rowcount
        if taken:
            return None
        try:
            with store.begin() as conn:
                conn.execute(sa.insert(leases), {"resource": resource, **values})
        except sa.exc.IntegrityError:
            pass  # held: by whom, below
        else:
            return None
        with store.connect() as conn:
            current = holder_of(conn, resource)
        if current is not None:
            return current
    msg = f"could not take the lease on resource {resource}: it kept changing hands"
    raise TransientError(msg)


def holder_of(conn: sa.Connection, resource: str) -> Lease | None:
    """The lease on `resource`, expired or not (None: free)."""
    row = conn.execute(sa.select(leases).where(leases.c.resource == resource)).mappings().first()
    if row is None:
        return None
    return Lease(row["resource"], row["run_id"], row["holder"], aware(row["taken_at"]),
                 aware(row["expires_at"]))


def renew(store: sa.Engine, run_id: str) -> bool:
    """Extend the run's lease from now, naming this process; False when the run holds none
    (another run took its resource over, or the run ended)."""
    with store.begin() as conn:
        return bool(
            conn.execute(
                sa.update(leases).where(leases.c.run_id == run_id).values(**_fresh(_now()))
            ).rowcount
        )


def release(conn: sa.Connection, run_id: str) -> None:
    """Give the resource back, in the transaction that ends the run; a run that lost its
    lease releases nothing (the row is another run's)."""
    conn.execute(sa.delete(leases).where(leases.c.run_id == run_id))


class Heartbeat:
    """Renews a run's lease every interval from a daemon thread while a step works; the step
    asks `check` (or iterates through `guard`) before each batch it writes."""

    def __init__(self, store: sa.Engine, run_id: str) -> None:
        self.store = store
        self.run_id = run_id
        self.lost = False
        self.renewed = time.monotonic()  # `held` renewed just before
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        # An in-memory SQLite store is one database per thread: another thread would see an
        # empty one. Such a store lives in one process, so renewing on step entry suffices.
        if isinstance(self.store.pool, sa.pool.SingletonThreadPool | sa.pool.StaticPool):
            return
        self._thread = threading.Thread(
            target=self._beat, name=f"govex-lease-{self.run_id}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(interval()):
            try:
                self._renew()
                if self.lost:
                    return
            except Exception:  # noqa: BLE001 - a missed renewal is survivable: two more to go
                log.warning("could not renew the lease of run %s", self.run_id, exc_info=True)

    def _renew(self) -> None:
        if renew(self.store, self.run_id):
            self.renewed = time.monotonic()
        else:
            self.lost = True

    def check(self) -> None:
        """LeaseLostError once the run no longer holds its resource. When the last renewal is
        older than an interval (the process was paused, the thread is late), renew first:
        a run that slept past its expiry must not write one more batch before it knows."""
        if not self.lost and time.monotonic() - self.renewed > interval():
            self._renew()
        if self.lost:
            raise LeaseLostError(_lost(self.run_id))

    def guard(self, batches: Iterable[T]) -> Iterator[T]:
        """`batches`, checking before each that the run still holds its resource."""
        for batch in batches:
            self.check()
            yield batch


def _lost(run_id: str) -> str:
    return (
        f"run {run_id} no longer holds the lease on its resource (it expired and another run "
        "took the resource over, or the run has ended): it stops so that two runs never both "
        "deliver"
    )


@contextmanager
def held(store: sa.Engine, run_id: str) -> Iterator[Heartbeat]:
    """Renew the run's lease now (LeaseLostError when it holds none) and keep renewing it
    while the block runs."""
    if not renew(store, run_id):
        raise LeaseLostError(_lost(run_id))
    beat = Heartbeat(store, run_id)
    beat.start()
    try:
        yield beat
    finally:
        beat.stop()
