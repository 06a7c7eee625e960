"""`python -m exchange.demo.city`: fill the demo city's source systems and print the defects.

Connections are resolved as `govex` resolves them (`${VAR:-default}`, SQLite and file paths
relative to the workspace); `--target name=url` overrides one. Without `--workspace` it fills
the demo's working copy (.govex/demo/city, refreshed from the packaged workspace), as
`govex demo` does.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from catalog import load_workspace, resolve_connection
from exchange.demo.city.generate import DEFAULT_SEED, generate_city
from exchange.demo.files import WORKING_COPY, refresh_working_copy
from govex.errors import GovexError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m exchange.demo.city",
        description="(Re)create the demo city's source tables and files with seeded data.",
    )
    p.add_argument(
        "--workspace", type=Path, help=f"workspace dir (default: a fresh copy in {WORKING_COPY})"
    )
    p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="same seed, same data")
    p.add_argument("--scale", type=float, default=1.0, help="multiplies the row counts")
    p.add_argument(
        "--target",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="override a connection: SQLAlchemy URL, or a directory for a file connection",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        ws = load_workspace(args.workspace or refresh_working_copy())
        targets = {
            name: resolve_connection(name, d.item, ws.root, file=d.file).target
            for name, d in ws.connections.items()
        }
        for item in args.target:
            name, sep, url = item.partition("=")
            if not sep or not name or not url:
                print(f"--target {item!r}: expected NAME=URL", file=sys.stderr)
                return 2
            targets[name] = url
        manifest = generate_city(ws.root, targets, seed=args.seed, scale=args.scale)
    except GovexError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    for r in manifest.resources:
        checks = ", ".join(f"{k} {v}" for k, v in sorted(r.by_check().items())) or "none"
        print(f"{r.resource}: {r.rows} rows, {r.clean_rows} clean; planted: {checks}")
    print(f"manifest: {ws.root / 'data' / 'defects.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
