"""`govex trace RESOURCE_CODE KEY [--json]`: the provenance of one record."""

from __future__ import annotations

import argparse

from exchange.cli.output import print_json, table


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "trace",
        help="provenance of one record: source, deliveries, quality, disputes",
        description="Show where record KEY of a resource comes from (its source and the "
        "fingerprint of the record there now, re-read by key), every delivery of it (newest "
        "first: subscription, consumer, run, time, fingerprint of the delivered values, "
        "fields), its quality history and its disputes. KEY is the record key's values "
        "joined by ','. Unknown resource: exit 2.",
    )
    p.add_argument("code", metavar="RESOURCE_CODE")
    p.add_argument("key", metavar="KEY", help="record key values joined by ','")
    p.add_argument("--json", action="store_true", help="print the trace as JSON")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import records  # provenance pulls in pyarrow: keeps `govex --help` fast
    from exchange.store import open_store
    from govex.settings import load_settings


    engine = open_store(load_settings())
    found = records.trace(engine, args.code, args.key)
    if args.json:
        print_json(found)
        return 0
    source = found["source"]
    where = source["table"] or "query"
    if source["current_hash"]:
        now = f"current hash {source['current_hash']}"
    elif source.get("error"):
        now = source["error"]
    else:
        now = "the record is no longer at the source"
    print(f"{found['resource']} record {found['key']} (provider {found['provider']})")
    print(f"  source {source['connection']}/{where}: {now}")
    deliveries = found["deliveries"]
    if deliveries:
        print(f"  {len(deliveries)} deliver{'y' if len(deliveries) == 1 else 'ies'}, newest first:")
        table(
            [("  " + d["subscription"], d["consumer"] or "-", d["run_id"], d["delivered_at"],
              d["hash"], ",".join(d["fields"])) for d in deliveries],
            ["  SUBSCRIPTION", "CONSUMER", "RUN", "DELIVERED AT", "HASH", "FIELDS"],
        )
    else:
        print("  never delivered")
    if found["quality"]:
        print("  quality:")
        table(
            [("  " + q["run_id"], "passed" if q["passed"] else "failed",
              ", ".join(f"{c['check']}({c.get('column') or ''})" for c in q["failed_checks"])
              or "-")
             for q in found["quality"]],
            ["  RUN", "GATE", "FAILED CHECKS"],
        )
    if found["disputes"]:
        print("  disputes:")
        table([("  " + d["id"], d["state"]) for d in found["disputes"]], ["  ID", "STATE"])
    return 0
