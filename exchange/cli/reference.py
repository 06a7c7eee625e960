"""`govex reference [--json]`: the reference lists the checks use, and the workspace's additions."""

from __future__ import annotations

import argparse
from typing import Any

from exchange.cli.output import print_json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "reference",
        help="the reference lists the checks use (GB/T 2260 division codes)",
        description="Show the GB/T 2260 division code history govex ships (its source, date of "
        "last update, how many codes are valid today and were ever valid) and the workspace's "
        # catalog.DIVISION_CODES_FILE, spelled out: `govex --help` does not import catalog.
        "additions (reference/division_codes.csv) as the last apply stored them.",
    )
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(handler=run)


def describe() -> dict[str, Any]:
    """The shipped list and the store's overrides, as `govex reference --json` prints them."""
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import catalog
    import quality
    from exchange.store import open_store
    from govex.settings import load_settings

    engine = open_store(load_settings())
    with engine.connect() as conn:
        stored = catalog.stored_reference(conn)
    overrides: dict[str, Any] = {"file": catalog.DIVISION_CODES_FILE, "count": 0}
    if stored is not None:
        overrides |= {
            "count": len(stored.rows),
            "codes": len({row["code"] for row in stored.rows}),
            "workspace": stored.workspace,
            "applied_at": stored.applied_at.isoformat(),
        }
    return {"gbt2260": {**quality.division_reference(), "overrides": overrides}}


def run(args: argparse.Namespace) -> int:
    info = describe()
    if args.json:
        print_json(info)
        return 0
    gbt = info["gbt2260"]
    print("GB/T 2260 administrative division codes")
    print(f"  publisher:    {gbt['publisher']}")
    print(f"  source:       {gbt['source']}")
    print(f"  supplement:   {gbt['supplement']}")
    print(f"  covers:       {gbt['covers']}")
    print(f"  last update:  {gbt['last_update']}")
    print(f"  codes valid today ({gbt['today']}): {gbt['codes_valid_today']}")
    print(f"  codes ever valid: {gbt['codes_ever_valid']}")
    over = gbt["overrides"]
    if over["count"]:
        print(
            f"  workspace overrides: {over['count']} rows ({over['codes']} codes) from "
            f"{over['workspace']}/{over['file']}, applied {over['applied_at']}"
        )
    else:
        print(f"  workspace overrides: none ({over['file']} not applied)")
    return 0
