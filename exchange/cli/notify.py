"""`govex notify send|log|secret`: deliver departments' webhook events, read the delivery log,
show a department's signing secret. Operator commands: they act on the store directly, like
`govex audit` (the API's `GET /api/v1/notifications` is the token-checked read)."""

from __future__ import annotations

import argparse

from exchange.cli.output import print_json, table
from govex.errors import DeclarationError

DEFAULT_INTERVAL = 10.0  # seconds between passes of `govex notify send`


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "notify",
        help="webhook notifications: send, log, secret",
        description="Signed JSON events for sharing-request steps, dispute steps and overdue "
        "items, POSTed to the webhook each department declares (notify: in departments.yaml). "
        "`govex serve` also sends them, in a background thread.",
    )
    sub = p.add_subparsers(dest="notify_command", required=True, metavar="COMMAND")
    send = sub.add_parser(
        "send", help="deliver pending events (a loop, or one pass with --once)",
        description="Sweep for overdue requests and disputes (one event per item and "
        "deadline), then POST every pending event that is due, with retries and exponential "
        "backoff (GOVEX_NOTIFY_ATTEMPTS, GOVEX_NOTIFY_BACKOFF). Loops until Ctrl-C unless "
        "--once.",
    )
    send.add_argument("--once", action="store_true", help="one pass, then exit")
    send.add_argument("--interval", type=float, default=DEFAULT_INTERVAL, metavar="S",
                      help=f"seconds between passes (default {DEFAULT_INTERVAL:g})")
    send.set_defaults(handler=run_send)
    logged = sub.add_parser(
        "log", help="the delivery log: each event per department, with every attempt",
        description="The newest outbox rows: event, department, state, attempts, and every "
        "POST with its status code or error.",
    )
    logged.add_argument("--department", metavar="D", help="only this department's")
    logged.add_argument("--limit", type=int, default=100, metavar="N",
                        help="newest N rows (default 100)")
    logged.add_argument("--json", action="store_true", help="print JSON")
    logged.set_defaults(handler=run_log)
    secret = sub.add_parser(
        "secret", help="a department's signing secret, for its receiver",
        description="The secret the department's receiver checks X-Govex-Signature with "
        "(derived from the master key: GOVEX_SECRET_KEY, or the one kept in the store).",
    )
    secret.add_argument("department", metavar="DEPT")
    secret.set_defaults(handler=run_secret)


def run_send(args: argparse.Namespace) -> int:
    # Loaded only when sending: the store brings SQLAlchemy and Alembic.
    import threading

    from exchange.notify import run_sender, send_pending
    from exchange.store import open_store
    from govex.settings import load_settings

    if args.interval <= 0:
        msg = f"--interval must be a positive number of seconds (got {args.interval})"
        raise DeclarationError(msg, field="--interval", value=args.interval)
    store = open_store(load_settings())
    if args.once:
        done = send_pending(store)
        print(f"{done.overdue} overdue events, {done.delivered} delivered, "
              f"{done.retrying} to retry, {done.failed} failed")
        return 0
    print(f"sending notifications every {args.interval:g} s (Ctrl-C to stop)", flush=True)
    run_sender(store, threading.Event(), args.interval)
    return 0


def run_log(args: argparse.Namespace) -> int:
    from exchange.notify import delivery_log
    from exchange.store import open_store
    from govex.settings import load_settings

    if args.limit < 1:
        msg = f"--limit must be at least 1 (got {args.limit})"
        raise DeclarationError(msg, field="--limit", value=args.limit)
    rows = delivery_log(open_store(load_settings()), department=args.department,
                        limit=args.limit)
    if args.json:
        print_json(rows)
        return 0
    table([
        [r["id"], r["type"], r["subject"], r["department"], r["state"], r["attempts"],
         ", ".join(str(a["status_code"] or a["error"]) for a in r["log"]) or "-"]
        for r in rows
    ], ["ID", "EVENT", "SUBJECT", "DEPARTMENT", "STATE", "ATTEMPTS", "ANSWERS"])
    return 0


def run_secret(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from catalog import tables
    from exchange.notify import department_secret
    from exchange.store import open_store
    from govex.settings import load_settings

    store = open_store(load_settings())
    with store.connect() as conn:
        known = conn.execute(sa.select(tables.departments.c.code)
                             .where(tables.departments.c.code == args.department)).first()
    if known is None:
        msg = f"unknown department '{args.department}' (not in the catalog's departments.yaml)"
        raise DeclarationError(msg, field="DEPT", value=args.department)
    print(department_secret(store, args.department))
    return 0
