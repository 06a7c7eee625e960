"""`govex token create|list|revoke`: API tokens for the web app and REST API."""

from __future__ import annotations

import argparse

from exchange.cli.output import print_json, table
from exchange.store import roles  # constants only: the parser names roles and lifetimes


def _days(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= roles.MAX_DAYS:
        msg = f"must be a whole number of days from 1 to {roles.MAX_DAYS}, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("token", help="issue, list and revoke API tokens")
    sub = p.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    create = sub.add_parser(
        "create",
        help="issue an API token (printed once, stored hashed)",
        description="Issue a bearer token for the web app and REST API. The token is printed "
        "once, alone on the last line, and only its SHA-256 digest is stored. It expires "
        f"after --days days (default {roles.DEFAULT_DAYS}); revoke it sooner with "
        "`govex token revoke ID`.",
    )
    create.add_argument("--department", required=True, metavar="D",
                        help="department code from departments.yaml, e.g. psb")
    create.add_argument("--role", required=True, metavar="R",
                        help=f"one of: {', '.join(roles.ROLES)}")
    create.add_argument("--days", type=_days, default=roles.DEFAULT_DAYS, metavar="N",
                        help=f"days until the token expires (default {roles.DEFAULT_DAYS}, "
                        f"at most {roles.MAX_DAYS})")
    create.set_defaults(handler=run_create)
    ls = sub.add_parser(
        "list", help="list issued tokens with expiry and state (never their secrets)",
        description="Every token ever issued, oldest first: id, department, role, when it was "
        "created, when it expires, when it was last used (to the minute) and its state "
        "(active, expired or revoked).",
    )
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(handler=run_list)
    revoke = sub.add_parser(
        "revoke", help="revoke a token by its id",
        description="Revoke a token at once: it no longer authenticates, and every web "
        "sign-in made with it ends.",
    )
    revoke.add_argument("id", metavar="ID", help="token id as `govex token list` shows it")
    revoke.set_defaults(handler=run_revoke)


def run_create(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    from exchange.store import open_store, tokens
    from govex.settings import load_settings

    tokens.check_role(args.role)  # bad input fails before the store is even opened
    engine = open_store(load_settings())
    with engine.begin() as conn:
        issued = tokens.issue_token(conn, args.department, args.role, days=args.days)
    print(f"token {issued.info.id} for department {args.department}, role {args.role}, "
          f"expires {issued.info.expires_at.isoformat(timespec='seconds')} "
          "(shown once; store it now):")
    print(issued.secret)
    return 0


def run_list(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    from exchange.store import open_store, tokens
    from govex.settings import load_settings

    engine = open_store(load_settings())
    with engine.connect() as conn:
        issued = tokens.list_tokens(conn)
    if args.json:
        print_json([t.to_json() for t in issued])
        return 0
    if not issued:
        print("No tokens issued yet: `govex token create --department D --role R`.")
        return 0
    table(
        [
            (t.id, t.department, t.role, t.created_at.isoformat(timespec="seconds"),
             t.expires_at.isoformat(timespec="seconds"),
             t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "never",
             t.state())
            for t in issued
        ],
        ["ID", "DEPARTMENT", "ROLE", "CREATED", "EXPIRES", "LAST USED", "STATE"],
    )
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    from exchange.store import open_store, tokens
    from govex.settings import load_settings

    engine = open_store(load_settings())
    with engine.begin() as conn:
        tokens.revoke_token(conn, args.id)
    print(f"token {args.id} revoked; its web sign-ins are ended")
    return 0
