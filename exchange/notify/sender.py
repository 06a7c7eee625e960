"""The sender: delivers the outbox (`records.notify_outbox`) to departments' webhooks.

Each pass first sweeps for overdue items (`sweep.py`), then POSTs every pending row that is due:
signed, with a short timeout, no redirects followed, only http(s). Every attempt is logged in
`notify_attempts` (status code or error, time, duration). A 2xx marks the row delivered;
anything else schedules a retry after GOVEX_NOTIFY_BACKOFF seconds, doubled after each failure,
until GOVEX_NOTIFY_ATTEMPTS attempts failed (then `failed`). A row is claimed by a conditional
UPDATE of its next attempt time before it is sent, so `govex serve`'s sender thread and a
`govex notify send` running beside it do not both send it.

Signing: `X-Govex-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>`, where
`<timestamp>` is the `X-Govex-Timestamp` header (Unix seconds of this attempt) and the body is
the raw bytes sent; the secret is the department's (`department_secret`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa

import records
from exchange.notify.sweep import sweep_overdue
from exchange.run import master_key
from exchange.store import Principal
from govex.settings import load_settings

log = logging.getLogger(__name__)

outbox = records.notify_outbox
events = records.notify_events
attempts = records.notify_attempts
BATCH = 100  # outbox rows per pass: a long backlog is worked through pass after pass
ERROR_LENGTH = 500  # characters of an error kept in the log
LOG_READERS = frozenset({"admin", "authority", "auditor"})  # read every department's log
USER_AGENT = "govex-notify/1"


def department_secret(store: sa.Engine, department: str) -> str:
    """The department's signing secret, as the hex text the receiver configures: HMAC-SHA256
    of the department code under the master key (nothing more is stored; rotating
    GOVEX_SECRET_KEY rotates every department's secret)."""
    return hmac.new(master_key(store), b"govex-notify:" + department.encode(),
                    hashlib.sha256).hexdigest()


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The X-Govex-Signature value for `body` sent at `timestamp` (the receiver recomputes it)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A 3xx is the receiver's answer, logged as a failure: following it could send a signed
    event somewhere the department never declared."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


@dataclass(frozen=True)
class Attempt:
    status: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300  # noqa: PLR2004 - 2xx


def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Attempt:
    """One POST; never raises (every failure becomes the attempt's error)."""
    started = time.monotonic()

    def done(status: int | None, error: str | None) -> Attempt:
        return Attempt(status, error and error[:ERROR_LENGTH],
                       int((time.monotonic() - started) * 1000))

    if urlsplit(url).scheme not in ("http", "https"):
        return done(None, f"not an http(s) URL: {url}")
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")  # noqa: S310 - http(s) checked above
    try:
        with _opener.open(request, timeout=timeout) as response:
            return done(response.status, None)
    except urllib.error.HTTPError as error:
        return done(error.code, f"HTTP {error.code} {error.reason}")
    except Exception as error:  # noqa: BLE001 - any failure of the receiver is logged, retried
        return done(None, f"{type(error).__name__}: {error}")


@dataclass(frozen=True)
class PassSummary:
    """What one pass did."""

    overdue: int
    delivered: int
    retrying: int
    failed: int


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _claim(conn: sa.Connection, row: sa.RowMapping, until: dt.datetime) -> bool:
    """Take the row for this sender until `until`; False when another sender took it."""
    return conn.execute(
        sa.update(outbox)
        .where(outbox.c.id == row["id"], outbox.c.state == "pending",
               outbox.c.next_attempt_at == row["next_attempt_at"])
        .values(next_attempt_at=until)
    ).rowcount == 1


def _send_one(store: sa.Engine, row: sa.RowMapping, secrets: dict[str, str]) -> str:
    """POST one claimed row and record the attempt; returns its new state."""
    settings = load_settings()
    with store.connect() as conn:
        url = records.webhooks(conn, [row["department"]]).get(row["department"])
    now = _now()
    if url is None:
        with store.begin() as conn:
            conn.execute(sa.update(outbox).where(outbox.c.id == row["id"]).values(
                state="failed", last_error="the department no longer declares a webhook"))
        return "failed"
    if row["department"] not in secrets:
        secrets[row["department"]] = department_secret(store, row["department"])
    body = row["body"].encode()
    timestamp = str(int(now.timestamp()))
    result = post(url, body, {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "X-Govex-Event-Id": row["event_id"],
        "X-Govex-Event": row["type"],
        "X-Govex-Timestamp": timestamp,
        "X-Govex-Signature": signature(secrets[row["department"]], timestamp, body),
    }, settings.notify_timeout)
    tries = row["attempts"] + 1
    if result.ok:
        values: dict[str, Any] = {"state": "delivered", "delivered_at": _now(),
                                  "last_error": None}
    elif tries >= settings.notify_attempts:
        values = {"state": "failed", "last_error": result.error}
    else:
        wait = settings.notify_backoff * 2 ** (tries - 1)
        values = {"state": "pending", "last_error": result.error,
                  "next_attempt_at": _now() + dt.timedelta(seconds=wait)}
    with store.begin() as conn:
        conn.execute(sa.insert(attempts).values(
            outbox_id=row["id"], url=url, at=now, status_code=result.status,
            error=result.error, duration_ms=result.duration_ms,
        ))
        conn.execute(sa.update(outbox).where(outbox.c.id == row["id"])
                     .values(attempts=tries, **values))
    if not result.ok:
        log.warning("webhook of %s failed (attempt %d): %s", row["department"], tries,
                    result.error)
    return str(values["state"])


def send_pending(store: sa.Engine, *, now: dt.datetime | None = None) -> PassSummary:
    """One pass: the overdue sweep, then every pending outbox row due by `now`."""
    moment = now or _now()
    overdue = sweep_overdue(store, now=moment)
    # A claimed row is left alone by other senders for longer than one POST can take.
    hold = dt.timedelta(seconds=load_settings().notify_timeout * 4)
    query = (
        sa.select(outbox, events.c.body, events.c.type)
        .select_from(outbox.join(events, events.c.id == outbox.c.event_id))
        .where(outbox.c.state == "pending", outbox.c.next_attempt_at <= moment)
        .order_by(outbox.c.next_attempt_at, outbox.c.id).limit(BATCH)
    )
    with store.connect() as conn:
        due = list(conn.execute(query).mappings())
    counts = {"delivered": 0, "pending": 0, "failed": 0}
    secrets: dict[str, str] = {}
    for row in due:
        with store.begin() as conn:
            if not _claim(conn, row, _now() + hold):
                continue
        counts[_send_one(store, row, secrets)] += 1
    return PassSummary(overdue, counts["delivered"], counts["pending"], counts["failed"])


def run_sender(store: sa.Engine, stop: threading.Event, interval: float = 10.0) -> None:
    """Pass after pass until `stop` is set; a failing pass is logged, never ends the loop (the
    web app's thread, and `govex notify send`, keep delivering after a store hiccup)."""
    while not stop.is_set():
        try:
            send_pending(store)
        except Exception:  # noqa: BLE001 - logged; the next pass tries again
            log.exception("notification pass failed")
        stop.wait(interval)


def start_sender_thread(store: sa.Engine, interval: float = 10.0) -> threading.Event:
    """The sender in a daemon thread (for `govex serve`); set the returned event to stop it."""
    stop = threading.Event()
    threading.Thread(target=run_sender, args=(store, stop, interval), daemon=True,
                     name="govex-notify").start()
    return stop


def _aware(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value).isoformat()


def delivery_log(
    store: sa.Engine, principal: Principal | None = None, *, department: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The newest outbox rows with every attempt, as `govex notify log --json` and
    `GET /api/v1/notifications` show them. With a principal, one that is not admin,
    authority or auditor sees only its own department's; None (the operator's command line)
    sees all."""
    query = (
        sa.select(outbox, events.c.type, events.c.subject, events.c.created_at)
        .select_from(outbox.join(events, events.c.id == outbox.c.event_id))
        .order_by(outbox.c.id.desc()).limit(limit)
    )
    if principal is not None and principal.role not in LOG_READERS:
        query = query.where(outbox.c.department == principal.department)
    if department is not None:
        query = query.where(outbox.c.department == department)
    with store.connect() as conn:
        rows = list(conn.execute(query).mappings())
        tried: dict[int, list[dict[str, Any]]] = {}
        if rows:
            for a in conn.execute(
                sa.select(attempts).where(attempts.c.outbox_id.in_([r["id"] for r in rows]))
                .order_by(attempts.c.id)
            ).mappings():
                tried.setdefault(a["outbox_id"], []).append({
                    "at": _aware(a["at"]), "url": a["url"], "status_code": a["status_code"],
                    "error": a["error"], "duration_ms": a["duration_ms"],
                })
    return [{
        "id": r["id"], "event_id": r["event_id"], "type": r["type"], "subject": r["subject"],
        "department": r["department"], "state": r["state"], "attempts": r["attempts"],
        "created_at": _aware(r["created_at"]), "next_attempt_at": _aware(r["next_attempt_at"]),
        "delivered_at": _aware(r["delivered_at"]), "last_error": r["last_error"],
        "log": tried.get(r["id"], []),
    } for r in rows]
