"""`govex disclosure RESOURCE_CODE KEY [--json]`: who received or verified one record."""

from __future__ import annotations

import argparse
from typing import Any

from exchange.cli.output import print_json, table


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "disclosure",
        help="who received or verified one record: when, which fields, subscription, purpose",
        description="List every department that received record KEY of a resource (each "
        "delivery, and each delete that reached its copy) or asked whether values it holds "
        "match it (each verification), newest first: when, under which subscription and "
        "purpose, which fields (for a verification: the fields asked) and how they were "
        "masked. A subscription since removed from the catalog is shown from what govex "
        "kept of it (see docs/operations.md). Read from the metadata store, as `govex "
        "trace` is. KEY is the record key's values joined by ','; a key nobody received "
        "lists nothing. Unknown resource or a key of the wrong shape: exit 2.",
    )
    p.add_argument("code", metavar="RESOURCE_CODE")
    p.add_argument("key", metavar="KEY", help="record key values joined by ','")
    p.add_argument("--json", action="store_true", help="print the disclosure as JSON")
    p.set_defaults(handler=run)


def _fields(item: dict[str, Any]) -> str:
    """The fields sent or asked, each masked one with its function; `?` where unknown."""
    if item["fields"] is None:
        return "?"
    masking = item["masking"] or {}
    shown = [f"{f}({masking[f]})" if masking.get(f, "none") != "none" else f
             for f in item["fields"]]
    return ",".join(shown) or "-"


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import records  # provenance pulls in pyarrow: keeps `govex --help` fast
    from exchange.store import open_store
    from exchange.verify import service
    from govex.settings import load_settings

    engine = open_store(load_settings())
    with engine.connect() as conn:
        found = records.disclosure(conn, args.code, args.key,
                                   verified_as=service.recorded_key(conn, args.code, args.key))
    if args.json:
        print_json(found)
        return 0
    items = found["disclosures"]
    print(f"{found['resource']} record {found['key']} (provider {found['provider']})")
    if not items:
        print("  no department received or verified this record")
        return 0
    print(f"  departments: {', '.join(found['departments']) or '(unknown)'}")
    table(
        [("  " + str(i["at"]), i["action"], i["consumer"] or "?", i["subscription"]
          + ("" if i["subscription_state"] == "active" else f" ({i['subscription_state']})"),
          _fields(i), i["purpose"] or "?") for i in items],
        ["  AT", "ACTION", "CONSUMER", "SUBSCRIPTION", "FIELDS", "PURPOSE"],
    )
    return 0
