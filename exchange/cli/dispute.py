"""`govex dispute open|list|show|ack|reject|resolve`: the dispute workflow (数据异议处置)."""

from __future__ import annotations

import argparse
from typing import Any

import records
from exchange.cli.output import print_json, table
from exchange.store import open_store
from govex.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "dispute",
        help="disputes on delivered values: open, list, show, ack, reject, resolve",
        description="A consumer disputes a field of a delivered record; the dispute goes to "
        "the resource's provider, who acknowledges it, then corrects the record at the source "
        "and resolves it (the correction is re-delivered to every subscription that holds a "
        "different value) or rejects it with a reason. States: open → acknowledged → "
        "resolved | rejected. Due GOVEX_DISPUTE_DAYS working days (default 5) after opening.",
    )
    sub = p.add_subparsers(dest="dispute_command", required=True, metavar="COMMAND")

    opened = sub.add_parser("open", help="open a dispute; prints its id on the last line")
    opened.add_argument("code", metavar="RESOURCE_CODE")
    opened.add_argument("key", metavar="KEY", help="record key values joined by ','")
    opened.add_argument("--field", required=True, metavar="F", help="the disputed field")
    opened.add_argument("--claim", required=True, metavar="TEXT", help="what is wrong")
    opened.add_argument("--by", required=True, metavar="DEPT",
                        help="the consumer department raising it")
    opened.set_defaults(handler=run_open)

    listed = sub.add_parser("list", help="disputes, newest first, with overdue flags")
    listed.add_argument("--state", choices=("open", "acknowledged", "resolved", "rejected"))
    listed.add_argument("--resource", metavar="RESOURCE_CODE")
    listed.add_argument("--json", action="store_true", help="print JSON")
    listed.set_defaults(handler=run_list)

    shown = sub.add_parser("show", help="one dispute with its history and evidence")
    shown.add_argument("id", metavar="ID")
    shown.add_argument("--json", action="store_true", help="print JSON")
    shown.set_defaults(handler=run_show)

    ack = sub.add_parser("ack", help="provider: acknowledge an open dispute")
    ack.add_argument("id", metavar="ID")
    ack.set_defaults(handler=run_ack)

    rej = sub.add_parser("reject", help="provider: reject an acknowledged dispute, with reason")
    rej.add_argument("id", metavar="ID")
    rej.add_argument("--reason", required=True, metavar="TEXT", help="why the value stands")
    rej.set_defaults(handler=run_reject)

    res = sub.add_parser(
        "resolve",
        help="provider: re-deliver the corrected record and close the dispute",
        description="Re-read the record from the source by key, pass it through the "
        "resource's quality gate and re-deliver it to every subscription whose last delivered "
        "value differs, as one exchange run; the dispute then carries the evidence (run, "
        "subscriptions, old and new hashes). Exit 1 if the record now fails the gate.",
    )
    res.add_argument("id", metavar="ID")
    res.set_defaults(handler=run_resolve)


def _print(d: dict[str, Any]) -> None:
    flag = " OVERDUE" if d["overdue"] else ""
    print(f"dispute {d['id']}: {d['state']}{flag}")
    print(f"  {d['resource']} record {d['key']}, field {d['field']}")
    print(f"  claim: {d['claim']}")
    print(f"  opened by {d['opened_by']} at {d['opened_at']}, provider {d['provider']}, "
          f"due {d['due']}")
    if d["reason"]:
        print(f"  reason: {d['reason']}")
    evidence = d.get("evidence")
    if evidence:
        print(f"  re-delivery run {evidence['run_id']}:")
        for item in evidence["redelivered"]:
            print(f"    {item['subscription']} ({item['consumer']}): "
                  f"{item['old_hash']} -> {item['new_hash']}")
        for item in evidence["unchanged"]:
            print(f"    {item['subscription']} ({item['consumer']}): unchanged {item['hash']}")
        for item in evidence["skipped"]:
            print(f"    {item['subscription']}: skipped, {item['reason']}")


def run_open(args: argparse.Namespace) -> int:

    engine = open_store(load_settings())
    with engine.begin() as conn:
        opened = records.open_dispute(
            conn, resource=args.code, key=args.key, field=args.field, claim=args.claim,
            opened_by=args.by,
        )
    print(f"dispute opened on {opened['resource']} record {opened['key']} field "
          f"{opened['field']}, routed to {opened['provider']}, due {opened['due']}")
    print(opened["id"])
    return 0


def run_list(args: argparse.Namespace) -> int:
    import catalog

    engine = open_store(load_settings())
    with engine.connect() as conn:
        if args.resource:
            catalog.load_resource(conn, args.resource)
        items = records.list_disputes(conn, resource=args.resource, state=args.state)
    if args.json:
        print_json(items)
        return 0
    if not items:
        print("No disputes.")
        return 0
    table(
        [(d["id"], d["state"] + (" OVERDUE" if d["overdue"] else ""), d["resource"], d["key"],
          d["field"], d["opened_by"], d["provider"], d["due"]) for d in items],
        ["ID", "STATE", "RESOURCE", "KEY", "FIELD", "BY", "PROVIDER", "DUE"],
    )
    return 0


def run_show(args: argparse.Namespace) -> int:

    engine = open_store(load_settings())
    with engine.connect() as conn:
        found = records.get_dispute(conn, args.id)
    if args.json:
        print_json(found)
    else:
        _print(found)
    return 0


def run_ack(args: argparse.Namespace) -> int:

    engine = open_store(load_settings())
    with engine.begin() as conn:
        done = records.acknowledge(conn, args.id)
    print(f"dispute {done['id']} acknowledged; due {done['due']}")
    return 0


def run_reject(args: argparse.Namespace) -> int:

    engine = open_store(load_settings())
    with engine.begin() as conn:
        done = records.reject(conn, args.id, args.reason)
    print(f"dispute {done['id']} rejected: {done['reason']}")
    return 0


def run_resolve(args: argparse.Namespace) -> int:
    from exchange.run import resolve_dispute

    engine = open_store(load_settings())
    done = resolve_dispute(engine, args.id)
    _print(done)
    return 0
