"""`govex lineage events [--run RUN_ID] [--json]`: the stored OpenLineage events."""

from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("lineage", help="stored OpenLineage events")
    sub = p.add_subparsers(dest="lineage_command", required=True, metavar="COMMAND")
    events = sub.add_parser(
        "events",
        help="stored events, oldest first, one JSON object per line",
        description="Print the stored OpenLineage events (govex's own and those received on "
        "POST /api/v1/lineage), oldest first, one JSON object per line. --run keeps the events "
        "of that run and of its child runs (the deliveries).",
    )
    events.add_argument("--run", metavar="RUN_ID", help="only this run and its children")
    events.add_argument("--json", action="store_true", help="JSON lines (the default output)")
    events.set_defaults(handler=run_events)


def run_events(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import lineage
    from exchange.store import open_store
    from govex.settings import load_settings

    engine = open_store(load_settings())
    with engine.connect() as conn:
        events = lineage.list_events(conn, args.run)
    for event in events:
        print(json.dumps(event, ensure_ascii=False, sort_keys=True))
    return 0
