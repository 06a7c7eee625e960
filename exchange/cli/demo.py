"""`govex demo [--no-serve]`: the demo city end to end on the embedded defaults.

Copy the packaged demo workspace to .govex/demo/city (or use `--workspace`), generate its source
data, apply it, run every resource's exchange through Airflow (`dag.test()`) while the tax
vertical system pushes its records over an embedded Kafka broker, print a summary per resource
and subscriber; then serve the web app until Ctrl-C (`--no-serve` exits after the summary).
The work is `exchange.demo.driver.run_demo`; this module parses, prints and serves.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exchange.cli.meter import showing_progress
from exchange.cli.output import table

if TYPE_CHECKING:
    import catalog
    from exchange.demo import driver


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    from exchange.demo import files

    p = subparsers.add_parser(
        "demo",
        help="run the demo city end to end on the embedded defaults",
        description="Generate the demo city's source data, apply its workspace, run every "
        "resource's exchange through Airflow and print a summary. The workspace is a fresh "
        f"copy of the one shipped with govex, in {files.WORKING_COPY}. Connections default "
        "to SQLite files under the workspace; set the GOVEX_DEMO_*_URL variables to use "
        "PostgreSQL or MariaDB.",
    )
    p.add_argument("--no-serve", action="store_true", help="exit after the summary")
    p.add_argument(
        "--workspace",
        help=f"run in this workspace directory instead (default: a fresh copy of the demo "
        f"city in {files.WORKING_COPY})",
    )
    p.add_argument(
        "--copy-workspace",
        metavar="DIR",
        help="copy the demo city's workspace to DIR (a new directory) and exit",
    )
    p.add_argument(
        "--seed", type=int, help="generator seed (same seed, same data; default: the demo's own)"
    )
    p.add_argument("--scale", type=float, default=1.0, help="multiply the generated row counts")
    p.set_defaults(handler=run)


class Printer:
    """The demo's progress, printed as it goes."""

    def say(self, text: str, *, end: str = "\n") -> None:
        print(text, end=end, flush=True)

    def applied(self, plan: catalog.Plan, resources: list[dict[str, object]]) -> None:
        from exchange.cli.apply import print_plan
        from exchange.cli.catalog import print_catalog

        print_plan(plan)
        print_catalog(resources)


def print_run_table(outcomes: list[driver.Outcome]) -> None:
    rows: list[tuple[object, ...]] = []
    for outcome in outcomes:
        summary = outcome.summary
        if summary is None:
            rows.append((outcome.resource, "-", "-", "-", "-", "-", outcome.note))
            continue
        delivered = ", ".join(f"{d.subscription}={d.delivered}" for d in summary.deliveries)
        rows.append((outcome.resource, summary.status, summary.read, summary.passed,
                     summary.quarantined, delivered or "-", outcome.note))
    table(rows, ["RESOURCE", "STATUS", "READ", "PASSED", "QUARANTINED", "DELIVERED", "NOTE"])


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    from exchange.cli.apply import audit_apply
    from exchange.cli.serve import DEFAULT_HOST, DEFAULT_PORT, serve
    from exchange.demo import files
    from exchange.store import open_store, tokens
    from govex.settings import load_settings

    if args.copy_workspace:
        copied = files.copy_workspace(Path(args.copy_workspace))
        print(f"copied the demo city's workspace to {copied}; run it with "
              f"`govex demo --workspace {copied}`")
        return 0
    # The driver pulls in the city generator (Faker) and Kafka: only `govex demo` pays for them.
    from exchange.demo import driver

    started = time.monotonic()
    root = Path(args.workspace) if args.workspace else files.refresh_working_copy()
    engine = open_store(load_settings())
    seed: dict[str, Any] = {} if args.seed is None else {"seed": args.seed}
    with showing_progress():
        outcomes = driver.run_demo(
            engine, root, scale=args.scale, on_applied=audit_apply(root), progress=Printer(),
            **seed,
        )
    print("[5/5] summary", flush=True)
    print_run_table(outcomes)
    print(f"\ndemo city exchanged in {time.monotonic() - started:.1f}s")
    failed = any(outcome.failed for outcome in outcomes)
    if not args.no_serve:
        with engine.begin() as conn:
            owner = tokens.create_token(conn, "gsc", "checklist_owner")
            admin = tokens.create_token(conn, "gsc", "admin")
        print(f"\nweb app: http://{DEFAULT_HOST}:{DEFAULT_PORT}/  (Ctrl-C to stop)")
        print(f"  sign in as checklist owner with  {owner}")
        print(f"  or as admin with                 {admin}")
        serve(engine, DEFAULT_HOST, DEFAULT_PORT)
    return 1 if failed else 0
