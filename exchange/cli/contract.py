"""`govex contract infer CONNECTION TABLE`: draft a contract from a live table."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from exchange.cli.output import print_json
from govex.errors import DeclarationError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("contract", help="work with contracts")
    sub = p.add_subparsers(dest="contract_command", required=True, metavar="COMMAND")
    infer = sub.add_parser(
        "infer",
        help="draft a contract from a live table",
        description="Draft a contract (JSON Schema draft 2020-12) from TABLE: types, "
        "nullability (required), lengths (maxLength), and suggested x-govex-pii and "
        "x-govex-checks from the column names and a bounded sample of rows. Prints JSON; "
        "review it, then save it as contracts/<name>/1.0.0.json.",
    )
    infer.add_argument(
        "connection", metavar="CONNECTION",
        help="a connection name from the workspace's connections.yaml, or a SQLAlchemy URL",
    )
    infer.add_argument("table", metavar="TABLE")
    infer.add_argument(
        "--workspace", metavar="W",
        help="workspace whose connections.yaml names CONNECTION (default: $GOVEX_WORKSPACE, "
        "else the current directory)",
    )
    infer.add_argument("--name", metavar="N", help="the contract's title (default: TABLE)")
    infer.add_argument(
        # The default is exchange.infer's DEFAULT_SAMPLE_ROWS, read in the handler: the
        # inference stack (pyarrow, quality) is not for `govex --help` to load.
        "--sample", type=int, default=None, metavar="ROWS",
        help="rows sampled to suggest checks (default 1000)",
    )
    infer.set_defaults(handler=run_infer)


def connection_url(connection: str, workspace: str | None) -> str:
    """A SQLAlchemy URL as given, or the named workspace connection resolved now."""
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import catalog
    from govex.settings import load_settings

    if "://" in connection:
        return connection
    root = Path(workspace or load_settings().workspace or ".")
    ws, _errors = catalog.read_workspace(root)  # only connections.yaml matters here
    declared = ws.connections.get(connection)
    if declared is None:
        msg = f"unknown connection '{connection}' (not in {root / 'connections.yaml'})"
        raise DeclarationError(msg, value=connection)
    resolved = catalog.resolve_connection(
        connection, declared.item, ws.root, os.environ, file=declared.file
    )
    if resolved.kind != "url":
        msg = f"connection '{connection}' is a {resolved.kind} connection, not a database"
        raise DeclarationError(msg, value=connection)
    return resolved.target


def run_infer(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    from exchange.infer import DEFAULT_SAMPLE_ROWS, infer_contract

    if args.sample is None:
        args.sample = DEFAULT_SAMPLE_ROWS
    if args.sample < 1:
        msg = f"--sample must be at least 1 (got {args.sample})"
        raise DeclarationError(msg, value=args.sample)
    url = connection_url(args.connection, args.workspace)
    print_json(infer_contract(url, args.table, name=args.name, sample_rows=args.sample))
    return 0
