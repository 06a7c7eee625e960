"""`govex check [WORKSPACE] [--json]`: do the tables still fit their contracts?"""

from __future__ import annotations

import argparse
from pathlib import Path

from exchange.cli.output import print_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "check",
        help="connect to every source and target; list missing tables, columns and unfit types",
        description="Connect to every source and target of WORKSPACE (or of the catalog applied "
        "to the metadata store when WORKSPACE is omitted) and report, one line each, a missing "
        "table, a missing column or a type that cannot hold the contract's values. A target "
        "table that does not exist yet is fine: govex creates it. Kafka sources are skipped. "
        "Exit code 1 when there is any problem, 0 when none.",
    )
    p.add_argument("workspace", nargs="?",
                   help="workspace directory (default: the catalog in the metadata store)")
    p.add_argument("--json", action="store_true", help="print the findings as a JSON list")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    from exchange.run import schema_check
    from exchange.store import open_store
    from govex.settings import load_settings

    if args.workspace:
        scope = schema_check.scope_of_workspace(Path(args.workspace))
    else:
        scope = schema_check.scope_of_store(open_store(load_settings()))
    findings = schema_check.check(scope)
    problems = sum(f.level == "problem" for f in findings)
    if args.json:
        print_json([f.to_json() for f in findings])
    else:
        for finding in findings:
            print(finding.line())
        print(f"{problems} problem(s) in {len(scope.resources)} resource(s)."
              if problems else f"No problems in {len(scope.resources)} resource(s).")
    return 1 if problems else 0
