"""`govex apply WORKSPACE [--dry-run]`: validate, print the plan, apply atomically."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from exchange.cli.output import print_json, table
from govex.errors import DeclarationError, GovexError

if TYPE_CHECKING:
    import sqlalchemy as sa

    import catalog

_SINGULAR = {
    "departments": "department",
    "connections": "connection",
    "contracts": "contract",
    "resources": "resource",
    "subscriptions": "subscription",
    "reference": "reference list",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "apply",
        help="validate a workspace, print the plan and apply it atomically",
        description="Validate every declaration of WORKSPACE, print what will be added, changed "
        "and removed, then apply all of it in one transaction (or nothing).",
    )
    p.add_argument("workspace", nargs="?", help="workspace directory (default: $GOVEX_WORKSPACE)")
    p.add_argument("--dry-run", action="store_true", help="validate and plan, change nothing")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument(
        "--strict", action="store_true",
        help="refuse to apply (exit 1) when a source or target table does not fit its contract "
        "(`govex check`); without it such problems are printed as warnings",
    )
    p.set_defaults(handler=run)


def workspace_path(given: str | None) -> Path:
    """The workspace argument, else GOVEX_WORKSPACE, else a clear error."""
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    from govex.settings import load_settings

    chosen = given or load_settings().workspace
    if not chosen:
        msg = "no workspace given: pass WORKSPACE or set GOVEX_WORKSPACE"
        raise DeclarationError(msg)
    return Path(chosen)


def audit_apply(root: Path) -> Callable[[sa.Connection, catalog.Plan], None]:
    """The audit log entry of an apply, written in the apply's own transaction."""
    # Imported here, not at the top: `govex --help` loads no command's dependencies.

    import records


    def record(conn: sa.Connection, plan: catalog.Plan) -> None:

        records.append_audit(
            conn, kind="apply", subject=str(root.resolve()), detail={"plan": plan.to_json()}
        )

    return record


def print_plan(plan: catalog.Plan) -> None:
    rows = [
        (kind, len(p.added), len(p.changed), len(p.removed)) for kind, p in plan.kinds.items()
    ]
    table(rows, ["KIND", "ADDED", "CHANGED", "REMOVED"])
    for kind, p in plan.kinds.items():
        for sign, keys in (("+", p.added), ("~", p.changed), ("-", p.removed)):
            for key in keys:
                print(f"  {sign} {_SINGULAR[kind]} {key}")
                for change in p.changes.get(key, ()) if sign == "~" else ():
                    print(f"      {change.path}: {_show(change.before)} -> {_show(change.after)}")


def _show(value: object) -> str:
    """A changed value on one line: JSON, `(absent)` for a key added or removed."""
    if value is None:
        return "(absent)"
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def check_tables(root: Path, *, strict: bool) -> None:
    """`govex check` on the workspace: with `strict`, a problem refuses the apply (before
    anything changes); otherwise each is a `warning:` line on stderr and the apply goes on."""
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    from exchange.run import schema_check

    try:
        findings = schema_check.check(schema_check.scope_of_workspace(root))
    except GovexError as error:
        if strict:
            raise
        print(f"warning: the tables could not be checked: {error}", file=sys.stderr)
        return
    if strict:
        schema_check.require_fit(findings)
    for finding in findings:
        if finding.level == "problem":
            print(f"warning: {finding.message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import catalog
    from exchange.run import find_master_key, master_key
    from exchange.store import open_store
    from govex.settings import load_settings

    root = workspace_path(args.workspace)
    engine = open_store(load_settings())
    if args.strict:
        check_tables(root, strict=True)
    # The key behind connection fingerprints; a dry run creates none (it changes nothing).
    secret = find_master_key(engine) if args.dry_run else master_key(engine)
    result = catalog.apply_workspace(
        engine, root, dry_run=args.dry_run, on_applied=audit_apply(root), secret=secret
    )
    if not args.strict:
        check_tables(root, strict=False)
    for warning in result.warnings:  # e.g. subscriptions leak tracing cannot tell apart
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print_json({"plan": result.plan.to_json(), "changes": result.plan.changes_json(),
                    "applied": result.applied, "warnings": list(result.warnings)})
        return 0
    print(f"Plan for {root}:")
    print_plan(result.plan)
    if result.plan.empty:
        print("No changes: the catalog already matches the workspace.")
    elif args.dry_run:
        print("Dry run: nothing was applied.")
    else:
        print("Applied.")
    sys.stdout.flush()
    return 0
