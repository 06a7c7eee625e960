"""`govex usage [--resource C] [--consumer D] [--from DATE] [--to DATE] [--json | --csv]`:
metering per subscription and day (the same rows as `GET /api/v1/usage`)."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys

from exchange.cli.output import print_json, table

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _day(text: str) -> dt.date:
    try:
        if _DATE.fullmatch(text):
            return dt.date.fromisoformat(text)
    except ValueError:
        pass
    msg = f"must be a date YYYY-MM-DD, got {text!r}"
    raise argparse.ArgumentTypeError(msg)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "usage",
        help="metering: records, bytes, verification calls per subscription and day",
        description="Show what each subscription used per day (Asia/Shanghai): records "
        "delivered or verified, bytes (of the delivered values; of verification request "
        "bodies), verification calls, records that matched, records not found; oldest day "
        "first, then the totals. Reads the store GOVEX_DB_URL names, as an operator (no "
        "token).",
    )
    p.add_argument("--resource", metavar="CODE", help="only subscriptions to this resource")
    p.add_argument("--consumer", metavar="DEPARTMENT", help="only this consumer's")
    p.add_argument("--from", dest="start", type=_day, metavar="DATE",
                   help="first day, YYYY-MM-DD (included)")
    p.add_argument("--to", dest="end", type=_day, metavar="DATE",
                   help="last day, YYYY-MM-DD (included)")
    shape = p.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true",
                       help="print JSON: {rows: [...], totals: {...}}")
    shape.add_argument("--csv", action="store_true",
                       help="print the rows as CSV (the same as GET /api/v1/usage.csv)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import records
    from exchange.store import open_store
    from govex.errors import DeclarationError
    from govex.settings import load_settings

    if args.start is not None and args.end is not None and args.start > args.end:
        msg = f"--from {args.start} is after --to {args.end}"
        raise DeclarationError(msg)
    engine = open_store(load_settings())
    with engine.connect() as conn:
        report = records.usage(conn, resource=args.resource, consumer=args.consumer,
                               start=args.start, end=args.end)
    if args.json:
        print_json(report.as_json())
        return 0
    if args.csv:
        sys.stdout.write(report.to_csv())
        return 0
    if not report.rows:
        print("No usage recorded for these filters.")
        return 0
    counts = records.USAGE_COUNTS
    table(
        [(r.day.isoformat(), r.resource, r.consumer, r.subscription,
          *(f"{n:,}" for n in r.counts().values())) for r in report.rows]
        + [("total", "", "", "", *(f"{report.totals[c]:,}" for c in counts))],
        ["DAY", "RESOURCE", "CONSUMER", "SUBSCRIPTION", *(c.upper() for c in counts)],
    )
    return 0
