"""`govex audit verify [--json]`, `govex audit list [--json] [--limit N] [--kind K] [--before SEQ]`
(the same entries as `GET /api/v1/audit`)."""

from __future__ import annotations

import argparse

from exchange.cli.output import print_json, table


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"must be a whole number of at least 1, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _kind(text: str) -> str:
    """--kind's value, one of records.AUDIT_KINDS (checked when given: `records` is too heavy
    for `govex --help` to import for a list of choices)."""
    import records

    if text not in records.AUDIT_KINDS:
        msg = f"invalid choice: {text!r} (choose from {', '.join(records.AUDIT_KINDS)})"
        raise argparse.ArgumentTypeError(msg)
    return text


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("audit", help="the hash-chained audit log: verify and list it")
    sub = p.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")
    ver = sub.add_parser(
        "verify",
        help="verify the hash chain; exit 1 and name the first bad entry if broken",
        description="Recompute every entry's hash in seq order and check each links to the one "
        "before it. Exit 0 when intact; exit 1 naming the first entry that was edited, "
        "deleted or moved.",
    )
    ver.add_argument("--json", action="store_true", help="print JSON")
    ver.set_defaults(handler=run_verify)
    ls = sub.add_parser("list", help="the latest audit entries, oldest first")
    ls.add_argument("--limit", type=_positive, default=50, metavar="N",
                    help="show the last N entries (default 50)")
    ls.add_argument("--kind", type=_kind, metavar="KIND", help="only entries of this kind")
    ls.add_argument("--before", type=_positive, metavar="SEQ",
                    help="only entries with a seq below SEQ (the page before one shown)")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(handler=run_list)


def run_verify(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import records
    from exchange.store import open_store
    from govex.settings import load_settings

    engine = open_store(load_settings())
    with engine.connect() as conn:
        result = records.verify_audit(conn)
    if args.json:
        print_json(result.to_json())
    elif result.first_bad is None:
        print(f"audit log intact: {result.checked} entries")
    else:
        bad = result.first_bad
        what = f" (kind {bad.kind}, subject {bad.subject})" if bad.kind is not None else ""
        before = "entry" if result.checked == 1 else "entries"
        print(f"audit log broken at seq {bad.seq}{what}: {bad.reason}; "
              f"the {result.checked} {before} before it are intact")
    return 0 if result.ok else 1


def run_list(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    import records
    from exchange.store import open_store
    from govex.settings import load_settings

    engine = open_store(load_settings())
    with engine.connect() as conn:
        entries = records.list_audit(conn, limit=args.limit, kind=args.kind,
                                     before=args.before)
    if args.json:
        print_json([e.to_json() for e in entries])
        return 0
    if not entries:
        print("The audit log is empty.")
        return 0
    table(
        [(e.seq, e.at.isoformat(timespec="seconds"), e.actor, e.kind, e.subject,
          e.hash[:12]) for e in entries],
        ["SEQ", "AT", "ACTOR", "KIND", "SUBJECT", "HASH"],
    )
    return 0
