"""`govex leak identify FILE --resource CODE [--json]`: which subscription a leaked file came
from."""

from __future__ import annotations

import argparse
from pathlib import Path

from exchange.cli.output import print_json, table


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "leak",
        help="leak tracing: which subscription a leaked file came from",
        description="Leak tracing (数据指纹溯源) on the fingerprints provenance keeps of "
        "every delivered row.",
    )
    sub = p.add_subparsers(dest="leak_command", required=True, metavar="COMMAND")
    found = sub.add_parser(
        "identify",
        help="rank a resource's subscriptions by the share of a file's rows they received",
        description="Rank the bulk subscriptions of resource CODE by the share of FILE's rows "
        "whose values match what govex delivered to them, as each received them (its fields, "
        "masked and typed as delivered). FILE is CSV with a header row or JSON Lines, holding "
        "some delivery's columns: a sample of rows, columns in any order or renamed, govex's "
        "_govex_* columns kept or dropped. Subscriptions that received identical values are "
        "reported as a tie. A file that cannot be read, or an unknown resource: exit 2.",
    )
    found.add_argument("file", metavar="FILE", type=Path)
    found.add_argument("--resource", required=True, metavar="CODE",
                       help="the resource the file holds records of")
    found.add_argument("--json", action="store_true",
                       help="print the ranking as JSON: a list, best first")
    found.set_defaults(handler=run_identify)


def run_identify(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    from exchange.leak import identify
    from exchange.store import open_store
    from govex.settings import load_settings

    engine = open_store(load_settings())
    result = identify(engine, args.file, args.resource)
    if args.json:
        print_json([s.to_json() for s in result.suspects])
        return 0
    cut = " (the first ones: the file is longer)" if result.truncated else ""
    print(f"{args.file}: {result.rows} {result.format} rows{cut}, resource {result.resource}")
    if not result.suspects:
        print("  the resource has no bulk subscription: nothing could have leaked from it")
        return 0
    table(
        [("  " + s.subscription, s.consumer, f"{s.matched:.1%}", f"{s.matched_rows}/{s.rows}",
          ",".join(s.tie_with) or "-") for s in result.suspects],
        ["  SUBSCRIPTION", "CONSUMER", "MATCHED", "ROWS", "TIED WITH"],
    )
    for s in result.suspects:
        if s.note:
            print(f"  {s.subscription}: {s.note}")
    return 0
