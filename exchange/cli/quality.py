"""`govex quality report [CODE] [--json]`, `govex quality quarantine CODE [--json]`."""

from __future__ import annotations

import argparse
from typing import Any

from exchange.cli.output import print_json, table


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("quality", help="quality results and quarantined records")
    sub = p.add_subparsers(dest="quality_command", required=True, metavar="COMMAND")
    rep = sub.add_parser("report", help="per run and per check: evaluated, failed, rate")
    rep.add_argument("code", nargs="?", metavar="RESOURCE_CODE", help="one resource (default all)")
    rep.add_argument("--json", action="store_true", help="print JSON")
    rep.set_defaults(handler=run_report)
    qua = sub.add_parser("quarantine", help="records held back by the gate, with failed checks")
    qua.add_argument("code", metavar="RESOURCE_CODE")
    qua.add_argument("--json", action="store_true", help="print JSON")
    qua.set_defaults(handler=run_quarantine)


def run_report(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import catalog
    import quality
    from exchange.store import open_store
    from govex.settings import load_settings

    engine = open_store(load_settings())
    with engine.connect() as conn:
        if args.code:
            catalog.load_resource(conn, args.code)  # unknown code: exit 2, named
        runs = quality.report(conn, args.code)
    if args.json:
        print_json(runs)
        return 0
    if not runs:
        print("No quality results yet: run an exchange first (`govex run CODE`).")
        return 0
    rows = [
        (r["resource"], r["run_id"], c["check"], c["column"] or "-", c["evaluated"],
         c["failed"], f"{c['failure_rate']:.2%}")
        for r in runs
        for c in r["checks"]
        if c["failed"]
    ]
    print(f"{len(runs)} run(s) with quality results; failing checks:")
    table(rows, ["RESOURCE", "RUN", "CHECK", "COLUMN", "EVALUATED", "FAILED", "RATE"])
    return 0


def run_quarantine(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import catalog
    import quality
    from exchange.store import open_store
    from govex.settings import load_settings

    engine = open_store(load_settings())
    with engine.connect() as conn:
        catalog.load_resource(conn, args.code)
        items = quality.quarantine(conn, args.code)
    if args.json:
        print_json(items)
        return 0
    if not items:
        print(f"Nothing of {args.code} is in quarantine.")
        return 0
    table(
        [
            (i["key"], ", ".join(_failed(c) for c in i["failed_checks"]),
             i["run_id"], i["first_seen"])
            for i in items
        ],
        ["KEY", "FAILED CHECKS", "RUN", "FIRST SEEN"],
    )
    return 0


def _failed(check: dict[str, Any]) -> str:
    """`cn_resident_id(id_no: check digit 110105********002X)`: the check, its column, what
    part of it failed and the value as masked for the provider."""
    said = " ".join(str(x) for x in (check.get("detail"), check.get("value")) if x)
    return f"{check['check']}({check['column']}{': ' + said if said else ''})"
