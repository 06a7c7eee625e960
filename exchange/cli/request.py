"""`govex request submit|list|show|review|approve|reject|withdraw`: sharing requests (供需对接)
on the command line, acting as the department and role of an API token (`--token` or
GOVEX_TOKEN), the same service the REST API calls."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from exchange.cli.output import print_json, table
from govex.errors import DeclarationError, DeclarationErrors

if TYPE_CHECKING:
    import sqlalchemy as sa

    import exchange.requests as sharing
    from exchange.store import Principal

#: The request states (exchange.requests.STATES), spelled here so `--help` loads no service.
STATES = ("submitted", "reviewed", "approved", "rejected", "returned", "withdrawn", "revoked")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # Imported here, not at the top: `govex --help` loads no command's dependencies.
    from exchange.cli.identity import add_token_argument

    p = subparsers.add_parser(
        "request",
        help="sharing requests: submit, list, show, review, approve, reject, withdraw",
        description="A consumer asks for a resource, the platform authority reviews it within "
        "GOVEX_REVIEW_DAYS working days (default 2), the provider answers within "
        "GOVEX_ANSWER_DAYS (default 5); an approval creates the subscription. States: "
        "submitted → reviewed → approved | rejected; also returned (not compliant) and "
        "withdrawn. Every command acts as the department and role of an API token: --token "
        "TOKEN or GOVEX_TOKEN.",
    )
    sub = p.add_subparsers(dest="request_command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        parser = sub.add_parser(name, help=help_text)
        add_token_argument(parser)
        return parser

    submitted = command("submit", "consumer: submit the request a YAML file describes")
    submitted.add_argument("file", metavar="FILE.yaml",
                           help="resource, purpose, legal_basis, fields, masking, target, mode, "
                           "valid_from, valid_until; or delivery: verify without target, masking "
                           "and mode (see docs/requests.md)")
    submitted.add_argument("--json", action="store_true", help="print JSON")
    submitted.set_defaults(handler=run_submit)

    listed = command("list", "the requests the token may read, newest first")
    listed.add_argument("--state", choices=STATES)
    listed.add_argument("--json", action="store_true", help="print JSON")
    listed.set_defaults(handler=run_list)

    shown = command("show", "one request with its history")
    shown.add_argument("id", metavar="ID")
    shown.add_argument("--json", action="store_true", help="print JSON")
    shown.set_defaults(handler=run_show)

    reviewed = command("review", "authority: review a submitted request")
    reviewed.add_argument("id", metavar="ID")
    verdict = reviewed.add_mutually_exclusive_group(required=True)
    verdict.add_argument("--compliant", action="store_true",
                         help="compliant: reviewed (an unconditional resource: approved)")
    verdict.add_argument("--return", dest="return_reason", metavar="REASON",
                         help="not compliant: return it with this reason")
    reviewed.set_defaults(handler=run_review)

    approved = command("approve", "provider: approve a reviewed request, optionally narrowed")
    approved.add_argument("id", metavar="ID")
    approved.add_argument("--fields", nargs="+", metavar="FIELD",
                          help="approve only these of the fields asked for")
    approved.add_argument("--mask", action="append", default=[], metavar="FIELD=FUNCTION",
                          help="add masking to a field asked for unmasked (repeatable)")
    approved.set_defaults(handler=run_approve)

    rejected = command("reject", "provider: reject a reviewed request, with a reason")
    rejected.add_argument("id", metavar="ID")
    rejected.add_argument("--reason", required=True, metavar="R", help="why it is refused")
    rejected.set_defaults(handler=run_reject)

    withdrawn = command("withdraw", "consumer: withdraw a request before it is answered")
    withdrawn.add_argument("id", metavar="ID")
    withdrawn.set_defaults(handler=run_withdraw)


def _acting(args: argparse.Namespace) -> tuple[sa.Engine, Principal]:
    """The store and the token's principal (`exchange.cli.identity`: exit 2 with one sentence
    when the token is missing, unknown, revoked or expired)."""
    from exchange.cli.identity import principal_from_args
    from exchange.store import open_store
    from govex.settings import load_settings

    engine = open_store(load_settings())
    with engine.begin() as conn:
        return engine, principal_from_args(args, conn)


def _ask(path: str) -> sharing.Ask:
    from pydantic import ValidationError

    import exchange.requests as sharing
    from catalog import yamlio

    data = yamlio.read_yaml(Path(path))
    if not isinstance(data, dict):
        msg = "a request file is a YAML mapping (resource, purpose, legal_basis, fields, …)"
        raise DeclarationError(msg, file=path)
    try:
        return sharing.Ask.model_validate(data)
    except ValidationError as error:
        raise DeclarationErrors([
            DeclarationError(
                str(e["msg"]).removeprefix("Value error, ") if e["type"] != "extra_forbidden"
                else "unknown key is not allowed here",
                file=path, field=".".join(str(p) for p in e["loc"]) or None,
            )
            for e in error.errors()
        ]) from error


def _print(r: dict[str, Any]) -> None:
    flag = " OVERDUE" if r["overdue"] else ""
    print(f"request {r['id']}: {r['state']}{flag}")
    print(f"  {r['consumer']} asks {r['provider']} for {r['resource']}: "
          f"{', '.join(r['fields'])}")
    if r["masking"]:
        print("  masking: " + ", ".join(f"{f}={m}" for f, m in r["masking"].items()))
    target = r["target"] or {}
    print(f"  purpose: {r['purpose']}; legal basis: {r['legal_basis']}")
    where = (f"target {target.get('connection')}.{target.get('table')} ({r['mode']})"
             if r.get("delivery") != "verify" else "delivery: verify (no copy; POST "
             f"/api/v1/verify/{r['resource']})")
    print(f"  {where}, valid {r['valid_from']} to {r['valid_until']}")
    if r["due"] and r["state"] in ("submitted", "reviewed"):
        counted = " (weekdays only: the holiday calendar does not cover the year)" if (
            r["calendar"] == "weekdays-only") else ""
        print(f"  due {r['due']}{counted}")
    if r["subscription"]:
        print(f"  subscription {r['subscription']}")
    for step in r["history"]:
        why = f": {step['reason']}" if step["reason"] else ""
        print(f"  {step['at']}  {step['state']} by {step['by']}{why}")


def _done(args: argparse.Namespace, shown: dict[str, Any]) -> int:
    if getattr(args, "json", False):
        print_json(shown)
    else:
        _print(shown)
    return 0


def run_submit(args: argparse.Namespace) -> int:
    import exchange.requests as sharing

    ask = _ask(args.file)
    engine, principal = _acting(args)
    shown = sharing.submit(engine, principal, ask)
    if args.json:
        print_json(shown)
    else:
        print(f"request submitted for {shown['resource']}, due for review {shown['due']}")
        print(shown["id"])
    return 0


def run_list(args: argparse.Namespace) -> int:
    import exchange.requests as sharing

    engine, principal = _acting(args)
    items = sharing.list_requests(engine, principal, state=args.state)
    if args.json:
        print_json(items)
        return 0
    if not items:
        print("No requests.")
        return 0
    table(
        [(r["id"], r["state"] + (" OVERDUE" if r["overdue"] else ""), r["resource"],
          r["consumer"], r["provider"], r["due"] or "", r["subscription"] or "")
         for r in items],
        ["ID", "STATE", "RESOURCE", "CONSUMER", "PROVIDER", "DUE", "SUBSCRIPTION"],
    )
    return 0


def run_show(args: argparse.Namespace) -> int:
    import exchange.requests as sharing

    engine, principal = _acting(args)
    return _done(args, sharing.get_request(engine, principal, args.id))


def run_review(args: argparse.Namespace) -> int:
    import exchange.requests as sharing

    engine, principal = _acting(args)
    return _done(args, sharing.review(engine, principal, args.id, compliant=args.compliant,
                                      reason=args.return_reason))


def _masks(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        field, sep, function = pair.partition("=")
        if not sep or not field or not function:
            msg = f"'{pair}' is not FIELD=FUNCTION (e.g. name=mask_name)"
            raise DeclarationError(msg, field="--mask", value=pair)
        out[field] = function
    return out


def run_approve(args: argparse.Namespace) -> int:
    import exchange.requests as sharing

    masking = _masks(args.mask)
    engine, principal = _acting(args)
    return _done(args, sharing.approve(engine, principal, args.id, fields=args.fields,
                                       masking=masking or None))


def run_reject(args: argparse.Namespace) -> int:
    import exchange.requests as sharing

    engine, principal = _acting(args)
    return _done(args, sharing.reject(engine, principal, args.id, args.reason))


def run_withdraw(args: argparse.Namespace) -> int:
    import exchange.requests as sharing

    engine, principal = _acting(args)
    return _done(args, sharing.withdraw(engine, principal, args.id))
