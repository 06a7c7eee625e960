"""`govex dispute open|list|show|ack|reject|resolve`: the dispute workflow (数据异议处置)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from exchange.cli.output import print_json, table
from govex.errors import Forbidden

if TYPE_CHECKING:
    import sqlalchemy as sa

    import catalog
    from exchange.store import Principal


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    from exchange.cli.identity import add_token_argument

    p = subparsers.add_parser(
        "dispute",
        help="disputes on delivered values: open, list, show, ack, reject, resolve",
        description="A consumer disputes a field of a delivered record; the dispute goes to "
        "the resource's provider, who acknowledges it, then corrects the record at the source "
        "and resolves it (the correction is re-delivered to every subscription that holds a "
        "different value) or rejects it with a reason. States: open → acknowledged → "
        "resolved | rejected. Due GOVEX_DISPUTE_DAYS working days (default 5) after opening. "
        "open, ack, reject and resolve act with an API token (--token or GOVEX_TOKEN): a "
        "consumer's opens a dispute for its department; the provider's (or an admin's) takes "
        "the other steps. The audit log records the token's department and role.",
    )
    sub = p.add_subparsers(dest="dispute_command", required=True, metavar="COMMAND")

    opened = sub.add_parser("open", help="open a dispute; prints its id on the last line")
    opened.add_argument("code", metavar="RESOURCE_CODE")
    opened.add_argument("key", metavar="KEY",
                        help="record key values joined by ',', or the key as the token's "
                        "department received it (hashed where it was hashed) or its "
                        "_govex_key")
    opened.add_argument("--field", required=True, metavar="F", help="the disputed field")
    opened.add_argument("--claim", required=True, metavar="TEXT", help="what is wrong")
    add_token_argument(opened)
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
    add_token_argument(ack)
    ack.set_defaults(handler=run_ack)

    rej = sub.add_parser("reject", help="provider: reject an acknowledged dispute, with reason")
    rej.add_argument("id", metavar="ID")
    rej.add_argument("--reason", required=True, metavar="TEXT", help="why the value stands")
    add_token_argument(rej)
    rej.set_defaults(handler=run_reject)

    res = sub.add_parser(
        "resolve",
        help="provider: re-deliver the corrected record and close the dispute",
        description="Re-read the record from the source by key, pass it through the "
        "resource's quality gate and re-deliver it to every subscription whose last delivered "
        "value differs, as one exchange run; the dispute then carries the evidence (run, "
        "subscriptions, old and new hashes). Exit 1 if the record now fails the gate. Exit 2, "
        "nothing written, if every subscription already holds the source's value (nothing "
        "was corrected: `govex dispute reject` it instead, or --force).",
    )
    res.add_argument("id", metavar="ID")
    res.add_argument("--force", action="store_true",
                     help="close it as resolved even when nothing changed at the source "
                     "(otherwise refused: reject it instead)")
    add_token_argument(res)
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
    for flag in d.get("flags") or ():
        why = f" ({flag['error']})" if flag["state"] == "pending" and flag["error"] else ""
        print(f"  flag in {flag['subscription']} ({flag['consumer']}): {flag['state']}{why}")


def _received_as(
    conn: sa.Connection, secret: bytes, key: str
) -> Callable[[catalog.Resource, list[catalog.Subscription]], str]:
    """How `dispute open` turns KEY into the record's source key: the source key itself when
    it was delivered to the token's department, else the one record the department received
    under that name (key as delivered, hashed where hashed, or `_govex_key`), the rule trace and
    the API follow. A key it never received stays as given and is refused as never
    delivered."""
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import records


    def source_key(resource: catalog.Resource, subs: list[catalog.Subscription]) -> str:
        # The web wing owns the received-key rule; it loads FastAPI, so only when opening.
        from exchange.web import received_keys

        mine = {s.id for s in subs}
        if any(d["subscription"] in mine for d in records.deliveries_of(conn, resource.code, key)):
            return key
        found = received_keys.source_keys(conn, resource, subs, key, secret)
        if len(found) == 1:
            return found.pop()
        records.split_key(key, resource.key)  # a malformed key is named as such
        return key

    return source_key


def _opener(args: argparse.Namespace, conn: sa.Connection) -> Principal:
    """The token's principal, if it may open a dispute: a consumer (for its own department)
    or an admin, as on the REST API (`exchange.web.disputes.open_for`)."""
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    from exchange.cli.identity import principal_from_args

    principal = principal_from_args(args, conn)
    if principal.role not in ("consumer", "admin"):
        msg = f"role '{principal.role}' may not open disputes; a consumer token may"
        raise Forbidden(msg)
    return principal


def run_open(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import records
    from exchange.cli.identity import actor
    from exchange.run import master_key
    from exchange.store import open_store
    from govex.settings import load_settings

    engine = open_store(load_settings())
    secret = master_key(engine)  # before the transaction: on first use it is written
    with engine.begin() as conn:
        principal = _opener(args, conn)
        opened = records.open_dispute(
            conn, resource=args.code, key=args.key, field=args.field, claim=args.claim,
            opened_by=principal.department, actor=actor(principal),
            source_key=_received_as(conn, secret, args.key),
        )
    _settle_flags(engine, opened["resource"])
    print(f"dispute opened on {opened['resource']} record {opened['key']} field "
          f"{opened['field']}, routed to {opened['provider']}, due {opened['due']}")
    print(opened["id"])
    return 0


def _settle_flags(engine: sa.Engine, resource: str) -> None:
    """The opened or closed dispute's flag, written to the consumers' targets now where they
    can be reached; a target that cannot be is left pending (with a warning) for the next run
    of the resource, and the step stands."""
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    from exchange.run import dispute_flags

    settled = dispute_flags.settle(engine, resource)
    if settled.pending:
        print(f"warning: the dispute flag could not be written to {settled.pending} "
              f"target(s) yet; the next run of {resource} writes it (see `govex dispute "
              "show`)", file=sys.stderr)


def run_list(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import catalog
    import records
    from exchange.store import open_store
    from govex.settings import load_settings

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

    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import records
    from exchange.store import open_store
    from govex.settings import load_settings

    engine = open_store(load_settings())
    with engine.connect() as conn:
        found = records.get_dispute(conn, args.id)
    if args.json:
        print_json(found)
    else:
        _print(found)
    return 0


def _provider_of(args: argparse.Namespace, conn: sa.Connection) -> Principal:
    """The token's principal, if it may act on dispute `args.id`: the provider it is routed to,
    or an admin, as on the REST API (`exchange.web.disputes.may_act`)."""
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import records
    from exchange.cli.identity import actor, principal_from_args

    principal = principal_from_args(args, conn)
    found = records.get_dispute(conn, args.id)
    provider = str(found["provider"])
    if principal.role != "admin" and not (
        principal.role == "provider" and principal.department == provider
    ):
        msg = (f"only the provider '{provider}' (or an admin) may act on dispute {args.id}; "
               f"the token is {actor(principal)}'s")
        raise Forbidden(msg)
    return principal


def run_ack(args: argparse.Namespace) -> int:

    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import records
    from exchange.cli.identity import actor
    from exchange.store import open_store
    from govex.settings import load_settings

    engine = open_store(load_settings())
    with engine.begin() as conn:
        principal = _provider_of(args, conn)
        done = records.acknowledge(conn, args.id, actor=actor(principal))
    print(f"dispute {done['id']} acknowledged; due {done['due']}")
    return 0


def run_reject(args: argparse.Namespace) -> int:

    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import records
    from exchange.cli.identity import actor
    from exchange.store import open_store
    from govex.settings import load_settings

    engine = open_store(load_settings())
    with engine.begin() as conn:
        principal = _provider_of(args, conn)
        done = records.reject(conn, args.id, args.reason, actor=actor(principal))
    _settle_flags(engine, done["resource"])
    print(f"dispute {done['id']} rejected: {done['reason']}")
    return 0


def run_resolve(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    from exchange.cli.identity import actor
    from exchange.run import resolve_dispute
    from exchange.store import open_store
    from govex.settings import load_settings

    engine = open_store(load_settings())
    with engine.begin() as conn:  # the token's use is recorded before the re-delivery
        principal = _provider_of(args, conn)
    done = resolve_dispute(engine, args.id, actor=actor(principal), force=args.force)
    if not done["evidence"]["redelivered"]:
        print(f"warning: nothing was re-delivered (every subscription already held the "
              f"source's value); dispute {done['id']} is closed as resolved without a "
              "correction", file=sys.stderr)
    _print(done)
    return 0
