"""`govex run RESOURCE_CODE [--subscription ID] [--full] [--json]`: one exchange run."""

from __future__ import annotations

import argparse
import sys

from exchange.cli.output import print_json, table
from exchange.run import RunSummary, run_resource
from exchange.store import open_store
from govex.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "run",
        help="run one resource's exchange: extract, gate, deliver to every subscriber",
        description="Extract the resource from its authoritative source (incrementally by its "
        "watermark unless --full), pass it through the quality gate and deliver the approved, "
        "masked fields to every active subscription. A subscription that does not hold the "
        "data yet (new, or its target or fields changed) is backfilled: it gets the whole "
        "current data set, the others only what changed. Exit 1 when the run failed or was "
        "blocked by the quality gate.",
    )
    p.add_argument("code", metavar="RESOURCE_CODE")
    p.add_argument(
        "--subscription", metavar="ID",
        help="deliver to this subscription only (backfilling it when it needs one)",
    )
    p.add_argument("--full", action="store_true", help="read everything, not just what changed")
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.set_defaults(handler=run)


def print_summary(summary: RunSummary) -> None:
    print(f"run {summary.run_id} of {summary.resource}: {summary.status}")
    print(f"  read {summary.read}, passed {summary.passed}, quarantined {summary.quarantined}")
    if summary.deliveries:
        table(
            [("  " + d.subscription, d.delivered,
              f"{d.status}, backfill" if d.backfill else d.status)
             for d in summary.deliveries],
            ["  SUBSCRIPTION", "DELIVERED", "STATUS"],
        )
    if summary.message:
        print(f"  {summary.message}")


def run(args: argparse.Namespace) -> int:
    store = open_store(load_settings())

    def progress(message: str) -> None:
        if not args.json:
            print(message, file=sys.stderr, flush=True)

    summary = run_resource(
        store, args.code, subscription=args.subscription, full=args.full, progress=progress
    )
    if args.json:
        print_json(summary.to_json())
    else:
        print_summary(summary)
    return summary.exit_code
