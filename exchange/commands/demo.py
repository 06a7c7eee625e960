"""`govex demo [--no-serve]`: the demo city end to end on the embedded defaults.

Today: generate the city's source data, apply its workspace, print the catalog. Later issues add
the exchange runs, quality gate and web app to the same command.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import catalog

from ..settings import load_settings
from ..store import open_store
from .apply import print_plan
from .catalog import print_catalog

DEMO_WORKSPACE = Path(__file__).resolve().parents[2] / "examples" / "city"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "demo",
        help="run the demo city end to end on the embedded defaults",
        description="Generate the demo city's source data, apply its workspace and show the "
        "catalog. Connections default to SQLite files under the workspace; set the "
        "GOVEX_DEMO_*_URL variables to use PostgreSQL or MariaDB.",
    )
    p.add_argument("--no-serve", action="store_true", help="exit after the summary")
    p.add_argument("--workspace", default=str(DEMO_WORKSPACE), help="demo workspace directory")
    p.add_argument(
        "--seed", type=int, default=20261127, help="generator seed (same seed, same data)"
    )
    p.add_argument("--scale", type=float, default=1.0, help="multiply the generated row counts")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from .. import democity  # the generator pulls in Faker: load it only for the demo

    started = time.monotonic()
    root = Path(args.workspace)
    print(f"[1/3] reading the demo workspace {root}")
    ws = catalog.load_workspace(root)
    targets = {
        name: catalog.resolve_connection(name, d.item, ws.root, file=d.file).target
        for name, d in ws.connections.items()
        if d.item.kind != "kafka"
    }
    print(f"[2/3] generating source data (seed {args.seed}, scale {args.scale})")
    manifest = democity.generate_city(ws.root, targets, seed=args.seed, scale=args.scale)
    for generated in manifest.resources:
        print(
            f"      {generated.resource}: {generated.rows} rows, "
            f"{len(generated.defects)} planted defects"
        )
    print("[3/3] applying the workspace to the metadata store")
    engine = open_store(load_settings())
    result = catalog.apply_workspace(engine, ws.root)
    print_plan(result.plan)
    print()
    with engine.connect() as conn:
        print_catalog(catalog.list_resources(conn))
    print(f"\ndemo city ready in {time.monotonic() - started:.1f}s")
    if not args.no_serve:
        print("(the web app arrives with the quality issue; nothing to serve yet)")
    return 0
