"""`govex run RESOURCE_CODE [--subscription ID] [--full] [--reconcile] [--wait SECONDS]
[--json]`: one exchange run, or a key reconciliation (`--reconcile`)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from exchange.cli import heap
from exchange.cli.meter import showing_progress
from exchange.cli.output import print_json, table
from govex.errors import DeclarationError

if TYPE_CHECKING:
    from exchange.run import DryRun, RunSummary


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
    p.add_argument(
        "--reconcile", action="store_true",
        help="instead of a run: read every key at the source and delete from the upsert and "
        "snapshot targets the records gone from it (refused when the source returns no keys)",
    )
    p.add_argument(
        "--dry-run", action="store_true",
        help="read and gate, deliver nothing: print what each subscription would receive "
        "(no run, quarantine, delivery or watermark is recorded)",
    )
    p.add_argument(
        "--wait", type=_seconds, default=0.0, metavar="SECONDS",
        help="when another run of the resource is under way, wait up to this long for it to "
        "finish (default 0: end at once, naming it)",
    )
    p.add_argument("--json", action="store_true", help="print the run summary as JSON")
    p.set_defaults(handler=run)


def _seconds(text: str) -> float:
    """--wait's value: a number of seconds, 0 or more."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0 or value == float("inf"):
        msg = f"--wait takes a number of seconds, 0 or more (got {text!r})"
        raise argparse.ArgumentTypeError(msg)
    return value


def print_dry_run(forecast: DryRun) -> None:
    print(f"dry run of {forecast.resource}: {forecast.status} (nothing was delivered or recorded)")
    print(f"  read {forecast.read}, would pass {forecast.passed}, "
          f"would quarantine {forecast.quarantined}")
    if forecast.subscriptions:
        table(
            [("  " + s.subscription, s.records, s.deletes, "yes" if s.backfill else "no",
              f"{s.target['connection']}.{s.target['table']} ({s.mode})" if s.target
              else "verification index",
              ", ".join(f"{f}:{m}" if m != "none" else f for f, m in s.masking.items()))
             for s in forecast.subscriptions],
            ["  SUBSCRIPTION", "RECORDS", "DELETES", "BACKFILL", "TARGET", "FIELDS (MASKING)"],
        )
    if forecast.message:
        print(f"  {forecast.message}")


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
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    with heap.loading():
        from exchange.run import dry_run, run_resource
        from exchange.store import open_store
        from govex.settings import load_settings

    store = open_store(load_settings())

    def progress(message: str) -> None:
        if not args.json:
            print(message, file=sys.stderr, flush=True)

    if args.dry_run:
        if args.reconcile:
            msg = "--dry-run forecasts a run; it does not combine with --reconcile"
            raise DeclarationError(msg, field="--dry-run")
        with showing_progress():
            forecast = dry_run(store, args.code, subscription=args.subscription, full=args.full)
        if args.json:
            print_json(forecast.to_json())
        else:
            print_dry_run(forecast)
        return forecast.exit_code
    if args.reconcile and (args.subscription or args.full):
        msg = "--reconcile serves every subscription and reads keys: drop --subscription and --full"
        raise DeclarationError(msg, field="--reconcile")
    if args.reconcile:
        from exchange.run import reconcile_resource  # a reconciliation's modules: only here

        summary = reconcile_resource(store, args.code, progress=progress, wait=args.wait)
    else:
        with showing_progress():
            summary = run_resource(
                store, args.code, subscription=args.subscription, full=args.full,
                progress=progress, wait=args.wait,
            )
    if args.json:
        print_json(summary.to_json())
    else:
        print_summary(summary)
    return summary.exit_code
