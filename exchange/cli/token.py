"""`govex token create|list|revoke`: API tokens for the web app and REST API."""

from __future__ import annotations

import argparse

from exchange.cli.output import table
from exchange.store import open_store, tokens
from govex.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("token", help="issue, list and revoke API tokens")
    sub = p.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    create = sub.add_parser(
        "create",
        help="issue an API token (printed once, stored hashed)",
        description="Issue a bearer token for the web app and REST API. The token is printed "
        "once, alone on the last line, and only its SHA-256 digest is stored.",
    )
    create.add_argument("--department", required=True, metavar="D",
                        help="department code from departments.yaml, e.g. psb")
    create.add_argument("--role", required=True, metavar="R",
                        help=f"one of: {', '.join(tokens.ROLES)}")
    create.set_defaults(handler=run_create)
    ls = sub.add_parser("list", help="list issued tokens (never their secrets)")
    ls.set_defaults(handler=run_list)
    revoke = sub.add_parser("revoke", help="revoke a token by its id")
    revoke.add_argument("id", metavar="ID", help="token id as `govex token list` shows it")
    revoke.set_defaults(handler=run_revoke)


def run_create(args: argparse.Namespace) -> int:
    tokens.check_role(args.role)  # bad input fails before the store is even opened
    engine = open_store(load_settings())
    with engine.begin() as conn:
        secret = tokens.create_token(conn, args.department, args.role)
    print(f"token for department {args.department}, role {args.role} "
          "(shown once; store it now):")
    print(secret)
    return 0


def run_list(_args: argparse.Namespace) -> int:
    engine = open_store(load_settings())
    with engine.connect() as conn:
        issued = tokens.list_tokens(conn)
    if not issued:
        print("No tokens issued yet: `govex token create --department D --role R`.")
        return 0
    table(
        [
            (t.id, t.department, t.role, t.created_at.isoformat(timespec="seconds"),
             t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "never",
             "revoked" if t.revoked else "active")
            for t in issued
        ],
        ["ID", "DEPARTMENT", "ROLE", "CREATED", "LAST USED", "STATE"],
    )
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    engine = open_store(load_settings())
    with engine.begin() as conn:
        tokens.revoke_token(conn, args.id)
    print(f"token {args.id} revoked")
    return 0
