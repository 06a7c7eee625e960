"""Who acts on the command line: the department and role of an API token.

A command that acts for a department (dispute steps, request review and approval, revocation)
takes its actor from `--token TOKEN` or, when that is not given, `GOVEX_TOKEN`; never from a
flag naming a department, which anyone could claim. The audit log then records the token's
department and role, as it does for the REST API.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from govex.errors import DeclarationError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from exchange.store import Principal


def add_token_argument(parser: argparse.ArgumentParser) -> None:
    """Give `parser` the `--token` option every acting command shares."""
    parser.add_argument(
        "--token", metavar="TOKEN", default=None,
        help="the API token to act with (its department and role are recorded); "
        "default: GOVEX_TOKEN",
    )


def principal_from_args(args: argparse.Namespace, conn: sa.Connection) -> Principal:
    """The principal of `--token` (else GOVEX_TOKEN), verified against the store on `conn`
    (the caller commits: the token's last use is recorded); a missing, unknown, expired or
    revoked token is a DeclarationError (exit 2) in one sentence."""
    # Imported here, not at the top: `govex --help` (which adds --token) loads no store.
    from exchange.store import InvalidToken, authenticate
    from govex.settings import load_settings

    token = getattr(args, "token", None)
    if not token:
        configured = load_settings().token
        token = configured.get_secret_value() if configured is not None else None
    if not token:
        msg = ("this command acts for a department: give its API token with --token TOKEN "
               "or GOVEX_TOKEN (`govex token create --department D --role R` issues one)")
        raise DeclarationError(msg)
    try:
        return authenticate(conn, token)
    except InvalidToken as e:
        msg = f"the token given with --token or GOVEX_TOKEN cannot act: {e}"
        raise DeclarationError(msg) from e


def actor(principal: Principal) -> str:
    """How the audit log and a subscription's end name who acted: `department/role`."""
    return f"{principal.department}/{principal.role}"
