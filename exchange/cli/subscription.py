"""`govex subscription revoke ID --reason R`: end a subscription, acting with an API token."""

from __future__ import annotations

import argparse

from exchange.cli.identity import add_token_argument, principal_from_args


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "subscription",
        help="end a subscription: revoke",
        description="A subscription's end. `revoke` acts with the API token of the resource's "
        "provider or of the platform authority (--token or GOVEX_TOKEN).",
    )
    sub = p.add_subparsers(dest="subscription_command", required=True, metavar="COMMAND")
    revoke = sub.add_parser(
        "revoke",
        help="revoke a subscription, with a reason",
        description="Revoke subscription ID: the next run of its resource delivers nothing to "
        "it and purges what it was delivered from its target, unless its approval said "
        "retain_after_end: true. The consumer sees the state, the time and the reason. Exit 2, "
        "nothing changed, for a token that may not revoke it or a subscription already revoked.",
    )
    revoke.add_argument("id", metavar="ID")
    revoke.add_argument("--reason", required=True, metavar="R",
                        help="why the subscription ends (the consumer sees it)")
    add_token_argument(revoke)
    revoke.set_defaults(handler=run_revoke)


def run_revoke(args: argparse.Namespace) -> int:
    # The run engine loads pyarrow, the store SQLAlchemy, Alembic and pydantic: only when
    # revoking, never for `govex --help`.
    from exchange.run import ending
    from exchange.store import open_store
    from govex.settings import load_settings

    engine = open_store(load_settings())
    with engine.begin() as conn:
        principal = principal_from_args(args, conn)
        done = ending.revoke(conn, args.id, principal, args.reason)
    print(f"subscription {done['subscription']} revoked by {done['ended_by']}: "
          f"{done['reason']}; the next run of its resource delivers nothing to it")
    return 0
